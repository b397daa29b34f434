//! `cheroot-wasm new rust|python|js NAME`: a new application directory that builds and
//! serves as it is, with its routes.toml.
//!
//! The Rust template carries its own copy of the Rust SDK (`cheroot-wsgi/`, with the WIT
//! contract it is generated from), taken from the sources this binary was built with, so the
//! new project builds anywhere and names no path of the machine that built the binary. The
//! Python template is a plain WSGI callable, built by `cheroot-wasm build-python`. The
//! JavaScript template is a wasi:http proxy built with componentize-js, with the pinned
//! packages, build script and WIT of guest-examples/js.

use std::path::Path;

use anyhow::{Context as _, bail, ensure};

/// The languages `new` knows.
pub const LANGUAGES: &[&str] = &["rust", "python", "js"];

/// Writes the template for `language` into a new directory `dir` (its last component names
/// the crate or module).
pub fn create(language: &str, dir: &Path) -> anyhow::Result<()> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| {
            n.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
        .with_context(|| {
            format!(
                "{}: the name must start with a letter and hold only letters, digits, `_` and `-`",
                dir.display()
            )
        })?;
    ensure!(
        !dir.exists(),
        "{} exists already: pick a new directory",
        dir.display()
    );
    let files: Vec<(&str, String)> = match language {
        "rust" => rust(name),
        "python" => python(&name.replace('-', "_")),
        "js" => js(name),
        other => bail!("no template for {other:?}: use one of {LANGUAGES:?}"),
    };
    for (file, text) in files {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().expect("template files are in a directory"))?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        if file.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(())
}

/// The Rust SDK's source and the contract it is generated from (`sdk/rust`, `wit/`).
const SDK_LIB: &str = include_str!("../../embed/cheroot_wsgi.rs");
const WIT: &str = include_str!("../../embed/wsgi.wit");
/// Where the SDK finds the WIT in the repository, and where its copy finds it.
const SDK_WIT_PATH: (&str, &str) = ("path: \"../../wit\",", "path: \"wit\",");

fn rust(name: &str) -> Vec<(&'static str, String)> {
    let lib = name.replace('-', "_");
    vec![
        (
            "Cargo.toml",
            format!(
                "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\ncheroot-wsgi = {{ path = \"cheroot-wsgi\" }}\n\n[profile.release]\nopt-level = \"s\"\nlto = true\nstrip = true\n\n[workspace]\n"
            ),
        ),
        (
            "cheroot-wsgi/Cargo.toml",
            "[package]\nname = \"cheroot-wsgi\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n[dependencies]\nwit-bindgen = \"0.61\"\n".to_string(),
        ),
        (
            "cheroot-wsgi/src/lib.rs",
            SDK_LIB.replacen(SDK_WIT_PATH.0, SDK_WIT_PATH.1, 1),
        ),
        ("cheroot-wsgi/wit/wsgi.wit", WIT.to_string()),
        (
            "src/lib.rs",
            "//! A cheroot-wasm application: a function from a request to a response.\n\nuse cheroot_wsgi::{Request, Response};\n\nfn app(request: Request) -> Result<Response, String> {\n    Ok(Response::text(\n        \"200 OK\",\n        format!(\"Hello from {} {}!\\n\", request.method(), request.path()),\n    ))\n}\n\ncheroot_wsgi::export!(app);\n".to_string(),
        ),
        (
            "routes.toml",
            format!(
                "# cheroot-wasm serve routes.toml --build\n[[route]]\npath = \"/\"\ncomponent = \"target/wasm32-wasip2/release/{lib}.wasm\"\nbuild = \"cargo build --release --target wasm32-wasip2\"\n"
            ),
        ),
    ]
}

