//! A tenant that attacks its sandbox, one attack per path, so the tests (and operators) can
//! see each one contained. `GET <prefix>/<case>`:
//!
//! | case | what it tries |
//! |---|---|
//! | `recurse` | unbounded recursion: the wasm stack overflows (a trap) |
//! | `memory-bomb` | grows its heap 1 MiB at a time until the route's `memory` refuses (an abort) |
//! | `huge-chunk/<MiB>` | builds one body chunk of that size and returns it |
//! | `print/<lines>` | writes that many lines to stdout and stderr as fast as it can (`0`: forever) |
//! | `files` | opens `/etc/passwd`, `../`, `/`, `.` and escapes from its preopened `/data` dir |
//! | `read/<path>` | reads a file and returns it (to show that `dirs` works) |
//! | `env` | lists every environment variable it can see |
//! | `net/<port>` | connects to 127.0.0.1:port and resolves `localhost` and a public name |
//! | `hold-files/<n>` | opens `/data/held` that many times and keeps every handle, across requests too |
//! | `fields/<n>/<KiB>` | makes that many wasi:http `fields` of one value that size (`from-list`, then `append` and `set`), and keeps them, across requests too |
//!
//! Probes answer `200` with one line per attempt, `name: ok ...` or `name: refused (<error>)`,
//! so a test can check that every attempt failed inside the guest. The destructive cases end
//! in a trap; the server answers 500 and replaces the instance. Written with the Rust SDK.

use std::io::Write as _;

use cheroot_wsgi::{Request, Response};

/// Counts down to zero the slow way: every level is a real wasm call frame.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if depth == 0 {
        0
    } else {
        1 + recurse(std::hint::black_box(depth - 1))
    }
}

fn attempt<T, E: std::fmt::Display>(report: &mut String, name: &str, result: Result<T, E>) {
    match result {
        Ok(_) => report.push_str(&format!("{name}: ok\n")),
        Err(e) => report.push_str(&format!("{name}: refused ({e})\n")),
    }
}

fn files() -> String {
    let mut report = String::new();
    for path in [
        "/etc/passwd",
        "../etc/passwd",
        "/",
        ".",
        "/data/../etc/passwd",
        "/data/../../etc/passwd",
        "/data/escape/passwd",
    ] {
        attempt(&mut report, path, std::fs::read(path));
    }
    attempt(
        &mut report,
        "write /data/new",
        std::fs::write("/data/new", b"x"),
    );
    attempt(&mut report, "list /", std::fs::read_dir("/"));
    report
}

fn net(port: &str) -> String {
    use std::net::ToSocketAddrs as _;
    let mut report = String::new();
    attempt(
        &mut report,
        "connect 127.0.0.1",
        std::net::TcpStream::connect(format!("127.0.0.1:{port}")),
    );
    attempt(
        &mut report,
        "resolve localhost",
        "localhost:80".to_socket_addrs(),
    );
    attempt(
        &mut report,
        "resolve example.com",
        "example.com:80".to_socket_addrs(),
    );
    attempt(
        &mut report,
        "bind udp",
        std::net::UdpSocket::bind("127.0.0.1:0"),
    );
    attempt(
        &mut report,
        "listen tcp",
        std::net::TcpListener::bind("127.0.0.1:0"),
    );
    report
}

fn hostile(request: Request) -> Result<Response, String> {
    let path = request.path().trim_start_matches('/');
    let (case, arg) = path.split_once('/').unwrap_or((path, ""));
    let body = match case {
        "recurse" => format!("depth {}\n", recurse(u64::MAX)).into_bytes(),
        "memory-bomb" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
            }
        }
        "huge-chunk" => vec![b'x'; arg.parse::<usize>().unwrap_or(1) << 20],
        "print" => {
            let lines: u64 = arg.parse().unwrap_or(0);
            let mut n = 0u64;
            while lines == 0 || n < lines {
                let _ = writeln!(std::io::stdout(), "stdout line {n}: {}", "x".repeat(100));
                let _ = writeln!(std::io::stderr(), "stderr line {n}");
                n += 1;
            }
            format!("printed {n} lines\n").into_bytes()
        }
        "files" => files().into_bytes(),
        "read" => std::fs::read(format!("/{arg}")).map_err(|e| format!("/{arg}: {e}"))?,
        "hold-files" => {
            // Kept across requests: a warm instance holds them for as long as it lives.
            static HELD: std::sync::Mutex<Vec<std::fs::File>> = std::sync::Mutex::new(Vec::new());
            let n: usize = arg.parse().unwrap_or(0);
            let mut held = HELD.lock().map_err(|e| e.to_string())?;
            for _ in 0..n {
                held.push(std::fs::File::open("/data/held").map_err(|e| e.to_string())?);
            }
            format!("holding {} files\n", held.len()).into_bytes()
        }
        "fields" => {
            // Kept across requests, as `hold-files`: host memory the instance pins.
            static HELD: std::sync::Mutex<Vec<wasi::http::types::Fields>> =
                std::sync::Mutex::new(Vec::new());
            let (n, kib) = arg.split_once('/').unwrap_or((arg, "1"));
            let n: usize = n.parse().unwrap_or(0);
            let value = vec![b'x'; kib.parse::<usize>().unwrap_or(1) << 10];
            let mut held = HELD.lock().map_err(|e| e.to_string())?;
            for i in 0..n {
                let fields = match i % 3 {
                    0 => wasi::http::types::Fields::from_list(&[("x-big".into(), value.clone())]),
                    1 => {
                        let fields = wasi::http::types::Fields::new();
                        fields.append("x-big", &value).map(|()| fields)
                    }
                    _ => {
                        let fields = wasi::http::types::Fields::new();
                        fields
                            .set("x-big", std::slice::from_ref(&value))
                            .map(|()| fields)
                    }
                };
                held.push(fields.map_err(|e| format!("fields {i}: {e:?}"))?);
            }
            format!("holding {} fields\n", held.len()).into_bytes()
        }
        "env" => std::env::vars()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect::<String>()
            .into_bytes(),
        "net" => net(arg).into_bytes(),
        _ => return Err(format!("no such attack: {path:?}")),
    };
    Ok(Response::new("200 OK", body).header("Content-Type", "text/plain"))
}

cheroot_wsgi::export!(hostile);
