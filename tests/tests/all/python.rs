//! Python WSGI applications, unmodified, as components: guest-examples/python built with
//! `cheroot-wasm build-python` (the library function behind it), served by cheroot-wasm, and
//! the Flask app compared with the real cheroot serving the very same file natively.
//!
//! Needs componentize-py, Flask and cheroot (`scripts/test` and `.ci/run` install them,
//! pinned).

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flask_answers_exactly_as_under_cheroot() {
    let (flask, plain) = std::thread::scope(|s| {
        let flask = s.spawn(|| build_python_example("flask_app:app", "flask_app", None));
        let plain = s.spawn(|| build_python_example("hello_wsgi", "hello_wsgi", None));
        (flask.join().unwrap(), plain.join().unwrap())
    });
    let routes = [
        route("/", flask.to_str().unwrap(), ""),
        route("/wsgi", plain.to_str().unwrap(), ""),
    ]
    .concat();
    let server = TestServer::start(&routes).await;
    let cheroot = Cheroot::start("flask_app:app", &python_examples(), &[]).await;

    let form = "name=Ada&lang=py";
    let json = r#"{"b": [1, 2], "a": "x"}"#;
    let requests = [
        "GET / HTTP/1.1\r\nHost: t\r\n".to_string(),
        "GET /greet?name=Ada%20L HTTP/1.1\r\nHost: t\r\n".into(),
        format!(
            "POST /form HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ),
        format!(
            "POST /json HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
            json.len()
        ),
        "GET /cookie HTTP/1.1\r\nHost: t\r\nCookie: visits=3\r\n".into(),
        "GET /old HTTP/1.1\r\nHost: t\r\n".into(),
        "GET /stream HTTP/1.1\r\nHost: t\r\n".into(),
        "GET /teapot HTTP/1.1\r\nHost: t\r\n".into(),
        "GET /missing HTTP/1.1\r\nHost: t\r\n".into(),
        "GET /boom HTTP/1.1\r\nHost: t\r\n".into(),
        "GET / HTTP/1.0\r\n".into(),
    ];
    let mut statuses: Vec<u16> = Vec::new();
    for request in &requests {
        let request = if request.contains("\r\n\r\n") {
            request.replacen("\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1)
        } else {
            format!("{request}Connection: close\r\n\r\n")
        };
        let ours = parse_one(&raw(server.addr, request.as_bytes()).await);
        let theirs = parse_one(&raw(cheroot.addr, request.as_bytes()).await);
        assert_eq!(comparable(&ours), comparable(&theirs), "for {request:?}");
        statuses.push(ours.status);
    }
    // Both servers really ran the app (equal answers could otherwise be equal failures).
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 200, 302, 200, 418, 404, 500, 200]
    );
    let cookie = parse_one(
        &raw(
            server.addr,
            b"GET /cookie HTTP/1.1\r\nHost: t\r\nCookie: visits=3\r\nConnection: close\r\n\r\n",
        )
        .await,
    );
    assert_eq!(cookie.text(), "visits before: 3\n");
    assert!(
        cookie
            .header("set-cookie")
            .unwrap()
            .starts_with("visits=4;")
    );

    // HEAD: the same head, and (unlike cheroot, which sends the body) no body.
    let head = b"HEAD /greet HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let ours = parse_all(&raw(server.addr, head).await, true).0.remove(0);
    let theirs = parse_all(&raw(cheroot.addr, head).await, true).0.remove(0);
    assert_eq!(ours.status, theirs.status);
    assert_eq!(
        ours.header("content-length"),
        theirs.header("content-length")
    );
    assert!(ours.body.is_empty());

    // The plain WSGI app: PEP 3333 types and wsgi.input, through the adapter.
    let env = server.get("/wsgi/x?q=1").await.text();
    for line in [
        "SCRIPT_NAME=/wsgi",
        "PATH_INFO=/x",
        "QUERY_STRING=q=1",
        "wsgi.version=(1, 0)",
        "wsgi.input_terminated=True",
    ] {
        assert!(
            env.lines().any(|l| l == line),
            "{line:?} missing from:\n{env}"
        );
    }
    let upload = b"POST /wsgi/upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\na\nb\n\r\n2\r\nc\n\r\n0\r\n\r\n";
    assert_eq!(
        parse_one(&raw(server.addr, upload).await).text(),
        "6 bytes, 3 lines\n"
    );
    let lines = b"POST /wsgi/lines HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\nConnection: close\r\n\r\na\nb\nc\n";
    assert_eq!(
        parse_one(&raw(server.addr, lines).await).text(),
        "3 lines\n"
    );
    let generator = server.get("/wsgi/generator").await;
    assert_eq!(generator.text(), "chunk 0\nchunk 1\nchunk 2\n");
    assert_eq!(generator.header("transfer-encoding"), Some("chunked"));
    Box::pin(lists_arrive_whole(&server)).await;
    assert_eq!(server.get("/wsgi/raise").await.status, 500);
    server.assert_alive("/wsgi/").await;
}

