//! Request parts → the PEP 3333 environ, as native strings packed the way wit/wsgi.wit's
//! `environ` carries them ([`Vars`]).
//!
//! Owns the mapping and its corner cases: PATH_INFO is percent-decoded except `%2F`, which
//! stays encoded (as cheroot does, so an encoded slash cannot forge a path segment); every
//! byte becomes one Latin-1 character (PEP 3333 "bytes as latin-1"); headers become
//! `HTTP_*` keys, repeats joined with ", " (cookies with "; "), and a header whose *name*
//! contains `_` is dropped so that `X_Forwarded_For` cannot spoof `X-Forwarded-For` (both map
//! to `HTTP_X_FORWARDED_FOR`). It does not route ([`super::router`]) or read the body
//! (`gateway::input`). Pure: no I/O, table-tested below.
//!
//! Differences from cheroot, on purpose: SERVER_NAME is the host the client asked for
//! (Host header or HTTP/2 `:authority`, without the port; the local address when there is
//! none) rather than a fixed server name, as PEP 3333's URL reconstruction expects; and
//! `wsgi.input_terminated` is always "true", because `wsgi.input` always ends at the end
//! of the body, whatever its framing.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use http::request::Parts;
use http::{HeaderMap, Version};

/// How the server reached this request, for REMOTE_*, SERVER_PORT, wsgi.url_scheme and the
/// TLS keys.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The client's address (`None` over a UNIX socket: REMOTE_ADDR is empty, as in cheroot).
    pub remote: Option<SocketAddr>,
    /// The address the connection arrived on (`None` over a UNIX socket).
    pub local: Option<SocketAddr>,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// What the TLS handshake settled, on a TLS connection.
    pub tls: Option<Arc<TlsInfo>>,
}

/// What the handshake settled, for the environ and the logs.
#[derive(Debug, Clone, Default)]
pub struct TlsInfo {
    /// `"TLSv1.3"` or `"TLSv1.2"` (mod_ssl's spelling).
    pub protocol: String,
    /// The cipher suite as rustls names it, e.g. `"TLS_AES_256_GCM_SHA384"`.
    pub cipher: String,
    /// The server name the client sent (SNI), lower-case.
    pub sni: Option<String>,
    /// Whether ALPN settled on `"h2"`.
    pub h2: bool,
    /// The client's certificate, present only when it was required and verified.
    pub client: Option<ClientCert>,
}

/// A client certificate that passed verification against `client_ca`.
#[derive(Debug, Clone)]
pub struct ClientCert {
    /// The subject as cheroot's builtin adapter spells it: the attributes in certificate
    /// order (most general first), `NAME=value` joined by commas, e.g.
    /// `"C=US,O=Example,CN=alice"`, values escaped as RFC 4514 §2.4 says (`CN=a\,O\=b`).
    pub subject_dn: String,
    /// The leaf certificate as PEM, 64-column lines, no trailing newline (as cheroot).
    pub pem: String,
}

impl TlsInfo {
    /// The environ keys TLS adds, with mod_ssl's names: `HTTPS=on`, `SSL_PROTOCOL`,
    /// `SSL_CIPHER`, `SSL_TLS_SNI` (only when the client sent SNI), `SSL_CLIENT_VERIFY`
    /// (`"SUCCESS"` with a verified client certificate, else `"NONE"`), and with a client
    /// certificate `SSL_CLIENT_S_DN` and `SSL_CLIENT_CERT`.
    pub fn environ(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("HTTPS", "on".to_owned()),
            ("SSL_PROTOCOL", self.protocol.clone()),
            ("SSL_CIPHER", self.cipher.clone()),
        ];
        if let Some(sni) = &self.sni {
            env.push(("SSL_TLS_SNI", sni.clone()));
        }
        match &self.client {
            None => env.push(("SSL_CLIENT_VERIFY", "NONE".to_owned())),
            Some(client) => {
                env.push(("SSL_CLIENT_VERIFY", "SUCCESS".to_owned()));
                env.push(("SSL_CLIENT_S_DN", client.subject_dn.clone()));
                env.push(("SSL_CLIENT_CERT", client.pem.clone()));
            }
        }
        env
    }
}

