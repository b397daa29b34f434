//! Entry points for the fuzz targets (`fuzz/`, cargo-fuzz on nightly) and for their corpus
//! replay on stable (`tests/fuzz_corpus.rs`): one function per parser that a client or a
//! guest feeds, each taking raw bytes, decoding them into that parser's input, running the
//! parser the way the server does, and asserting the invariants that matter. A failed
//! invariant panics, which libFuzzer reports as a crash.
//!
//! Not an API: hidden from the docs, and it stands above the layers like the crate root.
//!
//! The structured targets read a small line format rather than opaque bytes, so that their
//! seeds are written by hand and their findings read in a diff: lines end in LF (a CR before
//! it is dropped); a request is `METHOD TARGET VERSION`, then `name: value` header lines up
//! to an empty line; what follows that line is the target's own context (described on each
//! function). Anything the `http` crate refuses (hyper would never build such a request) is
//! skipped, not an error.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri, Version};

use crate::config::{Config, ForwardedHeader, HostPattern, HttpLimits, TrustedProxies};
use crate::gateway::wsgi::start_response::{
    MAX_RESPONSE_HEAD_BYTES, MAX_RESPONSE_HEADERS, ResponseWriter,
};
use crate::http::environ::{self, Concurrency, Connection, Mount};
use crate::http::framing::{Framing, Refused};
use crate::http::protocol::{self, MAX_METHOD_LEN};
use crate::http::proxy;
use crate::http::router::{self, Router};

/// A fuzz target: one input in, its invariants asserted.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz/fuzz_targets/<name>.rs` and `fuzz/corpus/<name>/` are
/// named.
pub const TARGETS: &[(&str, Target)] = &[
    ("framing", framing),
    ("protocol", protocol),
    ("environ", environ),
    ("router", router),
    ("proxy", proxy),
    ("routes_toml", routes_toml),
    ("start_response", start_response),
];

/// The lines of `data`: split at LF, one CR before it dropped.
fn lines(data: &[u8]) -> Vec<&[u8]> {
    data.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect()
}

/// `name: value` lines up to an empty one (or the end) → a header map, lines the `http`
/// crate refuses skipped; and the index of the first line after the empty one.
fn header_lines(lines: &[&[u8]]) -> (HeaderMap, usize) {
    let mut map = HeaderMap::new();
    let mut i = 0;
    while let Some(line) = lines.get(i) {
        i += 1;
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = &line[colon + 1..];
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) && map.try_append(name, value).is_err()
        {
            break;
        }
    }
    (map, i)
}

/// A request head (see the module doc) and the lines after it; `None` if hyper could not
/// have built it.
fn request(data: &[u8]) -> Option<(Parts, Vec<&[u8]>)> {
    let lines = lines(data);
    let first = *lines.first()?;
    let mut words = first.splitn(3, |&b| b == b' ');
    let method = Method::from_bytes(words.next()?).ok()?;
    let uri = Uri::try_from(words.next()?).ok()?;
    let version = match words.next().unwrap_or(b"HTTP/1.1") {
        b"HTTP/0.9" => Version::HTTP_09,
        b"HTTP/1.0" => Version::HTTP_10,
        b"HTTP/2" | b"HTTP/2.0" => Version::HTTP_2,
        _ => Version::HTTP_11,
    };
    let (headers, rest) = header_lines(&lines[1..]);
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.version = version;
    parts.headers = headers;
    let context = lines.get(1 + rest..).unwrap_or_default().to_vec();
    Some((parts, context))
}

/// The value of the context line `key: value`, if any.
fn context<'a>(lines: &[&'a [u8]], key: &str) -> Option<&'a str> {
    lines.iter().find_map(|line| {
        let line = std::str::from_utf8(line).ok()?;
        line.strip_prefix(key)?.strip_prefix(':').map(str::trim)
    })
}

fn trusted(list: Option<&str>) -> TrustedProxies {
    let list: Vec<String> = list
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    TrustedProxies::parse(&list).unwrap_or_default()
}

fn family(name: Option<&str>) -> ForwardedHeader {
    name.and_then(|n| ForwardedHeader::parse(n).ok())
        .unwrap_or_default()
}

