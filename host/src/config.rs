//! routes.toml → a validated, typed [`Config`].
//!
//! Owns parsing and every check that can be made without compiling a component: unknown
//! keys, bad prefixes, duplicate paths, bad durations, missing component files. Each error
//! names the file, the line and column, and the key, and says how to fix it — the server
//! refuses to start rather than answer 500 later. It does not compile anything ([`crate::engine`])
//! nor decide how requests are matched ([`crate::router`]).
//!
//! ```toml
//! [server]
//! bind = "127.0.0.1:8080"          # optional; --bind overrides it
//!
//! [[route]]
//! path = "/blog"                   # prefix: matches /blog and /blog/..., not /blogger
//! component = "blog.wasm"          # relative to this file
//! env = { GREETING = "hi" }        # the guest's whole environment (optional)
//! build = "cargo build --release"  # run by `serve --build`, in this file's directory (optional)
//! timeout = "30s"                  # wall-clock budget for one request (optional)
//! instances = "warm"               # "warm": reuse instances; "fresh": one per request
//! max-concurrency = 64             # instances running at once; more requests queue
//! max-requests = 10000             # a warm instance is recycled after this many requests
//! idle-timeout = "60s"             # idle warm instances are dropped after this long
//! queue-timeout = "5s"             # how long a request may wait for an instance (then 503)
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

/// Wall-clock budget of one request when a route names none: headers, body and all.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest `timeout` a route may ask for.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);
/// Instances of one route that may run at once.
pub const DEFAULT_MAX_CONCURRENCY: usize = 64;
/// Requests a warm instance serves before it is replaced (like gunicorn's `max_requests`).
pub const DEFAULT_MAX_REQUESTS: u64 = 10_000;
/// How long an idle warm instance is kept.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a request may wait for a free instance before it gets 503.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests that may wait for an instance of one route; more get 503 at once.
pub const DEFAULT_MAX_QUEUE: usize = 1024;
/// Where the server listens when neither routes.toml nor `--bind` says: loopback only, so a
/// first run never exposes a tenant's application to the network by accident.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

/// A routes.toml file, parsed and checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub file: PathBuf,
    /// The `[server]` table.
    pub server: ServerConfig,
    /// The `[[route]]` entries, in file order.
    pub routes: Vec<Route>,
}

/// The `[server]` table.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// `bind`: the address to listen on, if the file names one.
    pub bind: Option<String>,
}

/// One `[[route]]`: an application mounted under a path prefix.
#[derive(Debug, Clone)]
pub struct Route {
    /// The prefix, normalised: no trailing `/`, and `""` for the root route `/`.
    pub prefix: String,
    /// The component file, resolved against the directory of routes.toml.
    pub component: PathBuf,
    /// The guest's environment variables: exactly these, nothing inherited.
    pub env: Vec<(String, String)>,
    /// A shell command that builds the component, run by `serve --build`.
    pub build: Option<String>,
    /// Wall-clock budget for one request.
    pub timeout: Duration,
    /// Reuse instances across requests, or make one per request.
    pub instances: InstanceModel,
    /// Instances that may run at once.
    pub max_concurrency: usize,
    /// Requests one warm instance serves before it is replaced.
    pub max_requests: u64,
    /// How long an idle warm instance is kept.
    pub idle_timeout: Duration,
    /// How long a request may wait for a free instance.
    pub queue_timeout: Duration,
    /// Where the route's `component` key stands, for errors found after parsing.
    pub component_at: Location,
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
    /// The prefix as written for people: `/` for the root route.
    pub fn display_prefix(&self) -> &str {
        if self.prefix.is_empty() {
            "/"
        } else {
            &self.prefix
        }
    }
}