/// Lists: a small one goes back whole with the call, a large one (over 1 MiB) chunk by
/// chunk; both arrive exactly.
async fn lists_arrive_whole(server: &TestServer) {
    for (n, size) in [(1, 5), (3, 5), (3, 600_000), (0, 1)] {
        let list = server.get(&format!("/wsgi/list?{n},{size}")).await;
        let want: Vec<u8> = (0..n)
            .flat_map(|i| std::iter::repeat_n(b'A' + (i % 26) as u8, size))
            .collect();
        assert_eq!(list.status, 200);
        assert!(
            list.body == want,
            "{n} chunks of {size}: {} bytes",
            list.body.len()
        );
    }
}

/// Request after request on one warm instance, without Python's cycle collector: the host
/// bounds the live resources an instance holds (1,024), so every request's handles must
/// come back. The adapter gives them back when the body ends or the application raises;
/// under load, leaving them to Python's own finalisation let a warm Flask instance reach
/// the bound now and then (a 500 about every 460 requests in `wrk -c1` on a release build).
#[tokio::test]
async fn a_warm_python_instance_releases_each_requests_handles() {
    let plain = build_python_example("hello_wsgi", "hello_wsgi_warm", None);
    let server =
        TestServer::start(&route("/", plain.to_str().unwrap(), "max-concurrency = 1")).await;
    // Without the cycle collector (as some deployments run), nothing but the adapter gives
    // them back.
    assert_eq!(server.get("/gc-off").await.status, 200);
    for i in 0..700 {
        let (path, status) = if i % 7 == 0 {
            ("/raise", 500)
        } else {
            ("/x", 200)
        };
        assert_eq!(server.get(path).await.status, status, "request {i}");
    }
}

/// Modules a view imports only when a request comes (`import json` in a function,
/// `importlib.import_module("decimal")`) are in the component: build-python's import scan
/// found them. A module that exists nowhere is a 500, as under any server (the adapter also
/// logs one line naming it, with the `--include` that would add it).
#[tokio::test]
async fn lazily_imported_modules_are_in_the_component() {
    let lazy = build_python_example("lazy_app:application", "lazy_app", None);
    let server = TestServer::start(&route("/", lazy.to_str().unwrap(), "")).await;
    let json = server.get("/json").await;
    assert_eq!(
        (json.status, json.text()),
        (200, "{\"lazy\": true}\n".into())
    );
    let decimal = server.get("/decimal").await;
    assert_eq!((decimal.status, decimal.text()), (200, "0.3\n".into()));
    assert_eq!(server.get("/missing").await.status, 500);
    // A module that touched the network while it was imported at build time left nothing
    // behind that breaks the guest's network at run time.
    let resolved = server.get("/resolve").await;
    assert_eq!(
        (resolved.status, resolved.text()),
        (200, "127.0.0.1\n".into())
    );
    server.assert_alive("/").await;
}
