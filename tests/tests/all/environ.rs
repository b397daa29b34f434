//! The environ a guest receives, read back through the `environ` guest.

use crate::common::*;
use serde_json::Value;

#[tokio::test]
async fn cgi_and_wsgi_keys() {
    let server = TestServer::start(&route("/app", ENVIRON, "")).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let client_port = stream.local_addr().unwrap().port();
    let request = "POST /app/a%20b%2fc/%E2%98%83?x=1&y=%20 HTTP/1.1\r\nHost: example.com:8080\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nX-Multi: a\r\nX-Multi: b\r\nX_Foo: spoof\r\nX-Foo: real\r\nConnection: close\r\n\r\nabc";
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
        .await
        .unwrap();
    let env = parse_one(&read_to_close(&mut stream).await).json();
    let expect = [
        ("REQUEST_METHOD", "POST"),
        ("SCRIPT_NAME", "/app"),
        ("PATH_INFO", "/a b%2Fc/\u{e2}\u{98}\u{83}"),
        ("QUERY_STRING", "x=1&y=%20"),
        ("REQUEST_URI", "/app/a%20b%2fc/%E2%98%83?x=1&y=%20"),
        ("CONTENT_TYPE", "text/plain"),
        ("CONTENT_LENGTH", "3"),
        ("SERVER_NAME", "example.com"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("SERVER_SOFTWARE", "cheroot-wasm/0.1.0"),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("HTTP_HOST", "example.com:8080"),
        ("HTTP_X_MULTI", "a, b"),
        ("HTTP_X_FOO", "real"),
        ("wsgi.version", "1.0"),
        ("wsgi.url_scheme", "http"),
        ("wsgi.multithread", "false"),
        ("wsgi.multiprocess", "true"),
        ("wsgi.run_once", "false"),
        ("wsgi.input_terminated", "true"),
    ];
    for (key, value) in expect {
        assert_eq!(env.get(key), Some(&Value::from(value)), "{key}");
    }
    assert_eq!(env["REMOTE_PORT"], client_port.to_string());
    assert_eq!(env["SERVER_PORT"], server.addr.port().to_string());
    for absent in [
        "HTTP_CONTENT_TYPE",
        "HTTP_CONTENT_LENGTH",
        "HTTP_X_FOO_SPOOF",
        "wsgi.input.body",
    ] {
        assert!(!env.contains_key(absent), "{absent} should not be there");
    }
}

#[tokio::test]
async fn http_10_without_host_or_body() {
    let server = TestServer::single(ENVIRON, "").await;
    let env = parse_one(&raw(server.addr, b"GET /x HTTP/1.0\r\n\r\n").await).json();
    assert_eq!(env["SERVER_PROTOCOL"], "HTTP/1.0");
    assert_eq!(env["SERVER_NAME"], "127.0.0.1");
    assert_eq!(env["SCRIPT_NAME"], "");
    assert_eq!(env["PATH_INFO"], "/x");
    assert_eq!(env["QUERY_STRING"], "");
    for absent in ["CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_HOST"] {
        assert!(!env.contains_key(absent), "{absent}");
    }
}

#[tokio::test]
async fn the_body_arrives_through_wsgi_input() {
    let server = TestServer::single(ENVIRON, "").await;
    let r = parse_one(
        &raw(
            server.addr,
            b"POST /?read=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello\xe9world",
        )
        .await,
    );
    assert_eq!(r.json()["wsgi.input.body"], "hello\u{e9}world");
    let chunked = b"POST /?read=1 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
    let r = parse_one(&raw(server.addr, chunked).await);
    let env = r.json();
    assert_eq!(env["wsgi.input.body"], "hello world");
    assert!(!env.contains_key("CONTENT_LENGTH"));
}

#[tokio::test]
async fn the_guest_sees_only_its_route_env() {
    let server = TestServer::single(ENVIRON, "env = { GREETING = \"hi\" }").await;
    let env = server.get("/?env=GREETING&env2=x").await.json();
    assert_eq!(env["env.GREETING"], "hi");
    let env = server.get("/?env=HOME").await.json();
    assert_eq!(
        env["env.HOME"],
        Value::Null,
        "the host's environment must not leak into a guest"
    );
    let env = server.get("/?env=PATH").await.json();
    assert_eq!(env["env.PATH"], Value::Null);
}

#[tokio::test]
async fn h2_requests_get_the_authority_as_host() {
    let server = TestServer::single(ENVIRON, "").await;
    let (status, body) = h2_get(server.addr, "/p?q=1").await;
    assert_eq!(status, 200);
    let env: serde_json::Map<String, Value> = serde_json::from_slice(&body).unwrap();
    assert_eq!(env["SERVER_PROTOCOL"], "HTTP/2.0");
    assert_eq!(env["PATH_INFO"], "/p");
    assert_eq!(env["QUERY_STRING"], "q=1");
    assert_eq!(env["HTTP_HOST"], format!("{}", server.addr));
}
