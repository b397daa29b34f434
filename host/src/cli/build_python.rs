//! `cheroot-wasm build-python MODULE:APP`: a Python WSGI application, unmodified, into a
//! component of world `app`.
//!
//! Owns the staging of a componentize-py build: the WIT contract and the `cheroot_wsgi`
//! adapter (sdk/python, both compiled into this binary so the command works from anywhere),
//! the application's own packages (`--path` directories and a `--requirements` file
//! installed with pip into the staging directory), and a generated entry module that imports
//! the application and then everything it can import later. componentize-py snapshots the
//! interpreter once the entry module has run, so a module first imported at request time
//! (inside a view, by `importlib.import_module`, by a name in Django's settings) would not be
//! in the component: the import scan (sdk/python/build/scan_imports.py, also compiled into
//! this binary) finds those modules by reading the sources, without running them. Packages
//! installed in the Python that runs componentize-py are bundled too, when the application
//! imports them. The staging directory is private (a fresh, unpredictable name, mode 0700)
//! and removed afterwards: what is staged becomes the tenant's code.

use std::path::{Path, PathBuf};
use std::process::Command;

use std::io::Write as _;
use std::process::Stdio;

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
/// The import scan (sdk/python/build/scan_imports.py), run by the build machine's `python3`
/// (see the file's docstring).
const SCAN: &str = include_str!("../../embed/scan_imports.py");
/// Where the entry module writes, at build time, the modules that failed to import.
const FAILED_REPORT: &str = "cheroot_wasm_failed.txt";

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
    /// A module to put in the component although no import of it can be seen in the code
    /// (repeatable): one named only at run time, such as a name read from the environment.
    #[arg(long = "include", value_name = "MODULE")]
    pub include: Vec<String>,
}

/// What scan_imports.py found.
#[derive(Debug, Default, serde::Deserialize)]
struct Scan {
    /// Modules to import at build time, in the order found: (name, a few importers,
    /// whether the application or a library as it loads names it outright).
    modules: Vec<(String, Vec<String>, bool)>,
    /// Modules the application needs that cannot work in WASI, with their importers.
    unavailable: Vec<(String, Vec<String>)>,
    /// Names imported somewhere but found nowhere: the component keeps quiet when a
    /// request looks for them (optional dependencies are probed that way).
    absent: Vec<String>,
}

impl Scan {
    /// The importers the scan recorded for `module`.
    fn importers(&self, module: &str) -> &[String] {
        self.modules
            .iter()
            .find(|(name, ..)| name == module)
            .map_or(&[], |(_, importers, _)| importers)
    }
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
    let own: Vec<PathBuf> = if job.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        job.paths.clone()
    };
    python_path.extend(own.iter().cloned());

    let started = std::time::Instant::now();
    // python_path is the staging directory, the pip site directory if any, then `own`.
    let third = &python_path[1..python_path.len() - own.len()];
    let scan = scan(module, &job.include, &own, third)?;
    eprintln!(
        "build-python: {} modules found that {} can import ({:.1} s); importing them into the component",
        scan.modules.len(),
        job.app,
        started.elapsed().as_secs_f64()
    );
    for name in &job.include {
        if !scan.modules.iter().any(|(module, ..)| module == name) {
            eprintln!(
                "warning: --include {name}: no such module was found, so it is not in the component"
            );
        }
    }
    for (name, importers) in &scan.unavailable {
        eprintln!(
            "warning: {name} cannot work in a WASI component (a C extension not built for it), so it is left out; imported by {}",
            importers.join(", ")
        );
    }
    write("cheroot_wasm_entry.py", &entry_module(module, attr, &scan))?;

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
    let failed = std::fs::read_to_string(staging.join(FAILED_REPORT)).unwrap_or_default();
    for warning in failure_warnings(&scan, &failed) {
        eprintln!("{warning}");
    }
    Ok(())
}

