//! The request a wasi:http guest is handed: what [`super::environ`] is for a WSGI
//! application.
//!
//! wasi:http has no SCRIPT_NAME, PATH_INFO or REMOTE_ADDR, so the guest gets the full path
//! as the client sent it and three headers the server alone sets (any the client sent under
//! these names, or any other `cheroot-` name, is removed first, so none can be forged):
//!
//! - `cheroot-script-name`: the part of the path the route is mounted at, as sent
//!   (percent-encoded; empty for a route at `/`);
//! - `cheroot-path-info`: the rest of the path, as sent; the two always add up to the path;
//! - `cheroot-client-addr`: the client's address and port (a trusted proxy's client, if it
//!   names one).
//!
//! The URI is absolute, with the scheme and authority the client used (after a trusted
//! proxy's forwarding), so `incoming-request.scheme` and `.authority` are the real ones.

use http::header::{HeaderName, HeaderValue};
use http::request::Parts;
use http::uri::{Authority, PathAndQuery, Uri};

use super::environ::{Connection, Mount, path_unit};

/// The header with the route's mount point.
pub const SCRIPT_NAME: HeaderName = HeaderName::from_static("cheroot-script-name");
/// The header with the path below the mount point.
pub const PATH_INFO: HeaderName = HeaderName::from_static("cheroot-path-info");
/// The header with the client's address.
pub const CLIENT_ADDR: HeaderName = HeaderName::from_static("cheroot-client-addr");

/// The request head for a wasi:http guest. `host` is the host the request is for (as sent,
/// or as a trusted proxy forwarded it); without one, the server's own address stands in.
pub fn build(
    parts: &Parts,
    conn: &Connection,
    host: Option<&str>,
    mount: Mount<'_>,
) -> http::Request<()> {
    let authority = host
        .and_then(|h| h.parse::<Authority>().ok())
        .or_else(|| conn.local.and_then(|a| a.to_string().parse().ok()))
        .unwrap_or_else(|| Authority::from_static("localhost"));
    let raw_path = parts.uri.path();
    let path_and_query = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let uri = Uri::builder()
        .scheme(conn.scheme)
        .authority(authority)
        .path_and_query(path_and_query)
        .build()
        .unwrap_or_else(|_| parts.uri.clone());
    let mut headers = parts.headers.clone();
    let ours: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("cheroot-"))
        .cloned()
        .collect();
    for name in ours {
        headers.remove(name);
    }
    let at = raw_split(raw_path, mount.script_name.len());
    let (script_name, path_info) = raw_path.split_at(at);
    // A request-target is visible ASCII (checked by [`super::protocol`]), so these are
    // valid header values.
    if let Ok(value) = HeaderValue::from_str(script_name) {
        headers.insert(SCRIPT_NAME, value);
    }
    if let Ok(value) = HeaderValue::from_str(path_info) {
        headers.insert(PATH_INFO, value);
    }
    if let Some(remote) = conn.remote {
        let addr = std::net::SocketAddr::new(remote.ip().to_canonical(), remote.port());
        if let Ok(value) = HeaderValue::from_str(&addr.to_string()) {
            headers.insert(CLIENT_ADDR, value);
        }
    }
    let mut request = http::Request::new(());
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = uri;
    *request.version_mut() = parts.version;
    *request.headers_mut() = headers;
    request
}

/// Where in `raw` (a path as sent) the first `decoded` bytes of its decoding
/// ([`super::environ::decode_path`]) end.
fn raw_split(raw: &str, decoded: usize) -> usize {
    if raw == "*" {
        return 0;
    }
    let bytes = raw.as_bytes();
    let (mut i, mut n) = (0, 0);
    while i < bytes.len() && n < decoded {
        let (taken, unit) = path_unit(bytes, i);
        n += unit.decoded_len();
        i += taken;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::environ::decode_path;

    #[test]
    fn the_raw_split_matches_the_decoded_prefix() {
        for (raw, prefix) in [
            ("/app/x", "/app"),
            ("/%61pp/x", "/app"),
            ("/a%2Fb/c", "/a%2Fb"),
            ("/a%2fb/c", "/a%2Fb"),
            ("/caf%C3%A9/menu", "/café"),
            ("/", ""),
            ("/x", ""),
        ] {
            let decoded = decode_path(raw);
            assert!(decoded.starts_with(prefix.as_bytes()), "{raw}");
            let at = raw_split(raw, prefix.len());
            assert_eq!(decode_path(&raw[..at]), prefix.as_bytes(), "{raw}");
        }
    }

    #[test]
    fn a_client_cannot_forge_the_servers_headers() {
        let (mut parts, ()) = http::Request::get("/shop/cart?x=1")
            .header("host", "example.com:8080")
            .header("cheroot-script-name", "/")
            .header("Cheroot-Client-Addr", "10.0.0.1:1")
            .header("cheroot-anything", "x")
            .body(())
            .unwrap()
            .into_parts();
        parts.version = http::Version::HTTP_11;
        let conn = Connection {
            remote: Some("127.0.0.1:5000".parse().unwrap()),
            local: Some("127.0.0.1:8080".parse().unwrap()),
            scheme: "https",
            tls: None,
        };
        let mount = Mount {
            script_name: b"/shop",
            path_info: b"/cart",
        };
        let request = build(&parts, &conn, Some("example.com:8080"), mount);
        assert_eq!(
            request.uri().to_string(),
            "https://example.com:8080/shop/cart?x=1"
        );
        let h = request.headers();
        assert_eq!(h.get_all(&SCRIPT_NAME).iter().count(), 1);
        assert_eq!(h[&SCRIPT_NAME], "/shop");
        assert_eq!(h[&PATH_INFO], "/cart");
        assert_eq!(h[&CLIENT_ADDR], "127.0.0.1:5000");
        assert!(h.get("cheroot-anything").is_none());
    }
}