/// The `wsgi.multithread`, `wsgi.multiprocess` and `wsgi.run_once` flags of an instance model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concurrency {
    /// Several requests may run in one instance at once (never, today).
    pub multithread: bool,
    /// Several instances of the app run at once.
    pub multiprocess: bool,
    /// Each instance serves one request only.
    pub run_once: bool,
}

/// The routed path, split by [`super::router`].
#[derive(Debug, Clone, Copy)]
pub struct Mount<'a> {
    /// SCRIPT_NAME bytes.
    pub script_name: &'a [u8],
    /// PATH_INFO bytes.
    pub path_info: &'a [u8],
}

/// The environ's variables as the contract carries them: PATH_INFO apart, every other
/// variable in `packed` as `KEY\0value\0` (wit/wsgi.wit, `environ.vars`), so the guest gets
/// the whole environ in two allocations however many headers there are.
#[derive(Debug, Default)]
pub struct Vars {
    /// `KEY\0value\0` for every variable but PATH_INFO. No key or value holds NUL: HTTP
    /// refuses it in header values and request-targets, route prefixes refuse control
    /// characters, and a client certificate's subject has it escaped as `\00` (RFC 4514).
    pub packed: String,
    /// PATH_INFO, percent-decoded, so any character (NUL too).
    pub path_info: String,
}

impl Vars {
    /// Every variable, PATH_INFO first, as (key, value).
    #[cfg(test)]
    fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut parts = self.packed.split_terminator('\0');
        let rest = std::iter::from_fn(move || Some((parts.next()?, parts.next().unwrap_or(""))));
        std::iter::once(("PATH_INFO", self.path_info.as_str())).chain(rest)
    }

    /// Writes a variable: its key by `key`, its value by `value`.
    fn entry(&mut self, key: impl FnOnce(&mut String), value: impl FnOnce(&mut String)) {
        key(&mut self.packed);
        self.packed.push('\0');
        value(&mut self.packed);
        self.packed.push('\0');
    }

    /// Writes variable `key`, its value by `value`.
    fn put_with(&mut self, key: &str, value: impl FnOnce(&mut String)) {
        self.entry(|k| k.push_str(key), value);
    }

    fn put(&mut self, key: &str, value: &str) {
        self.put_with(key, |packed| packed.push_str(value));
    }
}

/// The environ's variables.
///
/// `host` is the host the request is for, as sent (see [`requested_host`]) or as a trusted
/// proxy forwarded it, and `server_name` its name as routing matched it
/// ([`super::router::host_key`]): HTTP_HOST and SERVER_NAME. Written over the strings of
/// an earlier request on this thread (see [`recycle`]).
pub fn build(
    parts: &Parts,
    conn: &Connection,
    host: Option<&str>,
    server_name: Option<&str>,
    mount: Mount<'_>,
    concurrency: Concurrency,
) -> Vars {
    let uri = &parts.uri;
    let mut vars = SPARE.with(|spare| std::mem::take(&mut *spare.borrow_mut()));
    vars.packed.clear();
    vars.path_info.clear();
    latin1_into(&mut vars.path_info, mount.path_info);
    vars.put("REQUEST_METHOD", parts.method.as_str());
    vars.put_with("SCRIPT_NAME", |v| latin1_into(v, mount.script_name));
    vars.put("QUERY_STRING", uri.query().unwrap_or(""));
    vars.put("REQUEST_URI", &request_uri(parts));
    vars.put_with("SERVER_NAME", |name| {
        match (server_name.filter(|name| !name.is_empty()), conn.local) {
            (Some(server_name), _) => name.push_str(server_name),
            (None, Some(local)) => {
                let _ = write!(name, "{}", local.ip());
            }
            (None, None) => name.push_str("localhost"),
        }
    });
    vars.put_with("SERVER_PORT", |port| {
        if let Some(local) = conn.local {
            let _ = write!(port, "{}", local.port());
        }
    });
    vars.put("SERVER_PROTOCOL", protocol(parts.version));
    vars.put("SERVER_SOFTWARE", super::SERVER_SOFTWARE);
    vars.put_with("REMOTE_ADDR", |addr| {
        if let Some(remote) = conn.remote {
            let _ = write!(addr, "{}", remote.ip().to_canonical());
        }
    });
    vars.put_with("REMOTE_PORT", |port| {
        if let Some(remote) = conn.remote {
            let _ = write!(port, "{}", remote.port());
        }
    });
    let flag = |b: bool| if b { "true" } else { "false" };
    vars.put("wsgi.version", "1.0");
    vars.put("wsgi.url_scheme", conn.scheme);
    vars.put("wsgi.multithread", flag(concurrency.multithread));
    vars.put("wsgi.multiprocess", flag(concurrency.multiprocess));
    vars.put("wsgi.run_once", flag(concurrency.run_once));
    vars.put("wsgi.input_terminated", "true");
    if let Some(tls) = &conn.tls {
        for (key, value) in tls.environ() {
            vars.put(key, &value);
        }
    }
    headers(&parts.headers, &mut vars);
    if let Some(host) = host {
        vars.put("HTTP_HOST", host);
    }
    vars
}

