//! Guests that break the WSGI contract: each gets the documented answer, and the server
//! keeps serving everyone else.

use crate::common::*;

async fn server() -> TestServer {
    TestServer::start(&[route("/", HELLO, ""), route("/errors", ERRORS, "")].concat()).await
}

async fn get_raw(server: &TestServer, path: &str) -> Vec<u8> {
    raw(
        server.addr,
        format!("GET /errors{path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
}

#[tokio::test]
async fn failures_before_the_headers_are_500() {
    let server = server().await;
    for path in [
        "/handle-err",
        "/trap",
        "/trap-in-next",
        "/no-start",
        "/no-start-chunk",
        "/no-start-reply",
    ] {
        let r = parse_one(&get_raw(&server, path).await);
        assert_eq!(r.status, 500, "{path}: {r:?}");
        assert_eq!(
            r.header("content-type"),
            Some("text/plain; charset=utf-8"),
            "{path}"
        );
        assert_eq!(
            r.header("x-wsgi-error"),
            None,
            "{path}: the host answered, not the guest"
        );
        server.assert_alive("/").await;
    }
}

/// 200 header values that are all the same 16 MiB of the guest's memory: the host sizes
/// them where they lie and refuses them as too large, copying nothing, rather than copying
/// them one by one (3.2 GiB) until wasmtime's per-call bound traps the guest.
#[tokio::test]
async fn headers_that_all_point_at_the_same_bytes_are_refused_before_they_are_copied() {
    let server = server().await;
    let r = parse_one(&get_raw(&server, "/alias-headers/16").await);
    assert_eq!(
        (r.status, r.header("x-wsgi-error")),
        (500, Some("invalid-header")),
        "the guest gets the error value, not a trap: {}",
        r.text()
    );
    assert!(
        r.text().contains("a response head may take at most"),
        "{}",
        r.text()
    );
    server.assert_alive("/").await;
}

#[tokio::test]
async fn host_errors_reach_the_guest_as_error_values() {
    let server = server().await;
    let table = [
        ("/bad-status", "invalid-status"),
        ("/bad-status-1xx", "invalid-status"),
        ("/bad-status-999", "invalid-status"),
        ("/crlf-header", "invalid-header"),
        ("/bad-header-name", "invalid-header"),
        ("/hop-by-hop", "invalid-header"),
        ("/hop-by-hop-te", "invalid-header"),
        ("/twice", "already-started"),
        ("/write-before-start", "not-started"),
        // 30,000 header names used to panic the host (HeaderMap's own limit).
        ("/many-headers/30000", "invalid-header"),
    ];
    for (path, variant) in table {
        let bytes = get_raw(&server, path).await;
        assert!(
            !contains(&bytes, b"Injected"),
            "{path}: header injection reached the wire"
        );
        let r = parse_one(&bytes);
        assert_eq!(
            (r.status, r.header("x-wsgi-error")),
            (500, Some(variant)),
            "{path}: {r:?}"
        );
        server.assert_alive("/").await;
    }
}

#[tokio::test]
async fn exc_info_replaces_status_and_all_headers_before_sending() {
    let server = server().await;
    let r = server.get("/errors/exc-info-replace").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("x-second"), Some("2"));
    assert_eq!(
        r.header("x-first"),
        None,
        "cheroot keeps the first call's headers; we must not"
    );
    assert_eq!(r.text(), "replaced");
}

#[tokio::test]
async fn more_bytes_than_content_length_are_cut_and_the_connection_closed() {
    let server = server().await;
    for (path, body) in [
        ("/too-long", "I too"),
        ("/too-long-write", "abcde"),
        ("/too-long-reply", "abcde"),
    ] {
        // Keep-alive request followed by a second one: the server must not answer it on
        // this connection, nor put the extra bytes on the wire.
        let request = format!(
            "GET /errors{path} HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n"
        );
        let bytes = raw_until_close(server.addr, request.as_bytes()).await;
        let (responses, rest) = parse_all(&bytes, false);
        assert_eq!(
            responses.len(),
            1,
            "{path}: {}",
            String::from_utf8_lossy(&bytes)
        );
        assert!(
            rest.is_empty(),
            "{path}: extra bytes {:?}",
            String::from_utf8_lossy(rest)
        );
        assert_eq!(
            (responses[0].status, responses[0].text().as_str()),
            (200, body),
            "{path}"
        );
        assert_eq!(responses[0].header("content-length"), Some("5"));
        server.assert_alive("/").await;
    }
}

/// `handle`'s reply chunks go first, in order, then what its iterable yields; empty chunks
/// are skipped wherever they come.
#[tokio::test]
async fn reply_chunks_then_the_rest_of_the_iterable() {
    let server = server().await;
    let r = parse_one(&get_raw(&server, "/reply-then-rest").await);
    assert_eq!((r.status, r.text().as_str()), (200, "one two three four\n"));
}

#[tokio::test]
async fn fewer_bytes_than_content_length_close_the_connection() {
    let server = server().await;
    let bytes = raw_until_close(
        server.addr,
        b"GET /errors/too-short HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .await;
    let (responses, _) = parse_all(&bytes, false);
    assert_eq!(responses.len(), 1, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(responses[0].body, b"abc");
    assert!(
        !responses[0].complete,
        "the client must see an incomplete body"
    );
    server.assert_alive("/").await;
}

#[tokio::test]
async fn failures_after_the_headers_abort_the_body() {
    let server = server().await;
    for path in ["/exc-info-after-send", "/err-after-headers"] {
        let bytes = raw_until_close(
            server.addr,
            format!("GET /errors{path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes(),
        )
        .await;
        let r = parse_one(&bytes);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.text(), "partial", "{path}");
        assert!(
            !r.complete,
            "{path}: a failed body must not end with the last chunk: {}",
            String::from_utf8_lossy(&bytes)
        );
        server.assert_alive("/").await;
    }
}

#[tokio::test]
async fn unknown_case_is_the_guests_own_404() {
    let server = server().await;
    let r = server.get("/errors/nope").await;
    assert_eq!((r.status, r.text().as_str()), (404, "no such error case\n"));
}

#[tokio::test]
async fn growing_past_the_memory_limit_fails_in_the_guest_only() {
    let server = TestServer::start(
        &[
            route("/", HELLO, ""),
            route("/errors", ERRORS, "memory = \"32MiB\""),
        ]
        .concat(),
    )
    .await;
    assert_eq!(
        server.get("/errors/alloc/8").await.text(),
        "allocated 8 MiB\n"
    );
    let r = server.get("/errors/alloc/64").await;
    assert_eq!(r.status, 500, "{r:?}");
    server.assert_alive("/").await;
    assert_eq!(
        server.get("/errors/alloc/8").await.status,
        200,
        "a fresh instance replaced the failed one"
    );
}
