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

/// A `cheroot-wasm serve` process on 127.0.0.1:0, with its stderr in a file.
struct Served {
    child: std::process::Child,
    addr: String,
    dir: std::path::PathBuf,
    /// The route lines printed after `Listening on`.
    routes: Vec<String>,
}

impl Served {
    fn start(name: &str, routes_toml: &str) -> Served {
        Served::start_with(name, routes_toml, &[])
    }

    /// Like [`Served::start`], with more arguments for the command line.
    fn start_with(name: &str, routes_toml: &str, args: &[&str]) -> Served {
        use std::io::{BufRead, BufReader};
        let dir = std::env::temp_dir().join(format!("cheroot-wasm-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let routes = dir.join("routes.toml");
        std::fs::write(&routes, routes_toml).unwrap();
        let mut child = Command::new(BIN)
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--cache-dir",
                cheroot_wasm_tests::CACHE_DIR,
            ])
            .args(args)
            .arg(&routes)
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
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
        let count = routes_toml.matches("[[route]]").count();
        let routes = (0..count)
            .map(|_| {
                let mut line = String::new();
                stdout.read_line(&mut line).unwrap();
                line
            })
            .collect();
        Served {
            child,
            addr,
            dir,
            routes,
        }
    }

    /// `GET path` on a fresh connection: the whole response.
    fn get(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&self.addr).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        String::from_utf8_lossy(&response).into_owned()
    }

    /// Resident memory of the server process, in bytes.
    fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kib << 10
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr")).unwrap()
    }

    /// SIGTERM: a graceful stop, which must exit 0.
    fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "{exit:?}");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn serve_prints_its_address_serves_and_stops_on_sigterm() {
    let served = Served::start(
        "cli",
        &format!(
            "[[route]]\npath = \"/hello\"\ncomponent = {:?}\n",
            cheroot_wasm_tests::HELLO
        ),
    );
    assert!(
        served.routes[0].contains("/hello") && served.routes[0].contains("hello.wasm"),
        "{:?}",
        served.routes
    );
    let response = served.get("/hello");
    assert!(
        response.starts_with("HTTP/1.1 200 OK\r\n") && response.ends_with("Hello, world!\n"),
        "{response}"
    );
    served.stop();
}

#[test]
fn trapped_instances_are_logged_once_and_their_memory_returned() {
    let served = Served::start(
        "rss",
        &format!(
            "[[route]]\npath = \"/\"\ncomponent = {:?}\n\n[[route]]\npath = \"/hostile\"\ncomponent = {:?}\nmemory = \"64MiB\"\n",
            cheroot_wasm_tests::HELLO,
            cheroot_wasm_tests::HOSTILE
        ),
    );
    assert!(served.get("/").starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(
        served
            .get("/hostile/env")
            .starts_with("HTTP/1.1 200 OK\r\n")
    );
    let baseline = served.rss();
    const BOMBS: usize = 5;
    for _ in 0..BOMBS {
        // Each grows an instance to 64 MiB before the limit stops it.
        let response = served.get("/hostile/memory-bomb");
        assert!(response.starts_with("HTTP/1.1 500 "), "{response}");
        assert!(served.get("/").starts_with("HTTP/1.1 200 OK\r\n"));
    }
    // A trapped instance is dropped just after its 500 went out: give the last one a moment.
    let mut after = served.rss();
    for _ in 0..50 {
        if after < baseline + (32 << 20) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        after = served.rss();
    }
    assert!(
        after < baseline + (32 << 20),
        "RSS grew from {} MiB to {} MiB: trapped instances' memory was kept",
        baseline >> 20,
        after >> 20
    );
    let log = served.stderr();
    let traps: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("guest trapped"))
        .collect();
    assert_eq!(traps.len(), BOMBS, "{log}");
    let reports: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("route=\"/hostile\" headers_sent=false"))
        .collect();
    assert_eq!(
        reports.len(),
        BOMBS,
        "one report per trap, naming the route:\n{log}"
    );
    served.stop();
}

