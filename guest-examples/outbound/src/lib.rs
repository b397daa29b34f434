//! An application that uses the network the way a database client does, through Rust's
//! `std::net` (wasi:sockets underneath), so the tests (and operators) can see a route's
//! `outbound` grant at work. `GET <prefix>/<case>/<arg>`:
//!
//! | case | what it does |
//! |---|---|
//! | `connect/<host>:<port>` | resolves the host, connects, sends `ping\n`, returns the first line it reads back |
//! | `lookup/<name>` | resolves a name and lists its addresses |
//! | `udp/<host>:<port>` | sends one datagram |
//! | `listen` | listens on a TCP port |
//! | `hold/<n>/<host>:<port>` | opens `n` more connections and keeps them (a warm instance keeps them across requests) |
//! | `release` | closes every connection `hold` kept |
//!
//! Each answers `200` with `ok: ...` or `refused: <error kind>: <error>`. Written with the
//! Rust SDK.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::ToSocketAddrs as _;

use cheroot_wsgi::{Request, Response};

fn report<T>(result: std::io::Result<T>, ok: impl FnOnce(T) -> String) -> String {
    match result {
        Ok(value) => format!("ok: {}\n", ok(value)),
        Err(e) => format!("refused: {:?}: {e}\n", e.kind()),
    }
}

fn connect(target: &str) -> std::io::Result<String> {
    let stream = std::net::TcpStream::connect(target)?;
    (&stream).write_all(b"ping\n")?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    Ok(line.trim_end().to_owned())
}

/// The connections `hold` keeps.
static HELD: std::sync::Mutex<Vec<std::net::TcpStream>> = std::sync::Mutex::new(Vec::new());

fn hold(arg: &str) -> String {
    let (n, target) = arg.split_once('/').unwrap_or(("1", arg));
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..n.parse::<usize>().unwrap_or(1) {
        match std::net::TcpStream::connect(target) {
            Ok(stream) => held.push(stream),
            Err(e) => {
                return format!("refused: {:?}: {e} (holding {})\n", e.kind(), held.len());
            }
        }
    }
    format!("ok: holding {}\n", held.len())
}

fn outbound(request: Request) -> Result<Response, String> {
    let path = request.path().trim_start_matches('/');
    let (case, arg) = path.split_once('/').unwrap_or((path, ""));
    let body = match case {
        "connect" => report(connect(arg), |reply| reply),
        "lookup" => report(format!("{arg}:0").to_socket_addrs(), |addrs| {
            addrs
                .map(|a| a.ip().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        }),
        "udp" => report(
            std::net::UdpSocket::bind("0.0.0.0:0").and_then(|s| s.send_to(b"ping", arg)),
            |n| format!("{n} bytes sent"),
        ),
        "listen" => report(std::net::TcpListener::bind("0.0.0.0:0"), |l| {
            format!("{:?}", l.local_addr())
        }),
        "hold" => hold(arg),
        "release" => {
            HELD.lock().unwrap_or_else(|e| e.into_inner()).clear();
            "ok: released\n".to_string()
        }
        _ => return Err(format!("no such case: {path:?}")),
    };
    Ok(Response::new("200 OK", body).header("Content-Type", "text/plain"))
}

cheroot_wsgi::export!(outbound);
