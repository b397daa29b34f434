//! Tests that run the real `cheroot-wasm` binary, as an operator does.
//!
//! Config errors are golden files: `config-errors/NAME.toml` must make `cheroot-wasm check`
//! fail with exactly `config-errors/NAME.err` on stderr. Regenerate with `BLESS=1 cargo test`.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_cheroot-wasm");

#[test]
fn config_errors_match_golden_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/config-errors");
    let bless = std::env::var_os("BLESS").is_some();
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 8, "golden cases went missing");
    let mut failures = Vec::new();
    for case in cases {
        let name = case.file_name().unwrap().to_str().unwrap();
        let out = Command::new(BIN)
            .args(["check", "--no-cache", name])
            .current_dir(&dir)
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{name}: check succeeded");
        let got = String::from_utf8(out.stderr).unwrap();
        let golden = case.with_extension("err");
        if bless {
            std::fs::write(&golden, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if got != want {
            failures.push(format!("{name}:\n  got:  {got:?}\n  want: {want:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "stderr differs from the golden files (BLESS=1 to accept):\n{}",
        failures.join("\n")
    );
}

#[test]
fn bad_bind_address_is_a_clear_error() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/config-errors");
    let out = Command::new(BIN)
        .args([
            "serve",
            "--no-cache",
            "--bind",
            "not an address",
            "missing-component.toml",
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    // Components are checked first: a config error wins over a bind error.
    assert!(
        err.contains("missing-component.toml:3:13: `route.component`"),
        "{err}"
    );
}

#[test]
fn help_lists_the_commands() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("serve") && text.contains("check"),
        "{text}"
    );
}
