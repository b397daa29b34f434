//! Holds many idle keep-alive connections to a server and checks that each still works.
//!
//! `idle-conns URL_HOST:PORT PATH COUNT HOLD_SECS`: opens COUNT connections, sends one
//! request on each and reads its answer, holds them all idle for HOLD_SECS, then sends a
//! second request on every one. Prints how many connections were opened, answered the first
//! request, and answered after the hold; exits non-zero unless all did. The caller raises
//! the fd limit (`ulimit -n`) for itself and the server.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One request, and whether a whole `200` response came back.
async fn exchange(stream: &mut TcpStream, request: &[u8]) -> bool {
    if stream.write_all(request).await.is_err() {
        return false;
    }
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
            _ => return false,
        }
        // The hello guest's body ends the response.
        if seen.ends_with(b"Hello, world!\n") {
            return seen.starts_with(b"HTTP/1.1 200 ");
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, addr, path, count, hold] = &args[..] else {
        eprintln!("usage: idle-conns HOST:PORT PATH COUNT HOLD_SECS");
        std::process::exit(2);
    };
    let count: usize = count.parse().expect("COUNT is a number");
    let hold = Duration::from_secs(hold.parse().expect("HOLD_SECS is a number"));
    let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n").into_bytes();

    let mut streams = Vec::with_capacity(count);
    for _ in 0..count {
        match TcpStream::connect(addr.as_str()).await {
            Ok(s) => streams.push(s),
            Err(e) => {
                eprintln!("connect failed after {} connections: {e}", streams.len());
                break;
            }
        }
    }
    let opened = streams.len();
    let first = run_all(&mut streams, &request).await;
    tokio::time::sleep(hold).await;
    let second = run_all(&mut streams, &request).await;
    println!(
        "idle keep-alive: {opened}/{count} opened, {first} answered, {second} still answered after {}s idle",
        hold.as_secs()
    );
    if opened != count || first != count || second != count {
        std::process::exit(1);
    }
}

/// One request on every connection, 256 at a time; how many were answered.
async fn run_all(streams: &mut [TcpStream], request: &[u8]) -> usize {
    let mut answered = 0;
    for batch in streams.chunks_mut(256) {
        let results =
            futures::future::join_all(batch.iter_mut().map(|s| exchange(s, request))).await;
        answered += results.into_iter().filter(|ok| *ok).count();
    }
    answered
}
