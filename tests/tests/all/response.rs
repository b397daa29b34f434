//! How a guest's status, headers and body reach the wire: framing, HEAD, 204/304, reasons.

use crate::common::*;

#[tokio::test]
async fn hello_is_framed_by_its_content_length() {
    let server = TestServer::single(HELLO, "").await;
    let bytes = raw(
        server.addr,
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n"),
        "{text}"
    );
    assert!(
        text.contains("\r\nServer: cheroot-wasm/0.1.0\r\n") && text.contains("\r\nDate: "),
        "{text}"
    );
    assert!(text.ends_with("\r\n\r\nHello, world!\n"), "{text}");
}

#[tokio::test]
async fn head_runs_the_app_but_sends_no_body() {
    let server = TestServer::single(HELLO, "").await;
    // Two HEADs then a GET on one connection: a stray body byte would corrupt what follows.
    let bytes = raw(
        server.addr,
        b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\nHEAD / HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .await;
    let (responses, rest) = parse_all(&bytes, true);
    assert_eq!(responses.len(), 2, "{}", String::from_utf8_lossy(&bytes));
    assert!(
        rest.is_empty(),
        "body bytes after a HEAD response: {:?}",
        String::from_utf8_lossy(rest)
    );
    for r in responses {
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-length"), Some("14"));
    }
    let bytes = raw(
        server.addr,
        b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&bytes);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
    assert_eq!(text.matches("Hello, world!").count(), 1, "{text}");
}

#[tokio::test]
async fn no_content_statuses_carry_no_body_and_no_framing() {
    let server = TestServer::single(ERRORS, "").await;
    for code in [204, 304] {
        let bytes = raw(server.addr, format!("GET /status/{code} HTTP/1.1\r\nHost: t\r\n\r\nGET /status/200 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes()).await;
        let (responses, rest) = parse_all(&bytes, false);
        assert!(rest.is_empty());
        assert_eq!(responses.len(), 2, "{}", String::from_utf8_lossy(&bytes));
        let r = &responses[0];
        assert_eq!(r.status, code);
        assert!(r.body.is_empty());
        assert_eq!(r.header("content-length"), None, "{r:?}");
        assert_eq!(r.header("transfer-encoding"), None, "{r:?}");
        assert_eq!(
            responses[1].text(),
            "body for 200\n",
            "the connection stayed in sync"
        );
    }
}

#[tokio::test]
async fn status_line_keeps_the_reason_and_headers_keep_latin1() {
    let server = TestServer::single(ERRORS, "").await;
    let bytes = raw(
        server.addr,
        b"GET /reason HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        bytes.starts_with(b"HTTP/1.1 299 Very Custom Reason\r\n"),
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    let bytes = raw(
        server.addr,
        b"GET /latin1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        contains(&bytes, b"\r\nX-Latin1: caf\xe9\r\n"),
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    let r = server.get("/status/418").await;
    assert_eq!(r.status_line, "HTTP/1.1 418 I'm a teapot");
}

#[tokio::test]
async fn no_content_length_means_chunked_on_http_11() {
    let server = TestServer::single(STREAM, "").await;
    let bytes = raw(
        server.addr,
        b"GET /?n=3 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.contains("\r\nTransfer-Encoding: chunked\r\n"),
        "{text}"
    );
    assert!(
        text.ends_with("\r\n\r\n8\r\nchunk 0\n\r\n8\r\nchunk 1\n\r\n8\r\nchunk 2\n\r\n0\r\n\r\n"),
        "{text}"
    );
}

#[tokio::test]
async fn no_content_length_means_close_delimited_on_http_10() {
    let server = TestServer::single(STREAM, "").await;
    for request in [
        &b"GET /?n=3 HTTP/1.0\r\n\r\n"[..],
        b"GET /?n=3 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    ] {
        let bytes = raw_until_close(server.addr, request).await;
        let r = parse_one(&bytes);
        assert_eq!(r.header("transfer-encoding"), None);
        assert_eq!(r.text(), "chunk 0\nchunk 1\nchunk 2\n");
    }
}

#[tokio::test]
async fn an_empty_body_is_a_last_chunk() {
    let server = TestServer::single(ERRORS, "").await;
    let bytes = raw(
        server.addr,
        b"GET /empty HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n0\r\n\r\n"), "{text}");
}

#[tokio::test]
async fn http_10_keep_alive_is_honoured_when_framed() {
    let server = TestServer::single(HELLO, "").await;
    let bytes = raw(
        server.addr,
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
    )
    .await;
    let (responses, _) = parse_all(&bytes, false);
    assert_eq!(responses.len(), 2, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(
        responses[0]
            .header("connection")
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("keep-alive")
    );
}
