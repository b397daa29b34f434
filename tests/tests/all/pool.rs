//! Instances: warm reuse and fresh-per-request, their WSGI flags, isolation between
//! requests, and the concurrency limit with its queue.

use std::time::Duration;

use crate::common::*;

#[tokio::test]
async fn warm_and_fresh_instances_say_so_in_the_environ() {
    let server = TestServer::start(
        &[
            route("/warm", ENVIRON, ""),
            route("/fresh", ENVIRON, "instances = \"fresh\""),
        ]
        .concat(),
    )
    .await;
    let warm = server.get("/warm").await.json();
    let fresh = server.get("/fresh").await.json();
    assert_eq!(
        (
            warm["wsgi.run_once"].as_str(),
            fresh["wsgi.run_once"].as_str()
        ),
        (Some("false"), Some("true"))
    );
    for env in [&warm, &fresh] {
        assert_eq!(env["wsgi.multithread"], "false");
        assert_eq!(env["wsgi.multiprocess"], "true");
    }
}

#[tokio::test]
async fn a_warm_instance_never_sees_the_previous_request() {
    let server = TestServer::single(ENVIRON, "max-concurrency = 1").await;
    // The same single instance serves both; the second must see only its own input.
    let first = parse_one(&raw(server.addr, b"POST /?read=1 HTTP/1.1\r\nHost: t\r\nX-First: 1\r\nContent-Length: 6\r\nConnection: close\r\n\r\nsecret").await).json();
    assert_eq!(first["wsgi.input.body"], "secret");
    let second = parse_one(&raw(server.addr, b"POST /?read=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nother").await).json();
    assert_eq!(second["wsgi.input.body"], "other");
    assert!(!second.contains_key("HTTP_X_FIRST"));
}

#[tokio::test]
async fn a_trapped_instance_is_replaced() {
    let server = TestServer::single(ERRORS, "max-concurrency = 1").await;
    for _ in 0..3 {
        assert_eq!(server.get("/trap").await.status, 500);
        assert_eq!(server.get("/reason").await.text(), "ok");
    }
}

#[tokio::test]
async fn beyond_max_concurrency_requests_queue_then_get_503() {
    let server = TestServer::start(
        &[
            route("/", HELLO, ""),
            route(
                "/errors",
                ERRORS,
                "max-concurrency = 2\nqueue-timeout = \"300ms\"",
            ),
        ]
        .concat(),
    )
    .await;
    let addr = server.addr;
    // Two slow requests take both instances; a third waits past its queue timeout.
    let slow: Vec<_> = (0..2)
        .map(|_| {
            tokio::spawn(async move {
                parse_one(
                    &raw(
                        addr,
                        b"GET /errors/sleep/1500 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                    )
                    .await,
                )
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let overflow = server.get("/errors/sleep/10").await;
    assert_eq!(overflow.status, 503, "{overflow:?}");
    assert_eq!(overflow.header("retry-after"), Some("1"));
    // Another route is not slowed by this one's queue.
    let started = std::time::Instant::now();
    server.assert_alive("/").await;
    assert!(started.elapsed() < Duration::from_millis(500));
    for r in slow {
        assert_eq!(
            r.await.unwrap().text(),
            "slept\n",
            "the queued work itself succeeds"
        );
    }
    // A request that waits for less than the queue timeout gets its turn.
    let queued = tokio::spawn(async move {
        parse_one(
            &raw(
                addr,
                b"GET /errors/sleep/100 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            )
            .await,
        )
    });
    let also = tokio::spawn(async move {
        parse_one(
            &raw(
                addr,
                b"GET /errors/sleep/100 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            )
            .await,
        )
    });
    let third = server.get("/errors/sleep/100").await;
    assert_eq!(
        [
            queued.await.unwrap().status,
            also.await.unwrap().status,
            third.status
        ],
        [200, 200, 200]
    );
}

/// `[server] max-instances` bounds the instances alive at once across routes: a route that
/// needs one when all are taken drops the least recently used idle instance of another
/// route; when none is idle, its request waits for one to finish (then is served) or gets
/// 503 after its queue-timeout. The other routes' idle instances are never more than that.
#[tokio::test]
async fn max_instances_is_shared_by_every_route_and_idle_ones_make_room() {
    // On the heap: in a debug build this test's future is larger than the thread's stack.
    Box::pin(max_instances_shared()).await;
}

async fn max_instances_shared() {
    let server = TestServer::start(
        &[
            "[server]\nadmin = \"127.0.0.1:0\"\nmax-instances = 2\n\n".to_string(),
            route("/a", HELLO, ""),
            route("/b", ERRORS, ""),
            route("/c", ENVIRON, "queue-timeout = \"400ms\""),
        ]
        .concat(),
    )
    .await;
    let stats = || async { admin_get(&server, "/stats").await.json() };
    let count = |stats: &serde_json::Map<String, serde_json::Value>, route: &str, what: &str| {
        stats["routes"][route]["instances"][what].as_u64().unwrap()
    };
    server.assert_alive("/a").await;
    server.assert_alive("/b/empty").await;
    // Both places are taken by idle instances: /c makes room by dropping /a's, the older.
    server.assert_alive("/c").await;
    let s = stats().await;
    assert_eq!(
        [
            count(&s, "/a", "idle"),
            count(&s, "/b", "idle"),
            count(&s, "/c", "idle")
        ],
        [0, 1, 1],
        "{s:#?}"
    );
    assert_eq!(count(&s, "/a", "evicted"), 1, "{s:#?}");
    assert_eq!(
        s["instances"],
        serde_json::json!({"alive": 2, "max": 2, "waiting": 0}),
        "{s:#?}"
    );
    let metrics = admin_get(&server, "/metrics").await.text();
    assert!(
        metrics.contains("cheroot_wasm_server_instances{state=\"max\"} 2"),
        "{metrics}"
    );

    // Both places busy: /c's request waits, and is served when /b's finishes.
    let addr = server.addr;
    let slow = |ms: u64| {
        tokio::spawn(async move {
            let request =
                format!("GET /b/sleep/{ms} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
            parse_one(&raw(addr, request.as_bytes()).await)
        })
    };
    // Two slow /b requests hold both places while /c asks for one; /c's answer.
    let server = &server;
    let contend = |ms: u64| async move {
        let (first, second) = (slow(ms), slow(ms));
        let mut polls = 0;
        while count(&stats().await, "/b", "busy") < 2 {
            polls += 1;
            assert!(polls < 200, "the two slow requests never ran together");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let answer = server.get("/c").await;
        for slow in [first, second] {
            assert_eq!(slow.await.unwrap().status, 200);
        }
        answer
    };
    let waited = contend(300).await;
    assert_eq!(waited.status, 200, "{waited:?}");
    let s = stats().await;
    assert!(count(&s, "/b", "evicted") >= 1, "{s:#?}");
    assert!(
        count(&s, "/b", "idle") + count(&s, "/c", "idle") <= 2,
        "{s:#?}"
    );

    // Busy past /c's queue-timeout: 503, as for a full route.
    let refused = contend(1500).await;
    assert_eq!(refused.status, 503, "{refused:?}");
    server.assert_alive("/c").await;
}
