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

#[test]
fn serve_prints_its_address_serves_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader, Read, Write};
    let dir = std::env::temp_dir().join(format!("cheroot-wasm-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let routes = dir.join("routes.toml");
    std::fs::write(
        &routes,
        format!(
            "[[route]]\npath = \"/hello\"\ncomponent = {:?}\n",
            cheroot_wasm_tests::HELLO
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--cache-dir",
            cheroot_wasm_tests::CACHE_DIR,
        ])
        .arg(&routes)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("Listening on http://")
        .and_then(|a| a.strip_suffix('/'))
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_string();
    let mut route_line = String::new();
    stdout.read_line(&mut route_line).unwrap();
    assert!(
        route_line.contains("/hello") && route_line.contains("hello.wasm"),
        "{route_line:?}"
    );

    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200 OK\r\n") && response.ends_with("Hello, world!\n"),
        "{response}"
    );

    // SIGTERM: a graceful stop, exit status 0.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
