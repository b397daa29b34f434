//! `[server]`: what the whole server does, whichever route a request is for.
//!
//! Owns the table's keys, their defaults and bounds, and how they become a [`ServerConfig`]:
//! where to listen and with which socket options, whose forwarding headers to believe, the
//! admin address, how many connections and instances at once, how long a client may take to
//! send a request head or leave a response unread, how big a head may be, how long shutdown
//! waits, the access log. The limits on a request head are the ones the HTTP RFCs leave to
//! the server: a head that does not arrive in time is 408 (RFC 9110 §15.5.9), a request-target
//! over `max-uri-length` is 414 (§15.5.15), a head over `max-header-size` or `max-headers` is
//! 431 (RFC 6585 §5); HTTP/2 takes the size as SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113
//! §6.5.2).
//!
//! Not here: the grammar of one `bind` value (`bind.rs`), of `trusted-proxies` and
//! `forwarded-header` (`proxies.rs`; the header is RFC 7239's `Forwarded` or the X-Forwarded
//! family), the `[server.tls]` table (`tls.rs`), and anything done with the values: sockets
//! are `server::listener`'s, the head limits `http::protocol`'s and `server::connection`'s,
//! the log lines `server::access_log`'s.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::bind::{BindAddr, BindOptions};
use super::proxies::{ForwardedHeader, TrustedProxies};
use super::tls::{RawTls, TlsSettings};
use super::values::{Checker, ConfigError, invalid};

/// Client connections served at once; more wait in the listen backlog.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_384;
/// Instances alive at once across every route, when `max-instances` is not set and the
/// routes' `max-concurrency` add up to more.
pub const DEFAULT_MAX_INSTANCES: usize = 1000;
/// The most `max-instances` may be: each instance slot reserves about 8 GiB of address
/// space (not memory), and a 64-bit process has 128 TiB.
pub const MAX_INSTANCES: u64 = 10_000;
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

/// The `[server]` table as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawServer {
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

/// A string, or an array of them.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl Checker<'_> {
    /// The `[server]` table.
    pub(super) fn server(&self, raw: RawServer, base: &Path) -> Result<ServerConfig, ConfigError> {
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
            server.tls = Some(self.tls(tls, base)?);
        }
        Ok(server)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse;

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
}
