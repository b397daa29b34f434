//! Bodies that stream both ways, clients that vanish or stall, and time budgets.

use std::time::{Duration, Instant};

use crate::common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// FNV-1a 64, as the echo guest's `mode=count` computes it.
fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[tokio::test]
async fn a_large_upload_streams_through_in_constant_memory() {
    const TOTAL: usize = 64 << 20;
    let server = TestServer::single(ECHO, "").await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(format!("POST /?mode=count HTTP/1.1\r\nHost: t\r\nContent-Length: {TOTAL}\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut chunk = vec![0u8; 1 << 20];
    for i in 0..TOTAL / chunk.len() {
        chunk
            .iter_mut()
            .enumerate()
            .for_each(|(j, b)| *b = (i * 31 + j) as u8);
        hash = fnv1a(hash, &chunk);
        stream.write_all(&chunk).await.unwrap();
    }
    let r = parse_one(&read_to_close(&mut stream).await);
    assert_eq!(r.text(), format!("{TOTAL} {hash:016x}\n"));
}

#[tokio::test]
async fn request_bodies_in_every_shape() {
    let server = TestServer::single(ECHO, "").await;
    let chunked = b"POST /?mode=read&size=3 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n";
    assert_eq!(
        parse_one(&raw(server.addr, chunked).await).text(),
        "hello world"
    );
    let lines = b"POST /?mode=lines HTTP/1.1\r\nHost: t\r\nContent-Length: 13\r\nConnection: close\r\n\r\none\ntwo\nthree";
    assert_eq!(
        parse_one(&raw(server.addr, lines).await).text(),
        "one\ntwo\nthree"
    );
    let write = b"POST /?mode=write&size=4 HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789";
    let r = parse_one(&raw(server.addr, write).await);
    assert_eq!(
        (r.status, r.text().as_str(), r.header("transfer-encoding")),
        (200, "0123456789", Some("chunked"))
    );
    let empty = b"POST / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    assert_eq!(parse_one(&raw(server.addr, empty).await).text(), "");
}

#[tokio::test]
async fn the_upload_echoes_back_while_it_is_still_arriving() {
    let server = TestServer::single(ECHO, "").await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n",
        )
        .await
        .unwrap();
    let mut got = Vec::new();
    read_until(&mut stream, &mut got, b"first").await;
    stream.write_all(b"6\r\nsecond\r\n0\r\n\r\n").await.unwrap();
    read_until(&mut stream, &mut got, b"0\r\n\r\n").await;
    assert!(contains(&got, b"second"));
}

#[tokio::test]
async fn a_slow_endless_stream_reaches_the_client_chunk_by_chunk() {
    let server =
        TestServer::start(&[route("/", HELLO, ""), route("/stream", STREAM, "")].concat()).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /stream?n=0&delay_ms=100 HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let started = Instant::now();
    for i in 0..3 {
        read_until(&mut stream, &mut got, format!("chunk {i}\n").as_bytes()).await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "chunks were held back"
    );
    drop(stream); // the client goes away mid-stream
    server.assert_alive("/").await;
}

#[tokio::test]
async fn a_client_that_leaves_mid_upload_harms_no_one() {
    let server =
        TestServer::start(&[route("/", HELLO, ""), route("/echo", ECHO, "")].concat()).await;
    for _ in 0..5 {
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(b"POST /echo?mode=count HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n").await.unwrap();
        stream.write_all(&[b'x'; 512]).await.unwrap();
        drop(stream);
    }
    server.assert_alive("/").await;
}

#[tokio::test]
async fn a_client_that_never_reads_gets_backpressure_not_buffering() {
    let server =
        TestServer::start(&[route("/", HELLO, ""), route("/stream", STREAM, "")].concat()).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // 64 KiB chunks, endless: the guest must block on backpressure, not fill memory.
    stream
        .write_all(b"GET /stream?n=0&size=65536 HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.assert_alive("/").await;
    let mut buf = vec![0u8; 1 << 16];
    let n = tokio::time::timeout(READ_TIMEOUT, stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(n > 0);
}

#[tokio::test]
async fn a_body_that_never_arrives_times_out_with_408() {
    let server = TestServer::single(ECHO, "timeout = \"1s\"").await;
    let started = Instant::now();
    let bytes = raw_until_close(
        server.addr,
        b"POST /?mode=count HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhalf!",
    )
    .await;
    let r = parse_one(&bytes);
    assert_eq!(r.status, 408, "{r:?}");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_slow_or_spinning_guest_times_out_with_504() {
    let server = TestServer::start(
        &[
            route("/", HELLO, ""),
            route("/errors", ERRORS, "timeout = \"1s\""),
        ]
        .concat(),
    )
    .await;
    for path in ["/errors/sleep/3000", "/errors/loop"] {
        let started = Instant::now();
        let r = server.get(path).await;
        assert_eq!(r.status, 504, "{path}: {r:?}");
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(4),
            "{path}: {elapsed:?}"
        );
        server.assert_alive("/").await;
    }
    assert_eq!(
        server.get("/errors/sleep/10").await.text(),
        "slept\n",
        "a fresh instance replaced the stopped one"
    );
}

#[tokio::test]
async fn a_timeout_after_the_headers_closes_the_connection() {
    let server = TestServer::single(STREAM, "timeout = \"1s\"").await;
    let bytes = raw_until_close(
        server.addr,
        b"GET /?n=0&delay_ms=200 HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .await;
    let r = parse_one(&bytes);
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("chunk 0\nchunk 1\n"), "{r:?}");
    assert!(!r.complete, "a cut-off stream must not look complete");
}

#[tokio::test]
async fn request_bodies_over_the_route_limit_are_refused() {
    let server = TestServer::single(ECHO, "max-request-body = \"10B\"").await;
    // Declared too large: 413 before the application runs, and the connection closes.
    let bytes = raw_until_close(
        server.addr,
        b"POST /?mode=count HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n",
    )
    .await;
    let r = parse_one(&bytes);
    assert_eq!(
        (r.status, r.header("connection")),
        (413, Some("close")),
        "{r:?}"
    );
    // Chunked, crossing the limit as it arrives: the application is told.
    let chunked = b"POST /?mode=count HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n01234567\r\n8\r\n89abcdef\r\n0\r\n\r\n";
    let r = parse_one(&raw(server.addr, chunked).await);
    assert_eq!(
        r.header("x-wsgi-error"),
        Some("request-body-too-large"),
        "{r:?}"
    );
    // At the limit is fine.
    let ok = b"POST /?mode=count HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789";
    assert!(
        parse_one(&raw(server.addr, ok).await)
            .text()
            .starts_with("10 ")
    );
}