#[test]
fn compile_fills_the_cache_that_serve_then_uses() {
    let dir = std::env::temp_dir().join(format!("cheroot-wasm-compile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let routes = dir.join("routes.toml");
    std::fs::write(
        &routes,
        format!(
            "[[route]]\npath = \"/a\"\ncomponent = {0:?}\n\n[[route]]\npath = \"/b\"\ncomponent = {0:?}\n",
            cheroot_wasm_tests::HELLO
        ),
    )
    .unwrap();
    let compile = || {
        let out = Command::new(BIN)
            .args(["compile", "--cache-dir"])
            .arg(dir.join("cache"))
            .arg(&routes)
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let first = compile();
    let lines: Vec<&str> = first.lines().collect();
    assert!(
        lines[0].contains("/a") && lines[0].contains("compiled in"),
        "{first}"
    );
    // The same file again, for another route: compiled and loaded once only.
    assert!(
        lines[1].contains("/b") && lines[1].contains("the same component as /a"),
        "{first}"
    );
    let again = compile();
    assert_eq!(again.matches("already in the cache").count(), 1, "{again}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn new_writes_a_template_that_names_its_component() {
    let base = std::env::temp_dir().join(format!("cheroot-wasm-new-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let new = |language: &str, name: &str| {
        Command::new(BIN)
            .args(["new", language, name])
            .current_dir(&base)
            .output()
            .unwrap()
    };
    assert!(new("rust", "my-app").status.success());
    let routes = std::fs::read_to_string(base.join("my-app/routes.toml")).unwrap();
    assert!(routes.contains("release/my_app.wasm"), "{routes}");
    let cargo = std::fs::read_to_string(base.join("my-app/Cargo.toml")).unwrap();
    assert!(
        cargo.contains("cheroot-wsgi") && cargo.contains("cdylib"),
        "{cargo}"
    );
    // The SDK travels with the project: no path of the machine that built the binary.
    assert!(cargo.contains("path = \"cheroot-wsgi\""), "{cargo}");
    assert!(!cargo.contains(env!("CARGO_MANIFEST_DIR")), "{cargo}");
    assert!(base.join("my-app/cheroot-wsgi/wit/wsgi.wit").is_file());
    // And it builds as written (docs/rust.md's promise), into a target dir kept between runs.
    let built = Command::new(env!("CARGO"))
        .args(["build", "--release", "--target", "wasm32-wasip2", "--quiet"])
        .current_dir(base.join("my-app"))
        .env(
            "CARGO_TARGET_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("new-rust"),
        )
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    assert!(
        Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("new-rust/wasm32-wasip2/release/my_app.wasm")
            .is_file()
    );
    assert!(new("python", "pyapp").status.success());
    assert!(base.join("pyapp/app.py").is_file());
    let again = new("rust", "my-app");
    assert!(
        !again.status.success()
            && String::from_utf8_lossy(&again.stderr).contains("exists already")
    );
    let cobol = new("cobol", "x");
    assert!(
        !cobol.status.success() && String::from_utf8_lossy(&cobol.stderr).contains("no template")
    );
    let _ = std::fs::remove_dir_all(&base);
}

/// Sends `signal` to the process.
fn kill(child: &std::process::Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn sighup_reloads_routes_and_keeps_them_when_the_new_file_is_broken() {
    let hello = cheroot_wasm_tests::HELLO;
    let served = Served::start(
        "sighup",
        &format!("[[route]]\npath = \"/a\"\ncomponent = {hello:?}\n"),
    );
    assert!(served.get("/b").starts_with("HTTP/1.1 404 "));
    let file = served.dir.join("routes.toml");
    // `bind` is --bind's here: only max-connections needs a restart.
    std::fs::write(
        &file,
        format!("[server]\nbind = \"127.0.0.1:1\"\nmax-connections = 7\n\n[[route]]\npath = \"/a\"\ncomponent = {hello:?}\n\n[[route]]\npath = \"/b\"\ncomponent = {hello:?}\n"),
    )
    .unwrap();
    kill(&served.child, "-HUP");
    let wait_for = |what: &dyn Fn() -> bool| {
        for _ in 0..200 {
            if what() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("timed out; log:\n{}", served.stderr());
    };
    wait_for(&|| served.get("/b").starts_with("HTTP/1.1 200 "));
    wait_for(&|| served.stderr().contains("reloaded, but"));
    assert!(
        served
            .stderr()
            .contains("reloaded, but max-connections only change with a restart"),
        "{}",
        served.stderr()
    );

    std::fs::write(&file, "[[route]]\npath = \"/a\"\n").unwrap();
    kill(&served.child, "-HUP");
    wait_for(&|| served.stderr().contains("reload refused"));
    let log = served.stderr();
    assert!(
        log.contains("routes.toml:1:1"),
        "names the broken line:\n{log}"
    );
    assert!(
        served.get("/b").starts_with("HTTP/1.1 200 "),
        "still serving"
    );
    served.stop();
}

#[test]
fn watch_reloads_when_routes_toml_changes() {
    let hello = cheroot_wasm_tests::HELLO;
    let served = Served::start_with(
        "watch",
        &format!("[[route]]\npath = \"/a\"\ncomponent = {hello:?}\n"),
        &["--watch"],
    );
    assert!(served.get("/b").starts_with("HTTP/1.1 404 "));
    std::fs::write(
        served.dir.join("routes.toml"),
        format!("[[route]]\npath = \"/b\"\ncomponent = {hello:?}\n"),
    )
    .unwrap();
    for _ in 0..200 {
        if served.get("/b").starts_with("HTTP/1.1 200 ") {
            assert!(served.get("/a").starts_with("HTTP/1.1 404 "));
            served.stop();
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("not reloaded; log:\n{}", served.stderr());
}

#[test]
fn a_second_signal_exits_at_once() {
    let served = Served::start(
        "second-signal",
        &format!(
            "[[route]]\npath = \"/\"\ncomponent = {:?}\n",
            cheroot_wasm_tests::ERRORS
        ),
    );
    let addr = served.addr.clone();
    // A request that keeps the graceful shutdown waiting.
    let slow = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET /sleep/20000 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out);
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut served = served;
    kill(&served.child, "-TERM");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(served.child.try_wait().unwrap().is_none(), "draining");
    let started = std::time::Instant::now();
    kill(&served.child, "-TERM");
    let exit = served.child.wait().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(exit.code(), Some(130), "{exit:?}");
    slow.join().unwrap();
    let _ = std::fs::remove_dir_all(&served.dir);
}

#[test]
fn systemd_socket_activation_serves_every_passed_socket() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::os::fd::AsRawFd as _;
    let dir = std::env::temp_dir().join(format!("cheroot-wasm-systemd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let routes = dir.join("routes.toml");
    std::fs::write(
        &routes,
        format!(
            "[[route]]\npath = \"/\"\ncomponent = {:?}\n",
            cheroot_wasm_tests::HELLO
        ),
    )
    .unwrap();
    // What systemd does: sockets bound and listening, handed over as fds 3 and 4.
    let tcp = socket2::Socket::from(std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    let sock_path = dir.join("activated.sock");
    let unix = socket2::Socket::from(std::os::unix::net::UnixListener::bind(&sock_path).unwrap());
    tcp.set_cloexec(false).unwrap();
    unix.set_cloexec(false).unwrap();
    let port = tcp.local_addr().unwrap().as_socket().unwrap().port();
    let script = format!(
        "exec 100<&{} 101<&{}; LISTEN_PID=$$ LISTEN_FDS=2 exec \"$0\" serve --bind systemd --access-log off --cache-dir \"$1\" \"$2\" 3<&100 4<&101 100<&- 101<&-",
        tcp.as_raw_fd(),
        unix.as_raw_fd()
    );
    let mut child = Command::new("bash")
        .args(["-c", &script, BIN, cheroot_wasm_tests::CACHE_DIR])
        .arg(&routes)
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
        .spawn()
        .unwrap();
    drop((tcp, unix));
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lines = [String::new(), String::new()];
    for line in &mut lines {
        stdout.read_line(line).unwrap();
    }
    assert_eq!(
        lines,
        [
            format!("Listening on http://127.0.0.1:{port}/\n"),
            format!("Listening on unix:{} (http)\n", sock_path.display())
        ],
        "{}",
        std::fs::read_to_string(dir.join("stderr")).unwrap()
    );
    let request = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.write_all(request).unwrap();
    let mut got = String::new();
    tcp.read_to_string(&mut got).unwrap();
    assert!(got.starts_with("HTTP/1.1 200 "), "{got}");
    let mut unix = std::os::unix::net::UnixStream::connect(&sock_path).unwrap();
    unix.write_all(request).unwrap();
    let mut got = String::new();
    unix.read_to_string(&mut got).unwrap();
    assert!(got.starts_with("HTTP/1.1 200 "), "{got}");

    kill(&child, "-TERM");
    assert!(child.wait().unwrap().success());
    assert!(
        sock_path.exists(),
        "systemd's socket file is systemd's to remove"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn json_logs_are_one_object_per_line() {
    let served = Served::start_with(
        "json-logs",
        &format!(
            "[[route]]\npath = \"/\"\ncomponent = {:?}\n",
            cheroot_wasm_tests::ERRORS
        ),
        &["--log-format", "json"],
    );
    assert!(served.get("/handle-err").starts_with("HTTP/1.1 500 "));
    let mut served = served;
    kill(&served.child, "-TERM");
    assert!(served.child.wait().unwrap().success());
    let log = served.stderr();
    let _ = std::fs::remove_dir_all(&served.dir);
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "ERROR" && l["fields"]["route"] == "/"),
        "{log}"
    );
    assert!(
        lines.iter().any(|l| l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("shutting down"))),
        "{log}"
    );
}

/// What a guest writes reaches the log escaped and bounded: newlines in its exc_info and
/// exception text cannot make a line that looks like the server's own, a 16 MiB exc_info
/// does not become 16 MiB of log, and 20,000 printed lines do not become 20,000 events.
#[test]
fn guest_text_cannot_forge_or_flood_the_log() {
    for format in ["text", "json"] {
        let served = Served::start_with(
            &format!("forge-{format}"),
            &format!(
                "[[route]]\npath = \"/errors\"\ncomponent = {:?}\n[[route]]\npath = \"/hostile\"\ncomponent = {:?}\n",
                cheroot_wasm_tests::ERRORS,
                cheroot_wasm_tests::HOSTILE
            ),
            &["--log-format", format],
        );
        assert!(served.get("/errors/forge-log").starts_with("HTTP/1.1 500 "));
        assert!(
            served
                .get("/errors/huge-exc-info/16")
                .starts_with("HTTP/1.1 200 ")
        );
        assert!(
            served
                .get("/hostile/print/20000")
                .ends_with("printed 20000 lines\n")
        );
        let mut served = served;
        kill(&served.child, "-TERM");
        assert!(served.child.wait().unwrap().success());
        let log = served.stderr();
        let _ = std::fs::remove_dir_all(&served.dir);
        for line in log.lines() {
            assert!(
                !line.starts_with("ERROR") && !line.starts_with("innocent"),
                "{format}: a guest wrote a line of its own: {line:?}"
            );
        }
        assert!(log.contains("forged by the guest"), "{format}: {log}");
        assert!(
            log.len() < 1 << 20,
            "{format}: {} bytes of log for three requests",
            log.len()
        );
        let lines = log.lines().count();
        assert!(lines < 1000, "{format}: {lines} log lines");
        assert!(log.contains("dropped_lines"), "{format}");
    }
}

/// `serve --build` runs tenants' commands: they get no inherited descriptor of the server's
/// (a systemd socket here, fd 5), none of its environment beyond what builds need, and no
/// standard input.
#[test]
fn build_commands_get_no_descriptors_or_secrets_of_the_server() {
    let dir = std::env::temp_dir().join(format!("cheroot-wasm-build-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("routes.toml"),
        format!(
            "[[route]]\npath = \"/\"\ncomponent = {:?}\nbuild = \"ls /proc/self/fd > fds.txt; env > env.txt; cat > stdin.txt; exit 3\"\n",
            cheroot_wasm_tests::HELLO
        ),
    )
    .unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "exec 5</dev/null; exec {BIN} serve --build --bind 127.0.0.1:0 routes.toml"
        ))
        .current_dir(&dir)
        .env("SERVER_SECRET_TOKEN", "hunter2")
        .env("LISTEN_FDS", "1")
        .stdin(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("build command failed"),
        "{stderr}"
    );
    let fds = std::fs::read_to_string(dir.join("fds.txt")).unwrap();
    assert!(
        !fds.lines().any(|fd| fd == "5"),
        "the build inherited the server's descriptor 5: {fds}"
    );
    let env = std::fs::read_to_string(dir.join("env.txt")).unwrap();
    assert!(
        !env.contains("hunter2") && !env.contains("LISTEN_FDS"),
        "{env}"
    );
    assert!(env.contains("PATH="), "{env}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_shows_each_routes_kind_and_instance_model() {
    let dir = std::env::temp_dir().join(format!("cheroot-wasm-kinds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let routes = dir.join("routes.toml");
    std::fs::write(
        &routes,
        format!(
            "[[route]]\npath = \"/wsgi\"\ncomponent = {0:?}\n\n[[route]]\npath = \"/http\"\ncomponent = {1:?}\n\n[[route]]\npath = \"/again\"\ncomponent = {0:?}\n",
            cheroot_wasm_tests::HELLO,
            cheroot_wasm_tests::HTTP_HELLO
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check", "--no-cache"])
        .arg(&routes)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    // Two routes of one component share it.
    assert!(
        text.lines()
            .next()
            .unwrap_or_default()
            .ends_with("ok, 3 routes, 2 distinct components"),
        "{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    let at = |prefix: &str| {
        let i = lines
            .iter()
            .position(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix} missing from:\n{text}"));
        (lines[i], lines[i + 1])
    };
    let (wsgi, wsgi_limits) = at("/wsgi");
    assert!(
        wsgi.contains(" wsgi ") && wsgi.ends_with("hello.wasm"),
        "{wsgi}"
    );
    assert!(wsgi_limits.contains("instances=warm"), "{wsgi_limits}");
    let (http, http_limits) = at("/http");
    assert!(
        http.contains(" wasi:http ") && http.ends_with("http_hello.wasm"),
        "{http}"
    );
    assert!(http_limits.contains("instances=fresh"), "{http_limits}");
    // The kind is a column: both components start at the same place.
    assert_eq!(
        wsgi.find(cheroot_wasm_tests::HELLO),
        http.find(cheroot_wasm_tests::HTTP_HELLO),
        "{wsgi}\n{http}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// One HTTP/1.1 exchange on a fresh connection: status and body.
fn exchange(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

/// `sql` run by the host's own SQLite (Python's), on `database`: its one-line answer.
fn host_sqlite(database: &Path, sql: &str) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); print(*db.execute(sys.argv[2]).fetchone())",
        ])
        .arg(database)
        .arg(sql)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// guest-examples/python/notes_app.py (SQLite in its data directory), built once.
fn notes_component() -> &'static Path {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let output = Path::new(env!("CARGO_TARGET_TMPDIR")).join("notes.wasm");
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-examples/python");
        let out = Command::new(BIN)
            .args(["build-python", "notes_app:application", "-o"])
            .arg(&output)
            .arg("--path")
            .arg(&examples)
            .output()
            .unwrap();
        assert!(out.status.success(), "build-python: {out:?}");
        output
    })
}

/// Warm instances of one route and fresh ones of another write one SQLite database at
/// once; then the server is killed with SIGKILL in the middle of a transaction. Nothing
/// acknowledged is lost, the database checks out, and the restarted server writes to it
/// at once (the lock the killed instance held does not outlive it).
#[test]
fn sqlite_in_a_data_directory_survives_concurrent_writers_and_kill_9() {
    let notes = notes_component();
    let routes = format!(
        "[[route]]\npath = \"/\"\ncomponent = {notes:?}\ndata = {{ \"/data\" = \"var/notes\" }}\ndata-shared = true\nmax-concurrency = 8\n\n\
         [[route]]\npath = \"/fresh\"\ncomponent = {notes:?}\ndata = {{ \"/data\" = \"var/notes\" }}\ndata-shared = true\ninstances = \"fresh\"\ntimeout = \"3s\"\n"
    );
    let served = Served::start("sqlite", &routes);
    let database = served.dir.join("var/notes/notes.db");
    // 64 clients, 50 rows each; every tenth through a fresh instance.
    let (clients, rows) = (64, 50);
    std::thread::scope(|scope| {
        for client in 0..clients {
            let addr = &served.addr;
            scope.spawn(move || {
                for row in 0..rows {
                    let path = if row % 10 == 9 {
                        "/fresh/notes"
                    } else {
                        "/notes"
                    };
                    let (status, body) = exchange(addr, "POST", path, &format!("{client}.{row}"));
                    assert_eq!(status, 201, "{client}.{row}: {body}");
                }
            });
        }
    });
    assert_eq!(
        host_sqlite(&database, "SELECT COUNT(DISTINCT body) FROM notes"),
        (clients * rows).to_string()
    );
    assert_eq!(host_sqlite(&database, "PRAGMA integrity_check"), "ok");

    // A fresh instance that dies mid-transaction (its route's timeout) leaves the database
    // locked in its own eyes; the next request finds it usable.
    let (status, _) = exchange(&served.addr, "GET", "/fresh/hold", "");
    assert_eq!(status, 504);
    let (status, body) = exchange(&served.addr, "POST", "/fresh/notes", "after a timeout");
    assert_eq!(status, 201, "{body}");

    // SIGKILL while a transaction is open, with writers at work.
    let acknowledged = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        let addr = &served.addr;
        scope.spawn(|| exchange(addr, "GET", "/hold", ""));
        for client in 0..8 {
            let acknowledged = &acknowledged;
            scope.spawn(move || {
                for row in 0.. {
                    let (status, body) =
                        exchange(addr, "POST", "/notes", &format!("k{client}.{row}"));
                    if status != 201 {
                        break;
                    }
                    acknowledged.lock().unwrap().push(body);
                }
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(1500));
        kill(&served.child, "-KILL");
    });
    let mut killed = served;
    killed.child.wait().unwrap();
    assert!(
        database.with_extension("db.lock").exists(),
        "the killed server held no lock: the test proves nothing"
    );
    let dir = killed.dir.clone();

    let served = Served::start("sqlite", &routes);
    assert_eq!(served.dir, dir);
    assert!(!database.with_extension("db.lock").exists());
    let (status, body) = exchange(&served.addr, "POST", "/notes", "after a restart");
    assert_eq!(status, 201, "{body}");
    assert_eq!(host_sqlite(&database, "PRAGMA integrity_check"), "ok");
    let acknowledged = acknowledged.into_inner().unwrap();
    for ack in &acknowledged {
        let id: String = ack.chars().filter(char::is_ascii_digit).collect();
        assert_eq!(
            host_sqlite(
                &database,
                &format!("SELECT COUNT(*) FROM notes WHERE id = {id}")
            ),
            "1",
            "acknowledged note {id} was lost"
        );
    }
    assert_eq!(
        host_sqlite(
            &database,
            "SELECT COUNT(*) FROM notes WHERE body = 'never committed'"
        ),
        "0"
    );
    served.stop();
}
