//! Virtual hosts: `route.host`, the name a route answers for, and the rule that makes a host
//! and a path prefix together a route's identity.
//!
//! Owns the grammar of a host pattern, an exact name or `*.example.com`: DNS-style labels of
//! at most 63 characters (RFC 1035 §2.3.4), compared case-insensitively (RFC 4343), a
//! trailing dot ignored; no port, scheme or path, since the Host header (RFC 9110 §7.2) or
//! HTTP/2's `:authority` (RFC 9113 §8.3.1) is matched without its port. Also owns
//! [`Mounts`], which refuses a second route on a host and prefix already taken: only one of
//! the two could ever serve a request, and which one would hang on the order of the file.
//!
//! Not here: matching a request's host against the patterns, and which pattern wins
//! (`http::router`); normalising the prefix (`route.rs`).

use std::collections::BTreeMap;
use std::fmt;

use super::values::{ConfigError, Location, invalid};

/// The virtual host a route answers for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostPattern {
    /// One host name, lower-case.
    Exact(String),
    /// `*.example.com`, kept as the suffix `.example.com`.
    Wildcard(String),
}

impl HostPattern {
    /// `shop.example.com` or `*.example.com`: DNS-style labels (letters, digits, `-`, `_`),
    /// or an IPv4 address; no port, no path.
    pub fn parse(text: &str) -> Result<HostPattern, String> {
        let lower = text.trim_end_matches('.').to_ascii_lowercase();
        let (wildcard, name) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, lower.as_str()),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if name.is_empty() || !name.split('.').all(label_ok) {
            return Err(format!(
                "{text:?} is not a host name: write e.g. \"shop.example.com\" or \"*.example.com\" (no port, scheme or path)"
            ));
        }
        Ok(if wildcard {
            HostPattern::Wildcard(format!(".{name}"))
        } else {
            HostPattern::Exact(name.to_string())
        })
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(name) => f.write_str(name),
            HostPattern::Wildcard(suffix) => write!(f, "*{suffix}"),
        }
    }
}

/// The (host, prefix) pairs the routes so far mount, and where each one's `path` stands.
#[derive(Default)]
pub(super) struct Mounts(BTreeMap<(Option<HostPattern>, String), Location>);

impl Mounts {
    /// Takes `prefix` on `host` for a route whose `path` (as `written`) stands at `path_at`;
    /// fails if an earlier route has it.
    pub(super) fn take(
        &mut self,
        host: &Option<HostPattern>,
        prefix: &str,
        written: &str,
        path_at: Location,
    ) -> Result<(), ConfigError> {
        let key = (host.clone(), prefix.to_string());
        if let Some(first) = self.0.get(&key) {
            let on = host
                .as_ref()
                .map_or(String::new(), |h| format!(" on host {h}"));
            return Err(invalid(
                path_at,
                "route.path".into(),
                format!(
                    "duplicate path {written:?}{on}: line {} already mounts a route there",
                    first.line
                ),
            ));
        }
        self.0.insert(key, path_at);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::parse;

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
}
