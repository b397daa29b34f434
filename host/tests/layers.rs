//! The crate's layers, checked: a module imports only from its own layer and the layers
//! below it (cli → server → gateway → http → config), never from the crate root's
//! re-exports; and inside the layers, no two files import each other, directly or round a
//! circle, but for the one circle bindgen forces (`gateway/bindings.rs` and the host's
//! resource types it names, which implement its traits). Reads the sources as text;
//! comments are skipped, since a doc may name a higher layer to say what a module is not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom first.
const LAYERS: [&str; 5] = ["config", "http", "gateway", "server", "cli"];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `crate::NAME` in the code of `text` (not in comments), with its line number.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + "crate::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue; // `cheroot_wasm_tests::` and the like
            }
            let names = match rest.strip_prefix('{') {
                // `use crate::{a::X, b}`: the head of each path in the group.
                Some(group) => group.split('}').next().unwrap_or("").split(',').collect(),
                None => vec![rest],
            };
            for name in names {
                let head: String = name
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !head.is_empty() {
                    found.push((n + 1, head));
                }
            }
        }
    }
    found
}

#[test]
fn imports_point_down_the_layers_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut wrong = Vec::new();
    let mut checked = 0;
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let Some(layer) = relative
            .components()
            .next()
            .and_then(|c| LAYERS.iter().position(|l| c.as_os_str() == *l))
        else {
            continue; // lib.rs and main.rs stand above the layers
        };
        checked += 1;
        let text = std::fs::read_to_string(file).unwrap();
        for (line, name) in crate_paths(&text) {
            match LAYERS.iter().position(|l| *l == name) {
                Some(target) if target <= layer => {}
                Some(target) => wrong.push(format!(
                    "{}:{line}: {} imports crate::{name}, a layer above it ({})",
                    relative.display(),
                    LAYERS[layer],
                    LAYERS[target]
                )),
                None => wrong.push(format!(
                    "{}:{line}: crate::{name} is not a layer: import from the layer that defines it",
                    relative.display()
                )),
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} files found under {}",
        src.display()
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_checker_sees_grouped_and_plain_imports() {
    let found = crate_paths(
        "use crate::{config::Route, http::error};\nlet x = crate::server::x; // crate::cli\nuse cheroot_wasm_tests::HELLO;",
    );
    let names: Vec<&str> = found.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, ["config", "http", "server"]);
}

/// A source file's module path: `gateway/wsgi/input.rs` → `gateway::wsgi::input`,
/// `gateway/mod.rs` → `gateway`, `lib.rs` → the crate root.
fn module_of(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// Every path the code of `text` names from its own crate (`crate::`, `super::`, `self::`,
/// or a child module's name at the start of a `use`), written out from the crate root;
/// a grouped `use a::{b::C, d}` gives each of its paths.
fn named_paths(text: &str, module: &[String], children: &BTreeSet<String>) -> Vec<Vec<String>> {
    let mut code = String::new();
    for line in text.lines() {
        if line.trim() == "#[cfg(test)]" {
            break; // a file's tests, at its end, import the file itself
        }
        code.push_str(line.split("//").next().unwrap_or(""));
        code.push('\n');
    }
    let bytes = code.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut found = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if !is_ident(bytes[at]) || (at > 0 && (is_ident(bytes[at - 1]) || bytes[at - 1] == b':')) {
            at += 1;
            continue;
        }
        let start = at;
        while at < bytes.len() && is_ident(bytes[at]) {
            at += 1;
        }
        let head = &code[start..at];
        let after_use = code[..start].trim_end().ends_with("use");
        let base: Vec<String> = match head {
            "crate" => Vec::new(),
            "super" | "self" => module.to_vec(),
            name if after_use && children.contains(name) => {
                let mut base = module.to_vec();
                base.push(name.to_owned());
                base
            }
            _ => continue,
        };
        let mut base = base;
        if head == "super" {
            base.pop();
        }
        collect_tail(&code, &mut at, base, &mut found);
    }
    found
}

/// Reads `::a::b`, `::{…}` after a path's head, pushing each whole path.
fn collect_tail(code: &str, at: &mut usize, mut path: Vec<String>, found: &mut Vec<Vec<String>>) {
    let bytes = code.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    while code[*at..].starts_with("::") {
        *at += 2;
        if bytes.get(*at) == Some(&b'{') {
            *at += 1;
            loop {
                while bytes
                    .get(*at)
                    .is_some_and(|c| c.is_ascii_whitespace() || *c == b',')
                {
                    *at += 1;
                }
                match bytes.get(*at) {
                    None => return,
                    Some(b'}') => {
                        *at += 1;
                        return;
                    }
                    _ => {}
                }
                let start = *at;
                while bytes.get(*at).is_some_and(|c| is_ident(*c)) {
                    *at += 1;
                }
                if start == *at {
                    *at += 1; // `*` and the like
                    continue;
                }
                let mut inner = path.clone();
                let name = &code[start..*at];
                if name == "super" {
                    inner.pop();
                } else if name != "self" {
                    inner.push(name.to_owned());
                }
                collect_tail(code, at, inner, found);
                // `as alias` and anything else up to the next `,` or `}`.
                while bytes.get(*at).is_some_and(|c| *c != b',' && *c != b'}') {
                    *at += 1;
                }
            }
        }
        let start = *at;
        while bytes.get(*at).is_some_and(|c| is_ident(*c)) {
            *at += 1;
        }
        let name = &code[start..*at];
        match name {
            "" => break,
            "super" => {
                path.pop();
            }
            _ => path.push(name.to_owned()),
        }
    }
    found.push(path);
}

