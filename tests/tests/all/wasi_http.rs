//! wasi:http proxy components as routes, beside WSGI applications: the Rust example
//! (guest-examples/http-hello) served warm and fresh under a mount point, held to the same
//! framing rules and limits as a WSGI application.

use crate::common::*;
use tokio::io::AsyncWriteExt;

/// WSGI hello at `/`, the wasi:http guest at `/rust` (warm: this one may be reused) and
/// `/fresh` (a wasi:http route's default).
async fn mixed(extra: &str) -> TestServer {
    let routes = format!(
        "{}{}{}",
        route("/", HELLO, ""),
        route(
            "/rust",
            HTTP_HELLO,
            &format!("instances = \"warm\"\n{extra}")
        ),
        route("/fresh", HTTP_HELLO, extra),
    );
    TestServer::start(&routes).await
}

async fn request(server: &TestServer, head: &str, body: &[u8]) -> Response {
    let mut bytes = head.replace('\n', "\r\n").into_bytes();
    bytes.extend_from_slice(body);
    parse_one(&raw(server.addr, &bytes).await)
}

#[tokio::test]
async fn both_kinds_serve_side_by_side_warm_and_fresh() {
    let server = mixed("").await;
    for path in ["/rust", "/rust/", "/fresh/"] {
        let r = server.get(path).await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "Hello, world!\n"),
            "{path}"
        );
        assert_eq!(r.header("content-length"), Some("14"));
        assert_eq!(r.header("content-type"), Some("text/plain"));
        assert!(r.header("server").unwrap().starts_with("cheroot-wasm/"));
        assert!(r.header("date").is_some());
    }
    // The WSGI route is untouched.
    assert!(server.get("/").await.text().contains("Hello"));
    // One connection, many requests: the warm instance is reused.
    let many = "GET /rust/ HTTP/1.1\r\nHost: t\r\n\r\n".repeat(20)
        + "GET /rust/ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let bytes = raw(server.addr, many.as_bytes()).await;
    let (responses, rest) = parse_all(&bytes, false);
    assert_eq!(responses.len(), 21);
    assert!(rest.is_empty());
    assert!(responses.iter().all(|r| r.status == 200 && r.complete));
}

