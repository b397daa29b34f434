//! routes.toml → a validated, typed [`Config`].
//!
//! Owns parsing and every check that can be made without compiling a component: unknown
//! keys, bad prefixes, duplicate paths, bad durations and sizes, missing component files and
//! directories. Each error names the file, the line and column, and the key, and says how to
//! fix it — the server refuses to start rather than answer 500 later. It does not compile
//! anything (`gateway::engine`) nor decide how requests are matched (`http::router`).
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

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use toml::Spanned;

mod bind;
mod host;
mod outbound;
mod proxies;

pub use bind::{BindAddr, BindOptions};
pub use host::HostPattern;
pub use outbound::{OutboundHost, OutboundNetwork, OutboundScheme, OutboundTarget};
pub use proxies::{ForwardedHeader, TrustedProxies};

/// Wall-clock budget of one request when a route names none: headers, body and all.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest `timeout` a route may ask for.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);
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
/// Client connections served at once; more wait in the listen backlog.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_384;
/// Instances alive at once across every route, when `max-instances` is not set and the
/// routes' `max-concurrency` add up to more.
pub const DEFAULT_MAX_INSTANCES: usize = 1000;
/// The most `max-instances` may be: each instance slot reserves about 8 GiB of address
/// space (not memory), and a 64-bit process has 128 TiB.
pub const MAX_INSTANCES: u64 = 10_000;
/// Requests that may wait for an instance of one route; more get 503 at once.
pub const DEFAULT_MAX_QUEUE: usize = 1024;
/// How long a client may take to send a request head; also how long an idle keep-alive
/// connection stays open (cheroot's `timeout` does both too).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may leave a response unread before its connection is closed.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long in-flight requests may take to finish once shutdown begins.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// Request line and headers, in bytes.
pub const DEFAULT_MAX_HEADER_SIZE: usize = 64 << 10;
/// The request-target, in bytes.
pub const DEFAULT_MAX_URI_LENGTH: usize = 16 << 10;
/// Header lines in one request.
pub const DEFAULT_MAX_HEADERS: usize = 100;
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
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// `bind`: the addresses to listen on, if the file names any.
    pub bind: Vec<BindAddr>,
    /// `reuse-port` and `socket-mode`.
    pub bind_options: BindOptions,
    /// `trusted-proxies`: peers whose forwarding headers are believed.
    pub trusted_proxies: TrustedProxies,
    /// `forwarded-header`: the one family of forwarding headers they are believed in.
    pub forwarded_header: ForwardedHeader,
    /// `admin`: where the admin endpoints listen, if anywhere.
    pub admin: Option<String>,
    /// `max-connections`: client connections served at once.
    pub max_connections: usize,
    /// `max-instances`, if set: instances alive at once across every route.
    pub max_instances: Option<usize>,
    /// `shutdown-timeout`: how long in-flight requests may take once shutdown begins.
    pub shutdown_timeout: Duration,
    /// Limits on the request head and the connection.
    pub http: HttpLimits,
    /// `access-log`: where the access log goes.
    pub access_log: AccessLogTarget,
    /// `access-log-format`.
    pub access_log_format: AccessLogFormat,
    /// `[server.tls]`, resolved against the file's directory.
    pub tls: Option<TlsSettings>,
    /// `outbound-ca`: the CA certificates (PEM) outgoing HTTPS trusts instead of the web's.
    pub outbound_ca: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: Vec::new(),
            bind_options: BindOptions::default(),
            trusted_proxies: TrustedProxies::default(),
            forwarded_header: ForwardedHeader::default(),
            admin: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_instances: None,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            http: HttpLimits::default(),
            access_log: AccessLogTarget::Stdout,
            access_log_format: AccessLogFormat::Combined,
            tls: None,
            outbound_ca: None,
        }
    }
}

