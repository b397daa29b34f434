//! PathInfoDispatcher rules, end to end: which route answers, and SCRIPT_NAME / PATH_INFO.

mod common;
use common::*;

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
