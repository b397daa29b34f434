//! routes.toml → a validated, typed [`Config`].
//!
//! Owns parsing and every check that can be made without compiling a component: unknown
//! keys, bad prefixes, duplicate paths, bad durations and sizes, missing component files and
//! directories. Each error names the file, the line and column, and the key, and says how to
//! fix it — the server refuses to start rather than answer 500 later. It does not compile
//! anything (`gateway::engine`) nor decide how requests are matched (`http::router`).
//!
//! This file is the top level: reading the file, its three tables (`[server]`, `[defaults]`,
//! `[[route]]`; anything else is an unknown key), the order they are checked in (so a file
//! with several mistakes always reports the same one first), [`Config`], and the check that
//! the files it names are there. Each section's keys, defaults, bounds and errors are in its
//! own file, and every name the other layers use is re-exported here:
//!
//! | file | owns |
//! |---|---|
//! | `server.rs` | `[server]`: listeners, proxies, admin, connection and head limits, access log |
//! | `tls.rs` | `[server.tls]` |
//! | `bind.rs` | one `bind` value, and the socket options |
//! | `proxies.rs` | `trusted-proxies` and `forwarded-header` |
//! | `route.rs` | a `[[route]]`, its [`Limits`], and `[defaults]` |
//! | `vhosts.rs` | `route.host`, and that no two routes mount one host and prefix |
//! | `outbound.rs` | one `outbound` entry |
//! | `data.rs` | whose a `data` directory is, and the `dirs` and `data` directories on disk |
//! | `values.rs` | sizes, durations, counts and string tables; `Location` and `ConfigError` |
//!
//! Imports point one way, down this list: `values.rs` knows no section; `server.rs` uses
//! `bind.rs`, `proxies.rs` and `tls.rs`; `route.rs` uses `vhosts.rs` and `outbound.rs`;
//! `data.rs` reads whole routes from `route.rs`; this file assembles them, and no section
//! imports it (their unit tests do, to parse whole files).
//!
//! ```toml
//! [server]
//! bind = ["127.0.0.1:8080", "unix:/run/app.sock"]  # or one string; --bind overrides it
//! reuse-port = false               # SO_REUSEPORT: several servers share a port
//! socket-mode = "0660"             # permissions of unix: socket files
//! trusted-proxies = ["10.0.0.0/8"] # peers whose forwarding headers are believed
//! forwarded-header = "x-forwarded" # which ones: "x-forwarded" (X-Forwarded-*) or "forwarded"
//! admin = "127.0.0.1:9090"         # /healthz /readyz /stats /metrics (optional)
//! max-connections = 16384          # more connections wait in the listen backlog
//! max-instances = 1000             # instances alive at once, every route's (then they queue)
//! header-timeout = "10s"           # a request head must arrive within this (then 408)
//! write-timeout = "30s"            # a client that stops reading is cut off after this
//! shutdown-timeout = "30s"         # in-flight requests get this long to finish on stop
//! max-header-size = "64KiB"        # request line + headers (then 431)
//! max-uri-length = "16KiB"         # request-target (then 414)
//! max-headers = 100                # header lines (then 431)
//! access-log = "-"                 # "-" (stdout), a file, or "off"
//! access-log-format = "combined"   # or "common"
//!
//! [server.tls]                     # every listener speaks TLS (h2 and http/1.1 by ALPN)
//! cert = "cert.pem"                # certificate chain, PEM
//! key = "key.pem"                  # private key, PEM
//! client-ca = "ca.pem"             # require client certificates signed by these (optional)
//!
//! [defaults]                       # limits for every route that does not set its own
//! timeout = "10s"
//!
//! [[route]]
//! host = "blog.example.com"        # virtual host (optional): exact, or "*.example.com"
//! path = "/blog"                   # prefix: matches /blog and /blog/..., not /blogger
//! component = "blog.wasm"          # relative to this file
//! env = { GREETING = "hi" }        # the guest's whole environment (optional)
//! dirs = { "/static" = "public" }  # read-only host directories, guest path = host path
//! data = { "/data" = "var/blog" }  # read-write host directories, created if missing; the
//!                                  # route's alone, its requests one at a time
//! data-shared = false              # true: another route may name the same data directory
//! data-quota = "1GiB"              # what the guest may keep in its data directories
//! build = "cargo build --release"  # run by `serve --build`, in this file's directory (optional)
//! timeout = "30s"                  # wall-clock budget for one request (optional)
//! instances = "warm"               # "warm": reuse instances; "fresh": one per request
//!                                  # (default: warm for WSGI apps, fresh for wasi:http ones)
//! max-concurrency = 64             # instances running at once; more requests queue
//! max-requests = 10000             # a warm instance is recycled after this many requests
//! idle-timeout = "60s"             # idle warm instances are dropped after this long
//! queue-timeout = "5s"             # how long a request may wait for an instance (then 503)
//! max-request-body = "10MiB"       # larger request bodies get 413 (default: no limit)
//! memory = "128MiB"                # linear memory one instance may grow to
//! outbound = ["tcp://db:5432"]     # what the guest may connect to (default: nothing)
//! max-outbound-connections = 100   # outbound sockets open at once, all instances together
//! outbound-connect-timeout = "10s" # how long an outbound connect may take
//! outbound-private = ["10.0.0.0/8"] # private networks a granted name may resolve into
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use toml::Spanned;