/// Raw client bytes through the HTTP/1 framing checks. The first byte picks a piece size;
/// the rest is fed whole, one byte at a time, and in pieces of that size: every way must
/// end in the same state with the same answer (a read boundary never changes a verdict),
/// and a refusal must have its cause in the bytes.
pub fn framing(data: &[u8]) {
    let Some((&size, data)) = data.split_first() else {
        return;
    };
    let run = |pieces: Vec<&[u8]>| {
        let mut framing = Framing::default();
        let result = pieces.into_iter().try_for_each(|p| framing.feed(p));
        (result, format!("{framing:?}"))
    };
    let whole = run(vec![data]);
    let bytes = run(data.chunks(1).collect());
    let pieces = run(data.chunks(usize::from(size).max(1)).collect());
    // After a refusal the state is wherever the bad byte left it; the verdict must agree.
    assert_eq!(whole.0, bytes.0, "byte by byte");
    assert_eq!(whole.0, pieces.0, "in pieces of {size}");
    if whole.0.is_ok() {
        assert_eq!(whole.1, bytes.1, "byte by byte");
        assert_eq!(whole.1, pieces.1, "in pieces of {size}");
    }
    match whole.0 {
        Err(Refused::BareLf) => assert!(data.contains(&b'\n')),
        Err(Refused::RequestLine) => {
            assert!(data.iter().any(|&b| b == b'#' || b.is_ascii_control()));
        }
        Ok(()) => {}
    }
}

/// A request head through `protocol::check` (default limits). What passes must be what
/// the checks promise the layers above: no CONNECT, a bounded method and target, an ASCII
/// origin-form (or `*`, or absolute http(s)) target, at most one Host and a valid one, and
/// at most one Transfer-Encoding, `chunked`.
pub fn protocol(data: &[u8]) {
    let Some((parts, _)) = request(data) else {
        return;
    };
    let limits = HttpLimits::default();
    if protocol::check(&parts, &limits).is_err() {
        return;
    }
    assert_ne!(parts.method, Method::CONNECT);
    assert!(parts.method.as_str().len() <= MAX_METHOD_LEN);
    let raw = parts.uri.path_and_query().map_or("", |pq| pq.as_str());
    assert!(raw.len() <= limits.max_uri_length);
    assert!(raw.is_ascii(), "{raw:?}");
    assert!(
        raw.starts_with('/') || raw == "*" || parts.uri.scheme().is_some(),
        "{raw:?}"
    );
    let hosts = parts.headers.get_all(http::header::HOST);
    assert!(hosts.iter().count() <= 1);
    for host in hosts {
        assert!(protocol::valid_host(host.as_bytes()), "{host:?}");
    }
    if parts.version == Version::HTTP_11 {
        assert!(environ::requested_host(&parts).is_some());
    }
    let te = parts.headers.get_all(http::header::TRANSFER_ENCODING);
    assert!(te.iter().count() <= 1);
    for value in te {
        assert!(
            value
                .as_bytes()
                .trim_ascii()
                .eq_ignore_ascii_case(b"chunked")
        );
    }
}

/// The routes the environ target routes to: a default server, an exact host and a wildcard.
fn environ_routes() -> Router<&'static str> {
    let host = |h: &str| HostPattern::parse(h).ok();
    Router::new([
        (None, String::new(), "root"),
        (None, "/app".to_string(), "app"),
        (None, "/app/admin".to_string(), "admin"),
        (host("example.com"), String::new(), "example"),
        (host("*.example.com"), "/w".to_string(), "wild"),
    ])
}

