//! A `[[route]]`, and `[defaults]`, which holds the limit keys every route falls back to.
//!
//! Owns what one route is: its host and path prefix (the prefix normalised the way cheroot's
//! PathInfoDispatcher reads it, so it splits a request path into SCRIPT_NAME and PATH_INFO as
//! PEP 3333 and CGI, RFC 3875 §4.1.5 and §4.1.13, define them), its component, its
//! environment, its `dirs` and `data` tables as written, and its [`Limits`]: a route's own
//! key wins, else `[defaults]`'s, else the built-in `DEFAULT_*` constant, so one file can set
//! a policy once. `[defaults]` is parsed as a route so the two can never disagree on a key's
//! name or type, and refuses what only a route can say (path, component, …). Each route's
//! keys are checked in one fixed order, so the first error a file reports never changes.
//!
//! Not here: the grammar of `host` and the rule that no two routes share a host and prefix
//! (`vhosts.rs`), of an `outbound` entry (`outbound.rs`), whose a data directory is, and
//! whether directories exist on disk (`data.rs`), and enforcing any limit (`gateway`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::outbound::{OutboundNetwork, OutboundTarget};
use super::values::{Checker, ConfigError, Location, invalid, show_size};
use super::vhosts::{HostPattern, Mounts};

/// Wall-clock budget of one request when a route names none: headers, body and all.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Linear memory one instance may grow to when the route names no `memory`.
pub const DEFAULT_MEMORY: u64 = 128 << 20;
/// The most `memory` a route may ask for (a wasm32 memory cannot exceed 4 GiB).
pub const MAX_MEMORY: u64 = 4 << 30;
/// Instances of one route that may run at once.
pub const DEFAULT_MAX_CONCURRENCY: usize = 64;
/// The most `max-concurrency` a route may ask for.
pub const MAX_CONCURRENCY: u64 = 100_000;
/// Requests a warm instance serves before it is replaced (like gunicorn's `max_requests`).
pub const DEFAULT_MAX_REQUESTS: u64 = 10_000;
/// How long an idle warm instance is kept.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a request may wait for a free instance before it gets 503.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(5);
/// Outbound connections one route's instances may hold open at once.
pub const DEFAULT_MAX_OUTBOUND_CONNECTIONS: usize = 100;
/// How long an outbound connect (TCP, or an HTTP request's) may take.
pub const DEFAULT_OUTBOUND_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// What a route's guest may keep in its `data` directories when it names no `data-quota`.
pub const DEFAULT_DATA_QUOTA: u64 = 1 << 30;
/// Requests that may wait for an instance of one route; more get 503 at once.
pub const DEFAULT_MAX_QUEUE: usize = 1024;

/// One `[[route]]`: an application mounted under a path prefix.
#[derive(Debug, Clone)]
pub struct Route {
    /// The virtual host it answers for; `None` for the default server.
    pub host: Option<HostPattern>,
    /// The prefix, normalised: no trailing `/`, and `""` for the root route `/`.
    pub prefix: String,
    /// The component file, resolved against the directory of routes.toml.
    pub component: PathBuf,
    /// The guest's environment variables: exactly these, nothing inherited.
    pub env: Vec<(String, String)>,
    /// Read-only directories: (guest path, host directory resolved against routes.toml).
    pub dirs: Vec<(String, PathBuf)>,
    /// Where the route's `dirs` key stands, if it has one.
    pub dirs_at: Option<Location>,
    /// Read-write directories: (guest path, host directory resolved against routes.toml).
    pub data: Vec<(String, PathBuf)>,
    /// Where the route's `data` key stands, if it has one.
    pub data_at: Option<Location>,
    /// Whether another route may name the same data directories (both must say so).
    pub data_shared: bool,
    /// A shell command that builds the component, run by `serve --build`.
    pub build: Option<String>,
    /// What one request and the route as a whole may take.
    pub limits: Limits,
    /// Where the route's `component` key stands, for errors found after parsing.
    pub component_at: Location,
}