thread_local! {
    /// The strings of the last request this thread built an environ for, once the guest
    /// has them: reused, so that a request does not allocate them afresh.
    static SPARE: std::cell::RefCell<Vars> = std::cell::RefCell::default();
}

/// Gives `vars` back once the guest has them, for the next [`build`] on this thread. What
/// a large request made large is let go, so a thread keeps a few KiB, not the biggest
/// request it ever saw.
pub fn recycle(mut vars: Vars) {
    const KEEP: usize = 4096;
    for s in [&mut vars.packed, &mut vars.path_info] {
        if s.capacity() > KEEP {
            *s = String::new();
        }
    }
    SPARE.with(|spare| *spare.borrow_mut() = vars);
}

/// `HTTP_*`, CONTENT_TYPE and CONTENT_LENGTH from the request headers.
fn headers(map: &HeaderMap, vars: &mut Vars) {
    for name in map.keys() {
        let name = name.as_str();
        // Host is HTTP_HOST, from `build`'s `host`.
        if name.contains('_') || name == "host" {
            continue;
        }
        let key = |key: &mut String| match name {
            "content-type" => key.push_str("CONTENT_TYPE"),
            "content-length" => key.push_str("CONTENT_LENGTH"),
            _ => {
                key.push_str("HTTP_");
                key.extend(name.chars().map(|c| {
                    if c == '-' {
                        '_'
                    } else {
                        c.to_ascii_uppercase()
                    }
                }));
            }
        };
        let separator = if name == "cookie" { "; " } else { ", " };
        vars.entry(key, |value| {
            for (i, v) in map.get_all(name).iter().enumerate() {
                if i > 0 {
                    value.push_str(separator);
                }
                latin1_into(value, v.as_bytes());
            }
        });
    }
}

/// Appends bytes as a native string: one char per byte (PEP 3333).
fn latin1_into(out: &mut String, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(ascii) if ascii.is_ascii() => out.push_str(ascii),
        _ => out.extend(bytes.iter().map(|&b| char::from(b))),
    }
}

/// Bytes as a native string: one char per byte (PEP 3333).
pub fn latin1(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    latin1_into(&mut out, bytes);
    out
}

/// The request-target as sent: origin-form path and query, `*`, or the absolute URI.
pub fn request_uri(parts: &Parts) -> String {
    if parts.version == Version::HTTP_2 || parts.uri.scheme().is_none() {
        parts.uri.path_and_query().map_or_else(
            || parts.uri.path().to_string(),
            |pq| pq.as_str().to_string(),
        )
    } else {
        parts.uri.to_string()
    }
}