/// A request through the service's chain: `protocol::check`, the requested host, a trusted
/// proxy's word, path decoding, routing, the environ. Context lines: `peer: IP` (default
/// 127.0.0.1), `trusted: NET, ...`, `family: forwarded|x-forwarded`. The environ must be
/// well formed: `KEY\0value\0` pairs with no NUL in any value (only PATH_INFO may hold one),
/// each key once; SCRIPT_NAME + PATH_INFO is the decoded path; PATH_INFO is empty or starts
/// with `/`; HTTP_HOST is a valid Host value.
pub fn environ(data: &[u8]) {
    let Some((parts, ctx)) = request(data) else {
        return;
    };
    if protocol::check(&parts, &HttpLimits::default()).is_err() {
        return;
    }
    let peer: IpAddr = context(&ctx, "peer")
        .and_then(|p| p.parse().ok())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let mut conn = Connection {
        remote: Some(SocketAddr::new(peer, 4711)),
        local: Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080)),
        scheme: "http",
        tls: None,
    };
    let mut host = environ::requested_host(&parts);
    if let Some(forwarded) = proxy::resolve(
        &parts.headers,
        Some(peer),
        &trusted(context(&ctx, "trusted")),
        family(context(&ctx, "family")),
    ) {
        if let Some(ip) = forwarded.client {
            conn.remote = Some(SocketAddr::new(ip, 0));
        }
        conn.scheme = forwarded.scheme.unwrap_or(conn.scheme);
        host = forwarded.host.or(host);
    }
    let path = environ::decode_path(parts.uri.path());
    let route_host = host.as_deref().map(router::host_key);
    let routes = environ_routes();
    let Some(matched) = routes.route(route_host.as_deref(), &path) else {
        return;
    };
    let concurrency = Concurrency {
        multithread: false,
        multiprocess: true,
        run_once: false,
    };
    let mount = Mount {
        script_name: matched.script_name,
        path_info: matched.path_info,
    };
    let vars = environ::build(
        &parts,
        &conn,
        host.as_deref(),
        route_host.as_deref(),
        mount,
        concurrency,
    );
    assert!(vars.packed.is_empty() || vars.packed.ends_with('\0'));
    let fields: Vec<&str> = vars.packed.split_terminator('\0').collect();
    assert_eq!(
        fields.len() % 2,
        0,
        "a value holds a NUL: {:?}",
        vars.packed
    );
    let mut keys = BTreeSet::new();
    let mut script_name = None;
    for pair in fields.chunks(2) {
        let (key, value) = (pair[0], pair[1]);
        // RFC 3875 §4.1.18: a header's meta-variable is its name upper-cased with `-` as
        // `_`; any other token character stays (`X-A`B` is `HTTP_X_A`B`), and no space or
        // control gets in.
        assert!(
            !key.is_empty()
                && key.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || b == b'_'
                        || b == b'.'
                        || (key.starts_with("HTTP_") && b"!#$%&'*+^`|~".contains(&b))
                }),
            "key {key:?}"
        );
        assert!(keys.insert(key), "{key} twice");
        match key {
            "SCRIPT_NAME" => script_name = Some(value),
            "HTTP_HOST" => assert!(
                protocol::valid_host(value.as_bytes()),
                "HTTP_HOST {value:?}"
            ),
            "REQUEST_METHOD" => assert_eq!(value, parts.method.as_str()),
            _ => {}
        }
    }
    assert!(!keys.contains("PATH_INFO"));
    let to_bytes = |s: &str| -> Vec<u8> { s.chars().map(|c| c as u32 as u8).collect() };
    let mut routed = to_bytes(script_name.expect("SCRIPT_NAME"));
    assert!(vars.path_info.is_empty() || vars.path_info.starts_with('/'));
    routed.extend(to_bytes(&vars.path_info));
    assert_eq!(routed, path);
    environ::recycle(vars);
}

/// Route prefixes as routes.toml normalises them (`config::normalise_prefix`): from `/`,
/// trailing slashes trimmed.
fn prefix(text: &str) -> Option<String> {
    text.starts_with('/')
        .then(|| text.trim_end_matches('/').to_string())
}

/// Path decoding and routing against a plain reading of the rules. Lines: routes as
/// `[HOST] PREFIX` (HOST a route's `host`, `-` for none) up to an empty line, then requests
/// as `[HOST] RAW-PATH` (`-`: no Host). The decoded path keeps every `/` it had and adds
/// none (`%2F` stays encoded); the route found is the one the rules give: the exact host's
/// routes, else the longest wildcard's, else the default's; within them the longest prefix
/// that is the path or a `/`-bounded start of it, the first of two equal routes.
pub fn router(data: &[u8]) {
    let lines = lines(data);
    let split = |line: &[u8]| -> Option<(Option<String>, String)> {
        let line = std::str::from_utf8(line).ok()?;
        let (host, rest) = line.split_once(' ')?;
        Some(((host != "-").then(|| host.to_string()), rest.to_string()))
    };
    let mut routes: Vec<(Option<HostPattern>, String, usize)> = Vec::new();
    let mut i = 0;
    while let Some(line) = lines.get(i) {
        i += 1;
        if line.is_empty() {
            break;
        }
        let Some((host, path)) = split(line) else {
            continue;
        };
        let host = match host.map(|h| HostPattern::parse(&h)) {
            Some(Err(_)) => continue,
            Some(Ok(h)) => Some(h),
            None => None,
        };
        if let Some(p) = prefix(&path) {
            routes.push((host, p, routes.len()));
        }
    }
    let router = Router::new(routes.clone());
    for line in lines.get(i..).unwrap_or_default() {
        let Some((host, raw)) = split(line) else {
            continue;
        };
        let path = environ::decode_path(&raw);
        if raw != "*" {
            let slashes = |b: &[u8]| b.iter().filter(|&&c| c == b'/').count();
            assert_eq!(
                slashes(&path),
                slashes(raw.as_bytes()),
                "{raw:?} → {path:?}"
            );
            assert!(path.len() <= raw.len());
        }
        let key = host.as_deref().map(router::host_key);
        let found = router.route(key.as_deref(), &path);
        // The plain reading.
        let group = |pattern: &Option<HostPattern>| -> Option<usize> {
            let key = key.as_deref()?;
            match pattern {
                Some(HostPattern::Exact(name)) => (name == key).then_some(usize::MAX),
                Some(HostPattern::Wildcard(suffix)) => (key.len() > suffix.len()
                    && key.ends_with(suffix.as_str()))
                .then_some(suffix.len()),
                None => None,
            }
        };
        let best = routes.iter().filter_map(|(h, _, _)| group(h)).max();
        let in_group = |h: &Option<HostPattern>| match best {
            None => h.is_none(),
            Some(best) => group(h) == Some(best),
        };
        let serves = |p: &str| {
            path.starts_with(p.as_bytes()) && (path.len() == p.len() || path[p.len()] == b'/')
        };
        let expected = routes
            .iter()
            .filter(|(h, p, _)| in_group(h) && serves(p))
            .max_by_key(|(_, p, index)| (p.len(), std::cmp::Reverse(*index)));
        match (found, expected) {
            (None, None) => {}
            (Some(m), Some((_, p, index))) => {
                assert_eq!(m.route, index, "{host:?} {raw:?}");
                assert_eq!(m.script_name, p.as_bytes());
                assert_eq!([m.script_name, m.path_info].concat(), path);
            }
            (found, expected) => panic!("{host:?} {raw:?}: {found:?}, expected {expected:?}"),
        }
    }
}

