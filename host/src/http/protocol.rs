//! Checks on a request's head that hyper leaves to the server, made before routing.
//!
//! hyper parses HTTP/1 strictly but lets through several shapes that RFC 9112 says a server
//! must refuse: a request-target in none of the four forms of RFC 9112 §3.2 (`GET hello`,
//! which hyper reads as an authority), or with bytes outside ASCII; a missing, repeated or
//! malformed Host; transfer codings other than chunked; CONNECT, which a 2xx would turn into
//! a tunnel. Each becomes a [`Failure`] here; the status is decided in [`super::error`]. A
//! `#` or a control byte in an HTTP/1 request line cannot be seen here (the `http` crate drops
//! a fragment silently): [`super::framing`] refuses those in the raw bytes.

use http::request::Parts;
use http::uri::Scheme;
use http::{Method, Version, header};

use super::error::Failure;
use crate::config::HttpLimits;

/// The longest method accepted: hyper takes any token, even 100 KB of one.
pub const MAX_METHOD_LEN: usize = 32;

/// Refuses what must not reach an application.
pub fn check(parts: &Parts, limits: &HttpLimits) -> Result<(), Failure> {
    if parts.method == Method::CONNECT {
        return Err(Failure::MethodNotAllowed);
    }
    if parts.method.as_str().len() > MAX_METHOD_LEN {
        return Err(Failure::BadRequest("method too long"));
    }
    let target = parts.uri.authority().map_or(0, |a| a.as_str().len())
        + parts.uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > limits.max_uri_length {
        return Err(Failure::UriTooLong);
    }
    check_target(parts)?;
    check_host(parts)?;
    check_transfer_encoding(parts)
}

/// RFC 9112 §3.2: the request-target is in origin-form (`/path?query`), absolute-form
/// (`http://host/path`, §3.2.2), authority-form (CONNECT only, §3.2.3; CONNECT is refused
/// before this) or asterisk-form (`*`, OPTIONS only, §3.2.4); anything else is a 400
/// (§3). HTTP/2 always carries a scheme and an authority of its own (RFC 9113 §8.3.1), so
/// only its `:path` is checked: `/...`, or `*` for OPTIONS. In every version the path and
/// query must be ASCII (RFC 3986 §2: other bytes are percent-encoded); raw UTF-8 would reach
/// the application as Latin-1 mojibake and is read differently by different servers.
fn check_target(parts: &Parts) -> Result<(), Failure> {
    let uri = &parts.uri;
    let path = uri.path();
    // As sent (`path()` reads an empty path as `/`: `GET ?x` would pass for `GET /?x`).
    let raw = uri.path_and_query().map_or("", |pq| pq.as_str());
    let mut absolute = false;
    if parts.version < Version::HTTP_2 {
        if let Some(scheme) = uri.scheme() {
            let web = *scheme == Scheme::HTTP || *scheme == Scheme::HTTPS;
            let host = uri
                .authority()
                .is_some_and(|a| valid_host(a.as_str().as_bytes()));
            if !web || !host {
                return Err(Failure::BadRequest(
                    "an absolute request-target must be http:// or https:// with a host",
                ));
            }
            absolute = true;
        } else if uri.authority().is_some() {
            return Err(Failure::BadRequest(
                "the request-target must start with `/` (authority-form is for CONNECT only)",
            ));
        }
    }
    if raw == "*" {
        if parts.method != Method::OPTIONS {
            return Err(Failure::BadRequest(
                "the request-target `*` is for OPTIONS only",
            ));
        }
    } else if !absolute && !raw.starts_with('/') {
        return Err(Failure::BadRequest(
            "the request-target must start with `/`",
        ));
    }
    if !path.is_ascii() || !uri.query().is_none_or(str::is_ascii) {
        return Err(Failure::BadRequest(
            "the request-target must be ASCII: percent-encode other bytes",
        ));
    }
    Ok(())
}

/// RFC 9112 §3.2: an HTTP/1.1 request has exactly one valid Host; any request that has one
/// must have a valid one.
fn check_host(parts: &Parts) -> Result<(), Failure> {
    let mut hosts = parts.headers.get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(Failure::BadRequest("more than one Host header"));
    }
    // The target's authority (absolute-form, or HTTP/2's :authority) stands for Host
    // (RFC 9112 §3.2.2, RFC 9113 §8.3.1), so it must be as valid: `host:`, with an empty
    // port, would otherwise become HTTP_HOST.
    if let Some(authority) = parts.uri.authority()
        && !valid_host(authority.as_str().as_bytes())
    {
        return Err(Failure::BadRequest(
            "invalid authority in the request target",
        ));
    }
    match host {
        None if parts.version == Version::HTTP_11 => {
            Err(Failure::BadRequest("HTTP/1.1 requires a Host header"))
        }
        None => Ok(()),
        Some(value) if valid_host(value.as_bytes()) => Ok(()),
        Some(_) => Err(Failure::BadRequest("invalid Host header")),
    }
}

