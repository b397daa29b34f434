//! Bind forms, head limits and timeouts, reload and graceful shutdown under load: the
//! production side of the server, through real sockets.

use crate::common::*;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

/// `GET path` over a UNIX socket: the whole response.
async fn unix_get(path: &std::path::Path, target: &str) -> Response {
    let mut stream = UnixStream::connect(path).await.unwrap();
    stream
        .write_all(
            format!("GET {target} HTTP/1.1\r\nHost: sock\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(READ_TIMEOUT, stream.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    parse_one(&out)
}

#[tokio::test]
async fn unix_socket_beside_tcp_with_mode_and_empty_remote_addr() {
    let dir = std::env::temp_dir().join(format!("cheroot-wasm-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("app.sock");
    // A stale socket file from a crashed server is replaced.
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    let bind = format!("unix:{}", sock.display());
    let routes = format!(
        "[server]\nsocket-mode = \"0660\"\n\n{}",
        route("/", ENVIRON, "")
    );
    let server = TestServer::start_bound(&routes, |_| {}, &["127.0.0.1:0", &bind]).await;
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);

    let env = unix_get(&sock, "/x").await.json();
    assert_eq!(
        env["REMOTE_ADDR"], "",
        "cheroot's REMOTE_ADDR over a UNIX socket"
    );
    assert_eq!(env["REMOTE_PORT"], "");
    assert_eq!(env["SERVER_PORT"], "");
    assert_eq!(env["SERVER_NAME"], "sock");
    // The TCP listener serves too.
    assert_eq!(server.get("/x").await.json()["REMOTE_ADDR"], "127.0.0.1");

    // curl, as operators check it.
    let out = tokio::process::Command::new("curl")
        .args(["-s", "--unix-socket"])
        .arg(&sock)
        .arg("http://localhost/curl")
        .output()
        .await;
    if let Ok(out) = out {
        let env: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(env["PATH_INFO"], "/curl");
    }

    server.stop().await;
    assert!(!sock.exists(), "the socket file is removed on exit");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn ipv6_any_is_dual_stack() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here: skipped");
        return;
    }
    let server = TestServer::start_bound(&route("/", ENVIRON, ""), |_| {}, &["[::]:0"]).await;
    let port = server.addr.port();
    for (addr, remote) in [("127.0.0.1", "127.0.0.1"), ("[::1]", "::1")] {
        let target: std::net::SocketAddr = format!("{addr}:{port}").parse().unwrap();
        let raw = raw(
            target,
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(parse_one(&raw).json()["REMOTE_ADDR"], remote, "{addr}");
    }
}

#[tokio::test]
async fn reuse_port_lets_two_servers_share_a_port() {
    let routes = format!("[server]\nreuse-port = true\n\n{}", route("/", HELLO, ""));
    let first = TestServer::start_bound(&routes, |_| {}, &["127.0.0.1:0"]).await;
    let same = format!("127.0.0.1:{}", first.addr.port());
    let second = TestServer::start_bound(&routes, |_| {}, &[&same]).await;
    assert_eq!(second.addr, first.addr);
    second.assert_alive("/").await;
    // Without reuse-port the port is taken.
    let file = first.dir.join("plain.toml");
    std::fs::write(&file, route("/", HELLO, "")).unwrap();
    let config = cheroot_wasm::Config::load(&file).unwrap();
    let options = cheroot_wasm::ServeOptions {
        bind: vec![same],
        cache_dir: Some(CACHE_DIR.into()),
        access_log: Some("off".into()),
        ..Default::default()
    };
    let error = match cheroot_wasm::Server::bind(config, options).await {
        Ok(_) => panic!("bound a port in use without reuse-port"),
        Err(e) => format!("{e:#}"),
    };
    assert!(error.contains("Address already in use"), "{error}");
}

#[tokio::test]
async fn head_limits_give_431_and_414() {
    let routes = format!(
        "[server]\nmax-header-size = \"8KiB\"\nmax-uri-length = \"1KiB\"\nmax-headers = 20\n\n{}",
        route("/", HELLO, "")
    );
    let server = TestServer::start(&routes).await;
    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(10_000)
    );
    let r = parse_one(&raw_until_close(server.addr, big_header.as_bytes()).await);
    assert_eq!(r.status, 431, "{r:?}");

    let many: String = (0..30).map(|i| format!("X-H{i}: v\r\n")).collect();
    let too_many = format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    let r = parse_one(&raw_until_close(server.addr, too_many.as_bytes()).await);
    assert_eq!(r.status, 431, "{r:?}");

    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "u".repeat(2000));
    let r = parse_one(&raw_until_close(server.addr, long_uri.as_bytes()).await);
    assert_eq!(r.status, 414, "{r:?}");
    assert_eq!(r.header("connection"), Some("close"));

    // Just under every limit is served.
    let fine = format!(
        "GET /{} HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "u".repeat(900),
        "a".repeat(6000)
    );
    assert_eq!(
        parse_one(&raw(server.addr, fine.as_bytes()).await).status,
        200
    );
}

#[tokio::test]
async fn a_slow_head_gets_408_an_idle_keep_alive_closes_quietly() {
    let routes = format!(
        "[server]\nheader-timeout = \"300ms\"\n\n{}",
        route("/", HELLO, "")
    );
    let server = TestServer::start(&routes).await;

    // Slowloris: part of a head, then nothing.
    let got = raw_until_close(server.addr, b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ").await;
    assert_eq!(
        got,
        b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );

    // A fresh connection that never sends a byte: cheroot answers 408 too.
    let got = raw_until_close(server.addr, b"").await;
    assert!(
        got.starts_with(b"HTTP/1.1 408 "),
        "{:?}",
        String::from_utf8_lossy(&got)
    );

    // After a response, an idle keep-alive connection is closed without a word.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let mut out = Vec::new();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    read_until(&mut stream, &mut out, b"Hello").await;
    let started = std::time::Instant::now();
    let rest = read_to_close(&mut stream).await;
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    assert!(started.elapsed() >= Duration::from_millis(200));

    // A head that arrives in pieces, each within the limit but not in total, is cut off.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    for piece in [&b"GET / HTTP/1.1\r\n"[..], b"Host: x\r\n", b"X-A: 1\r\n"] {
        stream.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let got = read_to_close(&mut stream).await;
    assert!(
        got.starts_with(b"HTTP/1.1 408 "),
        "{:?}",
        String::from_utf8_lossy(&got)
    );

    // A long request is not a slow head: the timeout is for heads only.
    let routes = format!(
        "[server]\nheader-timeout = \"200ms\"\n\n{}",
        route("/", ERRORS, "")
    );
    let slow_app = TestServer::start(&routes).await;
    assert_eq!(slow_app.get("/sleep/600").await.status, 200);
}

/// Clients that send requests one after another over keep-alive connections until told to
/// stop; every answer must be a 200 with the right body.
struct Load {
    ok: Arc<AtomicUsize>,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<Result<(), String>>>,
}

impl Load {
    fn start(addr: std::net::SocketAddr, path: &'static str, clients: usize) -> Load {
        let ok = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let tasks = (0..clients)
            .map(|_| {
                let ok = ok.clone();
                let stopped = stopped.clone();
                tokio::spawn(async move {
                    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
                    while !*stopped.borrow() {
                        let request = format!("GET {path} HTTP/1.1\r\nHost: load\r\n\r\n");
                        stream
                            .write_all(request.as_bytes())
                            .await
                            .map_err(|e| format!("write: {e}"))?;
                        let mut out = Vec::new();
                        let mut buf = [0u8; 4096];
                        loop {
                            let (responses, _) = parse_all(&out, false);
                            if responses.first().is_some_and(|r| r.complete) {
                                let r = &responses[0];
                                if r.status != 200 {
                                    return Err(format!("got {r:?}"));
                                }
                                break;
                            }
                            let n = tokio::time::timeout(READ_TIMEOUT, stream.read(&mut buf))
                                .await
                                .map_err(|_| "timed out".to_string())?
                                .map_err(|e| format!("read: {e}"))?;
                            if n == 0 {
                                // Closed between requests (shutdown): fine only if the
                                // request was never answered because it was never taken.
                                return if out.is_empty() {
                                    Ok(())
                                } else {
                                    Err(format!(
                                        "closed mid-response: {:?}",
                                        String::from_utf8_lossy(&out)
                                    ))
                                };
                            }
                            out.extend_from_slice(&buf[..n]);
                        }
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        Load { ok, stop, tasks }
    }

    async fn finish(self) -> usize {
        let _ = self.stop.send(true);
        for task in self.tasks {
            task.await.unwrap().unwrap();
        }
        self.ok.load(Ordering::Relaxed)
    }
}

#[tokio::test]
async fn reload_under_load_loses_no_request_and_refuses_a_broken_config() {
    let routes = route("/", HELLO, "") + &route("/slow", ERRORS, "");
    let server = TestServer::start(&routes).await;
    let file = server.dir.join("routes.toml");
    let load = Load::start(server.addr, "/", 8);
    // A request that is running when the reload happens finishes on the old site.
    let slow = tokio::spawn({
        let addr = server.addr;
        async move {
            parse_one(
                &raw(
                    addr,
                    b"GET /slow/sleep/500 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                )
                .await,
            )
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;

    // A new route appears; the old ones go on answering.
    std::fs::write(&file, routes.clone() + &route("/env", ENVIRON, "")).unwrap();
    server.live.reload().await.unwrap();
    assert_eq!(server.get("/env/x").await.json()["PATH_INFO"], "/x");

    // A broken routes.toml is refused with the reason; the running routes stay.
    std::fs::write(
        &file,
        "[[route]]\npath = \"/\"\ncomponent = \"missing.wasm\"\n",
    )
    .unwrap();
    let error = format!("{:#}", server.live.reload().await.err().expect("refused"));
    assert!(error.contains("missing.wasm"), "{error}");
    server.assert_alive("/env/y").await;

    for _ in 0..3 {
        std::fs::write(&file, &routes).unwrap();
        server.live.reload().await.unwrap();
    }
    assert_eq!(
        server.get("/env/x").await.text(),
        "Hello, world!\n",
        "the route is gone again: `/` answers"
    );
    assert_eq!(slow.await.unwrap().status, 200);
    let answered = load.finish().await;
    assert!(
        answered > 50,
        "only {answered} requests ran through the reloads"
    );
}

#[tokio::test]
async fn graceful_shutdown_under_load_finishes_what_it_took() {
    let routes = route("/", HELLO, "") + &route("/slow", ERRORS, "");
    let mut server = TestServer::start(&routes).await;
    let load = Load::start(server.addr, "/", 8);
    let slow: Vec<_> = (0..4)
        .map(|_| {
            let addr = server.addr;
            tokio::spawn(async move {
                parse_one(
                    &raw(
                        addr,
                        b"GET /slow/sleep/700 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    )
                    .await,
                )
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let addr = server.addr;
    server.begin_stop();
    // Every request already running gets its whole answer.
    for request in slow {
        assert_eq!(request.await.unwrap().status, 200);
    }
    server.finish_stop().await;
    // The load clients saw only complete responses, then a close between requests.
    let answered = load.finish().await;
    assert!(answered > 10, "only {answered}");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

#[tokio::test]
async fn shutdown_timeout_cuts_off_what_runs_longer() {
    let routes = format!(
        "[server]\nshutdown-timeout = \"300ms\"\n\n{}",
        route("/", ERRORS, "")
    );
    let mut server = TestServer::start(&routes).await;
    let addr = server.addr;
    let slow = tokio::spawn(async move {
        raw(
            addr,
            b"GET /sleep/5000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    server.begin_stop();
    server.finish_stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "waited {:?} for a 5 s request",
        started.elapsed()
    );
    assert!(slow.await.unwrap().is_empty(), "cut off without an answer");
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_with_a_goaway() {
    let routes = format!(
        "[server]\nheader-timeout = \"300ms\"\n\n{}",
        route("/", HELLO, "")
    );
    let server = TestServer::start(&routes).await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    let conn = tokio::spawn(conn);
    let request = http::Request::get(format!("http://{}/", server.addr))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    assert_eq!(sender.send_request(request).await.unwrap().status(), 200);
    // Idle past header-timeout: the server says GOAWAY and the connection ends cleanly.
    let ended = tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .expect("the idle connection was not closed");
    let ended = ended.unwrap();
    assert!(ended.is_ok(), "closed without a GOAWAY: {ended:?}");
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_after_write_timeout() {
    let routes = format!(
        "[server]\nwrite-timeout = \"300ms\"\n\n{}",
        route("/", STREAM, "max-concurrency = 1")
    );
    let server = TestServer::start(&routes).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    // An endless body, and a client that reads none of it for a while.
    stream
        .write_all(b"GET /?n=0&size=65536 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut received = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match tokio::time::timeout(READ_TIMEOUT, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => received += n,
            Err(_) => panic!("neither data nor a close"),
        }
        assert!(received < 64 << 20, "the endless body was never cut off");
    }
    // The route's only instance is free again.
    let r = parse_one(
        &raw(
            server.addr,
            b"GET /?n=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await,
    );
    assert_eq!((r.status, r.text().as_str()), (200, "chunk 0\n"));
}

/// An HTTP/2 client that sets its flow-control window to zero and never opens it takes no
/// data, yet never makes a write block: write-timeout counts time without progress on any
/// stream, so the connection is closed and the response it held is let go.
#[tokio::test]
async fn an_http2_client_that_never_opens_its_window_is_cut_off() {
    let routes = format!(
        "[server]\nwrite-timeout = \"500ms\"\n\n{}",
        route("/", STREAM, "max-concurrency = 1")
    );
    let server = TestServer::start(&routes).await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .initial_stream_window_size(0)
            .handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let request = http::Request::get(format!("http://{}/?n=0&size=65536", server.addr))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    // The body is never read (and the window never opened).
    let ended = tokio::time::timeout(Duration::from_secs(10), conn).await;
    assert!(ended.is_ok(), "the stalled connection was kept open");
    drop(response);
    // The route's only instance is free again.
    let r = parse_one(
        &raw(
            server.addr,
            b"GET /?n=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await,
    );
    assert_eq!((r.status, r.text().as_str()), (200, "chunk 0\n"));
}