/// Forwarding headers through `proxy::resolve`. Lines: `PEER FAMILY TRUSTED,...`, then
/// header lines; after an empty line, one line of junk a client puts in front. Only a
/// trusted peer is heard; what it yields is a valid host and http or https; and junk a
/// client writes to the left of a chain that holds an untrusted hop changes nothing (the
/// client cannot spoof its way in).
pub fn proxy(data: &[u8]) {
    let lines = lines(data);
    let Some(first) = lines.first().and_then(|l| std::str::from_utf8(l).ok()) else {
        return;
    };
    let mut words = first.splitn(3, ' ');
    let peer = words.next().and_then(|p| p.parse::<IpAddr>().ok());
    let family = family(words.next());
    let trusted = trusted(words.next());
    let (headers, rest) = header_lines(&lines[1..]);
    let result = proxy::resolve(&headers, peer, &trusted, family);
    assert_eq!(result.is_some(), trusted.trusts_peer(peer));
    let Some(result) = result else {
        return;
    };
    if let Some(host) = &result.host {
        assert!(protocol::valid_host(host.as_bytes()), "{host:?}");
    }
    assert!(matches!(result.scheme, None | Some("http" | "https")));
    // Junk in front of the family's chain.
    let Some(junk) = lines
        .get(1 + rest)
        .and_then(|j| HeaderValue::from_bytes(j).ok())
    else {
        return;
    };
    let name = match family {
        ForwardedHeader::Forwarded => "forwarded",
        ForwardedHeader::XForwarded => "x-forwarded-for",
    };
    let chain: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let joined = chain.join(",");
    let untrusted_hop = joined.split(',').any(|element| {
        let node = match family {
            ForwardedHeader::XForwarded => Some(element.trim()),
            ForwardedHeader::Forwarded => element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| v.trim().trim_matches('"'))
            }),
        };
        !node
            .and_then(node_ip)
            .is_some_and(|ip| trusted.contains(ip))
    });
    if chain.is_empty() || !untrusted_hop {
        return;
    }
    let mut spoofed = HeaderMap::new();
    spoofed.append(HeaderName::from_static(name), junk);
    for (k, v) in &headers {
        if k == name {
            spoofed.append(k, v.clone());
        }
    }
    for (k, v) in &headers {
        if k != name {
            spoofed.append(k, v.clone());
        }
    }
    let after = proxy::resolve(&spoofed, peer, &trusted, family);
    assert_eq!(
        after.as_ref(),
        Some(&result),
        "junk in front changed the answer"
    );
}

/// A forwarded node as `proxy` reads it (its own copy: the test states the rule).
fn node_ip(node: &str) -> Option<IpAddr> {
    let node = node.trim();
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    node.parse()
        .ok()
        .or_else(|| node.rsplit_once(':').and_then(|(ip, _)| ip.parse().ok()))
}