/// `uri-host [ ":" port ]` (RFC 3986 §3.2.2): a reg-name, an IPv4 address or a bracketed
/// IP literal; no userinfo, path, or whitespace.
pub fn valid_host(value: &[u8]) -> bool {
    let (host, port) = if value.first() == Some(&b'[') {
        let Some(end) = value.iter().position(|&b| b == b']') else {
            return false;
        };
        let literal = &value[1..end];
        if literal.is_empty()
            || !literal
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return false;
        }
        match &value[end + 1..] {
            [] => return true,
            [b':', port @ ..] => (&value[..=end], port),
            _ => return false,
        }
    } else {
        match value.iter().position(|&b| b == b':') {
            Some(i) => (&value[..i], &value[i + 1..]),
            None => (value, &b""[..]),
        }
    };
    let reg_name = |b: &u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(b);
    !host.is_empty()
        && (host[0] == b'[' || host.iter().all(reg_name))
        && port.len() <= 5
        && port.iter().all(u8::is_ascii_digit)
        && (value.last() != Some(&b':'))
}

/// RFC 9112 §6.1: only `chunked` is implemented (501 for anything else); the coding must
/// be stated once (two Transfer-Encoding lines are ambiguous between intermediaries: 400);
/// and HTTP/1.0 has no transfer codings at all.
fn check_transfer_encoding(parts: &Parts) -> Result<(), Failure> {
    let mut lines = parts.headers.get_all(header::TRANSFER_ENCODING).iter();
    let Some(te) = lines.next() else {
        return Ok(());
    };
    if lines.next().is_some() {
        return Err(Failure::BadRequest(
            "Transfer-Encoding given more than once",
        ));
    }
    if parts.version == Version::HTTP_10 {
        return Err(Failure::BadRequest(
            "Transfer-Encoding in an HTTP/1.0 request",
        ));
    }
    let te = te
        .to_str()
        .map_err(|_| Failure::BadRequest("invalid Transfer-Encoding"))?;
    if te
        .split(',')
        .map(str::trim)
        .all(|c| c.eq_ignore_ascii_case("chunked"))
        && te.split(',').count() == 1
    {
        Ok(())
    } else {
        Err(Failure::NotImplemented)
    }
}

