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

/// wasmtime bounds what one call may hand the host (128 MiB by default, against guests
/// that make it copy the same bytes over and over); a route whose memory is larger can
/// still answer with one chunk as large as it can hold.
#[tokio::test]
async fn one_chunk_may_be_as_large_as_the_routes_memory() {
    let server = TestServer::start(&route("/big", HOSTILE, "memory = \"256MiB\"")).await;
    let r = server.get("/big/huge-chunk/150").await;
    assert_eq!(
        (r.status, r.body.len()),
        (200, 150 << 20),
        "{}",
        r.status_line
    );
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

/// A component built for cheroot:wsgi 0.1 (the contract before `environ.vars` was packed
/// and `handle` returned a reply) is refused when loaded, with what to do about it, not on
/// its first request with a trap.
#[tokio::test]
async fn a_component_built_for_the_old_contract_is_refused_with_a_rebuild_message() {
    let wasm = wat::parse_str(
        r#"(component
            (core module $m (func (export "handle")))
            (core instance $i (instantiate $m))
            (func $handle (canon lift (core func $i "handle")))
            (instance $app (export "handle" (func $handle)))
            (export "cheroot:wsgi/application@0.1.0" (instance $app)))"#,
    )
    .unwrap();
    let path =
        std::env::temp_dir().join(format!("cheroot-wasm-wsgi-0.1-{}.wasm", std::process::id()));
    std::fs::write(&path, wasm).unwrap();
    let error = start_up_error(&path.display().to_string()).await;
    std::fs::remove_file(&path).unwrap();
    for needle in [
        "route \"/tenant\"",
        "built for cheroot:wsgi/application@0.1.0",
        "this server speaks cheroot:wsgi/application@0.2.0",
        "rebuild it",
    ] {
        assert!(error.contains(needle), "{needle:?} missing from: {error}");
    }
}

/// A component built from text: `count` instances of a core module with one memory each.
fn memory_multiplier(name: &str, count: usize) -> String {
    let instances = "(core instance (instantiate $m))\n".repeat(count);
    let wasm = wat::parse_str(format!(
        "(component (core module $m (memory 1)) {instances})"
    ))
    .unwrap();
    let path =
        std::env::temp_dir().join(format!("cheroot-wasm-{name}-{}.wasm", std::process::id()));
    std::fs::write(&path, wasm).unwrap();
    path.display().to_string()
}

/// One core module instantiated many times gets a memory each, each up to the route's
/// `memory`: refused when loaded, before it can take a share of every tenant's pool.
#[tokio::test]
async fn a_component_that_multiplies_its_memories_is_refused_at_start_up() {
    for (name, count, needle) in [
        ("forty-instances", 40, "core module instances"),
        ("three-memories", 3, "memories"),
    ] {
        let component = memory_multiplier(name, count);
        let error = start_up_error(&component).await;
        for needle in ["routes.toml:3:13", "route \"/tenant\"", needle] {
            assert!(
                error.contains(needle),
                "{name}: {needle:?} missing from: {error}"
            );
        }
        std::fs::remove_file(component).unwrap();
    }
}

/// A WSGI component (world `app` of wit/wsgi.wit) whose core module has a `start` function
/// that never returns: it spins while it is being instantiated, before `handle` could run.
fn spinning_start() -> String {
    let mut resolve = wit_parser::Resolve::default();
    let wit =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../wit/wsgi.wit")).unwrap();
    let package = resolve.push_str("wsgi.wit", &wit).unwrap();
    let world = resolve.select_world(&[package], Some("app")).unwrap();
    let mut module = wat::parse_str(
        r#"(module
            (memory (export "memory") 1)
            (func $spin (loop $forever (br $forever)))
            (start $spin)
            (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) unreachable)
            (func (export "cheroot:wsgi/application@0.2.0#handle")
                (param i32 i32 i32 i32 i32 i32) (result i32) unreachable)
            (func (export "cheroot:wsgi/application@0.2.0#[method]body.next")
                (param i32) (result i32) unreachable))"#,
    )
    .unwrap();
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .unwrap();
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .unwrap()
        .validate(true)
        .encode()
        .unwrap();
    let path = std::env::temp_dir().join(format!("cheroot-wasm-spin-{}.wasm", std::process::id()));
    std::fs::write(&path, component).unwrap();
    path.display().to_string()
}

