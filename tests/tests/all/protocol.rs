//! HTTP itself: persistent connections, pipelining, 100-continue, h2c, and the request
//! shapes a server must refuse (smuggling, bad Host, CONNECT).

use crate::common::*;
use tokio::io::AsyncWriteExt;

async fn server() -> TestServer {
    TestServer::start(&[route("/", HELLO, ""), route("/echo", ECHO, "")].concat()).await
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let server = server().await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    for _ in 0..3 {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let mut got = Vec::new();
        read_until(&mut stream, &mut got, b"Hello, world!\n").await;
        assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"));
    }
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let server = server().await;
    let bytes = raw(server.addr, b"GET /a HTTP/1.1\r\nHost: t\r\n\r\nPOST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\nsecondGET /c HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let (responses, rest) = parse_all(&bytes, false);
    assert!(rest.is_empty());
    let bodies: Vec<String> = responses.iter().map(Response::text).collect();
    assert_eq!(bodies, ["Hello, world!\n", "second", "Hello, world!\n"]);
}

#[tokio::test]
async fn expect_100_continue_is_answered_before_the_body_is_sent() {
    let server = server().await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
        )
        .await
        .unwrap();
    let mut got = Vec::new();
    read_until(&mut stream, &mut got, b"\r\n\r\n").await;
    assert_eq!(got, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"abcd").await.unwrap();
    stream.shutdown().await.unwrap();
    let rest = read_to_close(&mut stream).await;
    let r = parse_one(&rest);
    assert_eq!((r.status, r.text().as_str()), (200, "abcd"));
}

#[tokio::test]
async fn h2c_prior_knowledge_works() {
    let server = server().await;
    let (status, body) = h2_get(server.addr, "/").await;
    assert_eq!((status, body.as_slice()), (200, &b"Hello, world!\n"[..]));
}