mod bind;
mod data;
mod outbound;
mod proxies;
mod route;
mod server;
mod tls;
mod values;
mod vhosts;

pub use bind::{BindAddr, BindOptions};
use data::{check_data_owners, check_on_disk};
pub use outbound::{OutboundHost, OutboundNetwork, OutboundScheme, OutboundTarget};
pub use proxies::{ForwardedHeader, TrustedProxies};
use route::RawRoute;
pub use route::{DEFAULT_MAX_QUEUE, DEFAULT_MEMORY, InstanceModel, Limits, Route};
pub use server::{AccessLogFormat, AccessLogTarget, DEFAULT_BIND, HttpLimits, ServerConfig};
use server::{DEFAULT_MAX_INSTANCES, RawServer};
pub use tls::TlsSettings;
use values::{Checker, invalid};
pub use values::{ConfigError, show_size};
pub use vhosts::HostPattern;
use vhosts::Mounts;

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    server: Option<RawServer>,
    #[serde(default)]
    defaults: Option<RawRoute>,
    #[serde(default)]
    route: Vec<Spanned<RawRoute>>,
}

impl Config {
    /// Instances that may be alive at once across every route: `max-instances`, or the sum
    /// of the routes' `max-concurrency` up to 1,000 (`DEFAULT_MAX_INSTANCES`).
    pub fn max_instances(&self) -> usize {
        self.server.max_instances.unwrap_or_else(|| {
            self.routes
                .iter()
                .map(|r| r.limits.max_concurrency)
                .fold(0, usize::saturating_add)
                .clamp(1, DEFAULT_MAX_INSTANCES)
        })
    }

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
        let checker = Checker { file, text };
        let raw: RawFile = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            at: checker.at(e.span().unwrap_or(0..0)),
            message: e.message().trim_end().to_string(),
        })?;
        let base = file.parent().unwrap_or(Path::new("."));

        let server = checker.server(raw.server.unwrap_or_default(), base)?;
        let defaults = checker.defaults(raw.defaults)?;

        if raw.route.is_empty() {
            return Err(invalid(
                checker.at(0..0),
                "route".into(),
                "no routes: add at least one [[route]] with `path` and `component`",
            ));
        }

        let mut routes: Vec<Route> = Vec::with_capacity(raw.route.len());
        let mut mounts = Mounts::default();
        for raw_route in raw.route {
            routes.push(checker.route(raw_route, &defaults, base, &mut mounts)?);
        }
        check_data_owners(&routes)?;
        Ok(Config {
            file: file.to_path_buf(),
            server,
            routes,
        })
    }

    /// Fails, naming the route's `component` key, if a component file or a `dirs` directory
    /// does not exist, or a `dirs` or `data` directory is a symbolic link or not a directory.
    pub fn check_components(&self) -> Result<(), ConfigError> {
        for route in &self.routes {
            if !route.component.is_file() {
                return Err(invalid(
                    route.component_at.clone(),
                    "route.component".into(),
                    format!(
                        "{} does not exist or is not a file (paths are relative to the routes file; build it first, or run `serve --build`)",
                        route.component.display()
                    ),
                ));
            }
            check_on_disk(route)?;
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::route::{DEFAULT_MAX_CONCURRENCY, DEFAULT_TIMEOUT};
    use super::*;

    /// `text` as dir/routes.toml, its error as `check` prints it.
    pub(super) fn parse(text: &str) -> Result<Config, String> {
        Config::parse(Path::new("dir/routes.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_full_file_parses() {
        let c = parse(
            "[server]\nbind = \"127.0.0.1:0\"\n\n[[route]]\npath = \"/blog/\"\ncomponent = \"b.wasm\"\nenv = { A = \"1\" }\nbuild = \"make\"\ntimeout = \"500ms\"\n\n[[route]]\npath = \"/\"\ncomponent = \"/abs/r.wasm\"\n",
        )
        .unwrap();
        assert_eq!(c.server.bind, vec![BindAddr::Tcp("127.0.0.1:0".into())]);
        assert_eq!(c.routes[0].prefix, "/blog");
        assert_eq!(c.routes[0].component, Path::new("dir/b.wasm"));
        assert_eq!(c.routes[0].env, vec![("A".to_string(), "1".to_string())]);
        assert_eq!(c.routes[0].build.as_deref(), Some("make"));
        assert_eq!(c.routes[0].limits.timeout, Duration::from_millis(500));
        assert_eq!(c.routes[0].component_at.line, 6);
        assert_eq!(c.routes[1].prefix, "");
        assert_eq!(c.routes[1].display_prefix(), "/");
        assert_eq!(c.routes[1].component, Path::new("/abs/r.wasm"));
        assert_eq!(c.routes[1].limits.timeout, DEFAULT_TIMEOUT);
        assert_eq!(c.routes[1].limits.instances, None);
        assert_eq!(c.routes[1].limits.max_concurrency, DEFAULT_MAX_CONCURRENCY);
        assert_eq!(c.max_instances(), 2 * DEFAULT_MAX_CONCURRENCY);
    }

    #[test]
    fn max_instances_defaults_to_the_routes_concurrency_up_to_a_thousand() {
        let routes = |n: usize, server: &str| {
            let routes: String = (0..n)
                .map(|i| {
                    format!(
                        "[[route]]\npath = \"/t{i}\"\ncomponent = \"t.wasm\"\nmax-concurrency = 3\n"
                    )
                })
                .collect();
            parse(&format!("{server}{routes}"))
        };
        assert_eq!(routes(5, "").unwrap().max_instances(), 15);
        assert_eq!(
            routes(1000, "").unwrap().max_instances(),
            DEFAULT_MAX_INSTANCES
        );
        let set = "[server]\nmax-instances = 4\n";
        assert_eq!(routes(5, set).unwrap().max_instances(), 4);
        let err = routes(1, "[server]\nmax-instances = 0\n").unwrap_err();
        assert!(
            err.contains("server.max-instances") && err.contains("from 1 to 10000"),
            "{err}"
        );
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
                "dir/routes.toml:1:1: `route.component`: missing: every [[route]] needs",
            ),
            (
                "[defaults]\npath = \"/\"\n[[route]]\npath = \"/\"\ncomponent = \"a\"\n",
                "dir/routes.toml:2:8: `defaults.path`: [defaults] holds limits only",
            ),
            (
                "[defaults]\nmemory = \"1GB\"\ntimeout = \"never\"\n[[route]]\npath = \"/\"\ncomponent = \"a\"\n",
                "dir/routes.toml:3:11: `defaults.timeout`: \"never\" is not a duration",
            ),
            (
                "[[route]]\npath = \"/\"\ncomponent = \"a\"\nmemory = \"5GiB\"\n",
                "dir/routes.toml:4:10: `route.memory`: \"5GiB\" is not a size from 64KiB to 4GiB",
            ),
            (
                "[[route]]\npath = \"/\"\ncomponent = \"a\"\ndirs = { \"static\" = \"public\" }\n",
                "dir/routes.toml:4:8: `route.dirs`: \"static\": the guest path must be absolute",
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
            (
                "[server]\nforwarded-header = \"X-Forwarded-For\"\n[[route]]\npath = \"/\"\ncomponent = \"a\"\n",
                "dir/routes.toml:2:20: `server.forwarded-header`: \"X-Forwarded-For\" is not a forwarding header family",
            ),
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
}
