//! Which route serves a request: first the virtual host, then cheroot's PathInfoDispatcher
//! within it, and how the path splits into SCRIPT_NAME and PATH_INFO.
//!
//! Hosts: a route may name an exact `host` (case-insensitive, the port ignored) or a
//! wildcard `*.example.com` (one or more labels before `.example.com`). A request goes to
//! the routes of its exact host if there are any, else to those of the longest matching
//! wildcard, else to the routes that name no host (the default server); within that group
//! the path decides, and a path no route of the group serves is a 404.
//!
//! Exactly cheroot's `PathInfoDispatcher` rules: the longest prefix wins; a prefix `p`
//! matches `p` and `p/…` but not `p…` (`/blog` serves `/blog`, `/blog/x`, never `/blogger`);
//! SCRIPT_NAME is the prefix and PATH_INFO the rest, possibly empty; the root route `/`
//! (stored as the empty prefix) matches every path. Matching is on the *decoded* path bytes,
//! as cheroot matches on PATH_INFO. Pure: no I/O, table-tested below.

use std::collections::HashMap;

use crate::config::HostPattern;

/// A request's host as routing compares it (and SERVER_NAME shows it): lower-case, without
/// userinfo, port or trailing dot.
pub fn host_key(host: &str) -> String {
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let name = if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or(host)
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Every route, grouped by virtual host.
#[derive(Debug)]
pub struct Router<T> {
    exact: HashMap<String, PathRouter<T>>,
    /// Longest suffix first.
    wildcard: Vec<(String, PathRouter<T>)>,
    default: PathRouter<T>,
}

impl<T> Router<T> {
    /// Builds a router from (host, normalised prefix, value) triples.
    pub fn new(routes: impl IntoIterator<Item = (Option<HostPattern>, String, T)>) -> Self {
        let mut groups: HashMap<Option<HostPattern>, Vec<(String, T)>> = HashMap::new();
        for (host, prefix, value) in routes {
            groups.entry(host).or_default().push((prefix, value));
        }
        let mut router = Router {
            exact: HashMap::new(),
            wildcard: Vec::new(),
            default: PathRouter::new([]),
        };
        for (host, routes) in groups {
            let paths = PathRouter::new(routes);
            match host {
                None => router.default = paths,
                Some(HostPattern::Exact(name)) => {
                    router.exact.insert(name, paths);
                }
                Some(HostPattern::Wildcard(suffix)) => router.wildcard.push((suffix, paths)),
            }
        }
        router
            .wildcard
            .sort_by_key(|(suffix, _)| std::cmp::Reverse(suffix.len()));
        router
    }

    /// The route for a request to `host` (see [`host_key`]; `None` without one) and a
    /// decoded path, or `None` (404).
    pub fn route<'a>(&'a self, host: Option<&str>, path: &'a [u8]) -> Option<Match<'a, T>> {
        self.group(host).route(path)
    }

    fn group(&self, host: Option<&str>) -> &PathRouter<T> {
        let Some(host) = host else {
            return &self.default;
        };
        if let Some(paths) = self.exact.get(host) {
            return paths;
        }
        self.wildcard
            .iter()
            .find(|(suffix, _)| host.len() > suffix.len() && host.ends_with(suffix.as_str()))
            .map_or(&self.default, |(_, paths)| paths)
    }
}

/// One host's routes, found by hashing: a prefix `p` serves a path exactly when the path is
/// `p` or starts with `p/`, so only the path's cuts at a `/` (or its end) whose length some
/// prefix has are looked up, longest first. A lookup costs one hash per distinct prefix length
/// at most, however many routes there are (a thousand tenants under `/t0000`... is one).
#[derive(Debug)]
pub struct PathRouter<T> {
    /// Prefix bytes → value.
    routes: HashMap<Vec<u8>, T>,
    /// Every prefix length, longest first.
    lengths: Vec<usize>,
}

/// The route a path resolved to.
#[derive(Debug, PartialEq, Eq)]
pub struct Match<'a, T> {
    /// The route's value.
    pub route: &'a T,
    /// SCRIPT_NAME, as bytes: the matched prefix.
    pub script_name: &'a [u8],
    /// PATH_INFO, as bytes: what follows the prefix.
    pub path_info: &'a [u8],
}

impl<T> PathRouter<T> {
    /// Builds a router from (normalised prefix, value) pairs; see [`crate::config::Route::prefix`].
    /// Should a prefix come twice (routes.toml refuses that), the first one stays.
    pub fn new(routes: impl IntoIterator<Item = (String, T)>) -> Self {
        let mut map = HashMap::new();
        for (prefix, value) in routes {
            map.entry(prefix.into_bytes()).or_insert(value);
        }
        let mut lengths: Vec<usize> = map.keys().map(Vec::len).collect();
        lengths.sort_unstable_by(|a, b| b.cmp(a));
        lengths.dedup();
        PathRouter {
            routes: map,
            lengths,
        }
    }