/// A route's sandbox limits: its own keys, else `[defaults]`, else the `DEFAULT_*` constants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock budget for one request.
    pub timeout: Duration,
    /// Reuse instances across requests, or make one per request; unset, the guest's kind
    /// decides (a WSGI application is warm, a wasi:http proxy fresh, as every wasi:http
    /// host runs them and as their toolchains assume).
    pub instances: Option<InstanceModel>,
    /// Instances that may run at once.
    pub max_concurrency: usize,
    /// Requests one warm instance serves before it is replaced.
    pub max_requests: u64,
    /// How long an idle warm instance is kept.
    pub idle_timeout: Duration,
    /// How long a request may wait for a free instance.
    pub queue_timeout: Duration,
    /// The largest request body accepted, if limited.
    pub max_request_body: Option<u64>,
    /// Linear memory one instance may grow to, in bytes.
    pub memory: u64,
    /// What the guest may connect to (empty: nothing).
    pub outbound: Vec<OutboundTarget>,
    /// The private networks a granted name may resolve into (`outbound-private`).
    pub outbound_private: Vec<OutboundNetwork>,
    /// Outbound connections (TCP sockets, HTTP requests) the route's instances may hold
    /// open at once, all together.
    pub max_outbound_connections: usize,
    /// How long an outbound connect may take (a guest's own HTTP connect timeout is capped
    /// by it).
    pub outbound_connect_timeout: Duration,
    /// Bytes the guest may keep in its `data` directories, all together.
    pub data_quota: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: DEFAULT_TIMEOUT,
            instances: None,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            max_requests: DEFAULT_MAX_REQUESTS,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            queue_timeout: DEFAULT_QUEUE_TIMEOUT,
            max_request_body: None,
            memory: DEFAULT_MEMORY,
            outbound: Vec::new(),
            outbound_private: Vec::new(),
            max_outbound_connections: DEFAULT_MAX_OUTBOUND_CONNECTIONS,
            outbound_connect_timeout: DEFAULT_OUTBOUND_CONNECT_TIMEOUT,
            data_quota: DEFAULT_DATA_QUOTA,
        }
    }
}

impl fmt::Display for Limits {
    /// One line, in routes.toml's words, as `check` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let instances = match self.instances {
            Some(InstanceModel::Warm) => "warm",
            Some(InstanceModel::Fresh) => "fresh",
            None => "by-kind",
        };
        write!(
            f,
            "instances={instances} max-concurrency={} queue-timeout={:?} timeout={:?} max-requests={} idle-timeout={:?} memory={}",
            self.max_concurrency,
            self.queue_timeout,
            self.timeout,
            self.max_requests,
            self.idle_timeout,
            show_size(self.memory),
        )?;
        match self.max_request_body {
            Some(n) => write!(f, " max-request-body={}", show_size(n))?,
            None => write!(f, " max-request-body=unlimited")?,
        }
        if !self.outbound.is_empty() {
            let targets: Vec<String> = self.outbound.iter().map(|t| t.to_string()).collect();
            write!(
                f,
                " outbound={} max-outbound-connections={} outbound-connect-timeout={:?}",
                targets.join(","),
                self.max_outbound_connections,
                self.outbound_connect_timeout
            )?;
        }
        if !self.outbound_private.is_empty() {
            let nets: Vec<String> = self
                .outbound_private
                .iter()
                .map(|n| n.to_string())
                .collect();
            write!(f, " outbound-private={}", nets.join(","))?;
        }
        Ok(())
    }
}

/// How a route's instances live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceModel {
    /// An instance serves request after request (WSGI's usual model: the application object
    /// lives across requests); one that failed is replaced.
    Warm,
    /// Every request gets a new instance, so nothing carries over (`wsgi.run_once`).
    Fresh,
}

impl Route {
    /// Host and prefix as people read them: `shop.example.com/admin`, `/` for the root route
    /// of the default server.
    pub fn display_name(&self) -> String {
        match &self.host {
            Some(host) => format!("{host}{}", self.prefix),
            None => self.display_prefix().to_string(),
        }
    }

    /// The prefix as written for people: `/` for the root route.
    pub fn display_prefix(&self) -> &str {
        if self.prefix.is_empty() {
            "/"
        } else {
            &self.prefix
        }
    }
}

/// A `[[route]]`, and also `[defaults]` (which may only hold the limit keys): one type, so
/// the two can never disagree on a key's name or type.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawRoute {
    host: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    component: Option<Spanned<String>>,
    env: Option<Spanned<BTreeMap<String, String>>>,
    dirs: Option<Spanned<BTreeMap<String, String>>>,
    data: Option<Spanned<BTreeMap<String, String>>>,
    data_shared: Option<Spanned<bool>>,
    data_quota: Option<Spanned<String>>,
    build: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    instances: Option<InstanceModel>,
    max_concurrency: Option<Spanned<i64>>,
    max_requests: Option<Spanned<i64>>,
    idle_timeout: Option<Spanned<String>>,
    queue_timeout: Option<Spanned<String>>,
    max_request_body: Option<Spanned<String>>,
    memory: Option<Spanned<String>>,
    outbound: Option<Spanned<Vec<String>>>,
    outbound_private: Option<Spanned<Vec<String>>>,
    max_outbound_connections: Option<Spanned<i64>>,
    outbound_connect_timeout: Option<Spanned<String>>,
}

