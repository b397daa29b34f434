//! The crate's layers, checked: a module imports only from its own layer and the layers
//! below it (cli → server → gateway → http → config), never from the crate root's
//! re-exports. Reads the sources as text; comments are skipped, since a doc may name a
//! higher layer to say what a module is not.

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