/// The host the client asked for, as sent (the Host header, or the authority of an
/// absolute URI or of HTTP/2's `:authority`), port included.
pub fn requested_host(parts: &Parts) -> Option<String> {
    match parts.uri.authority() {
        Some(a) if parts.uri.scheme().is_some() => Some(a.as_str().to_string()),
        _ => Some(latin1(parts.headers.get(http::header::HOST)?.as_bytes())),
    }
}

/// SERVER_PROTOCOL for a request version.
pub fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// Percent-decodes a request path, keeping `%2F`/`%2f` encoded (as upper-case `%2F`) and
/// invalid escapes as they are. `*` (OPTIONS) becomes `/*`, as in cheroot.
pub fn decode_path(raw: &str) -> Vec<u8> {
    if raw == "*" {
        return b"/*".to_vec();
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let (taken, unit) = path_unit(bytes, i);
        match unit {
            PathUnit::Byte(b) => out.push(b),
            PathUnit::EncodedSlash => out.extend_from_slice(b"%2F"),
        }
        i += taken;
    }
    out
}

/// What one unit of a raw path decodes to ([`decode_path`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathUnit {
    /// A byte: itself, or a valid `%XX` escape's.
    Byte(u8),
    /// `%2F`/`%2f`, kept encoded as `%2F`.
    EncodedSlash,
}

impl PathUnit {
    /// How many bytes of the decoded path it makes.
    pub fn decoded_len(self) -> usize {
        match self {
            PathUnit::Byte(_) => 1,
            PathUnit::EncodedSlash => 3,
        }
    }
}