/// routes.toml text through `Config::parse` (parse only: nothing on disk is read or
/// checked). An error's message is bounded; a config that parses has routes with
/// normalised prefixes without controls, each (host, prefix) once, environment names and
/// values fit for a guest's environment, and every route is where the router finds it.
pub fn routes_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = match Config::parse(Path::new("/nonexistent/routes.toml"), text) {
        Ok(config) => config,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    assert!(!config.routes.is_empty());
    let mut seen = BTreeSet::new();
    for route in &config.routes {
        let p = &route.prefix;
        assert!(
            p.is_empty() || (p.starts_with('/') && !p.ends_with('/')),
            "{p:?}"
        );
        assert!(
            !p.chars()
                .any(|c| c.is_control() || c.is_whitespace() || "?#%".contains(c)),
            "{p:?}"
        );
        assert!(seen.insert((route.host.clone(), p.clone())), "{p:?} twice");
        for (k, v) in &route.env {
            assert!(!k.is_empty() && !k.contains(['=', '\0']) && !v.contains('\0'));
        }
        assert!(route.limits.max_concurrency >= 1);
    }
    let router = Router::new(
        config
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| (r.host.clone(), r.prefix.clone(), i)),
    );
    for (i, route) in config.routes.iter().enumerate() {
        let host = match &route.host {
            None => None,
            Some(HostPattern::Exact(name)) => Some(name.clone()),
            Some(HostPattern::Wildcard(suffix)) => {
                let host = format!("zz-fuzz{suffix}");
                if config
                    .routes
                    .iter()
                    .any(|r| r.host == Some(HostPattern::Exact(host.clone())))
                {
                    continue;
                }
                Some(host)
            }
        };
        let found = router.route(host.as_deref(), route.prefix.as_bytes());
        assert_eq!(found.map(|m| *m.route), Some(i), "{:?}", route.prefix);
    }
}

/// A guest's `start_response(status, headers)` and first `write`. Lines: the status, then
/// `name: value` headers (as text: any Unicode, as a guest can send) up to an empty line;
/// then, optionally, `exc: STATUS` (a second call with exc_info, whose headers are the
/// first's), and the rest is the body's first chunk. A refusal's message is bounded; a head
/// that is accepted reaches hyper with a 200-599 status and at most
/// [`MAX_RESPONSE_HEADERS`] of the guest's lines and [`MAX_RESPONSE_HEAD_BYTES`], every
/// name a token and every value free of CR, LF, NUL and other controls, no hop-by-hop
/// header but the server's own `Connection: close`, one Content-Length at most (none for
/// 204 and 304), and a body no longer than it.
pub fn start_response(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let Some(status) = lines.next() else {
        return;
    };
    let mut headers = Vec::new();
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        headers.push((name.to_string(), value.to_string()));
    }
    let rest: Vec<&str> = lines.collect();
    let (exc, body) = match rest.first().and_then(|l| l.strip_prefix("exc: ")) {
        Some(exc) => (Some(exc), rest[1..].join("\n")),
        None => (None, rest.join("\n")),
    };
    let close = Arc::default();
    let (mut writer, mut rx) = ResponseWriter::new(false, close);
    let bounded = |e: &dyn std::fmt::Debug| {
        let message = format!("{e:?}");
        assert!(message.len() < 2048, "{} bytes of error", message.len());
    };
    let mut started = match writer.start(status, headers.clone(), None) {
        Ok(()) => true,
        Err(e) => {
            bounded(&e);
            false
        }
    };
    if let Some(exc) = exc {
        match writer.start(exc, headers, Some("ValueError")) {
            Ok(()) => started = true,
            Err(e) => bounded(&e),
        }
    }
    if !started {
        return;
    }
    let wrote = futures::executor::block_on(writer.write(body.into_bytes()));
    if let Err(e) = wrote {
        bounded(&e);
    }
    let _ = writer.finish();
    let Ok(Ok(response)) = rx.try_recv() else {
        return;
    };
    let status = response.status().as_u16();
    assert!((200..=599).contains(&status));
    let headers = response.headers();
    // The guest's lines, the server's Server and, perhaps, Connection: close.
    assert!(headers.len() <= MAX_RESPONSE_HEADERS + 2);
    let mut size = 0;
    for (name, value) in headers {
        size += name.as_str().len() + value.len() + 4;
        assert!(
            value
                .as_bytes()
                .iter()
                .all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f)),
            "{name}: {value:?}"
        );
        if protocol::is_hop_by_hop(name.as_str()) {
            assert!(
                name == http::header::CONNECTION && value == "close",
                "{name}"
            );
        }
    }
    assert!(size <= MAX_RESPONSE_HEAD_BYTES + 256);
    let lengths = headers.get_all(http::header::CONTENT_LENGTH);
    assert!(lengths.iter().count() <= 1);
    if status == 204 || status == 304 {
        assert_eq!(lengths.iter().count(), 0);
    }
    if let Some(declared) = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
    {
        assert!(writer.written() <= declared);
    }
}
