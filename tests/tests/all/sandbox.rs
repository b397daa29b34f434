//! The sandbox: hostile tenants (guest-examples/hostile, errors, bad-import) are contained
//! within their route's limits, and a neighbouring route keeps serving the whole time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::*;

/// Requests `/` on a healthy route over and over, on fresh connections, until stopped.
struct Neighbour {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(u64, Vec<String>)>,
}

impl Neighbour {
    fn start(addr: std::net::SocketAddr) -> Neighbour {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let (mut ok, mut failures) = (0, Vec::new());
            while !flag.load(Ordering::Relaxed) {
                let started = Instant::now();
                let r = parse_one(
                    &raw(
                        addr,
                        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                    )
                    .await,
                );
                if r.status == 200 && started.elapsed() < Duration::from_secs(1) {
                    ok += 1;
                } else {
                    failures.push(format!("{} after {:?}", r.status_line, started.elapsed()));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (ok, failures)
        });
        Neighbour { stop, task }
    }

    /// Stops, and checks that every request was answered 200 in under a second.
    async fn assert_unharmed(self) {
        self.stop.store(true, Ordering::Relaxed);
        let (ok, failures) = self.task.await.unwrap();
        assert!(
            failures.is_empty(),
            "the healthy route suffered: {failures:?}"
        );
        assert!(
            ok >= 10,
            "the healthy route was barely exercised ({ok} requests)"
        );
    }
}

/// `GET path`, checking that the answer came within `limit`.
async fn within(server: &TestServer, path: &str, limit: Duration) -> Response {
    let started = Instant::now();
    let r = server.get(path).await;
    let took = started.elapsed();
    assert!(took < limit, "{path} took {took:?} (limit {limit:?})");
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attack_is_contained_while_a_neighbour_keeps_serving() {
    let routes = [
        route("/", HELLO, ""),
        route(
            "/hostile",
            HOSTILE,
            "memory = \"32MiB\"\ntimeout = \"2s\"\nmax-concurrency = 4",
        ),
        route("/errors", ERRORS, "timeout = \"1s\"\nmax-concurrency = 4"),
    ]
    .concat();
    let server = TestServer::start(&routes).await;
    let neighbour = Neighbour::start(server.addr);
    // Margins are generous: the point is "bounded by the route's limit", not speed.
    let quick = Duration::from_secs(5);

    // Traps: stack overflow, memory exhausted (the allocator aborts), a panic.
    for attack in ["/hostile/recurse", "/hostile/memory-bomb", "/errors/trap"] {
        let r = within(&server, attack, quick).await;
        assert_eq!(r.status, 500, "{attack}: {}", r.status_line);
    }
    // One chunk as large as the memory limit allows, and one larger.
    let r = within(&server, "/hostile/huge-chunk/8", quick).await;
    assert_eq!((r.status, r.body.len()), (200, 8 << 20));
    let r = within(&server, "/hostile/huge-chunk/64", quick).await;
    assert_eq!(r.status, 500, "a 64 MiB chunk cannot exist in 32 MiB");
    // Printing floods: bounded in the log, and a flood without end meets the timeout.
    let r = within(&server, "/hostile/print/20000", quick).await;
    assert_eq!(r.text(), "printed 20000 lines\n");
    let r = within(&server, "/hostile/print/0", Duration::from_secs(2) + quick).await;
    assert_eq!(r.status, 504, "{}", r.status_line);
    // Spinning without yielding, and sleeping, past the timeout.
    for attack in ["/errors/loop", "/errors/sleep/60000"] {
        let r = within(&server, attack, Duration::from_secs(1) + quick).await;
        assert_eq!(r.status, 504, "{attack}: {}", r.status_line);
    }
    // Every failed instance was replaced: the routes still work.
    assert_eq!(server.get("/hostile/env").await.status, 200);
    assert_eq!(server.get("/errors/empty").await.status, 200);
    neighbour.assert_unharmed().await;
}

#[tokio::test]
async fn the_filesystem_is_only_the_read_only_dirs_given() {
    let server = TestServer::start_with(
        &route("/", HOSTILE, "dirs = { \"/data\" = \"public\" }"),
        |dir| {
            std::fs::create_dir(dir.join("public")).unwrap();
            std::fs::write(dir.join("public/hello.txt"), "shared file\n").unwrap();
            std::fs::write(dir.join("secret.txt"), "host secret\n").unwrap();
            std::os::unix::fs::symlink("/etc", dir.join("public/escape")).unwrap();
        },
    )
    .await;
    assert_eq!(
        server.get("/read/data/hello.txt").await.text(),
        "shared file\n"
    );
    let report = server.get("/files").await.text();
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 9, "{report}");
    for line in lines {
        assert!(line.contains(": refused ("), "escaped the sandbox: {line}");
    }
    for path in ["/read/secret.txt", "/read/data/../secret.txt"] {
        assert_eq!(server.get(path).await.status, 500, "{path}");
    }
}

#[tokio::test]
async fn the_guest_sees_only_the_env_it_was_given() {
    let server = TestServer::single(HOSTILE, "env = { VISIBLE = \"yes\" }").await;
    // SAFETY-free check that the host has an environment to leak in the first place.
    assert!(std::env::var_os("PATH").is_some());
    assert_eq!(server.get("/env").await.text(), "VISIBLE=yes\n");
}

#[tokio::test]
async fn no_network_leaves_the_sandbox() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = TestServer::single(HOSTILE, "").await;
    let report = server.get(&format!("/net/{port}")).await.text();
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 5, "{report}");
    for line in lines {
        assert!(line.contains(": refused ("), "reached the network: {line}");
    }
    let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(accepted.is_err(), "the guest connected to the host");
}

/// The error with which the server refuses to start with `component` as its one route.
async fn start_up_error(component: &str) -> String {
    let dir = std::env::temp_dir().join(format!(
        "cheroot-wasm-refused-{}-{}",
        std::process::id(),
        component.rsplit('/').next().unwrap_or("component")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("routes.toml");
    std::fs::write(&file, route("/tenant", component, "")).unwrap();
    let config = cheroot_wasm::Config::load(&file).unwrap();
    let options = cheroot_wasm::ServeOptions {
        bind: vec!["127.0.0.1:0".into()],
        cache_dir: Some(CACHE_DIR.into()),
        access_log: Some("off".into()),
        ..Default::default()
    };
    let error = match cheroot_wasm::Server::bind(config, options).await {
        Ok(_) => panic!("{component} was accepted"),
        Err(e) => format!("{e:#}"),
    };
    std::fs::remove_dir_all(&dir).unwrap();
    error
}

#[tokio::test]
async fn an_import_the_host_does_not_provide_is_refused_at_start_up() {
    let error = start_up_error(BAD_IMPORT).await;
    for needle in [
        "routes.toml:3:13",
        "route \"/tenant\"",
        "tenant:exfiltrate/uplink",
    ] {
        assert!(error.contains(needle), "{needle:?} missing from: {error}");
    }
}

#[tokio::test]
async fn a_wasi_http_component_is_refused_as_not_a_wsgi_application() {
    let error = start_up_error(HTTP_HELLO).await;
    for needle in [
        "routes.toml:3:13",
        "is a wasi:http proxy component",
        "world `app` of wit/wsgi.wit",
    ] {
        assert!(error.contains(needle), "{needle:?} missing from: {error}");
    }
}
