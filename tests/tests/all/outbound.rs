//! A route's `outbound` grant: the guest reaches exactly the TCP targets routes.toml lists,
//! by name or address, and nothing else — not another port, not loopback or cloud metadata
//! through a name, not DNS for other names, not UDP, not a listening socket — each refusal an
//! error the guest handles, the server and the other routes unaffected.

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::common::*;

/// A TCP service on 127.0.0.1 that answers each line with `reply`.
async fn service(reply: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(_)) = lines.next_line().await {
                    let _ = write.write_all(format!("{reply}\n").as_bytes()).await;
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn a_route_reaches_what_it_is_granted_and_nothing_else() {
    let granted = service("pong").await;
    let other = service("secret").await;
    let routes = format!(
        "[server]\nadmin = \"127.0.0.1:0\"\n\n{}{}{}",
        route(
            "/out",
            OUTBOUND,
            &format!(
                "outbound = [\"tcp://127.0.0.1:{granted}\", \"tcp://localhost:{granted}\", \"tcp://*:{other}\"]"
            )
        ),
        route("/none", OUTBOUND, ""),
        route("/", HELLO, ""),
    );
    let server = TestServer::start(&routes).await;
    let get = |path: String| {
        let server = &server;
        async move { server.get(&path).await.text() }
    };

    // The granted address and port.
    assert_eq!(
        get(format!("/out/connect/127.0.0.1:{granted}")).await,
        "ok: pong\n"
    );
    // Another port of the same host, and the same port from a route without the grant.
    for path in [
        format!("/out/connect/127.0.0.1:{}", granted + 1),
        format!("/none/connect/127.0.0.1:{granted}"),
    ] {
        let text = get(path.clone()).await;
        assert!(
            text.starts_with("refused: PermissionDenied"),
            "{path}: {text}"
        );
    }
    // A wildcard grant never leads to loopback: only a literal address does.
    let text = get(format!("/out/connect/127.0.0.1:{other}")).await;
    assert!(text.starts_with("refused: PermissionDenied"), "{text}");
    // Cloud metadata is out.
    let text = get("/out/connect/169.254.169.254:80".into()).await;
    assert!(text.starts_with("refused: PermissionDenied"), "{text}");
    // The host answers lookups itself: a name that is not granted is refused without a
    // DNS query.
    for name in [
        "example.com",
        "metadata.google.internal",
        "exfiltrate.attacker.example",
    ] {
        let text = get(format!("/out/lookup/{name}")).await;
        assert!(text.starts_with("refused: "), "{name}: {text}");
    }
    // No UDP, no listening, with or without a grant.
    for path in [
        format!("/out/udp/127.0.0.1:{granted}"),
        "/out/listen".to_string(),
        "/none/listen".to_string(),
    ] {
        let text = get(path.clone()).await;
        assert!(text.starts_with("refused: "), "{path}: {text}");
    }
    // The granted target still works, and so does everything else.
    assert_eq!(
        get(format!("/out/connect/127.0.0.1:{granted}")).await,
        "ok: pong\n"
    );
    server.assert_alive("/").await;
}

#[tokio::test]
async fn a_name_leads_to_loopback_only_where_listed_and_absurd_names_are_refused() {
    let granted = service("pong").await;
    let routes = format!(
        "{}{}{}",
        route(
            "/out",
            OUTBOUND,
            &format!("outbound = [\"tcp://localhost:{granted}\", \"tcp://127.0.0.1:{granted}\"]")
        ),
        route(
            "/name",
            OUTBOUND,
            &format!("outbound = [\"tcp://localhost:{granted}\"]")
        ),
        route("/none", OUTBOUND, ""),
    );
    let server = TestServer::start(&routes).await;
    let get = |path: String| {
        let server = &server;
        async move { server.get(&path).await.text() }
    };
    // A granted name that resolves to loopback is followed to the address the grant lists
    // literally, and only to it ...
    assert_eq!(get("/out/lookup/localhost".into()).await, "ok: 127.0.0.1\n");
    assert_eq!(
        get(format!("/out/connect/localhost:{granted}")).await,
        "ok: pong\n"
    );
    // ... and not followed where no address is listed.
    let text = get(format!("/name/connect/localhost:{granted}")).await;
    assert!(text.starts_with("refused: "), "{text}");
    assert!(!text.contains("pong"), "{text}");
    // The host resolves the name (here to loopback only, which it does not give out).
    let text = get("/name/lookup/localhost".into()).await;
    assert!(
        text.starts_with("refused: ") && !text.contains("PermissionDenied"),
        "{text}"
    );
    // A name longer than DNS allows is refused at once, as an invalid argument (not a
    // refusal to log and keep).
    let started = std::time::Instant::now();
    let text = get(format!("/none/lookup/{}", "a".repeat(300))).await;
    assert!(
        text.starts_with("refused: ") && !text.contains("PermissionDenied"),
        "{text}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}

#[tokio::test]
async fn outgoing_http_reaches_granted_origins_only_and_https_is_verified() {
    use rcgen::{CertificateParams, KeyPair};
    // A self-signed certificate for 127.0.0.1: the operator's `outbound-ca`.
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let acceptor = tls_acceptor(&cert, &key);
    // Another self-signed certificate for the same address, which the CA file does not hold.
    let stranger_key = KeyPair::generate().unwrap();
    let stranger = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&stranger_key)
        .unwrap();
    let impostor = http_upstream("impostor", Some(tls_acceptor(&stranger, &stranger_key))).await;
    let plain = http_upstream("plain upstream", None).await;
    let secure = http_upstream("secure upstream", Some(acceptor)).await;
    let other = http_upstream("not granted", None).await;

    let routes = format!(
        "[server]\noutbound-ca = \"ca.pem\"\n\n{}{}",
        route(
            "/out",
            HTTP_HELLO,
            &format!(
                "outbound = [\"http://127.0.0.1:{plain}\", \"https://127.0.0.1:{secure}\", \"http://localhost:{other}\", \"https://127.0.0.1:{impostor}\"]"
            )
        ),
        route("/none", HTTP_HELLO, ""),
    );
    let pem = cert.pem();
    let server = TestServer::start_with(&routes, |dir| {
        std::fs::write(dir.join("ca.pem"), &pem).unwrap()
    })
    .await;
    let fetch = |url: String| {
        let server = &server;
        async move { server.get(&format!("/out/outbound?url={url}")).await.text() }
    };
    assert_eq!(
        fetch(format!("http://127.0.0.1:{plain}/x")).await,
        "answered: 200 plain upstream\n"
    );
    assert_eq!(
        fetch(format!("https://127.0.0.1:{secure}/")).await,
        "answered: 200 secure upstream\n"
    );
    // A granted origin whose certificate does not chain to the CA file.
    let text = fetch(format!("https://127.0.0.1:{impostor}/")).await;
    assert!(text.starts_with("refused: ErrorCode::Tls"), "{text}");
    // The scheme is part of the grant: plain HTTP to the TLS port, TLS to the plain one.
    for url in [
        format!("http://127.0.0.1:{secure}/"),
        format!("https://127.0.0.1:{plain}/"),
        // Not granted at all, and a granted name that resolves to loopback.
        format!("http://127.0.0.1:{other}/"),
        format!("http://localhost:{other}/"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        // User-info in the authority would reach the upstream in Host.
        format!("http://evil@127.0.0.1:{plain}/x"),
    ] {
        let text = fetch(url.clone()).await;
        assert_eq!(text, "refused: ErrorCode::HttpRequestDenied\n", "{url}");
    }
    // A route without the grant.
    let text = server
        .get(&format!("/none/outbound?url=http://127.0.0.1:{plain}/"))
        .await
        .text();
    assert_eq!(text, "refused: ErrorCode::HttpRequestDenied\n");
}

#[tokio::test]
async fn outbound_connections_are_bounded_per_route_and_given_back() {
    let port = service("pong").await;
    let grant = format!("outbound = [\"tcp://127.0.0.1:{port}\"]\nmax-outbound-connections = 3");
    let routes = format!(
        "{}{}",
        route("/warm", OUTBOUND, &format!("{grant}\nmax-concurrency = 1")),
        route(
            "/fresh",
            OUTBOUND,
            &format!("{grant}\ninstances = \"fresh\"")
        ),
    );
    let server = TestServer::start(&routes).await;
    let get = |path: String| {
        let server = &server;
        async move { server.get(&path).await.text() }
    };
    // A warm instance keeps what it holds across requests; the route's bound holds.
    assert_eq!(
        get(format!("/warm/hold/2/127.0.0.1:{port}")).await,
        "ok: holding 2\n"
    );
    let text = get(format!("/warm/hold/2/127.0.0.1:{port}")).await;
    assert!(
        text.starts_with("refused: ") && text.ends_with("(holding 3)\n"),
        "{text}"
    );
    // Closed sockets are given back.
    assert_eq!(get("/warm/release".into()).await, "ok: released\n");
    assert_eq!(
        get(format!("/warm/hold/3/127.0.0.1:{port}")).await,
        "ok: holding 3\n"
    );
    // So are those of an instance that goes away with its sockets still open.
    for _ in 0..5 {
        let text = get(format!("/fresh/hold/3/127.0.0.1:{port}")).await;
        assert_eq!(text, "ok: holding 3\n");
    }
}

#[tokio::test]
async fn no_grant_through_a_name_or_a_wildcard_leads_back_into_the_server() {
    // This machine's address on its default route (no packet is sent).
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    probe
        .connect("10.255.255.255:9")
        .expect("a non-loopback interface, to reach the server as another host would");
    let local = probe.local_addr().unwrap().ip();
    assert!(!local.is_loopback(), "{local}");
    let port = std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let routes = format!(
        "{}{}",
        route(
            "/any",
            OUTBOUND,
            &format!("outbound = [\"tcp://*:{port}\"]")
        ),
        route(
            "/literal",
            OUTBOUND,
            &format!("outbound = [\"tcp://{local}:{port}\"]")
        ),
    );
    let bind = format!("0.0.0.0:{port}");
    let server = TestServer::start_bound(&routes, |_| {}, &[bind.as_str()]).await;
    let text = server
        .get(&format!("/any/connect/{local}:{port}"))
        .await
        .text();
    assert!(text.starts_with("refused: PermissionDenied"), "{text}");
    // Written literally, the operator means it: the guest reaches the server (and, as a
    // client, gets the 400 that `ping` earns).
    let text = server
        .get(&format!("/literal/connect/{local}:{port}"))
        .await
        .text();
    assert!(text.starts_with("ok: HTTP/1.1 400"), "{text}");
}

#[tokio::test]
async fn a_connect_that_is_never_answered_times_out_and_connections_are_metered() {
    // A listener that never accepts, with a full queue: the kernel drops further SYNs, so
    // a connect to it is never answered (as to a firewalled address).
    let silent = tokio::net::TcpSocket::new_v4().unwrap();
    silent.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let _silent = silent.listen(1).unwrap();
    let mut queued = Vec::new();
    loop {
        let connect = tokio::net::TcpStream::connect(silent_addr);
        match tokio::time::timeout(std::time::Duration::from_millis(300), connect).await {
            Ok(stream) => queued.push(stream.unwrap()),
            Err(_elapsed) => break,
        }
        assert!(queued.len() < 64, "the listener's queue never filled");
    }
    let echo = service("pong").await;
    let routes = format!(
        "[server]\nadmin = \"127.0.0.1:0\"\n\n{}",
        route(
            "/out",
            OUTBOUND,
            &format!(
                "outbound = [\"tcp://{silent_addr}\", \"tcp://127.0.0.1:{echo}\"]\noutbound-connect-timeout = \"1s\"\ntimeout = \"30s\""
            )
        ),
    );
    let server = TestServer::start(&routes).await;
    // Without the bound, the guest would wait for the kernel (two minutes), and the client
    // for the route's timeout.
    let response = server.get(&format!("/out/connect/{silent_addr}")).await;
    assert_eq!(response.status, 200);
    assert!(
        response.text().starts_with("refused: TimedOut"),
        "{}",
        response.text()
    );
    // The instance and the route are fine, and what went through was counted.
    assert_eq!(
        server
            .get(&format!("/out/connect/127.0.0.1:{echo}"))
            .await
            .text(),
        "ok: pong\n"
    );
    let request = "GET /stats HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n";
    let stats = parse_one(&raw(server.admin.unwrap(), request.as_bytes()).await).json();
    let out = &stats["routes"]["/out"];
    assert_eq!(out["outbound"]["tcp-connect"], 2, "{stats:#?}");
    assert_eq!(out["outbound_bytes"]["sent"], "ping\n".len(), "{stats:#?}");
    assert_eq!(
        out["outbound_bytes"]["received"],
        "pong\n".len(),
        "{stats:#?}"
    );
    assert!(
        out["outbound_seconds"].as_f64().unwrap() >= 1.0,
        "the timed-out socket was held for its second: {stats:#?}"
    );
    server.stop().await;
}
