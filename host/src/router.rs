//! PathInfoDispatcher: which route serves a path, and how the path splits into
//! SCRIPT_NAME and PATH_INFO.
//!
//! Exactly cheroot's `PathInfoDispatcher` rules: the longest prefix wins; a prefix `p`
//! matches `p` and `p/…` but not `p…` (`/blog` serves `/blog`, `/blog/x`, never `/blogger`);
//! SCRIPT_NAME is the prefix and PATH_INFO the rest, possibly empty; the root route `/`
//! (stored as the empty prefix) matches every path. Matching is on the *decoded* path bytes,
//! as cheroot matches on PATH_INFO. Pure: no I/O, table-tested below.

/// Routes ordered for matching.
#[derive(Debug)]
pub struct Router<T> {
    /// (prefix bytes, value), longest prefix first.
    routes: Vec<(Vec<u8>, T)>,
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

impl<T> Router<T> {
    /// Builds a router from (normalised prefix, value) pairs; see [`crate::config::Route::prefix`].
    pub fn new(routes: impl IntoIterator<Item = (String, T)>) -> Self {
        let mut routes: Vec<(Vec<u8>, T)> = routes
            .into_iter()
            .map(|(p, t)| (p.into_bytes(), t))
            .collect();
        // Stable: equal lengths keep file order (they cannot overlap anyway).
        routes.sort_by_key(|r| std::cmp::Reverse(r.0.len()));
        Router { routes }
    }

    /// The route for a decoded path, or `None` (404).
    pub fn route<'a>(&'a self, path: &'a [u8]) -> Option<Match<'a, T>> {
        self.routes.iter().find_map(|(prefix, route)| {
            let rest = path.strip_prefix(prefix.as_slice())?;
            (rest.is_empty() || rest[0] == b'/').then_some(Match {
                route,
                script_name: prefix,
                path_info: rest,
            })
        })
    }

    /// Every route value, longest prefix first.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.routes.iter().map(|(_, t)| t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// cheroot's own probe table (`{'/': root, '/blog': blog, '/blog/admin/': admin, '/b': b}`).
    #[test]
    fn matches_cheroot_path_info_dispatcher() {
        let router = Router::new(
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
        let router = Router::new([("/api".to_string(), 1)]);
        assert_eq!(router.route(b"/other"), None);
        assert_eq!(router.route(b"/apix"), None);
        assert_eq!(router.route(b"/"), None);
        assert_eq!(
            router.route(b"/api/v1").map(|m| m.path_info),
            Some(&b"/v1"[..])
        );
    }

    #[test]
    fn prefixes_match_bytes_not_text() {
        let router = Router::new([("/caf\u{e9}".to_string(), 1)]);
        assert!(router.route("/café/menu".as_bytes()).is_some());
        assert!(
            router.route(b"/caf\xe9").is_none(),
            "a Latin-1 byte is not the UTF-8 prefix"
        );
    }
}