#[tokio::test]
async fn request_smuggling_shapes_are_refused() {
    let server = server().await;
    let cases: &[(&str, &[u8], u16)] = &[
        ("gzip, chunked", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
        ("two TE lines", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("differing CLs", b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
        ("no Host", b"GET / HTTP/1.1\r\n\r\n", 400),
        ("two Hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        ("bad Host", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
        ("userinfo Host", b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", 400),
        ("CONNECT", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405),
        ("obs-fold", b"GET / HTTP/1.1\r\nHost: t\r\nX-Fold: a\r\n  b\r\n\r\n", 400),
        ("space before colon", b"GET / HTTP/1.1\r\nHost : t\r\n\r\n", 400),
        ("bad chunk size", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400),
        // RFC 9112 §6.3: chunked not last in a request → 400 (hyper says it first).
        ("gzip alone", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\nabc", 400),
        ("bare LF", b"GET / HTTP/1.1\nHost: t\n\n", 400),
        ("bare LF in a header", b"GET / HTTP/1.1\r\nHost: t\nX-A: b\r\n\r\n", 400),
        ("huge method", b"GETGETGETGETGETGETGETGETGETGETGETGET / HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    ];
    for (name, request, status) in cases {
        // A smuggled second request follows each; it must never be answered.
        let mut bytes = request.to_vec();
        bytes.extend_from_slice(b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n");
        let answer = raw_until_close(server.addr, &bytes).await;
        let text = String::from_utf8_lossy(&answer);
        let first = text.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(&format!("HTTP/1.1 {status} ")),
            "{name}: got {text:?}"
        );
        assert_eq!(
            parse_all(&answer, false).0.len(),
            1,
            "{name}: a second response was sent: {text:?}"
        );
    }
    server.assert_alive("/").await;
}

#[tokio::test]
async fn http_1_0_keeps_alive_only_when_asked() {
    let server = server().await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut out = Vec::new();
    for _ in 0..2 {
        tokio::io::AsyncWriteExt::write_all(
            &mut stream,
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        )
        .await
        .unwrap();
        out.clear();
        read_until(&mut stream, &mut out, b"Hello, world!\n").await;
        let r = parse_one(&out);
        assert_eq!(r.header("connection"), Some("keep-alive"), "{r:?}");
    }
    // Without it, HTTP/1.0 closes after the response.
    let answer = raw_until_close(server.addr, b"GET / HTTP/1.0\r\n\r\n").await;
    assert_eq!(parse_one(&answer).status, 200);
}

#[tokio::test]
async fn content_length_with_chunked_is_framed_by_chunked_and_closes() {
    let server = server().await;
    let request = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n";
    let answer = raw_until_close(server.addr, request).await;
    let text = String::from_utf8_lossy(&answer);
    // RFC 9112 §6.3: chunked wins, and the connection closes after the response.
    assert_eq!(parse_all(&answer, false).0.len(), 1, "{text}");
    let r = parse_one(&answer);
    assert_eq!((r.status, r.text().as_str()), (200, "abc"), "{text}");
}

#[tokio::test]
async fn trailers_are_consumed_not_parsed_as_a_request() {
    let server = server().await;
    let request = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n";
    let (responses, _) = parse_all(&raw(server.addr, request).await, false);
    let bodies: Vec<String> = responses.iter().map(Response::text).collect();
    assert_eq!(bodies, ["abc", "Hello, world!\n"]);
}

#[tokio::test]
async fn half_closed_clients_still_get_their_response() {
    let server = server().await;
    // `raw` shuts down its write side right after the request, as `nc -N` does.
    let r = parse_one(&raw(server.addr, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await);
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn beyond_max_connections_new_clients_wait_in_the_backlog() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start(&format!(
        "[server]\nmax-connections = 2\n\n{}",
        route("/", HELLO, "")
    ))
    .await;
    let request = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200 "));
        held.push(stream);
    }
    // A third client connects (the kernel's backlog takes it) but is not served yet.
    let mut third = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    third.write_all(request).await.unwrap();
    let mut buf = [0u8; 512];
    let early =
        tokio::time::timeout(std::time::Duration::from_millis(300), third.read(&mut buf)).await;
    assert!(early.is_err(), "served beyond max-connections");
    // One of the first two leaves: the third is served.
    drop(held.pop());
    let n = tokio::time::timeout(READ_TIMEOUT, third.read(&mut buf))
        .await
        .expect("served once a slot freed")
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200 "));
}

#[tokio::test]
async fn bare_lf_is_found_in_pipelined_heads_and_never_in_bodies() {
    let server = server().await;
    // A body the application never reads, full of bare LFs: skipped by its framing, so
    // the keep-alive request after it is answered normally.
    let answer = raw_until_close(
        server.addr,
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\na\nb\nc\nGET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    let (responses, rest) = parse_all(&answer, false);
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert_eq!((statuses, rest), (vec![200, 200], &b""[..]));

    // A bare-LF head pipelined behind a good request (and behind a chunked body) is never
    // answered: the connection ends instead.
    for pipelined in [
        &b"GET / HTTP/1.1\r\nHost: t\r\n\r\nGET /smuggled HTTP/1.1\nHost: t\n\n"[..],
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n\n\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\nHost: t\n\n",
    ] {
        let answer = raw_until_close(server.addr, pipelined).await;
        let text = String::from_utf8_lossy(&answer);
        // The whole read is refused before hyper parses any of it: one 400, nothing else.
        let statuses: Vec<u16> = parse_all(&answer, false).0.iter().map(|r| r.status).collect();
        assert!(statuses.iter().all(|&s| s == 400) && statuses.len() <= 1, "{text}");
    }
}

#[tokio::test]
async fn request_targets_outside_rfc_9112_are_refused() {
    let server = server().await;
    // RFC 9112 §3.2: origin-form, absolute-form (http/https), authority-form (CONNECT
    // only) and asterisk-form (OPTIONS only); nothing else, and no fragment (§3.2.1).
    let cases: &[(&str, &[u8], &str)] = &[
        (
            "no slash",
            b"GET hello HTTP/1.1\r\nHost: t\r\n\r\n",
            "start with `/`",
        ),
        (
            "authority-form",
            b"GET t:80 HTTP/1.1\r\nHost: t\r\n\r\n",
            "CONNECT only",
        ),
        (
            "asterisk GET",
            b"GET * HTTP/1.1\r\nHost: t\r\n\r\n",
            "OPTIONS only",
        ),
        (
            "ftp scheme",
            b"GET ftp://t/ HTTP/1.1\r\nHost: t\r\n\r\n",
            "http:// or https://",
        ),
        (
            "raw UTF-8",
            "GET /caf\u{e9} HTTP/1.1\r\nHost: t\r\n\r\n".as_bytes(),
            "ASCII",
        ),
        (
            "raw UTF-8 query",
            "GET /?q=\u{e9} HTTP/1.1\r\nHost: t\r\n\r\n".as_bytes(),
            "ASCII",
        ),
        (
            "fragment",
            b"GET /x#frag HTTP/1.1\r\nHost: t\r\n\r\n",
            "fragment (#)",
        ),
        (
            "control byte",
            b"GET /\x01 HTTP/1.1\r\nHost: t\r\n\r\n",
            "control characters",
        ),
    ];
    for (name, request, why) in cases {
        let mut bytes = request.to_vec();
        bytes.extend_from_slice(b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n");
        let answer = raw_until_close(server.addr, &bytes).await;
        let text = String::from_utf8_lossy(&answer);
        let (responses, _) = parse_all(&answer, false);
        assert_eq!(responses.len(), 1, "{name}: {text:?}");
        assert_eq!(responses[0].status, 400, "{name}: {text:?}");
        assert!(responses[0].text().contains(why), "{name}: {text:?}");
    }
    // The forms RFC 9112 allows are served.
    for request in [
        &b"OPTIONS * HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"[..],
        b"GET http://t/?q=%C3%A9 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    ] {
        let r = parse_one(&raw(server.addr, request).await);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(request));
    }
    // HTTP/2's `:path` is held to ASCII too.
    let (status, body) = h2_get(server.addr, "/caf\u{e9}").await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    server.assert_alive("/").await;
}

#[tokio::test]
async fn a_padded_content_length_does_not_hide_a_smuggled_head() {
    let server = server().await;
    // hyper reads these Content-Lengths as 5; so must the bare-LF check, or the head after
    // the body goes unchecked.
    for padding in ["0".repeat(100), " ".repeat(100)] {
        let request = format!(
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {padding}5\r\n\r\nhelloGET /smuggled HTTP/1.1\nHost: t\n\n"
        );
        let answer = raw_until_close(server.addr, request.as_bytes()).await;
        let text = String::from_utf8_lossy(&answer);
        assert!(
            !text.contains("Hello, world!"),
            "the smuggled head was served: {text:?}"
        );
        assert!(text.contains("HTTP/1.1 400 "), "{text:?}");
    }
    server.assert_alive("/").await;
}

/// What a client that writes its whole request before reading (Python's http.client, curl
/// without `Expect`) gets: the request (`head`, then `body` in 64 KiB writes) goes out in
/// full, then the answer is read to the server's close. A blocking socket in a thread of its
/// own, as those clients are; `Err` is the write or read error a reset gives.
fn send_all_then_read(
    addr: std::net::SocketAddr,
    head: &[u8],
    body: usize,
) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_write_timeout(Some(READ_TIMEOUT))?;
    stream.write_all(head)?;
    let chunk = vec![b'x'; 64 * 1024];
    let mut left = body;
    while left > 0 {
        let n = left.min(chunk.len());
        stream.write_all(&chunk[..n])?;
        left -= n;
    }
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(answer)
}

/// Sends `head` and `body` bytes `attempts` times as [`send_all_then_read`] does; every
/// attempt must read a whole answer that starts with `status_line`.
async fn every_attempt_reads(
    addr: std::net::SocketAddr,
    head: Vec<u8>,
    body: usize,
    status_line: &'static str,
    attempts: usize,
) {
    let failures = tokio::task::spawn_blocking(move || {
        let mut failures = Vec::new();
        for attempt in 0..attempts {
            match send_all_then_read(addr, &head, body) {
                Ok(answer) => {
                    let text = String::from_utf8_lossy(&answer);
                    if !text.starts_with(status_line) {
                        failures.push(format!("attempt {attempt}: {text:?}"));
                    } else {
                        let r = parse_one(&answer);
                        let length = r.header("content-length").map(str::parse::<usize>);
                        if length.is_some_and(|length| length != Ok(r.body.len())) {
                            failures.push(format!("attempt {attempt}: a cut body: {text:?}"));
                        }
                    }
                }
                Err(e) => failures.push(format!("attempt {attempt}: {e}")),
            }
        }
        failures
    })
    .await
    .unwrap();
    assert!(
        failures.is_empty(),
        "{} of {attempts}: {failures:#?}",
        failures.len()
    );
}

#[tokio::test]
async fn a_client_that_sends_its_whole_over_limit_body_reads_the_413() {
    // RFC 9112 §9.6: the server that closes early half-closes and reads on, so the client's
    // unread bytes do not turn its close into a reset that destroys the answer.
    let server = TestServer::single(ECHO, "max-request-body = \"1MiB\"").await;
    let body = 8 << 20;
    let head = format!("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {body}\r\n\r\n");
    every_attempt_reads(server.addr, head.into_bytes(), body, "HTTP/1.1 413 ", 20).await;
}

#[tokio::test]
async fn a_client_that_sends_its_whole_huge_head_reads_the_431() {
    let server = server().await;
    // A head far over max-header-size (64 KiB), sent in full before reading: 8 MiB, more
    // than the socket buffers on both sides hold, so the client is still writing when the
    // server answers.
    let mut head = b"GET / HTTP/1.1\r\nHost: t\r\n".to_vec();
    for i in 0..8192 {
        head.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "f".repeat(1000)).as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    every_attempt_reads(server.addr, head, 0, "HTTP/1.1 431 ", 20).await;
}