/// The file a path leads into: the longest prefix of it that is a module.
fn file_of<'a>(path: &[String], modules: &'a BTreeMap<Vec<String>, String>) -> Option<&'a String> {
    (1..=path.len()).rev().find_map(|n| modules.get(&path[..n]))
}

/// The crate's import graph, file to file.
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut modules = BTreeMap::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        modules.insert(module_of(relative), relative.display().to_string());
    }
    let mut graph = BTreeMap::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let module = module_of(relative);
        let children: BTreeSet<String> = modules
            .keys()
            .filter(|m| m.len() == module.len() + 1 && m.starts_with(&module))
            .map(|m| m.last().unwrap().clone())
            .collect();
        let me = relative.display().to_string();
        let text = std::fs::read_to_string(file).unwrap();
        let front_door = relative.ends_with("mod.rs");
        let edges: BTreeSet<String> = named_paths(&text, &module, &children)
            .iter()
            .filter_map(|path| file_of(path, &modules).map(|file| (path, file)))
            // A folder's mod.rs declares its rooms and re-exports what they offer: that
            // is the folder's front door, not an import of them.
            .filter(|(path, _)| {
                !(front_door && path.starts_with(&module) && path.len() > module.len())
            })
            .map(|(_, file)| file)
            .filter(|target| **target != me)
            .cloned()
            .collect();
        graph.insert(me, edges);
    }
    graph
}

/// The strongly connected components of more than one file (Tarjan's algorithm).
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    struct Walk<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, (usize, usize)>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        found: Vec<BTreeSet<String>>,
    }
    fn visit<'g>(w: &mut Walk<'g>, node: &'g str) {
        let n = w.index.len();
        w.index.insert(node, (n, n));
        w.stack.push(node);
        w.on_stack.insert(node);
        for next in w.graph.get(node).into_iter().flatten() {
            let next = next.as_str();
            if !w.index.contains_key(next) {
                visit(w, next);
                let low = w.index[next].1;
                let me = w.index.get_mut(node).unwrap();
                me.1 = me.1.min(low);
            } else if w.on_stack.contains(next) {
                let theirs = w.index[next].0;
                let me = w.index.get_mut(node).unwrap();
                me.1 = me.1.min(theirs);
            }
        }
        let (index, low) = w.index[node];
        if index == low {
            let mut component = BTreeSet::new();
            while let Some(top) = w.stack.pop() {
                w.on_stack.remove(top);
                component.insert(top.to_owned());
                if top == node {
                    break;
                }
            }
            if component.len() > 1 {
                w.found.push(component);
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !walk.index.contains_key(node.as_str()) {
            visit(&mut walk, node);
        }
    }
    walk.found
}

const BINDINGS: &str = "gateway/bindings.rs";

#[test]
fn no_import_circle_but_bindgens() {
    let graph = import_graph();
    assert!(
        graph[BINDINGS].len() >= 3,
        "bindings.rs names the host's resource types: {:?}",
        graph[BINDINGS]
    );
    let mut wrong = Vec::new();
    for circle in circles(&graph) {
        // bindgen's: bindings.rs and the types it names, which implement its traits.
        let bindgens = circle.contains(BINDINGS)
            && circle
                .iter()
                .all(|file| file == BINDINGS || graph[BINDINGS].contains(file));
        if !bindgens {
            let ties: Vec<String> = circle
                .iter()
                .flat_map(|from| {
                    graph[from]
                        .iter()
                        .filter(|to| circle.contains(*to))
                        .map(move |to| format!("  {from} -> {to}"))
                })
                .collect();
            wrong.push(format!(
                "an import circle of {} files:\n{}",
                circle.len(),
                ties.join("\n")
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_graph_follows_super_self_groups_and_children() {
    let module: Vec<String> = ["gateway", "wsgi", "exchange"].map(String::from).to_vec();
    let children = BTreeSet::from(["cache".to_owned()]);
    let paths = named_paths(
        "use super::super::bindings::{Host, View};\nuse super::input::Input; // crate::cli\nlet x = crate::http::error::Failure::X;\npub use cache::{Compiled, compile};\nuse self::y::Z;",
        &module,
        &children,
    );
    let joined: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        joined,
        [
            "gateway::bindings::Host",
            "gateway::bindings::View",
            "gateway::wsgi::input::Input",
            "http::error::Failure::X",
            "gateway::wsgi::exchange::cache::Compiled",
            "gateway::wsgi::exchange::cache::compile",
            "gateway::wsgi::exchange::y::Z",
        ]
    );
    let graph = BTreeMap::from([
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["c".to_owned()])),
        ("c".to_owned(), BTreeSet::from(["a".to_owned()])),
        ("d".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]);
    assert_eq!(
        circles(&graph),
        [BTreeSet::from(["a", "b", "c"].map(String::from))]
    );
}
