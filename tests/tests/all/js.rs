//! JavaScript guests: guest-examples/js and the `cheroot-wasm new js` template, built with
//! componentize-js from npm (their build.sh runs `npm ci` from the pinned lockfile), served
//! as wasi:http routes.
//!
//! Needs node and npm, and the npm registry the first time.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// Runs `build.sh` in `project`, writing `app.wasm` into the test target directory.
fn build(project: &Path, name: &str) -> PathBuf {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let built = Command::new(project.join("build.sh"))
        .arg(&out)
        .output()
        .expect("running build.sh (needs bash, node and npm)");
    assert!(
        built.status.success(),
        "{}/build.sh failed: {}",
        project.display(),
        String::from_utf8_lossy(&built.stderr)
    );
    out.join("app.wasm")
}

#[tokio::test]
async fn the_javascript_example_and_template_serve_as_wasi_http_routes() {
    let example = build(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-examples/js"),
        "js-example",
    );
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("new-js");
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    cheroot_wasm::new_project("js", &base.join("shop")).unwrap();
    let template = build(&base.join("shop"), "js-template");

    let routes = format!(
        "{}{}",
        route("/js", &example.display().to_string(), ""),
        route("/shop", &template.display().to_string(), ""),
    );
    let server = TestServer::start(&routes).await;

    let r = server.get("/js/").await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "Hello from JavaScript!\n")
    );
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("content-length"), Some("23"));

    let r = server.get("/js/headers?q=1").await;
    assert_eq!(r.header("x-example"), Some("js"));
    let seen = r.json();
    assert_eq!(seen["url"], "http://test/js/headers?q=1");
    assert_eq!(seen["headers"]["cheroot-script-name"], "/js");
    assert_eq!(seen["headers"]["cheroot-path-info"], "/headers");

    let r = server.get("/js/stream").await;
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.text(), "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n");
    assert!(r.complete);

    let body: Vec<u8> = (0..3u32 << 20).map(|i| (i % 253) as u8).collect();
    let mut request = format!(
        "POST /js/echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-js\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let r = parse_one(&raw(server.addr, &request).await);
    assert_eq!(r.header("content-type"), Some("application/x-js"));
    assert!(r.body == body, "echo differs ({} bytes back)", r.body.len());

    // An uncaught exception: the engine answers 500 itself; the route goes on serving.
    assert_eq!(server.get("/js/trap").await.status, 500);
    server.assert_alive("/js/").await;

    let r = server.get("/shop/cart").await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "Hello from GET /cart!\n")
    );
}
