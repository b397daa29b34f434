//! PathInfoDispatcher rules, end to end: which route answers, and SCRIPT_NAME / PATH_INFO.

use crate::common::*;

async fn blog_server() -> TestServer {
    TestServer::start(
        &[
            route("/", HELLO, ""),
            route("/blog", ENVIRON, ""),
            route("/blog/admin/", ENVIRON, ""),
            route("/b", ENVIRON, ""),
        ]
        .concat(),
    )
    .await
}

#[tokio::test]
async fn longest_prefix_wins_and_splits_the_path() {
    let server = blog_server().await;
    // (request path, SCRIPT_NAME, PATH_INFO); cheroot's own probe table.
    let table = [
        ("/blog", "/blog", ""),
        ("/blog/", "/blog", "/"),
        ("/blog/x", "/blog", "/x"),
        ("/blog/admin", "/blog/admin", ""),
        ("/blog/admin/x", "/blog/admin", "/x"),
        ("/blog/administrator", "/blog", "/administrator"),
        ("/b", "/b", ""),
        ("/b/blog", "/b", "/blog"),
    ];
    for (path, script_name, path_info) in table {
        let r = server.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        let env = r.json();
        assert_eq!(env["SCRIPT_NAME"], script_name, "{path}");
        assert_eq!(env["PATH_INFO"], path_info, "{path}");
    }
}

#[tokio::test]
async fn a_prefix_is_not_a_string_prefix() {
    let server = blog_server().await;
    for path in ["/blogger", "/bx", "/", "/anything/else"] {
        let r = server.get(path).await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "Hello, world!\n"),
            "{path} goes to the root route"
        );
    }
}

#[tokio::test]
async fn without_a_root_route_unmatched_paths_are_404() {
    let server = TestServer::start(&route("/api", HELLO, "")).await;
    assert_eq!(server.get("/api/v1").await.status, 200);
    assert_eq!(server.get("/api").await.status, 200);
    for path in ["/", "/apix", "/other"] {
        let r = server.get(path).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    }
}

#[tokio::test]
async fn routing_uses_the_decoded_path() {
    let server = blog_server().await;
    let env = server.get("/%62log/x").await.json();
    assert_eq!(
        (env["SCRIPT_NAME"].as_str(), env["PATH_INFO"].as_str()),
        (Some("/blog"), Some("/x"))
    );
    // An encoded slash is not a path separator: `/blog%2Fx` is one segment.
    assert_eq!(server.get("/blog%2Fx").await.text(), "Hello, world!\n");
}

/// Three tenants on three hostnames (one a wildcard), and a default server with a path route.
async fn tenants() -> TestServer {
    TestServer::start(
        &[
            route("/", HELLO, ""),
            route("/docs", ENVIRON, ""),
            route("/", ENVIRON, "host = \"shop.example.com\""),
            route("/admin", ENVIRON, "host = \"shop.example.com\""),
            route("/", ENVIRON, "host = \"*.blog.example.com\""),
            route("/api", ENVIRON, "host = \"api.example.com\""),
        ]
        .concat(),
    )
    .await
}

async fn get_host(server: &TestServer, host: &str, path: &str) -> Response {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    parse_one(&raw(server.addr, request.as_bytes()).await)
}

#[tokio::test]
async fn virtual_hosts_route_before_paths() {
    let server = tenants().await;
    // (Host, path, SCRIPT_NAME, PATH_INFO, SERVER_NAME), each answered by environ.
    let table = [
        ("shop.example.com", "/cart", "", "/cart", "shop.example.com"),
        (
            "SHOP.Example.com:8080",
            "/admin/x",
            "/admin",
            "/x",
            "shop.example.com",
        ),
        (
            "alice.blog.example.com",
            "/post/1",
            "",
            "/post/1",
            "alice.blog.example.com",
        ),
        ("a.b.blog.example.com", "/", "", "/", "a.b.blog.example.com"),
        (
            "api.example.com",
            "/api/v1",
            "/api",
            "/v1",
            "api.example.com",
        ),
        ("elsewhere.test", "/docs/x", "/docs", "/x", "elsewhere.test"),
    ];
    for (host, path, script, info, name) in table {
        let r = get_host(&server, host, path).await;
        assert_eq!(r.status, 200, "{host}{path}: {r:?}");
        let env = r.json();
        assert_eq!(
            (
                env["SCRIPT_NAME"].as_str().unwrap(),
                env["PATH_INFO"].as_str().unwrap(),
                env["SERVER_NAME"].as_str().unwrap()
            ),
            (script, info, name),
            "{host}{path}"
        );
        assert_eq!(env["HTTP_HOST"], host, "HTTP_HOST is as sent");
    }
    // The default server: hello at /; a host's own routes do not fall back to it.
    assert_eq!(
        get_host(&server, "elsewhere.test", "/").await.text(),
        "Hello, world!\n"
    );
    assert_eq!(
        get_host(&server, "blog.example.com", "/").await.text(),
        "Hello, world!\n"
    );
    assert_eq!(get_host(&server, "api.example.com", "/").await.status, 404);
    // Invalid Host values never reach routing.
    for bad in ["user@shop.example.com", "shop.example.com/x", "a b"] {
        assert_eq!(get_host(&server, bad, "/").await.status, 400, "{bad}");
    }
    // HTTP/2 routes by :authority.
    let (status, body) = h2_get_authority(server.addr, "shop.example.com", "/admin/y").await;
    assert_eq!(status, 200);
    let env: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (env["SCRIPT_NAME"].as_str(), env["SERVER_NAME"].as_str()),
        (Some("/admin"), Some("shop.example.com"))
    );
    let (status, body) = h2_get_authority(server.addr, "other.test", "/").await;
    assert_eq!((status, body.as_slice()), (200, &b"Hello, world!\n"[..]));
}

