//! The admin listener: health, readiness, and figures that match a known workload exactly.

use std::time::Duration;

use crate::common::*;

#[tokio::test]
async fn stats_and_metrics_count_a_known_workload() {
    let server = TestServer::start(
        &[
            "[server]\nadmin = \"127.0.0.1:0\"\n\n".to_string(),
            route("/hello", HELLO, ""),
            route("/errors", ERRORS, "memory = \"32MiB\""),
        ]
        .concat(),
    )
    .await;
    assert_ne!(server.admin, Some(server.addr), "a listener of its own");
    assert_eq!(admin_get(&server, "/healthz").await.status, 200);
    assert_eq!(admin_get(&server, "/readyz").await.status, 200);

    for _ in 0..3 {
        assert_eq!(server.get("/hello").await.status, 200);
    }
    assert_eq!(server.get("/errors/trap").await.status, 500);
    assert_eq!(server.get("/errors/alloc/64").await.status, 500);
    assert_eq!(server.get("/missing").await.status, 404);

    // Connections close just after their last response: let the count settle.
    let mut stats = admin_get(&server, "/stats").await.json();
    for _ in 0..50 {
        if stats["connections"]["open"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        stats = admin_get(&server, "/stats").await.json();
    }
    assert_eq!(stats["connections"]["accepted"], 6, "{stats:#?}");
    assert_eq!(stats["connections"]["open"], 0);
    assert_eq!(stats["ready"], true);
    let hello = &stats["routes"]["/hello"];
    assert_eq!(hello["requests"], 3, "{stats:#?}");
    assert_eq!(hello["status"]["2xx"], 3);
    assert_eq!(hello["bytes_out"], 3 * 14);
    assert_eq!(
        hello["instances"]["created"], 1,
        "one warm instance served all three"
    );
    assert_eq!(hello["instances"]["idle"], 1);
    assert_eq!(hello["instances"]["busy"], 0);
    let errors = &stats["routes"]["/errors"];
    assert_eq!(errors["status"]["5xx"], 2, "{stats:#?}");
    assert_eq!(errors["limit_hits"]["trap"], 2);
    assert!(
        errors["limit_hits"]["memory"].as_u64().unwrap() >= 1,
        "{stats:#?}"
    );
    assert_eq!(errors["instances"]["created"], 2);
    assert_eq!(errors["instances"]["discarded"], 2);
    assert_eq!(errors["instances"]["idle"], 0);
    assert_eq!(stats["routes"]["(none)"]["status"]["4xx"], 1);

    let metrics = admin_get(&server, "/metrics").await;
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = metrics.text();
    for line in [
        "cheroot_wasm_requests_total{route=\"/hello\",class=\"2xx\"} 3",
        "cheroot_wasm_requests_total{route=\"/errors\",class=\"5xx\"} 2",
        "cheroot_wasm_request_duration_seconds_count{route=\"/hello\"} 3",
        "cheroot_wasm_connections_accepted_total 6",
        "cheroot_wasm_instance_events_total{route=\"/errors\",kind=\"discarded\"} 2",
        "cheroot_wasm_instances{route=\"/hello\",kind=\"idle\"} 1",
        "cheroot_wasm_response_body_bytes_total{route=\"/hello\"} 42",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line:?} missing from:\n{text}"
        );
    }
    assert!(text.contains("cheroot_wasm_guest_seconds_total{route=\"/hello\"}"));
    assert_eq!(admin_get(&server, "/nope").await.status, 404);
}