impl Checker<'_> {
    /// One `[[route]]`: its keys checked in the order their errors are reported, its limits
    /// falling back to `defaults`, its paths resolved against `base`; `mounts` holds the hosts
    /// and prefixes earlier routes took.
    pub(super) fn route(
        &self,
        raw: Spanned<RawRoute>,
        defaults: &Limits,
        base: &Path,
        mounts: &mut Mounts,
    ) -> Result<Route, ConfigError> {
        let route_at = self.at(raw.span());
        let route = raw.into_inner();
        let required = |value: &Option<Spanned<String>>, name: &str| {
            value.clone().ok_or_else(|| {
                invalid(
                    route_at.clone(),
                    format!("route.{name}"),
                    "missing: every [[route]] needs a `path` and a `component`",
                )
            })
        };
        let path = required(&route.path, "path")?;
        let component = required(&route.component, "component")?;

        let host =
            match &route.host {
                None => None,
                Some(host) => Some(HostPattern::parse(host.get_ref()).map_err(|message| {
                    invalid(self.at(host.span()), "route.host".into(), message)
                })?),
            };
        let path_at = self.at(path.span());
        let prefix = normalise_prefix(path.get_ref())
            .map_err(|message| invalid(path_at.clone(), "route.path".into(), message))?;
        mounts.take(&host, &prefix, path.get_ref(), path_at)?;

        let component_at = self.at(component.span());
        if component.get_ref().trim().is_empty() {
            return Err(invalid(
                component_at,
                "route.component".into(),
                "must name a .wasm component file",
            ));
        }

        let limits = self.limits(&route, "route", defaults)?;
        let env = self.pairs(route.env, "route.env", |k, v| {
            if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
                Err(format!(
                    "{k:?}: names must be non-empty without `=` or NUL, values without NUL"
                ))
            } else {
                Ok(())
            }
        })?;
        let dirs_at = route.dirs.as_ref().map(|d| self.at(d.span()));
        let dirs = self.dirs(route.dirs, "route.dirs", base)?;
        let data_at = route.data.as_ref().map(|d| self.at(d.span()));
        let data = self.dirs(route.data, "route.data", base)?;

        Ok(Route {
            host,
            prefix,
            component: base.join(component.get_ref()),
            env,
            dirs,
            dirs_at,
            data,
            data_at,
            data_shared: route.data_shared.is_some_and(Spanned::into_inner),
            build: route.build.map(Spanned::into_inner),
            limits,
            component_at,
        })
    }

    /// The limits `raw` sets, each falling back to `base`; `table` names keys in errors.
    fn limits(&self, raw: &RawRoute, table: &str, base: &Limits) -> Result<Limits, ConfigError> {
        let key = |name: &str| format!("{table}.{name}");
        Ok(Limits {
            timeout: self.duration(&raw.timeout, key("timeout"), base.timeout)?,
            instances: raw.instances.or(base.instances),
            max_concurrency: self.count(
                &raw.max_concurrency,
                key("max-concurrency"),
                base.max_concurrency as u64,
                MAX_CONCURRENCY,
            )? as usize,
            max_requests: self.count(
                &raw.max_requests,
                key("max-requests"),
                base.max_requests,
                u64::MAX >> 1,
            )?,
            idle_timeout: self.duration(
                &raw.idle_timeout,
                key("idle-timeout"),
                base.idle_timeout,
            )?,
            queue_timeout: self.duration(
                &raw.queue_timeout,
                key("queue-timeout"),
                base.queue_timeout,
            )?,
            max_request_body: self
                .size(&raw.max_request_body, key("max-request-body"), 0..=u64::MAX)?
                .or(base.max_request_body),
            memory: self
                .size(&raw.memory, key("memory"), 1 << 16..=MAX_MEMORY)?
                .unwrap_or(base.memory),
            outbound: match &raw.outbound {
                None => base.outbound.clone(),
                Some(list) => list
                    .get_ref()
                    .iter()
                    .map(|entry| {
                        OutboundTarget::parse(entry).map_err(|why| {
                            invalid(
                                self.at(list.span()),
                                key("outbound"),
                                format!("{entry:?}: {why}"),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
            },
            outbound_private: match &raw.outbound_private {
                None => base.outbound_private.clone(),
                Some(list) => list
                    .get_ref()
                    .iter()
                    .map(|entry| {
                        OutboundNetwork::parse(entry).map_err(|why| {
                            invalid(
                                self.at(list.span()),
                                key("outbound-private"),
                                format!("{entry:?}: {why}"),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
            },
            max_outbound_connections: self.count(
                &raw.max_outbound_connections,
                key("max-outbound-connections"),
                base.max_outbound_connections as u64,
                MAX_CONCURRENCY,
            )? as usize,
            outbound_connect_timeout: self.duration(
                &raw.outbound_connect_timeout,
                key("outbound-connect-timeout"),
                base.outbound_connect_timeout,
            )?,
            data_quota: self
                .size(&raw.data_quota, key("data-quota"), 0..=u64::MAX)?
                .unwrap_or(base.data_quota),
        })
    }

    /// `[defaults]` holds limits only: what a route is (path, component, ...) is its own.
    pub(super) fn defaults(&self, raw: Option<RawRoute>) -> Result<Limits, ConfigError> {
        let Some(raw) = raw else {
            return Ok(Limits::default());
        };
        let per_route = [
            ("host", raw.host.as_ref().map(Spanned::span)),
            ("path", raw.path.as_ref().map(Spanned::span)),
            ("component", raw.component.as_ref().map(Spanned::span)),
            ("env", raw.env.as_ref().map(Spanned::span)),
            ("dirs", raw.dirs.as_ref().map(Spanned::span)),
            ("data", raw.data.as_ref().map(Spanned::span)),
            ("data-shared", raw.data_shared.as_ref().map(Spanned::span)),
            ("build", raw.build.as_ref().map(Spanned::span)),
        ];
        if let Some((name, Some(span))) = per_route.into_iter().find(|(_, s)| s.is_some()) {
            return Err(invalid(
                self.at(span),
                format!("defaults.{name}"),
                "[defaults] holds limits only (timeout, memory, max-concurrency, ...); set this in each [[route]]",
            ));
        }
        self.limits(&raw, "defaults", &Limits::default())
    }

    /// A `dirs` or `data` table: absolute guest paths, host directories resolved against
    /// `base`.
    fn dirs(
        &self,
        table: Option<Spanned<BTreeMap<String, String>>>,
        key: &str,
        base: &Path,
    ) -> Result<Vec<(String, PathBuf)>, ConfigError> {
        let pairs = self.pairs(table, key, |guest, host| {
            if !guest.starts_with('/') || guest.contains('\0') {
                Err(format!(
                    "{guest:?}: the guest path must be absolute, e.g. \"/static\""
                ))
            } else if host.is_empty() || host.contains('\0') {
                Err(format!("{guest:?}: the host directory must be named"))
            } else {
                Ok(())
            }
        })?;
        Ok(pairs
            .into_iter()
            .map(|(guest, host)| (guest, base.join(host)))
            .collect())
    }
}

/// `/blog/` → `/blog`, `/` → `` (PathInfoDispatcher strips trailing slashes the same way).
fn normalise_prefix(path: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err(format!(
            "{path:?} must start with `/`, e.g. \"/{}\"",
            path.trim_start_matches('/')
        ));
    }
    if let Some(c) = path
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '%'))
    {
        return Err(format!(
            "{path:?} contains {c:?}; a prefix is a decoded path: no query, fragment, percent-escapes or whitespace"
        ));
    }
    Ok(path.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse;

    #[test]
    fn defaults_fill_in_what_a_route_leaves_out() {
        let c = parse(
            "[defaults]\ntimeout = \"5s\"\nmemory = \"64MiB\"\ninstances = \"fresh\"\n\n[[route]]\npath = \"/a\"\ncomponent = \"a\"\ntimeout = \"1s\"\ndirs = { \"/static\" = \"public\" }\n\n[[route]]\npath = \"/b\"\ncomponent = \"b\"\n",
        )
        .unwrap();
        let (a, b) = (&c.routes[0].limits, &c.routes[1].limits);
        assert_eq!(a.timeout, Duration::from_secs(1), "a route's own key wins");
        assert_eq!(b.timeout, Duration::from_secs(5));
        assert_eq!((a.memory, b.memory), (64 << 20, 64 << 20));
        assert_eq!(b.instances, Some(InstanceModel::Fresh));
        assert_eq!(
            b.max_concurrency, DEFAULT_MAX_CONCURRENCY,
            "built-in default"
        );
        assert_eq!(
            c.routes[0].dirs,
            vec![("/static".to_string(), PathBuf::from("dir/public"))]
        );
        assert_eq!(
            b.to_string(),
            "instances=fresh max-concurrency=64 queue-timeout=5s timeout=5s max-requests=10000 idle-timeout=60s memory=64MiB max-request-body=unlimited"
        );
    }
}