/// What a client's request head and idle connection may take (HTTP/1; HTTP/2 takes the
/// header size as its header-list limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// `header-timeout`: a request head must arrive within this; an idle keep-alive
    /// connection is closed after it.
    pub header_timeout: Duration,
    /// `max-header-size`: request line and headers, in bytes (431 beyond).
    pub max_header_size: usize,
    /// `max-uri-length`: the request-target, in bytes (414 beyond).
    pub max_uri_length: usize,
    /// `max-headers`: header lines (431 beyond).
    pub max_headers: usize,
    /// `write-timeout`: how long a client may leave the server unable to send (it stopped
    /// reading); then the connection closes.
    pub write_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            max_header_size: DEFAULT_MAX_HEADER_SIZE,
            max_uri_length: DEFAULT_MAX_URI_LENGTH,
            max_headers: DEFAULT_MAX_HEADERS,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
        }
    }
}

/// TLS settings from routes.toml's `[server.tls]` table (paths already resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM file with the server's certificate first, then any intermediates.
    pub cert: PathBuf,
    /// PEM file with the certificate's private key (PKCS#8, PKCS#1 or SEC1; not encrypted).
    pub key: PathBuf,
    /// PEM file with the CAs that sign client certificates; when set, every client must
    /// present a certificate that chains to one of them.
    pub client_ca: Option<PathBuf>,
}

/// Where the access log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    /// Standard output (`"-"`, the default).
    Stdout,
    /// Appended to this file.
    File(PathBuf),
    /// No access log (`"off"`).
    Off,
}

impl AccessLogTarget {
    /// `"-"`, `"off"` or a path (relative to `base`).
    pub fn parse(value: &str, base: &Path) -> Result<AccessLogTarget, String> {
        match value.trim() {
            "" => Err("must not be empty: \"-\" (stdout), a file, or \"off\"".into()),
            "-" => Ok(AccessLogTarget::Stdout),
            "off" => Ok(AccessLogTarget::Off),
            path => Ok(AccessLogTarget::File(base.join(path))),
        }
    }
}

/// The access log's line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccessLogFormat {
    /// Common Log Format: `host - - [time] "request" status bytes`.
    Common,
    /// Combined: Common plus `"referer" "user-agent"`.
    Combined,
}

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

