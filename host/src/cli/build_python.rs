//! `cheroot-wasm build-python MODULE:APP`: a Python WSGI application, unmodified, into a
//! component of world `app`.
//!
//! Owns the staging of a componentize-py build: the WIT contract and the `cheroot_wsgi`
//! adapter (sdk/python, both compiled into this binary so the command works from anywhere),
//! the application's own packages (`--path` directories and a `--requirements` file
//! installed with pip into the staging directory), and a generated entry module that imports
//! what the application imports lazily (componentize-py only bundles what it sees imported:
//! Werkzeug needs `encodings.idna` at request time). Packages installed in the Python that
//! runs componentize-py are bundled too, when the application imports them. The staging
//! directory is private (a fresh, unpredictable name, mode 0700) and removed afterwards:
//! what is staged becomes the tenant's code.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail, ensure};

/// The componentize-py release this adapter is built and tested with.
pub const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

const WIT: &str = include_str!("../../embed/wsgi.wit");
/// The world Python applications are built for (`app` plus wasi:http's outgoing handler),
/// and the WASI WIT it needs.
const PYTHON_WIT: &[(&str, &str)] = &[
    (
        "python.wit",
        include_str!("../../embed/python-wit/python.wit"),
    ),
    (
        "deps/cli.wit",
        include_str!("../../embed/python-wit/deps/cli.wit"),
    ),
    (
        "deps/clocks.wit",
        include_str!("../../embed/python-wit/deps/clocks.wit"),
    ),
    (
        "deps/filesystem.wit",
        include_str!("../../embed/python-wit/deps/filesystem.wit"),
    ),
    (
        "deps/http.wit",
        include_str!("../../embed/python-wit/deps/http.wit"),
    ),
    (
        "deps/io.wit",
        include_str!("../../embed/python-wit/deps/io.wit"),
    ),
    (
        "deps/random.wit",
        include_str!("../../embed/python-wit/deps/random.wit"),
    ),
    (
        "deps/sockets.wit",
        include_str!("../../embed/python-wit/deps/sockets.wit"),
    ),
];
const ADAPTER: &str = include_str!("../../embed/cheroot_wsgi.py");

/// Modules imported only lazily by common frameworks, which the bundle must contain.
const LAZY_IMPORTS: &[&str] = &["encodings.idna", "encodings.unicode_escape", "_strptime"];

/// What to build: `build-python`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct PythonBuild {
    /// `module:callable`, as cheroot's own command line takes it; the callable defaults to
    /// `application`.
    pub app: String,
    /// The component to write.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// A directory with the application's modules (repeatable; default: the current one).
    #[arg(long = "path", value_name = "DIR")]
    pub paths: Vec<PathBuf>,
    /// A pip requirements file to install into the component.
    #[arg(short, long, value_name = "FILE")]
    pub requirements: Option<PathBuf>,
}

/// `MODULE:APP` → (module, attribute), checked to be Python names.
pub fn parse_app(spec: &str) -> anyhow::Result<(&str, &str)> {
    let (module, attr) = spec.split_once(':').unwrap_or((spec, "application"));
    let dotted = |s: &str| {
        !s.is_empty()
            && s.split('.').all(|part| {
                part.chars()
                    .next()
                    .is_some_and(|c| c.is_alphabetic() || c == '_')
                    && part.chars().all(|c| c.is_alphanumeric() || c == '_')
            })
    };
    ensure!(
        dotted(module) && dotted(attr) && !attr.contains('.'),
        "{spec:?} is not MODULE:APP (e.g. `myapp:app`, or `package.module:application`)"
    );
    Ok((module, attr))
}

/// Runs the build; componentize-py's own output goes to this process's stderr.
pub fn build(job: &PythonBuild) -> anyhow::Result<()> {
    let (module, attr) = parse_app(&job.app)?;
    if let Some(dir) = job.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tool = Command::new("componentize-py").arg("--version").output();
    if !tool.is_ok_and(|o| o.status.success()) {
        bail!(
            "componentize-py is not installed (or not on PATH): run `python3 -m pip install {COMPONENTIZE_PY}`"
        );
    }
    let staging = staging_dir()?;
    // Removed when `staging` drops, whatever the build's outcome.
    stage_and_build(job, module, attr, staging.path())
}