/// A place in routes.toml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// A routes.toml that cannot be served, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read routes file: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or has an unknown key or a value of the wrong type.
    #[error("{at}: {message}")]
    Syntax {
        /// Where.
        at: Location,
        /// What the parser said.
        message: String,
    },
    /// A key has a value that is well-typed but not acceptable.
    #[error("{at}: `{key}`: {message}")]
    Invalid {
        /// Where.
        at: Location,
        /// Which key, e.g. `route.path`.
        key: &'static str,
        /// Why, and how to fix it.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    server: Option<RawServer>,
    #[serde(default)]
    route: Vec<Spanned<RawRoute>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawServer {
    bind: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRoute {
    path: Spanned<String>,
    component: Spanned<String>,
    env: Option<Spanned<BTreeMap<String, String>>>,
    build: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    instances: Option<InstanceModel>,
    max_concurrency: Option<Spanned<i64>>,
    max_requests: Option<Spanned<i64>>,
    idle_timeout: Option<Spanned<String>>,
    queue_timeout: Option<Spanned<String>>,
}

impl Config {
    /// Reads and checks `file`. Component files are not required to exist yet (see
    /// [`Config::check_components`]), since `serve --build` may create them.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.to_path_buf(),
            source,
        })?;
        Config::parse(file, &text)
    }

    /// Parses routes.toml text; `file` names it in errors and anchors relative paths.
    pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
        let locate = |span: Range<usize>| location(file, text, span.start);
        let raw: RawFile = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            at: locate(e.span().unwrap_or(0..0)),
            message: e.message().trim_end().to_string(),
        })?;
        let base = file.parent().unwrap_or(Path::new("."));

        let mut server = ServerConfig::default();
        if let Some(bind) = raw.server.and_then(|s| s.bind) {
            if bind.get_ref().trim().is_empty() {
                return Err(invalid(
                    locate(bind.span()),
                    "server.bind",
                    "must not be empty; e.g. \"127.0.0.1:8080\"",
                ));
            }
            server.bind = Some(bind.into_inner());
        }

        if raw.route.is_empty() {
            return Err(ConfigError::Invalid {
                at: locate(0..0),
                key: "route",
                message: "no routes: add at least one [[route]] with `path` and `component`".into(),
            });
        }

        let mut routes: Vec<Route> = Vec::with_capacity(raw.route.len());
        let mut seen: BTreeMap<String, Location> = BTreeMap::new();
        for spanned in raw.route {
            let route = spanned.into_inner();
            let path_at = locate(route.path.span());
            let prefix = normalise_prefix(route.path.get_ref())
                .map_err(|message| invalid(path_at.clone(), "route.path", message))?;
            if let Some(first) = seen.get(&prefix) {
                return Err(invalid(
                    path_at,
                    "route.path",
                    format!(
                        "duplicate path {:?}: line {} already mounts a route there",
                        route.path.get_ref(),
                        first.line
                    ),
                ));
            }
            seen.insert(prefix.clone(), path_at);

            let component_at = locate(route.component.span());
            if route.component.get_ref().trim().is_empty() {
                return Err(invalid(
                    component_at,
                    "route.component",
                    "must name a .wasm component file",
                ));
            }
            let component = base.join(route.component.get_ref());

            let mut env = Vec::new();
            for (env_at, (k, v)) in route.env.into_iter().flat_map(|e| {
                let at = locate(e.span());
                e.into_inner().into_iter().map(move |kv| (at.clone(), kv))
            }) {
                if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
                    return Err(invalid(
                        env_at,
                        "route.env",
                        format!(
                            "{k:?}: names must be non-empty without `=` or NUL, values without NUL"
                        ),
                    ));
                }
                env.push((k, v));
            }

            let duration = |value: Option<Spanned<String>>,
                            key: &'static str,
                            default: Duration| {
                match value {
                None => Ok(default),
                Some(t) => parse_duration(t.get_ref())
                    .filter(|d| !d.is_zero() && *d <= MAX_TIMEOUT)
                    .ok_or_else(|| {
                        invalid(
                            locate(t.span()),
                            key,
                            format!("{:?} is not a duration between 1ms and 24h; write e.g. \"30s\", \"500ms\" or \"2m\"", t.get_ref()),
                        )
                    }),
            }
            };
            let count = |value: Option<Spanned<i64>>, key: &'static str, default: u64, max: u64| {
                match value {
                    None => Ok(default),
                    Some(n) => u64::try_from(*n.get_ref())
                        .ok()
                        .filter(|v| (1..=max).contains(v))
                        .ok_or_else(|| {
                            invalid(
                                locate(n.span()),
                                key,
                                format!("must be a whole number from 1 to {max}"),
                            )
                        }),
                }
            };
            let timeout = duration(route.timeout, "route.timeout", DEFAULT_TIMEOUT)?;
            let idle_timeout = duration(
                route.idle_timeout,
                "route.idle-timeout",
                DEFAULT_IDLE_TIMEOUT,
            )?;
            let queue_timeout = duration(
                route.queue_timeout,
                "route.queue-timeout",
                DEFAULT_QUEUE_TIMEOUT,
            )?;
            let max_concurrency = count(
                route.max_concurrency,
                "route.max-concurrency",
                DEFAULT_MAX_CONCURRENCY as u64,
                100_000,
            )? as usize;
            let max_requests = count(
                route.max_requests,
                "route.max-requests",
                DEFAULT_MAX_REQUESTS,
                u64::MAX >> 1,
            )?;

            routes.push(Route {
                prefix,
                component,
                env,
                build: route.build.map(Spanned::into_inner),
                timeout,
                instances: route.instances.unwrap_or(InstanceModel::Warm),
                max_concurrency,
                max_requests,
                idle_timeout,
                queue_timeout,
                component_at,
            });
        }
        Ok(Config {
            file: file.to_path_buf(),
            server,
            routes,
        })
    }

    /// Fails, naming the route's `component` key, if a component file does not exist.
    pub fn check_components(&self) -> Result<(), ConfigError> {
        for route in &self.routes {
            if !route.component.is_file() {
                return Err(invalid(
                    route.component_at.clone(),
                    "route.component",
                    format!(
                        "{} does not exist or is not a file (paths are relative to the routes file; build it first, or run `serve --build`)",
                        route.component.display()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The directory of routes.toml: where `build` commands run.
    pub fn dir(&self) -> &Path {
        match self.file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }
}

fn invalid(at: Location, key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        at,
        key,
        message: message.into(),
    }
}

fn location(file: &Path, text: &str, offset: usize) -> Location {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Location {
        file: file.to_path_buf(),
        line,
        column,
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

/// `"30s"`, `"500ms"`, `"2m"`, `"1h"` → a duration.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    match unit.trim() {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(Path::new("dir/routes.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_full_file_parses() {
        let c = parse(
            "[server]\nbind = \"127.0.0.1:0\"\n\n[[route]]\npath = \"/blog/\"\ncomponent = \"b.wasm\"\nenv = { A = \"1\" }\nbuild = \"make\"\ntimeout = \"500ms\"\n\n[[route]]\npath = \"/\"\ncomponent = \"/abs/r.wasm\"\n",
        )
        .unwrap();
        assert_eq!(c.server.bind.as_deref(), Some("127.0.0.1:0"));
        assert_eq!(c.routes[0].prefix, "/blog");
        assert_eq!(c.routes[0].component, Path::new("dir/b.wasm"));
        assert_eq!(c.routes[0].env, vec![("A".to_string(), "1".to_string())]);
        assert_eq!(c.routes[0].build.as_deref(), Some("make"));
        assert_eq!(c.routes[0].timeout, Duration::from_millis(500));
        assert_eq!(c.routes[0].component_at.line, 6);
        assert_eq!(c.routes[1].prefix, "");
        assert_eq!(c.routes[1].display_prefix(), "/");
        assert_eq!(c.routes[1].component, Path::new("/abs/r.wasm"));
        assert_eq!(c.routes[1].timeout, DEFAULT_TIMEOUT);
        assert_eq!(c.routes[1].instances, InstanceModel::Warm);
        assert_eq!(c.routes[1].max_concurrency, DEFAULT_MAX_CONCURRENCY);
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let cases = [
            (
                "[[route]]\npath = \"/\"\ncomponent = \"a.wasm\"\nport = 1\n",
                "dir/routes.toml:4:1: unknown field `port`",
            ),
            (
                "[[route]]\npath = \"/\"\n",
                "dir/routes.toml:1:1: missing field `component`",
            ),
            ("", "dir/routes.toml:1:1: `route`: no routes"),
            (
                "[[route]]\npath = \"blog\"\ncomponent = \"a.wasm\"\n",
                "dir/routes.toml:2:8: `route.path`: \"blog\" must start with `/`",
            ),
            (
                "[[route]]\npath = \"/a?b\"\ncomponent = \"a.wasm\"\n",
                "dir/routes.toml:2:8: `route.path`: \"/a?b\" contains '?'",
            ),
            (
                "[[route]]\npath = \"/a\"\ncomponent = \"a.wasm\"\n[[route]]\npath = \"/a/\"\ncomponent = \"b.wasm\"\n",
                "dir/routes.toml:5:8: `route.path`: duplicate path \"/a/\": line 2 already mounts",
            ),
            (
                "[[route]]\npath = \"/\"\ncomponent = \"\"\n",
                "dir/routes.toml:3:13: `route.component`: must name",
            ),
            (
                "[[route]]\npath = \"/\"\ncomponent = \"a\"\ntimeout = \"5 parsecs\"\n",
                "dir/routes.toml:4:11: `route.timeout`: \"5 parsecs\" is not a duration",
            ),
            (
                "[[route]]\npath = \"/\"\ncomponent = \"a\"\ntimeout = \"0s\"\n",
                "`route.timeout`: \"0s\" is not a duration",
            ),
            (
                "[[route]]\npath = \"/\"\ncomponent = \"a\"\nenv = { \"A=B\" = \"x\" }\n",
                "dir/routes.toml:4:7: `route.env`: \"A=B\"",
            ),
            (
                "[[route]]\npath = 3\ncomponent = \"a\"\n",
                "dir/routes.toml:2:8: invalid type: integer `3`, expected a string",
            ),
            (
                "[server]\nbind = \"\"\n[[route]]\npath = \"/\"\ncomponent = \"a\"\n",
                "dir/routes.toml:2:8: `server.bind`: must not be empty",
            ),
            ("[[route]\n", "dir/routes.toml:1:"),
        ];
        for (text, want) in cases {
            let got = parse(text).expect_err(text);
            assert!(
                got.starts_with(want) || got.contains(want),
                "for {text:?}\n got: {got}\nwant: {want}"
            );
        }
    }

    #[test]
    fn missing_component_names_its_line() {
        let c = parse("[[route]]\npath = \"/\"\ncomponent = \"nope.wasm\"\n").unwrap();
        let e = c.check_components().unwrap_err().to_string();
        assert!(
            e.starts_with("dir/routes.toml:3:13: `route.component`: dir/nope.wasm does not exist"),
            "{e}"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        for bad in ["", "s", "10", "1.5s", "-1s", "10x"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