/// Bytes in the largest binary unit that divides them.
pub fn show_size(n: u64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    format!("{n}B")
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
        key: String,
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
    defaults: Option<RawRoute>,
    #[serde(default)]
    route: Vec<Spanned<RawRoute>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawServer {
    bind: Option<Spanned<OneOrMany>>,
    reuse_port: Option<bool>,
    socket_mode: Option<Spanned<String>>,
    trusted_proxies: Option<Spanned<Vec<String>>>,
    forwarded_header: Option<Spanned<String>>,
    admin: Option<Spanned<String>>,
    max_connections: Option<Spanned<i64>>,
    max_instances: Option<Spanned<i64>>,
    header_timeout: Option<Spanned<String>>,
    write_timeout: Option<Spanned<String>>,
    shutdown_timeout: Option<Spanned<String>>,
    max_header_size: Option<Spanned<String>>,
    max_uri_length: Option<Spanned<String>>,
    max_headers: Option<Spanned<i64>>,
    access_log: Option<Spanned<String>>,
    access_log_format: Option<AccessLogFormat>,
    outbound_ca: Option<String>,
    tls: Option<Spanned<RawTls>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTls {
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
}

/// A string, or an array of them.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// A `[[route]]`, and also `[defaults]` (which may only hold the limit keys): one type, so
/// the two can never disagree on a key's name or type.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRoute {
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

/// Turns spans into [`Location`]s and reports bad values, for one file.
struct Checker<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Checker<'_> {
    fn at(&self, span: Range<usize>) -> Location {
        location(self.file, self.text, span.start)
    }

    fn duration(
        &self,
        value: &Option<Spanned<String>>,
        key: String,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some(t) = value else { return Ok(default) };
        parse_duration(t.get_ref())
            .filter(|d| !d.is_zero() && *d <= MAX_TIMEOUT)
            .ok_or_else(|| {
                invalid(
                    self.at(t.span()),
                    key,
                    format!("{:?} is not a duration between 1ms and 24h; write e.g. \"30s\", \"500ms\" or \"2m\"", t.get_ref()),
                )
            })
    }

    fn count(
        &self,
        value: &Option<Spanned<i64>>,
        key: String,
        default: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        let Some(n) = value else { return Ok(default) };
        u64::try_from(*n.get_ref())
            .ok()
            .filter(|v| (1..=max).contains(v))
            .ok_or_else(|| {
                invalid(
                    self.at(n.span()),
                    key,
                    format!("must be a whole number from 1 to {max}"),
                )
            })
    }

    fn size(
        &self,
        value: &Option<Spanned<String>>,
        key: String,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Option<u64>, ConfigError> {
        let Some(size) = value else { return Ok(None) };
        parse_size(size.get_ref())
            .filter(|n| range.contains(n))
            .map(Some)
            .ok_or_else(|| {
                invalid(
                    self.at(size.span()),
                    key,
                    format!(
                        "{:?} is not a size from {} to {}; write e.g. \"64MiB\", \"512KiB\" or \"1000000\" (bytes)",
                        size.get_ref(),
                        show_size(*range.start()),
                        show_size(*range.end())
                    ),
                )
            })
    }

    /// The `[server]` table.
    fn server(&self, raw: RawServer, base: &Path) -> Result<ServerConfig, ConfigError> {
        let defaults = ServerConfig::default();
        let mut server = ServerConfig {
            admin: raw.admin.map(Spanned::into_inner),
            max_connections: self.count(
                &raw.max_connections,
                "server.max-connections".into(),
                DEFAULT_MAX_CONNECTIONS as u64,
                1 << 24,
            )? as usize,
            max_instances: match &raw.max_instances {
                None => None,
                Some(_) => Some(self.count(
                    &raw.max_instances,
                    "server.max-instances".into(),
                    DEFAULT_MAX_INSTANCES as u64,
                    MAX_INSTANCES,
                )? as usize),
            },
            shutdown_timeout: self.duration(
                &raw.shutdown_timeout,
                "server.shutdown-timeout".into(),
                defaults.shutdown_timeout,
            )?,
            http: HttpLimits {
                header_timeout: self.duration(
                    &raw.header_timeout,
                    "server.header-timeout".into(),
                    DEFAULT_HEADER_TIMEOUT,
                )?,
                max_header_size: self
                    .size(
                        &raw.max_header_size,
                        "server.max-header-size".into(),
                        8192..=1 << 24,
                    )?
                    .map_or(DEFAULT_MAX_HEADER_SIZE, |n| n as usize),
                max_uri_length: self
                    .size(
                        &raw.max_uri_length,
                        "server.max-uri-length".into(),
                        64..=1 << 24,
                    )?
                    .map_or(DEFAULT_MAX_URI_LENGTH, |n| n as usize),
                max_headers: self.count(
                    &raw.max_headers,
                    "server.max-headers".into(),
                    DEFAULT_MAX_HEADERS as u64,
                    10_000,
                )? as usize,
                write_timeout: self.duration(
                    &raw.write_timeout,
                    "server.write-timeout".into(),
                    DEFAULT_WRITE_TIMEOUT,
                )?,
            },
            access_log_format: raw.access_log_format.unwrap_or(defaults.access_log_format),
            ..defaults
        };
        server.bind_options.reuse_port = raw.reuse_port.unwrap_or(false);
        if let Some(mode) = raw.socket_mode {
            let parsed = u32::from_str_radix(mode.get_ref().trim(), 8)
                .ok()
                .filter(|m| *m <= 0o777);
            server.bind_options.socket_mode = Some(parsed.ok_or_else(|| {
                invalid(
                    self.at(mode.span()),
                    "server.socket-mode".into(),
                    format!(
                        "{:?} is not a file mode; write it in octal, e.g. \"0660\"",
                        mode.get_ref()
                    ),
                )
            })?);
        }
        if let Some(list) = raw.trusted_proxies {
            server.trusted_proxies = TrustedProxies::parse(list.get_ref()).map_err(|message| {
                invalid(
                    self.at(list.span()),
                    "server.trusted-proxies".into(),
                    message,
                )
            })?;
        }
        if let Some(family) = raw.forwarded_header {
            server.forwarded_header =
                ForwardedHeader::parse(family.get_ref()).map_err(|message| {
                    invalid(
                        self.at(family.span()),
                        "server.forwarded-header".into(),
                        message,
                    )
                })?;
        }
        if let Some(bind) = raw.bind {
            let at = self.at(bind.span());
            let values = match bind.into_inner() {
                OneOrMany::One(one) => vec![one],
                OneOrMany::Many(many) => many,
            };
            if values.is_empty() {
                return Err(invalid(
                    at,
                    "server.bind".into(),
                    "must not be empty; e.g. \"127.0.0.1:8080\"",
                ));
            }
            for value in values {
                if value.trim().is_empty() {
                    return Err(invalid(
                        at,
                        "server.bind".into(),
                        "must not be empty; e.g. \"127.0.0.1:8080\"",
                    ));
                }
                let addr = BindAddr::parse(&value)
                    .map_err(|message| invalid(at.clone(), "server.bind".into(), message))?;
                server.bind.push(match addr {
                    BindAddr::Unix(path) => BindAddr::Unix(base.join(path)),
                    other => other,
                });
            }
        }
        server.outbound_ca = raw.outbound_ca.map(|ca| base.join(ca));
        if let Some(log) = raw.access_log {
            server.access_log = AccessLogTarget::parse(log.get_ref(), base).map_err(|message| {
                invalid(self.at(log.span()), "server.access-log".into(), message)
            })?;
        }
        if let Some(tls) = raw.tls {
            let at = self.at(tls.span());
            let tls = tls.into_inner();
            let required = |value: Option<String>, key: &str| {
                value
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| base.join(v))
                    .ok_or_else(|| {
                        invalid(
                            at.clone(),
                            format!("server.tls.{key}"),
                            format!(
                                "[server.tls] needs `{key}`: a PEM file, relative to this file"
                            ),
                        )
                    })
            };
            server.tls = Some(TlsSettings {
                cert: required(tls.cert, "cert")?,
                key: required(tls.key, "key")?,
                client_ca: tls.client_ca.map(|ca| base.join(ca)),
            });
        }
        Ok(server)
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
    fn defaults(&self, raw: Option<RawRoute>) -> Result<Limits, ConfigError> {
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

    /// A `(name, value)` table of strings, each pair checked by `check`.
    fn pairs(
        &self,
        table: Option<Spanned<BTreeMap<String, String>>>,
        key: &str,
        check: impl Fn(&str, &str) -> Result<(), String>,
    ) -> Result<Vec<(String, String)>, ConfigError> {
        let Some(table) = table else {
            return Ok(Vec::new());
        };
        let at = self.at(table.span());
        let mut pairs = Vec::new();
        for (k, v) in table.into_inner() {
            check(&k, &v).map_err(|message| invalid(at.clone(), key.to_string(), message))?;
            pairs.push((k, v));
        }
        Ok(pairs)
    }
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
        let mut seen: BTreeMap<(Option<HostPattern>, String), Location> = BTreeMap::new();
        for spanned in raw.route {
            let route_at = checker.at(spanned.span());
            let route = spanned.into_inner();
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

            let host = match &route.host {
                None => None,
                Some(host) => Some(HostPattern::parse(host.get_ref()).map_err(|message| {
                    invalid(checker.at(host.span()), "route.host".into(), message)
                })?),
            };
            let path_at = checker.at(path.span());
            let prefix = normalise_prefix(path.get_ref())
                .map_err(|message| invalid(path_at.clone(), "route.path".into(), message))?;
            let key = (host.clone(), prefix.clone());
            if let Some(first) = seen.get(&key) {
                let on = host
                    .as_ref()
                    .map_or(String::new(), |h| format!(" on host {h}"));
                return Err(invalid(
                    path_at,
                    "route.path".into(),
                    format!(
                        "duplicate path {:?}{on}: line {} already mounts a route there",
                        path.get_ref(),
                        first.line
                    ),
                ));
            }
            seen.insert(key, path_at);

            let component_at = checker.at(component.span());
            if component.get_ref().trim().is_empty() {
                return Err(invalid(
                    component_at,
                    "route.component".into(),
                    "must name a .wasm component file",
                ));
            }

            let limits = checker.limits(&route, "route", &defaults)?;
            let env = checker.pairs(route.env, "route.env", |k, v| {
                if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
                    Err(format!(
                        "{k:?}: names must be non-empty without `=` or NUL, values without NUL"
                    ))
                } else {
                    Ok(())
                }
            })?;
            let dirs_at = route.dirs.as_ref().map(|d| checker.at(d.span()));
            let dirs = checker.dirs(route.dirs, "route.dirs", base)?;
            let data_at = route.data.as_ref().map(|d| checker.at(d.span()));
            let data = checker.dirs(route.data, "route.data", base)?;

            routes.push(Route {
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
            });
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
            let tables = [
                ("route.dirs", &route.dirs, &route.dirs_at, false),
                ("route.data", &route.data, &route.data_at, true),
            ];
            for (key, table, at, created) in tables {
                for (guest, host) in table {
                    let problem = match host.symlink_metadata() {
                        // A data directory is created when the route starts.
                        Err(e) if created && e.kind() == std::io::ErrorKind::NotFound => None,
                        // A link could be pointed elsewhere between start-up and a reload:
                        // the directory must be named as it is (it is opened once, by that
                        // name).
                        Ok(m) if m.file_type().is_symlink() => {
                            Some("is a symbolic link: name the directory it points to")
                        }
                        Ok(m) if m.is_dir() => None,
                        _ => Some("is not a directory (paths are relative to the routes file)"),
                    };
                    if let Some(problem) = problem {
                        return Err(invalid(
                            at.clone().unwrap_or(route.component_at.clone()),
                            key.into(),
                            format!("{guest:?}: {} {problem}", host.display()),
                        ));
                    }
                }
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

fn invalid(at: Location, key: String, message: impl Into<String>) -> ConfigError {
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
/// A route's `data` directories are its own: no other route's `data` or `dirs` may name
/// them, or a directory inside or around them, unless both routes say `data-shared`. (The
/// server serialises a route's requests on its data directories; a route outside that would
/// see, or write, data mid-change.) Paths are compared as written, `..` resolved lexically.
fn check_data_owners(routes: &[Route]) -> Result<(), ConfigError> {
    let overlap = |a: &Path, b: &Path| {
        let (a, b) = (normalise_path(a), normalise_path(b));
        a.starts_with(&b) || b.starts_with(&a)
    };
    for (i, owner) in routes.iter().enumerate() {
        for (guest, data) in &owner.data {
            if let Some((twin, _)) = owner
                .data
                .iter()
                .find(|(g, d)| g != guest && overlap(d, data))
            {
                return Err(invalid(
                    owner.data_at.clone().unwrap_or(owner.component_at.clone()),
                    "route.data".into(),
                    format!("{guest:?} and {twin:?} name one directory, or one inside the other"),
                ));
            }
            let others = routes.iter().enumerate().filter(|(j, _)| *j != i);
            for (_, other) in others.filter(|(_, o)| !(owner.data_shared && o.data_shared)) {
                let tables = [
                    ("route.data", &other.data, &other.data_at),
                    ("route.dirs", &other.dirs, &other.dirs_at),
                ];
                for (key, table, at) in tables {
                    if let Some((g, dir)) = table.iter().find(|(_, d)| overlap(d, data)) {
                        return Err(invalid(
                            at.clone().unwrap_or(other.component_at.clone()),
                            key.into(),
                            format!(
                                "{g:?}: {} overlaps {}, the data directory of route {}: a route's data is its own (`data-shared = true` on both routes shares it)",
                                dir.display(),
                                data.display(),
                                owner.display_name()
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// `path` with `.` and `..` resolved lexically.
fn normalise_path(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

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

/// `"10MiB"`, `"512KiB"`, `"2GiB"`, `"1000"` (bytes; `kB`/`MB`/`GB` are powers of 1000) → bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "kB" | "KB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(scale)
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
    fn a_routes_data_directories_are_its_own() {
        let two = |a: &str, b: &str| {
            format!(
                "[[route]]\npath = \"/a\"\ncomponent = \"a\"\n{a}\n[[route]]\npath = \"/b\"\ncomponent = \"b\"\n{b}\n"
            )
        };
        let data = "data = { \"/data\" = \"var/shop\" }";
        let shared = "data = { \"/data\" = \"var/shop\" }\ndata-shared = true";
        let c = parse(&two(
            data,
            "data = { \"/data\" = \"var/blog\" }\ndata-quota = \"5MiB\"",
        ))
        .unwrap();
        assert_eq!(
            c.routes[0].data,
            vec![("/data".into(), PathBuf::from("dir/var/shop"))]
        );
        assert_eq!(c.routes[0].limits.data_quota, DEFAULT_DATA_QUOTA);
        assert_eq!(c.routes[1].limits.data_quota, 5 << 20);
        assert!(parse(&two(shared, shared)).is_ok());
        let cases = [
            (two(data, data), "dir/routes.toml:8:8: `route.data`: \"/data\": dir/var/shop overlaps dir/var/shop, the data directory of route /a"),
            // Both must say so.
            (two(shared, data), "`data-shared = true` on both routes"),
            // Another name for it, or a directory inside it, is it.
            (two(data, "data = { \"/d\" = \"var/x/../shop/2024\" }"), "overlaps dir/var/shop"),
            (two(data, "dirs = { \"/static\" = \"var\" }"), "`route.dirs`: \"/static\": dir/var overlaps"),
            (
                "[[route]]\npath = \"/\"\ncomponent = \"a\"\ndata = { \"/a\" = \"v\", \"/b\" = \"v/b\" }\n".into(),
                "`route.data`: \"/a\" and \"/b\" name one directory",
            ),
            (
                "[defaults]\ndata = { \"/a\" = \"v\" }\n[[route]]\npath = \"/\"\ncomponent = \"a\"\n".into(),
                "`defaults.data`: [defaults] holds limits only",
            ),
        ];
        for (text, want) in cases {
            let got = parse(&text).expect_err(&text);
            assert!(
                got.contains(want),
                "for {text:?}\n got: {got}\nwant: {want}"
            );
        }
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
    fn one_forwarding_header_family_is_trusted() {
        let route = "[[route]]\npath = \"/\"\ncomponent = \"a\"\n";
        let family = |server: &str| {
            parse(&format!("{server}{route}"))
                .unwrap()
                .server
                .forwarded_header
        };
        assert_eq!(family(""), ForwardedHeader::XForwarded, "the default");
        assert_eq!(
            family("[server]\nforwarded-header = \"forwarded\"\n"),
            ForwardedHeader::Forwarded
        );
        assert_eq!(
            family("[server]\nforwarded-header = \"x-forwarded\"\n"),
            ForwardedHeader::XForwarded
        );
    }

    #[test]
    fn hosts_are_part_of_a_routes_identity() {
        let c = parse(
            "[[route]]\nhost = \"Shop.Example.com\"\npath = \"/\"\ncomponent = \"a\"\n[[route]]\nhost = \"*.example.com\"\npath = \"/\"\ncomponent = \"b\"\n[[route]]\npath = \"/\"\ncomponent = \"c\"\n",
        )
        .unwrap();
        assert_eq!(c.routes[0].display_name(), "shop.example.com");
        assert_eq!(c.routes[1].display_name(), "*.example.com");
        assert_eq!(c.routes[2].display_name(), "/");
        let e = parse("[[route]]\nhost = \"a.test\"\npath = \"/x\"\ncomponent = \"a\"\n[[route]]\nhost = \"A.test\"\npath = \"/x/\"\ncomponent = \"b\"\n").unwrap_err();
        assert!(
            e.starts_with(
                "dir/routes.toml:7:8: `route.path`: duplicate path \"/x/\" on host a.test: line 3"
            ),
            "{e}"
        );
        let e = parse("[[route]]\nhost = \"a.test:80\"\npath = \"/\"\ncomponent = \"a\"\n")
            .unwrap_err();
        assert!(
            e.starts_with("dir/routes.toml:2:8: `route.host`: \"a.test:80\" is not a host name"),
            "{e}"
        );
    }

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
    fn sizes() {
        assert_eq!(parse_size("10MiB"), Some(10 << 20));
        assert_eq!(parse_size("512 KiB"), Some(512 << 10));
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("2GB"), Some(2_000_000_000));
        for bad in [
            "",
            "MiB",
            "1.5MiB",
            "-1",
            "10 parsecs",
            "99999999999999999999GiB",
        ] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
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
