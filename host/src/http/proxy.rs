//! Behind a load balancer: who the client is, when — and only when — the peer is a proxy
//! the operator trusts (`[server] trusted-proxies`).
//!
//! From a trusted peer, the one header family the operator names (`[server]
//! forwarded-header`: `X-Forwarded-For`/`-Proto`/`-Host` by default, or `Forwarded`, RFC
//! 7239) sets the client address (REMOTE_ADDR), the scheme (wsgi.url_scheme) and the host
//! used for routing (SERVER_NAME, HTTP_HOST). Only that family: a proxy appends to (or
//! replaces) its own family's headers and passes the other family through untouched, so
//! those are the client's own words — believing them, or falling back to them when the
//! named family is absent, would let any client choose its address and host (RFC 7239 §8.1).
//! Within the family, the client is the right-most address that is not itself a trusted
//! proxy: everything left of it was written by parties nobody vouches for, so a client cannot
//! spoof its way in by sending the headers itself. From any other peer the headers change
//! nothing (the application still sees every one of them as `HTTP_*` keys). Values that do
//! not parse (an obfuscated `for`, a scheme other than http/https, a malformed host) are
//! ignored, never an error. Pure: table-tested below.

use std::net::IpAddr;

use http::HeaderMap;

use crate::config::{ForwardedHeader, TrustedProxies};

/// What a trusted proxy says about the request.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Forwarded {
    /// The client's address.
    pub client: Option<IpAddr>,
    /// `http` or `https`.
    pub scheme: Option<&'static str>,
    /// The host the client asked for (validated as a Host value).
    pub host: Option<String>,
}

/// What the headers of `family` say, if `peer` is trusted (`None`: a UNIX-socket peer);
/// `None` otherwise. The other family's headers are never read.
pub fn resolve(
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    trusted: &TrustedProxies,
    family: ForwardedHeader,
) -> Option<Forwarded> {
    if !trusted.trusts_peer(peer) {
        return None;
    }
    // RFC 9110 §5.3: several lines of one field are one comma-separated list.
    let joined = |name: &str| {
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!values.is_empty()).then(|| values.join(","))
    };
    if family == ForwardedHeader::Forwarded {
        return Some(
            joined("forwarded")
                .map(|forwarded| rfc7239(&forwarded, trusted))
                .unwrap_or_default(),
        );
    }
    let last =
        |name: &str| joined(name).and_then(|v| v.rsplit(',').next().map(|s| s.trim().to_string()));
    Some(Forwarded {
        client: joined("x-forwarded-for").and_then(|list| {
            let chain: Vec<Option<&str>> = list.split(',').map(|s| Some(s.trim())).collect();
            hop(&chain, trusted)
                .and_then(|i| chain.get(i).copied().flatten())
                .and_then(node_ip)
        }),
        scheme: last("x-forwarded-proto").and_then(|p| scheme(&p)),
        host: last("x-forwarded-host").filter(|h| super::protocol::valid_host(h.as_bytes())),
    })
}

/// RFC 7239 §4: comma-separated elements of `;`-separated `key=value` pairs.
fn rfc7239(value: &str, trusted: &TrustedProxies) -> Forwarded {
    let elements: Vec<Vec<(String, String)>> = value
        .split(',')
        .map(|element| {
            element
                .split(';')
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| {
                    (
                        k.trim().to_ascii_lowercase(),
                        v.trim().trim_matches('"').to_string(),
                    )
                })
                .collect()
        })
        .collect();
    let get = |element: &[(String, String)], key: &str| {
        element
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    // The element of the right-most untrusted hop; all of it comes from the same hop.
    let fors: Vec<Option<String>> = elements.iter().map(|e| get(e, "for")).collect();
    let chain: Vec<Option<&str>> = fors.iter().map(|f| f.as_deref()).collect();
    let Some((element, node)) =
        hop(&chain, trusted).and_then(|i| Some((elements.get(i)?, fors.get(i)?)))
    else {
        return Forwarded::default();
    };
    Forwarded {
        client: node.as_deref().and_then(node_ip),
        scheme: get(element, "proto").and_then(|p| scheme(&p)),
        host: get(element, "host").filter(|h| super::protocol::valid_host(h.as_bytes())),
    }
}

/// The index of the right-most hop that is not a trusted proxy (the left-most hop when all
/// are trusted); `None` when the chain is empty.
fn hop(chain: &[Option<&str>], trusted: &TrustedProxies) -> Option<usize> {
    let untrusted = chain.iter().rposition(|node| {
        !node
            .and_then(node_ip)
            .is_some_and(|ip| trusted.contains(ip))
    });
    untrusted.or((!chain.is_empty()).then_some(0))
}

/// `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]:4711`, `2001:db8::1` → the address;
/// `unknown` and obfuscated names → `None`.
fn node_ip(node: &str) -> Option<IpAddr> {
    let node = node.trim();
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    node.parse()
        .ok()
        .or_else(|| node.rsplit_once(':').and_then(|(ip, _)| ip.parse().ok()))
}