#[tokio::test]
async fn the_guest_sees_its_mount_point_the_real_scheme_and_authority_and_no_forged_headers() {
    let server = mixed("").await;
    let r = request(
        &server,
        "GET /rust/request?a=1 HTTP/1.1\nHost: shop.test:8080\nCheroot-Script-Name: /forged\nCheroot-Client-Addr: 10.9.9.9:1\nTE: trailers\nConnection: close\n\n",
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    let text = r.text();
    for line in [
        "method: Method::Get",
        "scheme: Some(Scheme::Http)",
        "authority: Some(\"shop.test:8080\")",
        "path-with-query: Some(\"/rust/request?a=1\")",
        "cheroot-script-name: /rust\n",
        "cheroot-path-info: /request\n",
        "cheroot-client-addr: 127.0.0.1:",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    for absent in ["/forged", "10.9.9.9", "\nte:", "\nconnection:", "\nhost:"] {
        assert!(
            !text.contains(absent),
            "{absent:?} reached the guest:\n{text}"
        );
    }
}

#[tokio::test]
async fn request_bodies_stream_in_and_responses_stream_out_with_trailers() {
    let server = mixed("").await;
    let body: Vec<u8> = (0..3 << 20).map(|i: u32| (i * 7 % 251) as u8).collect();
    let r = request(
        &server,
        &format!(
            "POST /rust/echo HTTP/1.1\nHost: t\nContent-Type: application/x-test\nContent-Length: {}\nConnection: close\n\n",
            body.len()
        ),
        &body,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/x-test"));
    assert!(r.body == body, "echo differs ({} bytes back)", r.body.len());
    // A chunked upload, echoed chunked.
    let chunked = b"POST /fresh/echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    let r = parse_one(&raw(server.addr, chunked).await);
    assert_eq!((r.status, r.text().as_str()), (200, "hello world"));
    // Five chunks and a trailer, to a client that accepts trailers (RFC 9112 §7.1.2).
    let r = request(
        &server,
        "GET /rust/stream HTTP/1.1\nHost: t\nTE: trailers\nConnection: close\n\n",
        b"",
    )
    .await;
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.text(), "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n");
    assert!(r.complete);
    assert_eq!(r.trailers, vec![("Chunks".to_string(), "5".to_string())]);
    // Over HTTP/2 too.
    let (status, body) = h2_get(server.addr, "/rust/stream").await;
    assert_eq!((status, body.len()), (200, 40));
}

#[tokio::test]
async fn head_and_framing_rules_hold_for_wasi_http_guests() {
    let server = mixed("").await;
    let raw_head = raw(
        server.addr,
        b"HEAD /rust/ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    let (responses, rest) = parse_all(&raw_head, true);
    assert_eq!(responses[0].status, 200);
    assert_eq!(responses[0].header("content-length"), Some("14"));
    assert!(rest.is_empty(), "HEAD got a body: {rest:?}");

    // Declares 100 bytes, sends 5: the response is cut off, never passed off as complete.
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(
            b"GET /rust/short HTTP/1.1\r\nHost: t\r\n\r\nGET /rust/ HTTP/1.1\r\nHost: t\r\n\r\n",
        )
        .await
        .unwrap();
    let bytes = read_to_close(&mut stream).await;
    let (responses, _) = parse_all(&bytes, false);
    assert_eq!(responses.len(), 1, "{:?}", String::from_utf8_lossy(&bytes));
    assert_eq!(responses[0].header("content-length"), Some("100"));
    assert!(!responses[0].complete);

    // Hop-by-hop headers are refused to the guest when it sets them.
    let text = server.get("/rust/forbidden-header").await.text();
    assert_eq!(
        text.matches("Err(HeaderError::Forbidden)").count(),
        2,
        "{text}"
    );
    server.assert_alive("/rust/").await;
}

#[tokio::test]
async fn guests_that_trap_spin_or_never_answer_get_the_same_errors_as_wsgi_ones() {
    let server = mixed("timeout = \"1s\"").await;
    for prefix in ["/rust", "/fresh"] {
        let r = server.get(&format!("{prefix}/trap")).await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (500, "Internal Server Error\n")
        );
        let r = server.get(&format!("{prefix}/no-response")).await;
        assert_eq!(r.status, 500);
        let started = std::time::Instant::now();
        let r = server.get(&format!("{prefix}/spin")).await;
        assert_eq!(r.status, 504);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        server.assert_alive(&format!("{prefix}/")).await;
    }
    server.assert_alive("/").await;
}

#[tokio::test]
async fn outbound_http_is_denied_with_an_error_the_guest_sees() {
    let server = mixed("").await;
    let r = server.get("/rust/outbound").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "refused: ErrorCode::HttpRequestDenied\n");
}

#[tokio::test]
async fn request_body_limits_hold() {
    let server = mixed("max-request-body = \"1KiB\"").await;
    let r = request(
        &server,
        "POST /rust/echo HTTP/1.1\nHost: t\nContent-Length: 2048\nConnection: close\n\n",
        &[b'x'; 2048],
    )
    .await;
    assert_eq!(r.status, 413);
    // Chunked, so only counting can tell: no more than the limit ever reaches the guest,
    // which sees an error after it (this guest then ends its echo there).
    let mut body = b"POST /rust/echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for _ in 0..4 {
        body.extend_from_slice(b"200\r\n");
        body.extend_from_slice(&[b'y'; 512]);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let (responses, _) = parse_all(&raw(server.addr, &body).await, false);
    assert_eq!(responses[0].body.len(), 1024);
}