/// Runs scan_imports.py over the application (`own` directories) and the packages it may use
/// (`third`), with the build machine's `python3`.
fn scan(
    module: &str,
    include: &[String],
    own: &[PathBuf],
    third: &[PathBuf],
) -> anyhow::Result<Scan> {
    let absolute = |dirs: &[PathBuf]| -> anyhow::Result<Vec<String>> {
        dirs.iter()
            .map(|d| {
                let d = std::path::absolute(d)?;
                Ok(d.to_string_lossy().into_owned())
            })
            .collect()
    };
    let job = serde_json::json!({
        "app": module,
        "include": include,
        "own": absolute(own)?,
        "third": absolute(third)?,
    });
    let mut child = Command::new("python3")
        .args(["-I", "-c", SCAN])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("running python3 (to scan the application's imports)")?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(job.to_string().as_bytes())?;
    let output = child.wait_with_output()?;
    ensure!(
        output.status.success(),
        "scanning the imports of {module} failed ({})",
        output.status
    );
    serde_json::from_slice(&output.stdout).context("reading the import scan")
}

/// The entry module componentize-py runs: the application first (importing it may configure
/// what the rest needs: Django's `get_wsgi_application()` calls `django.setup()`), then every
/// module the scan found, each on its own (one failing does not stop the build; the failures
/// are written to [`FAILED_REPORT`]), then the export.
fn entry_module(module: &str, attr: &str, scan: &Scan) -> String {
    let list = |names: &mut dyn Iterator<Item = &String>| {
        names
            .map(|name| format!("    {},\n", serde_json::Value::from(name.as_str())))
            .collect::<String>()
    };
    format!(
        "# Generated by `cheroot-wasm build-python`.\n\
         import sys\n\n\
         # Nothing is written into the application's directories (no __pycache__).\n\
         sys.dont_write_bytecode = True\n\n\
         import cheroot_wsgi\n\n\
         with cheroot_wsgi._offline():\n\
         \x20   from {module} import {attr} as _application\n\n\
         \x20   # What the application can import later, found in its code and its packages' code.\n\
         \x20   cheroot_wsgi._import_ahead(\n[\n{}], {FAILED_REPORT:?},\nabsent=[\n{}])\n\n\
         Application = cheroot_wsgi.exports(_application)\n",
        list(&mut scan.modules.iter().map(|(name, ..)| name)),
        list(&mut scan.absent.iter()),
    )
}

/// One warning per module that failed to import at build time, for those the application
/// certainly imports (the others are optional, or alternatives for other platforms), and
/// only the first of a chain: a module whose importer failed too is that importer's story.
/// `failed` is the entry module's report: `name<TAB>exception` lines.
fn failure_warnings(scan: &Scan, failed: &str) -> Vec<String> {
    let needed: Vec<(&str, &str)> = failed
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .filter(|(name, _)| {
            scan.modules
                .iter()
                .any(|(module, _, named)| module == name && *named)
        })
        .collect();
    needed
        .iter()
        .filter(|(name, _)| {
            !scan
                .importers(name)
                .iter()
                .any(|importer| needed.iter().any(|(other, _)| other == importer))
        })
        .map(|(name, error)| {
            let importers = match scan.importers(name) {
                [] => "?".to_string(),
                some => some.join(", "),
            };
            format!(
                "warning: {name} failed to import at build time, so it is not in the component ({error}); imported by {importers}"
            )
        })
        .collect()
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
    fn build_failures_are_warned_about_once_a_chain_and_only_when_needed() {
        let module = |name: &str, importers: &[&str], named| {
            let importers = importers.iter().map(|s| s.to_string()).collect();
            (name.to_string(), importers, named)
        };
        let scan = Scan {
            modules: vec![
                module("app", &[], true),
                module("lib", &["app"], true),
                module("lib.core", &["lib"], true),
                module("optional", &["lib"], false),
            ],
            ..Scan::default()
        };
        let failed =
            "lib\tImportError: no _x\nlib.core\tImportError: no _x\noptional\tImportError: y\n";
        let warnings = failure_warnings(&scan, failed);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("lib failed") && warnings[0].contains("imported by app"));
    }

    #[test]
    fn the_entry_module_imports_the_application_first() {
        let scan = Scan {
            modules: vec![("json".into(), vec![], false)],
            absent: vec!["simplejson".into()],
            ..Scan::default()
        };
        let entry = entry_module("myapp", "app", &scan);
        let app = entry.find("from myapp import app").unwrap();
        assert!(app < entry.find("\"json\"").unwrap());
        assert!(entry.contains("\"simplejson\""));
        assert!(entry.ends_with("Application = cheroot_wsgi.exports(_application)\n"));
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