fn scheme(value: &str) -> Option<&'static str> {
    match value.trim().to_ascii_lowercase().as_str() {
        "http" => Some("http"),
        "https" => Some("https"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const X: ForwardedHeader = ForwardedHeader::XForwarded;
    const RFC: ForwardedHeader = ForwardedHeader::Forwarded;

    #[test]
    fn networks() {
        let t = trusted(&["10.0.0.0/8", "127.0.0.1", "fd00::/8"]);
        assert!(t.contains(ip("10.1.2.3")));
        assert!(t.contains(ip("127.0.0.1")));
        assert!(t.contains(ip("::ffff:127.0.0.1")), "IPv4-mapped");
        assert!(t.contains(ip("fd12::1")));
        assert!(!t.contains(ip("11.0.0.1")));
        assert!(!t.contains(ip("127.0.0.2")));
        assert!(!t.contains(ip("::1")));
        assert!(trusted(&["0.0.0.0/0"]).contains(ip("8.8.8.8")));
        assert!(!t.trusts_peer(None), "UNIX-socket peers only when listed");
        assert!(trusted(&["unix"]).trusts_peer(None));
        assert!(!trusted(&["unix"]).trusts_peer(Some(ip("127.0.0.1"))));
        for bad in ["10.0.0.0/33", "host.example", "10.0.0.0/x", ""] {
            assert!(TrustedProxies::parse(&[bad.to_string()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_trusted_peers_are_believed() {
        let t = trusted(&["10.0.0.0/8"]);
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "shop.example.com"),
        ]);
        assert_eq!(
            resolve(&h, Some(ip("192.0.2.1")), &t, X),
            None,
            "untrusted peer"
        );
        assert_eq!(
            resolve(&h, Some(ip("10.0.0.5")), &t, X),
            Some(Forwarded {
                client: Some(ip("203.0.113.7")),
                scheme: Some("https"),
                host: Some("shop.example.com".into())
            })
        );
        assert_eq!(
            resolve(&h, Some(ip("10.0.0.5")), &TrustedProxies::default(), X),
            None
        );
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let t = trusted(&["10.0.0.0/8"]);
        let cases = [
            // A client that sends its own X-Forwarded-For only prepends to the chain.
            (
                vec![("x-forwarded-for", "1.2.3.4, 203.0.113.7")],
                Some("203.0.113.7"),
            ),
            (
                vec![("x-forwarded-for", "203.0.113.7, 10.0.0.9")],
                Some("203.0.113.7"),
            ),
            (
                vec![
                    ("x-forwarded-for", "1.2.3.4"),
                    ("x-forwarded-for", "203.0.113.7"),
                ],
                Some("203.0.113.7"),
            ),
            (
                vec![("x-forwarded-for", "10.0.0.1, 10.0.0.2")],
                Some("10.0.0.1"),
            ),
            (vec![("x-forwarded-for", "garbage")], None),
            (
                vec![(
                    "forwarded",
                    "for=1.2.3.4, for=\"[2001:db8::1]:4711\";proto=https;host=a.test",
                )],
                Some("2001:db8::1"),
            ),
            (
                vec![("forwarded", "for=192.0.2.60;proto=http, for=10.0.0.3")],
                Some("192.0.2.60"),
            ),
            (vec![("forwarded", "for=unknown")], None),
        ];
        for (pairs, want) in cases {
            let family = if pairs[0].0 == "forwarded" { RFC } else { X };
            let got = resolve(&headers(&pairs), Some(ip("10.0.0.1")), &t, family).unwrap();
            assert_eq!(got.client, want.map(ip), "{pairs:?}");
        }
        let f = resolve(
            &headers(&[("forwarded", "for=1.2.3.4;proto=ftp;host=\"a b\", for=203.0.113.9;proto=HTTPS;host=shop.test:8443")]),
            Some(ip("10.0.0.1")),
            &t,
            RFC,
        )
        .unwrap();
        assert_eq!(
            (f.scheme, f.host.as_deref()),
            (Some("https"), Some("shop.test:8443"))
        );
        let bad = resolve(
            &headers(&[("x-forwarded-proto", "gopher"), ("x-forwarded-host", "a/b")]),
            Some(ip("10.0.0.1")),
            &t,
            X,
        )
        .unwrap();
        assert_eq!(bad, Forwarded::default(), "bad values are ignored");
    }

    #[test]
    fn only_the_configured_family_is_believed() {
        let t = trusted(&["127.0.0.1"]);
        let peer = Some(ip("127.0.0.1"));
        // ingress-nginx appends the client's address to X-Forwarded-For and passes the
        // client's own Forwarded through untouched.
        let both = headers(&[
            ("forwarded", "for=1.2.3.4;proto=https;host=evil.test"),
            ("x-forwarded-for", "198.51.100.1, 203.0.113.7"),
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "shop.example.com"),
        ]);
        assert_eq!(
            resolve(&both, peer, &t, X),
            Some(Forwarded {
                client: Some(ip("203.0.113.7")),
                scheme: Some("http"),
                host: Some("shop.example.com".into()),
            }),
            "Forwarded is the client's word behind an X-Forwarded proxy"
        );
        assert_eq!(
            resolve(&both, peer, &t, RFC),
            Some(Forwarded {
                client: Some(ip("1.2.3.4")),
                scheme: Some("https"),
                host: Some("evil.test".into()),
            })
        );
        // No fallback: the configured family missing means nothing is forwarded.
        let only_rfc = headers(&[("forwarded", "for=1.2.3.4;host=evil.test")]);
        assert_eq!(resolve(&only_rfc, peer, &t, X), Some(Forwarded::default()));
        let only_x = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-host", "evil.test"),
        ]);
        assert_eq!(resolve(&only_x, peer, &t, RFC), Some(Forwarded::default()));
    }
}