/// A start function that never returns is part of the request's `timeout`: the client gets
/// 504, the instance's permit comes back, and the neighbours never notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instantiation_that_spins_meets_the_timeout() {
    let spin = spinning_start();
    let routes = [
        route("/", HELLO, ""),
        route(
            "/spin",
            &spin,
            "timeout = \"1s\"\nmax-concurrency = 1\nqueue-timeout = \"30s\"\ninstances = \"fresh\"",
        ),
    ]
    .concat();
    let server = TestServer::start(&routes).await;
    let neighbour = Neighbour::start(server.addr);
    for _ in 0..2 {
        // The second request waits for the first one's permit: it comes back.
        let r = tokio::time::timeout(Duration::from_secs(20), server.get("/spin"))
            .await
            .expect("instantiation ran past the route's timeout");
        assert_eq!(r.status, 504, "{}", r.status_line);
    }
    neighbour.assert_unharmed().await;
    std::fs::remove_file(spin).unwrap();
}

/// Host resources a guest holds (open files here) are bounded per instance: past
/// `MAX_HOST_RESOURCES` the guest traps, and its files are closed with its instance.
#[tokio::test]
async fn held_host_resources_are_bounded() {
    let server = TestServer::start_with(
        &route("/", HOSTILE, "dirs = { \"/data\" = \"public\" }"),
        |dir| {
            std::fs::create_dir(dir.join("public")).unwrap();
            std::fs::write(dir.join("public/held"), "x").unwrap();
        },
    )
    .await;
    let fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    let before = fds();
    assert_eq!(
        server.get("/hold-files/100").await.text(),
        "holding 100 files\n"
    );
    let r = server.get("/hold-files/5000").await;
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(
        fds() < before + 200,
        "the trapped instance's files stayed open: {} descriptors, {before} before",
        fds()
    );
    assert_eq!(
        server.get("/hold-files/1").await.text(),
        "holding 1 files\n"
    );
}

/// `dirs` are opened when the server starts: a symlink swapped in for the directory later
/// (by whoever can write beside it) does not redirect new instances.
#[tokio::test]
async fn dirs_are_opened_once_not_resolved_per_instance() {
    let mut root = None;
    let server = TestServer::start_with(
        &route(
            "/",
            HOSTILE,
            "dirs = { \"/data\" = \"public\" }\ninstances = \"fresh\"",
        ),
        |dir| {
            std::fs::create_dir(dir.join("public")).unwrap();
            std::fs::write(dir.join("public/hello.txt"), "shared file\n").unwrap();
            std::fs::create_dir(dir.join("private")).unwrap();
            std::fs::write(dir.join("private/hello.txt"), "host secret\n").unwrap();
            root = Some(dir.to_path_buf());
        },
    )
    .await;
    let root = root.unwrap();
    std::fs::rename(root.join("public"), root.join("public-was")).unwrap();
    std::os::unix::fs::symlink(root.join("private"), root.join("public")).unwrap();
    assert_eq!(
        server.get("/read/data/hello.txt").await.text(),
        "shared file\n"
    );
}

/// The test process's resident memory (the server runs in it), in KiB.
fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// wasi:http's `fields` (linked for every guest, WSGI ones too) hold host memory outside
/// the route's `memory`: one `fields` is bounded (`MAX_FIELDS_BYTES`), and so is all that
/// an instance's wasi:http resources hold (`MAX_HELD_HTTP_BYTES`); past either the guest
/// traps, and its instance goes with what it held. Before the bounds, four instances each
/// kept 250 fields of 60 KiB (60 MiB of the host's memory), and one fields took 100 KiB.
#[tokio::test]
async fn held_wasi_http_fields_are_bounded() {
    let server = TestServer::single(HOSTILE, "max-concurrency = 4").await;
    assert_eq!(server.get("/fields/3/1").await.text(), "holding 3 fields\n");
    let before = resident_kib();
    let attacks = (0..4).map(|_| server.get("/fields/250/60"));
    let answers = futures::future::join_all(attacks).await;
    let grown = resident_kib().saturating_sub(before);
    for r in answers {
        assert_eq!(r.status, 500, "{} (the host grew {grown} KiB)", r.text());
    }
    assert!(
        grown < 24 << 10,
        "four instances pinned {} MiB of host memory in wasi:http fields",
        grown >> 10
    );
    let r = server.get("/fields/1/100").await;
    assert_eq!(r.status, 500, "a 100 KiB fields: {}", r.text());
    // Each trapped instance was replaced.
    let r = server.get("/fields/3/1").await;
    assert!(
        r.status == 200 && r.text().starts_with("holding "),
        "{}",
        r.text()
    );
}