fn python(module: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "app.py",
            "\"\"\"A WSGI application: serve it with `cheroot-wasm serve routes.toml --build`.\"\"\"\n\n\ndef application(environ, start_response):\n    body = f\"Hello from {environ['REQUEST_METHOD']} {environ['PATH_INFO']}!\\n\".encode()\n    start_response(\"200 OK\", [(\"Content-Type\", \"text/plain\"), (\"Content-Length\", str(len(body)))])\n    return [body]\n".to_string(),
        ),
        (
            "routes.toml",
            format!(
                "# cheroot-wasm serve routes.toml --build  (needs: pip install componentize-py==0.25.1)\n[[route]]\npath = \"/\"\ncomponent = \"{module}.wasm\"\nbuild = \"cheroot-wasm build-python app:application -o {module}.wasm\"\n"
            ),
        ),
    ]
}

/// guest-examples/js: its pinned packages, build script and WIT (the example is built and
/// served by the tests, so the template builds as the example does).
const JS_FILES: &[(&str, &str)] = &[
    ("package.json", include_str!("../../embed/js/package.json")),
    (
        "package-lock.json",
        include_str!("../../embed/js/package-lock.json"),
    ),
    ("build.sh", include_str!("../../embed/js/build.sh")),
    (".gitignore", include_str!("../../embed/js/.gitignore")),
    (
        "wit/world.wit",
        include_str!("../../embed/js/wit/world.wit"),
    ),
    (
        "wit/deps/LICENSE.md",
        include_str!("../../embed/js/wit/deps/LICENSE.md"),
    ),
    (
        "wit/deps/cli/package.wit",
        include_str!("../../embed/js/wit/deps/cli/package.wit"),
    ),
    (
        "wit/deps/clocks/package.wit",
        include_str!("../../embed/js/wit/deps/clocks/package.wit"),
    ),
    (
        "wit/deps/filesystem/package.wit",
        include_str!("../../embed/js/wit/deps/filesystem/package.wit"),
    ),
    (
        "wit/deps/http/package.wit",
        include_str!("../../embed/js/wit/deps/http/package.wit"),
    ),
    (
        "wit/deps/io/package.wit",
        include_str!("../../embed/js/wit/deps/io/package.wit"),
    ),
    (
        "wit/deps/random/package.wit",
        include_str!("../../embed/js/wit/deps/random/package.wit"),
    ),
    (
        "wit/deps/sockets/package.wit",
        include_str!("../../embed/js/wit/deps/sockets/package.wit"),
    ),
];
/// The example's package name, replaced by the new project's.
const JS_PACKAGE_NAME: &str = "\"name\": \"cheroot-wasm-js-guest\"";

fn js(name: &str) -> Vec<(&'static str, String)> {
    let mut files: Vec<(&'static str, String)> = JS_FILES
        .iter()
        .map(|&(file, text)| {
            let text = text.replace(JS_PACKAGE_NAME, &format!("\"name\": {name:?}"));
            (file, text)
        })
        .collect();
    files.push((
        "app.js",
        "// A wasi:http application in JavaScript: `cheroot-wasm serve routes.toml --build`.\n// Its path below the route's mount point is in the `cheroot-path-info` header.\n\naddEventListener('fetch', (event) => {\n  const path = event.request.headers.get('cheroot-path-info') ?? new URL(event.request.url).pathname;\n  event.respondWith(\n    new Response(`Hello from ${event.request.method} ${path || '/'}!\\n`, {\n      headers: { 'content-type': 'text/plain' },\n    }),\n  );\n});\n".to_string(),
    ));
    files.push((
        "routes.toml",
        "# cheroot-wasm serve routes.toml --build  (needs node and npm)\n[[route]]\npath = \"/\"\ncomponent = \"target/app.wasm\"\nbuild = \"./build.sh\"\n".to_string(),
    ));
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_js_template_renames_its_package() {
        let files = js("shop");
        let lock = &files
            .iter()
            .find(|(f, _)| *f == "package-lock.json")
            .unwrap()
            .1;
        assert!(!lock.contains(JS_PACKAGE_NAME) && lock.contains("\"name\": \"shop\""));
    }

    #[test]
    fn the_sdk_copy_finds_its_wit() {
        assert!(
            SDK_LIB.contains(SDK_WIT_PATH.0),
            "sdk/rust/src/lib.rs moved its WIT"
        );
    }
}