/// Hop-by-hop headers: the server's alone (RFC 9110 §7.6.1). `Proxy-*` too, as wit/wsgi.wit says: an
/// application's response may not set them, and a guest's outgoing request may not either.
pub fn is_hop_by_hop(name: &str) -> bool {
    const HOP: [&str; 6] = [
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
    ];
    HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
        || name
            .get(..6)
            .is_some_and(|p| p.eq_ignore_ascii_case("proxy-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_default(parts: &Parts) -> Result<(), Failure> {
        check(parts, &HttpLimits::default())
    }

    fn parts(f: impl FnOnce(http::request::Builder) -> http::request::Builder) -> Parts {
        f(http::Request::builder().uri("/"))
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    #[test]
    fn host_rules() {
        let ok = [
            &b"example.com"[..],
            b"example.com:8080",
            b"127.0.0.1:80",
            b"[::1]",
            b"[::1]:8080",
            b"a-b.c_d~",
        ];
        for v in ok {
            assert!(valid_host(v), "{}", String::from_utf8_lossy(v));
        }
        let bad = [
            &b""[..],
            b"a b",
            b"user@host",
            b"host/path",
            b"host:port",
            b"host:",
            b"[::1",
            b"[::1]x",
            b"[zz]",
            b"host:123456",
            b":80",
            b"a\tb",
        ];
        for v in bad {
            assert!(!valid_host(v), "{}", String::from_utf8_lossy(v));
        }
        assert!(check_default(&parts(|b| b.header("host", "x"))).is_ok());
        assert!(matches!(
            check_default(&parts(|b| b)),
            Err(Failure::BadRequest(_))
        ));
        assert!(check_default(&parts(|b| b.version(Version::HTTP_10))).is_ok());
        assert!(matches!(
            check_default(&parts(|b| b.header("host", "a").header("host", "b"))),
            Err(Failure::BadRequest(_))
        ));
        assert!(matches!(
            check_default(&parts(|b| b.header("host", "a b"))),
            Err(Failure::BadRequest(_))
        ));
        // The target's authority stands for Host, so it is held to the same rules (found by
        // the environ fuzz target: `https://extps://example/` made HTTP_HOST `extps:`).
        let h2 = |uri: &str| {
            let mut p = parts(|b| b.version(Version::HTTP_2));
            p.uri = uri.parse().unwrap();
            check_default(&p)
        };
        assert!(h2("https://example.com:8443/").is_ok());
        assert!(matches!(
            h2("https://extps://example/"),
            Err(Failure::BadRequest(_))
        ));
        assert!(matches!(
            h2("http://user@example.com/"),
            Err(Failure::BadRequest(_))
        ));
    }

    #[test]
    fn methods_and_codings() {
        let long = "X".repeat(MAX_METHOD_LEN + 1);
        assert!(matches!(
            check_default(&parts(|b| b.method(long.as_str()).header("host", "x"))),
            Err(Failure::BadRequest(_))
        ));
        assert!(check_default(&parts(|b| b.method("PROPFIND").header("host", "x"))).is_ok());
        assert!(matches!(
            check_default(&parts(|b| b.method("CONNECT").header("host", "x"))),
            Err(Failure::MethodNotAllowed)
        ));
        let te = |v: &'static str| {
            check_default(&parts(|b| {
                b.header("host", "x").header("transfer-encoding", v)
            }))
        };
        assert!(te("chunked").is_ok());
        assert!(te("CHUNKED").is_ok());
        assert!(matches!(te("gzip, chunked"), Err(Failure::NotImplemented)));
        assert!(matches!(te("gzip"), Err(Failure::NotImplemented)));
        assert!(matches!(
            te("chunked, chunked"),
            Err(Failure::NotImplemented)
        ));
        let two = check_default(&parts(|b| {
            b.header("host", "x")
                .header("transfer-encoding", "chunked")
                .header("transfer-encoding", "chunked")
        }));
        assert!(matches!(two, Err(Failure::BadRequest(_))));
    }

    #[test]
    fn request_targets_have_one_of_the_four_forms() {
        let target = |method: &str, uri: &str, version: Version| {
            check_default(&parts(|b| {
                b.method(method)
                    .uri(uri)
                    .version(version)
                    .header("host", "x")
            }))
        };
        let h1 = Version::HTTP_11;
        for (method, uri) in [
            ("GET", "/"),
            ("GET", "/a/b?c=d&e=%C3%A9"),
            ("GET", "//double"),
            ("GET", "http://x/a?b"),
            ("GET", "HTTPS://x:8443"),
            ("GET", "http://x?q"),
            ("OPTIONS", "*"),
            ("OPTIONS", "/"),
        ] {
            assert!(target(method, uri, h1).is_ok(), "{method} {uri}");
        }
        for (method, uri) in [
            ("GET", "hello"),
            ("GET", "hello:80"),
            ("GET", "*"),
            ("POST", "*"),
            ("GET", "ftp://x/"),
            ("GET", "http://user@x/"),
            ("GET", "/caf\u{e9}"),
            ("GET", "/a?q=caf\u{e9}"),
        ] {
            assert!(
                matches!(target(method, uri, h1), Err(Failure::BadRequest(_))),
                "{method} {uri}"
            );
        }
        // HTTP/2: a scheme and authority always; `:path` is checked.
        let h2 = Version::HTTP_2;
        assert!(target("GET", "https://x/a", h2).is_ok());
        let h2_path = |method: &str, path: &'static str| {
            let mut uri = http::uri::Parts::default();
            uri.scheme = Some(Scheme::HTTPS);
            uri.authority = Some(http::uri::Authority::from_static("x"));
            uri.path_and_query = Some(http::uri::PathAndQuery::from_static(path));
            let uri = http::Uri::from_parts(uri).unwrap();
            check_default(&parts(|b| b.method(method).uri(uri).version(h2)))
        };
        assert!(h2_path("OPTIONS", "*").is_ok());
        assert!(matches!(h2_path("GET", "*"), Err(Failure::BadRequest(_))));
        assert!(matches!(h2_path("GET", "?x"), Err(Failure::BadRequest(_))));
        assert!(matches!(
            target("GET", "https://x/caf\u{e9}", h2),
            Err(Failure::BadRequest(_))
        ));
    }
}