/// The unit of `raw` at `i`: how many raw bytes it takes, and what it decodes to. Invalid
/// escapes stand for themselves.
pub fn path_unit(raw: &[u8], i: usize) -> (usize, PathUnit) {
    let escape = (raw[i] == b'%' && i + 2 < raw.len())
        .then(|| hex(raw[i + 1]).zip(hex(raw[i + 2])))
        .flatten();
    match escape.map(|(h, l)| h * 16 + l) {
        Some(b'/') => (3, PathUnit::EncodedSlash),
        Some(decoded) => (3, PathUnit::Byte(decoded)),
        None => (1, PathUnit::Byte(raw[i])),
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONN: Connection = Connection {
        remote: Some(SocketAddr::new(
            std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1)),
            50000,
        )),
        local: Some(SocketAddr::new(
            std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1)),
            8080,
        )),
        scheme: "http",
        tls: None,
    };
    const WARM: Concurrency = Concurrency {
        multithread: false,
        multiprocess: true,
        run_once: false,
    };

    fn environ(
        req: http::Request<()>,
        script: &str,
        info: &str,
    ) -> std::collections::BTreeMap<String, String> {
        let (parts, ()) = req.into_parts();
        let mount = Mount {
            script_name: script.as_bytes(),
            path_info: info.as_bytes(),
        };
        let host = requested_host(&parts);
        let name = host.as_deref().map(crate::http::router::host_key);
        let vars = build(&parts, &CONN, host.as_deref(), name.as_deref(), mount, WARM);
        assert!(vars.packed.ends_with('\0'));
        let pairs: Vec<_> = vars.iter().collect();
        let map: std::collections::BTreeMap<_, _> = pairs
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(map.len(), pairs.len(), "every key appears once");
        assert_eq!(
            vars.packed.matches('\0').count(),
            2 * (pairs.len() - 1),
            "no NUL inside a key or value"
        );
        recycle(vars);
        map
    }

    #[test]
    fn cgi_and_wsgi_keys() {
        let req = http::Request::post("/app/x?a=1&b=%20")
            .header("host", "example.com:8080")
            .header("content-type", "text/plain")
            .header("content-length", "3")
            .header("x-multi", "a")
            .header("x-multi", "b")
            .header("cookie", "a=1")
            .header("cookie", "b=2")
            .header("x_spoof", "dropped")
            .header(
                "x-latin",
                http::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
            )
            .body(())
            .unwrap();
        let env = environ(req, "/app", "/x");
        let want = [
            ("REQUEST_METHOD", "POST"),
            ("SCRIPT_NAME", "/app"),
            ("PATH_INFO", "/x"),
            ("QUERY_STRING", "a=1&b=%20"),
            ("REQUEST_URI", "/app/x?a=1&b=%20"),
            ("SERVER_NAME", "example.com"),
            ("SERVER_PORT", "8080"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("SERVER_SOFTWARE", crate::http::SERVER_SOFTWARE),
            ("REMOTE_ADDR", "127.0.0.1"),
            ("REMOTE_PORT", "50000"),
            ("CONTENT_TYPE", "text/plain"),
            ("CONTENT_LENGTH", "3"),
            ("HTTP_HOST", "example.com:8080"),
            ("HTTP_X_MULTI", "a, b"),
            ("HTTP_COOKIE", "a=1; b=2"),
            ("HTTP_X_LATIN", "caf\u{e9}"),
            ("wsgi.version", "1.0"),
            ("wsgi.url_scheme", "http"),
            ("wsgi.multithread", "false"),
            ("wsgi.multiprocess", "true"),
            ("wsgi.run_once", "false"),
            ("wsgi.input_terminated", "true"),
        ];
        for (k, v) in want {
            assert_eq!(env.get(k).map(String::as_str), Some(v), "{k}");
        }
        assert_eq!(env.len(), want.len(), "no other keys: {env:?}");
        assert!(!env.contains_key("HTTP_CONTENT_TYPE") && !env.contains_key("HTTP_X_SPOOF"));
    }

    #[test]
    fn without_host_and_over_h2() {
        let req = http::Request::get("/")
            .version(Version::HTTP_10)
            .body(())
            .unwrap();
        let env = environ(req, "", "/");
        assert_eq!(env["SERVER_NAME"], "127.0.0.1");
        assert_eq!(env["SERVER_PROTOCOL"], "HTTP/1.0");
        assert!(!env.contains_key("HTTP_HOST") && !env.contains_key("CONTENT_LENGTH"));

        let req = http::Request::get("http://h2.example:9/p?q")
            .version(Version::HTTP_2)
            .body(())
            .unwrap();
        let env = environ(req, "", "/p");
        assert_eq!(env["SERVER_NAME"], "h2.example");
        assert_eq!(env["HTTP_HOST"], "h2.example:9");
        assert_eq!(env["REQUEST_URI"], "/p?q");
        assert_eq!(env["SERVER_PROTOCOL"], "HTTP/2.0");

        let req = http::Request::get("/")
            .header("host", "[::1]:8080")
            .body(())
            .unwrap();
        assert_eq!(environ(req, "", "/")["SERVER_NAME"], "[::1]");
    }

    #[test]
    fn path_decoding_keeps_encoded_slashes() {
        let cases: &[(&str, &[u8])] = &[
            ("/a%20b%2Fc%2fd/%E2%98%83", b"/a b%2Fc%2Fd/\xe2\x98\x83"),
            ("/%zz/%4", b"/%zz/%4"),
            ("/%", b"/%"),
            ("/%41%42", b"/AB"),
            ("/plain", b"/plain"),
            ("*", b"/*"),
        ];
        for &(raw, want) in cases {
            assert_eq!(decode_path(raw), want, "{raw}");
        }
        assert_eq!(latin1(&decode_path("/%E2%98%83")), "/\u{e2}\u{98}\u{83}");
    }

    #[test]
    fn a_nul_in_the_path_stays_out_of_the_packed_variables() {
        let req = http::Request::get("/a%00b").body(()).unwrap();
        let path = decode_path(req.uri().path());
        let env = environ(req, "", std::str::from_utf8(&path).unwrap());
        assert_eq!(env["PATH_INFO"], "/a\0b");
        assert_eq!(env["REQUEST_URI"], "/a%00b");
    }
}