/// A fresh staging directory under the system temp dir: an unpredictable name, created
/// exclusively (mkdir fails rather than reuse what another user put there) with mode 0700,
/// so nobody else can plant or swap the Python files that go into the component.
fn staging_dir() -> anyhow::Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt as _;
    tempfile::Builder::new()
        .prefix("cheroot-wasm-python-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .with_context(|| {
            format!(
                "cannot create a staging directory in {} (set TMPDIR to a writable directory)",
                std::env::temp_dir().display()
            )
        })
}

fn stage_and_build(
    job: &PythonBuild,
    module: &str,
    attr: &str,
    staging: &Path,
) -> anyhow::Result<()> {
    let write = |relative: &str, text: &str| -> anyhow::Result<()> {
        let path = staging.join(relative);
        std::fs::create_dir_all(path.parent().expect("staged files are in a directory"))?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    write("wit/wsgi.wit", WIT)?;
    for (file, text) in PYTHON_WIT {
        write(&format!("wit/{file}"), text)?;
    }
    write("cheroot_wsgi/__init__.py", ADAPTER)?;
    let mut entry = String::from("# Generated by `cheroot-wasm build-python`.\n");
    for lazy in LAZY_IMPORTS {
        entry.push_str(&format!("import {lazy}  # imported lazily by frameworks\n"));
    }
    entry.push_str(&format!(
        "import cheroot_wsgi\nfrom {module} import {attr} as _application\n\nApplication = cheroot_wsgi.exports(_application)\n"
    ));
    write("cheroot_wasm_entry.py", &entry)?;

    let mut python_path = vec![staging.to_path_buf()];
    if let Some(requirements) = &job.requirements {
        let site = staging.join("site");
        let status = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--target"])
            .arg(&site)
            .arg("-r")
            .arg(requirements)
            .status()
            .context("running pip")?;
        ensure!(
            status.success(),
            "pip could not install {} ({status})",
            requirements.display()
        );
        python_path.push(site);
    }
    if job.paths.is_empty() {
        python_path.push(PathBuf::from("."));
    }
    python_path.extend(job.paths.iter().cloned());

    let mut command = Command::new("componentize-py");
    command.arg("-d").arg(staging.join("wit")).args([
        "-w",
        "python-app",
        "componentize",
        "cheroot_wasm_entry",
    ]);
    for dir in &python_path {
        command.arg("-p").arg(dir);
    }
    command.arg("-o").arg(&job.output);
    let status = command.status().context("running componentize-py")?;
    ensure!(
        status.success(),
        "componentize-py failed ({status}) building {}",
        job.app
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_specs() {
        assert_eq!(parse_app("app:wsgi").unwrap(), ("app", "wsgi"));
        assert_eq!(parse_app("pkg.mod").unwrap(), ("pkg.mod", "application"));
        for bad in [
            "",
            ":app",
            "a b:app",
            "app:",
            "app:x.y",
            "1app:app",
            "app:app;import os",
        ] {
            assert!(parse_app(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn each_build_stages_in_a_private_directory_of_its_own() {
        use std::os::unix::fs::PermissionsExt as _;
        let (a, b) = (staging_dir().unwrap(), staging_dir().unwrap());
        assert_ne!(a.path(), b.path());
        for dir in [&a, &b] {
            let meta = std::fs::symlink_metadata(dir.path()).unwrap();
            assert!(meta.is_dir());
            assert_eq!(meta.permissions().mode() & 0o777, 0o700, "{:?}", dir.path());
        }
        let kept = a.path().to_path_buf();
        drop(a);
        assert!(!kept.exists(), "removed afterwards");
    }
}