/// Waits until the access log holds `n` lines.
async fn log_lines(file: &std::path::Path, n: usize) -> Vec<String> {
    for _ in 0..100 {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= n {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the access log never got {n} lines");
}

#[tokio::test]
async fn the_access_log_has_a_combined_line_per_response() {
    let server = TestServer::start(
        &[
            "[server]\naccess-log = \"access.log\"\n\n".to_string(),
            route("/hello", HELLO, ""),
            route("/stream", STREAM, ""),
        ]
        .concat(),
    )
    .await;
    let log = server.dir.join("access.log");
    let requests: [&[u8]; 4] = [
        b"GET /hello?x=1 HTTP/1.1\r\nHost: a\r\nReferer: http://ref.example/\r\nUser-Agent: test/1.0\r\nConnection: close\r\n\r\n",
        b"GET /nowhere HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        b"GET /stream/?n=3 HTTP/1.0\r\nUser-Agent: evil\" 200 \"forged\r\n\r\n",
        b"HEAD /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    ];
    for request in requests {
        raw(server.addr, request).await;
    }
    let lines = log_lines(&log, 4).await;
    let rest = |line: &str| {
        // `127.0.0.1 - - [25/Nov/2026:12:57:12 +0000] "GET ...`: the time varies.
        assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
        let (time, rest) = line["127.0.0.1 - - [".len()..].split_once("] ").unwrap();
        assert_eq!(time.len(), "25/Nov/2026:12:57:12 +0000".len(), "{time}");
        assert!(time.ends_with(" +0000"), "{time}");
        rest.to_string()
    };
    let mut got: Vec<String> = lines.iter().map(|l| rest(l)).collect();
    got.sort();
    let mut want = vec![
        r#""GET /hello?x=1 HTTP/1.1" 200 14 "http://ref.example/" "test/1.0""#.to_string(),
        r#""GET /nowhere HTTP/1.1" 404 10 "-" "-""#.to_string(),
        r#""GET /stream/?n=3 HTTP/1.0" 200 24 "-" "evil\x22 200 \x22forged""#.to_string(),
        r#""HEAD /hello HTTP/1.1" 200 - "-" "-""#.to_string(),
    ];
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_reload_reopens_the_access_log_for_logrotate() {
    let server = TestServer::start(
        &[
            "[server]\naccess-log = \"access.log\"\n\n".to_string(),
            route("/", HELLO, ""),
        ]
        .concat(),
    )
    .await;
    let log = server.dir.join("access.log");
    server.assert_alive("/before").await;
    log_lines(&log, 1).await;
    // logrotate: rename the file, then SIGHUP (here: the reload it triggers).
    let rotated = server.dir.join("access.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    server.live.reload().await.unwrap();
    server.assert_alive("/after").await;
    let fresh = log_lines(&log, 1).await;
    assert!(fresh[0].contains("GET /after "), "{fresh:?}");
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert!(
        old.contains("GET /before ") && !old.contains("/after"),
        "{old}"
    );

    // A SIGHUP from logrotate while routes.toml is broken: the reload is refused, the log
    // is reopened all the same.
    std::fs::rename(&log, server.dir.join("access.log.2")).unwrap();
    std::fs::write(server.dir.join("routes.toml"), "[[route]]\npath = \"/\"\n").unwrap();
    assert!(
        server.live.reload().await.is_err(),
        "a broken routes.toml was loaded"
    );
    server.assert_alive("/refused").await;
    let fresh = log_lines(&log, 1).await;
    assert!(fresh[0].contains("GET /refused "), "{fresh:?}");
}

#[tokio::test]
async fn requests_refused_before_parsing_are_logged_too() {
    let server = TestServer::start(
        &[
            "[server]\naccess-log = \"access.log\"\nheader-timeout = \"300ms\"\nmax-header-size = \"8KiB\"\n\n"
                .to_string(),
            route("/", HELLO, ""),
        ]
        .concat(),
    )
    .await;
    raw_until_close(server.addr, b"GET / HTTP/1.1\r\nHost: slow").await;
    raw_until_close(server.addr, b"GET / HTTP/1.1\nHost: a\n\n").await;
    // Refused by hyper's parser: a head over max-header-size, a header name with a space.
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "b".repeat(20_000)
    );
    let too_large = raw_until_close(server.addr, huge.as_bytes()).await;
    assert!(too_large.starts_with(b"HTTP/1.1 431 "));
    let malformed = raw_until_close(
        server.addr,
        b"GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n",
    )
    .await;
    assert!(malformed.starts_with(b"HTTP/1.1 400 "));
    let lines = log_lines(&server.dir.join("access.log"), 4).await;
    let mut tails: Vec<&str> = lines
        .iter()
        .map(|l| l.split_once("] ").expect("a CLF line").1)
        .collect();
    tails.sort();
    assert_eq!(
        tails,
        [
            r#""-" 400 - "-" "-""#,
            r#""-" 400 - "-" "-""#,
            r#""-" 408 - "-" "-""#,
            r#""-" 431 - "-" "-""#
        ],
        "{lines:?}"
    );
}

#[tokio::test]
async fn a_slow_admin_client_is_cut_off() {
    let server = TestServer::start(
        &[
            "[server]\nadmin = \"127.0.0.1:0\"\nheader-timeout = \"300ms\"\n\n".to_string(),
            route("/", HELLO, ""),
        ]
        .concat(),
    )
    .await;
    let admin = server.admin.expect("an admin listener");
    // Half a head, then nothing (slowloris): the server ends the connection itself
    // (`raw_until_close` never closes its side).
    let answer = raw_until_close(admin, b"GET /stats HTTP/1.1\r\nHost: a").await;
    let text = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || text.starts_with("HTTP/1.1 408 "),
        "{text:?}"
    );
    // Nothing at all on a fresh connection, likewise.
    let answer = raw_until_close(admin, b"").await;
    assert!(!String::from_utf8_lossy(&answer).contains("200 OK"));
    assert_eq!(admin_get(&server, "/healthz").await.status, 200);
}

#[tokio::test]
async fn admin_connections_beyond_the_limit_wait_in_the_backlog() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start(
        &[
            "[server]\nadmin = \"127.0.0.1:0\"\n\n".to_string(),
            route("/", HELLO, ""),
        ]
        .concat(),
    )
    .await;
    let admin = server.admin.expect("an admin listener");
    // 64 clients that have sent half a head (each held until the header timeout).
    let mut held = Vec::new();
    for _ in 0..64 {
        let mut stream = tokio::net::TcpStream::connect(admin).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap();
        held.push(stream);
    }
    // Make sure the server has taken all 64: each of them answers once it completes.
    for stream in &mut held {
        stream.write_all(b"Host: a\r\n\r\n").await.unwrap();
        let mut got = Vec::new();
        read_until(stream, &mut got, b"ok\n").await;
    }
    let mut extra = tokio::net::TcpStream::connect(admin).await.unwrap();
    extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let early = tokio::time::timeout(Duration::from_millis(300), extra.read(&mut buf)).await;
    assert!(early.is_err(), "served beyond the admin connection limit");
    drop(held.pop());
    let n = tokio::time::timeout(READ_TIMEOUT, extra.read(&mut buf))
        .await
        .expect("served once a slot freed")
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200 "));
}

#[tokio::test]
async fn clients_that_pipeline_and_never_read_cannot_hold_the_admin_listener() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start(
        &[
            "[server]\nadmin = \"127.0.0.1:0\"\nwrite-timeout = \"1s\"\n\n".to_string(),
            route("/", HELLO, ""),
        ]
        .concat(),
    )
    .await;
    let admin = server.admin.expect("an admin listener");
    // As many clients as the listener serves at once, each with a small receive buffer,
    // pipelining 200 scrapes and never reading an answer.
    let pipeline = b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n".repeat(200);
    let mut held = Vec::new();
    // 64: the admin listener's connection limit (MAX_ADMIN_CONNECTIONS).
    for _ in 0..64 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut stream = socket.connect(admin).await.unwrap();
        stream.write_all(&pipeline).await.unwrap();
        held.push(stream);
    }
    // A prober on a new connection is answered at all (within the test's bound; each
    // stuck connection is cut off after write-timeout).
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(admin).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        answer
    };
    let answer = tokio::time::timeout(Duration::from_secs(8), probe)
        .await
        .expect("/healthz did not answer while clients held the admin listener");
    assert!(answer.starts_with(b"HTTP/1.1 200 "), "{answer:?}");
    drop(held);
}