    /// The route for a decoded path, or `None` (404).
    pub fn route<'a>(&'a self, path: &'a [u8]) -> Option<Match<'a, T>> {
        self.lengths.iter().find_map(|&len| {
            let rest = path.get(len..)?;
            if !(rest.is_empty() || rest[0] == b'/') {
                return None;
            }
            let (script_name, route) = self.routes.get_key_value(&path[..len])?;
            Some(Match {
                route,
                script_name,
                path_info: rest,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// cheroot's own probe table (`{'/': root, '/blog': blog, '/blog/admin/': admin, '/b': b}`).
    #[test]
    fn matches_cheroot_path_info_dispatcher() {
        let router = PathRouter::new(
            [
                ("", "root"),
                ("/blog", "blog"),
                ("/blog/admin", "admin"),
                ("/b", "b"),
            ]
            .map(|(p, v)| (p.to_string(), v)),
        );
        let table: &[(&str, &str, &str, &str)] = &[
            ("/", "root", "", "/"),
            ("/blog", "blog", "/blog", ""),
            ("/blog/", "blog", "/blog", "/"),
            ("/blog/x", "blog", "/blog", "/x"),
            ("/blogger", "root", "", "/blogger"),
            ("/blog/admin", "admin", "/blog/admin", ""),
            ("/blog/admin/x", "admin", "/blog/admin", "/x"),
            ("/blog/administrator", "blog", "/blog", "/administrator"),
            ("/b", "b", "/b", ""),
            ("/bx", "root", "", "/bx"),
            ("/b/blog", "b", "/b", "/blog"),
        ];
        for &(path, route, script, info) in table {
            let m = router
                .route(path.as_bytes())
                .unwrap_or_else(|| panic!("{path} did not match"));
            assert_eq!(
                (*m.route, m.script_name, m.path_info),
                (route, script.as_bytes(), info.as_bytes()),
                "{path}"
            );
        }
    }

    #[test]
    fn no_root_route_means_404() {
        let router = PathRouter::new([("/api".to_string(), 1)]);
        assert_eq!(router.route(b"/other"), None);
        assert_eq!(router.route(b"/apix"), None);
        assert_eq!(router.route(b"/"), None);
        assert_eq!(
            router.route(b"/api/v1").map(|m| m.path_info),
            Some(&b"/v1"[..])
        );
    }

    #[test]
    fn a_thousand_tenants_and_nested_prefixes() {
        let mut routes: Vec<(String, usize)> =
            (0..1000).map(|i| (format!("/t{i:04}"), i)).collect();
        routes.push(("/t0007/admin".into(), 7000));
        routes.push((String::new(), 9999));
        let router = PathRouter::new(routes);
        let at = |path: &[u8]| router.route(path).map(|m| (*m.route, m.path_info.to_vec()));
        assert_eq!(at(b"/t0999"), Some((999, b"".to_vec())));
        assert_eq!(at(b"/t0042/x/y"), Some((42, b"/x/y".to_vec())));
        assert_eq!(at(b"/t0007/admin/z"), Some((7000, b"/z".to_vec())));
        assert_eq!(
            at(b"/t0007/administrator"),
            Some((7, b"/administrator".to_vec()))
        );
        assert_eq!(at(b"/t00421"), Some((9999, b"/t00421".to_vec())));
        assert_eq!(at(b"/t1000"), Some((9999, b"/t1000".to_vec())));
        assert_eq!(at(b""), Some((9999, b"".to_vec())));
        // A path of nothing but slashes costs one lookup per prefix length, not per slash.
        let slashes = vec![b'/'; 16 << 10];
        assert_eq!(at(&slashes), Some((9999, slashes.clone())));
    }

    #[test]
    fn hosts_then_paths() {
        let host = |h: &str| Some(HostPattern::parse(h).unwrap());
        let router = Router::new([
            (None, "".to_string(), "default"),
            (host("shop.example.com"), "".to_string(), "shop"),
            (host("shop.example.com"), "/admin".to_string(), "shop-admin"),
            (host("*.example.com"), "".to_string(), "any-example"),
            (host("*.eu.example.com"), "/api".to_string(), "eu-api"),
            (host("blog.test"), "/blog".to_string(), "blog"),
        ]);
        let table: &[(Option<&str>, &str, Option<&str>)] = &[
            (Some("shop.example.com"), "/", Some("shop")),
            (Some("shop.example.com"), "/admin/x", Some("shop-admin")),
            (Some("www.example.com"), "/", Some("any-example")),
            (Some("a.b.example.com"), "/", Some("any-example")),
            (Some("x.eu.example.com"), "/api/v1", Some("eu-api")),
            // The longest wildcard owns the host: its paths only.
            (Some("x.eu.example.com"), "/", None),
            // A wildcard needs at least one label before its suffix.
            (Some("example.com"), "/", Some("default")),
            (Some("other.org"), "/anything", Some("default")),
            (None, "/", Some("default")),
            // An exact host without a route for the path: 404, no fallback.
            (Some("blog.test"), "/", None),
            (Some("blog.test"), "/blog/post", Some("blog")),
        ];
        for &(h, path, want) in table {
            let got = router.route(h, path.as_bytes()).map(|m| *m.route);
            assert_eq!(got, want, "{h:?} {path}");
        }
        assert_eq!(host_key("Shop.Example.COM:8080"), "shop.example.com");
        assert_eq!(host_key("example.com."), "example.com");
        assert_eq!(host_key("[::1]:80"), "[::1]");
        assert_eq!(host_key("user@Example.com:80"), "example.com");
        assert_eq!(
            HostPattern::parse("*.Example.com").unwrap().to_string(),
            "*.example.com"
        );
        for bad in [
            "",
            "*",
            "*.",
            "a b",
            "x.com:80",
            "http://x.com",
            "x.com/p",
            "a.*.com",
            "**.x",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prefixes_match_bytes_not_text() {
        let router = PathRouter::new([("/caf\u{e9}".to_string(), 1)]);
        assert!(router.route("/café/menu".as_bytes()).is_some());
        assert!(
            router.route(b"/caf\xe9").is_none(),
            "a Latin-1 byte is not the UTF-8 prefix"
        );
    }
}
