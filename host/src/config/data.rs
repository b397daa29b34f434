//! Whose a directory is, and what stands on disk: the rules over `dirs` and `data` that
//! need more than one table's text.
//!
//! Owns two checks. A route's `data` directories are its own: no other route's `data` or
//! `dirs` may name them, or a directory inside or around them, unless both routes say
//! `data-shared`, since the server gives a route's requests its data one at a time and a
//! route outside that lock would see, or write, data mid-change. And on disk, before the
//! server starts, every `dirs` directory must exist and every `dirs` or `data` directory
//! must be a directory named as it is, not a symbolic link, since it is opened once, by that
//! name, and a link could be pointed elsewhere before a reload (a missing `data` directory
//! is fine: it is created when the route starts).
//!
//! Not here: the `dirs` and `data` tables' grammar and `data-quota`, which `route.rs` parses
//! with the route's other keys, in their order (this file reads whole [`Route`]s, so
//! `route.rs` imports nothing from it); creating and opening the directories, the lock,
//! counting and enforcing the quota (`gateway::data`).

use std::path::{Path, PathBuf};

use super::route::Route;
use super::values::{ConfigError, invalid};

/// A route's `data` directories are its own: no other route's `data` or `dirs` may name
/// them, or a directory inside or around them, unless both routes say `data-shared`. (The
/// server serialises a route's requests on its data directories; a route outside that would
/// see, or write, data mid-change.) Paths are compared as written, `..` resolved lexically.
pub(super) fn check_data_owners(routes: &[Route]) -> Result<(), ConfigError> {
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

/// Fails, naming the route's `dirs` or `data` key, if a `dirs` directory does not exist, or
/// a `dirs` or `data` directory is a symbolic link or not a directory.
pub(super) fn check_on_disk(route: &Route) -> Result<(), ConfigError> {
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::config::route::DEFAULT_DATA_QUOTA;
    use crate::config::tests::parse;

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
}