/// A load balancer at 127.0.0.1 forwarding for a client, or a client pretending to be one.
const FORWARDED: &str = "GET /who HTTP/1.1\r\nHost: lb.internal\r\nX-Forwarded-For: 198.51.100.1, 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: shop.example.com\r\nConnection: close\r\n\r\n";

async fn proxied(trusted: &str) -> TestServer {
    proxied_by(trusted, "").await
}

/// [`proxied`], with more `[server]` lines.
async fn proxied_by(trusted: &str, server: &str) -> TestServer {
    TestServer::start(
        &[
            format!("[server]\ntrusted-proxies = [{trusted}]\n{server}\n"),
            route("/", ENVIRON, ""),
            route(
                "/",
                ENVIRON,
                "host = \"shop.example.com\"\nenv = { TENANT = \"shop\" }",
            ),
        ]
        .concat(),
    )
    .await
}

#[tokio::test]
async fn a_trusted_proxy_speaks_for_its_client() {
    let server = proxied("\"127.0.0.0/8\"").await;
    let env = parse_one(&raw(server.addr, FORWARDED.as_bytes()).await).json();
    // The right-most address the proxy did not vouch for: 198.51.100.1 came from the client.
    assert_eq!(env["REMOTE_ADDR"], "203.0.113.7");
    assert_eq!(env["wsgi.url_scheme"], "https");
    assert_eq!(env["SERVER_NAME"], "shop.example.com");
    assert_eq!(env["HTTP_HOST"], "shop.example.com");
}

#[tokio::test]
async fn a_trusted_proxy_may_speak_rfc_7239() {
    let server = proxied_by("\"127.0.0.0/8\"", "forwarded-header = \"forwarded\"").await;
    let request = "GET /who?env=TENANT HTTP/1.1\r\nHost: lb.internal\r\nForwarded: for=\"[2001:db8::7]:4711\";proto=https;host=shop.example.com\r\nConnection: close\r\n\r\n";
    let env = parse_one(&raw(server.addr, request.as_bytes()).await).json();
    assert_eq!(
        (
            &env["REMOTE_ADDR"],
            &env["wsgi.url_scheme"],
            &env["env.TENANT"]
        ),
        (&"2001:db8::7".into(), &"https".into(), &"shop".into()),
        "routed to the forwarded host's tenant"
    );
    // X-Forwarded-* is then the client's word: never believed, not even as a fallback.
    let env = parse_one(&raw(server.addr, FORWARDED.as_bytes()).await).json();
    assert_eq!(
        (&env["REMOTE_ADDR"], &env["SERVER_NAME"]),
        (&"127.0.0.1".into(), &"lb.internal".into())
    );
}

#[tokio::test]
async fn spoofed_forwarding_headers_change_nothing() {
    for trusted in ["", "\"10.0.0.0/8\", \"::1\""] {
        let server = proxied(trusted).await;
        let request = FORWARDED.replace("/who", "/who?env=TENANT");
        let env = parse_one(&raw(server.addr, request.as_bytes()).await).json();
        assert_eq!(env["REMOTE_ADDR"], "127.0.0.1", "trusted = [{trusted}]");
        assert_eq!(env["wsgi.url_scheme"], "http");
        assert_eq!(env["SERVER_NAME"], "lb.internal");
        assert_eq!(env["HTTP_HOST"], "lb.internal");
        assert_eq!(
            env["env.TENANT"],
            serde_json::Value::Null,
            "not routed to the spoofed host"
        );
        // The headers still reach the application, as HTTP_* keys.
        assert_eq!(env["HTTP_X_FORWARDED_FOR"], "198.51.100.1, 203.0.113.7");
    }
}

/// Behind ingress-nginx (trusted, at 127.0.0.1), which appends the client's address to
/// `X-Forwarded-For` and sets `-Host`, but passes a client's own `Forwarded` through.
#[tokio::test]
async fn a_client_forged_forwarded_header_is_not_believed() {
    let server = proxied("\"127.0.0.0/8\"").await;
    let request = "GET /who?env=TENANT HTTP/1.1\r\nHost: lb.internal\r\nForwarded: for=1.2.3.4;proto=https;host=evil.test\r\nX-Forwarded-For: 198.51.100.1, 203.0.113.7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: lb.example.com\r\nConnection: close\r\n\r\n";
    let env = parse_one(&raw(server.addr, request.as_bytes()).await).json();
    assert_eq!(env["REMOTE_ADDR"], "203.0.113.7", "from X-Forwarded-For");
    assert_eq!(env["wsgi.url_scheme"], "http");
    assert_eq!(env["SERVER_NAME"], "lb.example.com");
    assert_eq!(env["HTTP_HOST"], "lb.example.com");
    // The forged header is plain data for the application.
    assert_eq!(
        env["HTTP_FORWARDED"],
        "for=1.2.3.4;proto=https;host=evil.test"
    );
    // Without any X-Forwarded-* there is no fallback to Forwarded either.
    let request = "GET /who?env=TENANT HTTP/1.1\r\nHost: lb.internal\r\nForwarded: for=1.2.3.4;host=shop.example.com\r\nConnection: close\r\n\r\n";
    let env = parse_one(&raw(server.addr, request.as_bytes()).await).json();
    assert_eq!(env["REMOTE_ADDR"], "127.0.0.1");
    assert_eq!(env["SERVER_NAME"], "lb.internal");
    assert_eq!(env["env.TENANT"], serde_json::Value::Null);
}
