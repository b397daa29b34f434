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
        "{}{}{}",
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
    // A granted name that resolves to loopback is not followed; cloud metadata is out.
    let text = get(format!("/out/connect/localhost:{granted}")).await;
    assert!(text.starts_with("refused: "), "{text}");
    assert!(!text.contains("pong"), "{text}");
    let text = get("/out/connect/169.254.169.254:80".into()).await;
    assert!(text.starts_with("refused: PermissionDenied"), "{text}");
    // The host answers lookups itself: a granted name is resolved (here to loopback only,
    // which is then not given out), ...
    let text = get("/out/lookup/localhost".into()).await;
    assert!(
        text.starts_with("refused: ") && !text.contains("PermissionDenied"),
        "{text}"
    );
    // ... a name that is not granted is refused without a DNS query.
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
