//! A route's `data` directories: where its guest may write, within its `data-quota`, and
//! nowhere else. guest-examples/files keeps files through Rust's `std::fs`;
//! host/tests/cli.rs has SQLite under concurrent writers and SIGKILL.

use crate::common::*;

/// The files guest with a data directory at /data (var/files, not there yet) and a
/// read-only one at /static.
fn files_route(extra: &str) -> String {
    route(
        "/",
        cheroot_wasm_tests::FILES,
        &format!(
            "data = {{ \"/data\" = \"var/files\" }}\ndirs = {{ \"/static\" = \"public\" }}\n{extra}"
        ),
    )
}

async fn start(extra: &str) -> TestServer {
    TestServer::start_with(&files_route(extra), |dir| {
        std::fs::create_dir(dir.join("public")).unwrap();
    })
    .await
}

/// `GET path`: the guest's answer, `ok: ...` or `failed: ...`.
async fn ask(server: &TestServer, path: &str) -> String {
    let response = server.get(path).await;
    assert_eq!(response.status, 200, "{path}: {}", response.text());
    response.text().trim_end().to_owned()
}

#[tokio::test]
async fn a_guest_writes_its_data_directory_and_only_it() {
    let server = start("").await;
    let data = server.dir.join("var/files");
    assert!(data.is_dir(), "the data directory is created at start-up");
    assert_eq!(
        ask(&server, "/append/data/a?n=1000").await,
        "ok: 1000 bytes"
    );
    assert_eq!(std::fs::read(data.join("a")).unwrap(), vec![b'x'; 1000]);
    assert_eq!(ask(&server, "/count/data/n").await, "ok: 1");
    assert_eq!(ask(&server, "/count/data/n").await, "ok: 2");
    // Read-only directories stay read-only, and nothing leads out of the sandbox.
    let cases = [
        "/append/static/x?n=1",
        "/append/data/../escape?n=1",
        "/append/tmp/x?n=1",
        "/create/data/../../x?n=1",
    ];
    for path in cases {
        let answer = ask(&server, path).await;
        assert!(answer.starts_with("failed: "), "{path}: {answer}");
    }
    let mut on_disk: Vec<_> = std::fs::read_dir(&server.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    on_disk.sort();
    assert_eq!(on_disk, ["public", "routes.toml", "var"]);
    assert_eq!(
        std::fs::read_dir(server.dir.join("public"))
            .unwrap()
            .count(),
        0
    );
    server.stop().await;
}

#[tokio::test]
async fn writes_past_the_data_quota_fail_and_space_freed_is_space_again() {
    let server = start("data-quota = \"64KiB\"").await;
    let data = server.dir.join("var/files");
    let used = || {
        std::fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len() + 4096)
            .sum::<u64>()
    };
    assert_eq!(
        ask(&server, "/append/data/a?n=40000").await,
        "ok: 40000 bytes"
    );
    // Growing a file past the quota: appending, or writing far beyond its end.
    let answer = ask(&server, "/append/data/a?n=40000").await;
    assert!(answer.starts_with("failed: "), "{answer}");
    let answer = ask(&server, "/write-at/data/sparse?n=1000000000").await;
    assert!(answer.starts_with("failed: "), "{answer}");
    assert!(used() <= 64 << 10, "{} bytes kept", used());
    // Entries count too: a guest cannot exhaust the host's inodes with empty files.
    let answer = ask(&server, "/create/data/many?n=100000").await;
    assert!(answer.starts_with("failed: StorageFull"), "{answer}");
    let many = std::fs::read_dir(data.join("many")).map_or(0, |d| d.count());
    assert!(many < 16, "{many} files made");
    // Writing over what is there takes no more space.
    let answer = ask(&server, "/write-at/data/a?n=100").await;
    assert!(answer.starts_with("ok: "), "{answer}");
    // Space given back is space to use again, at once.
    assert_eq!(ask(&server, "/set-len/data/a?n=0").await, "ok: 0 bytes");
    assert_eq!(
        ask(&server, "/append/data/b?n=30000").await,
        "ok: 30000 bytes"
    );
    server.assert_alive("/read/data/b").await;
    server.stop().await;
}

#[tokio::test]
async fn fresh_instances_see_what_earlier_requests_wrote() {
    let server = start("instances = \"fresh\"").await;
    for n in 1..=3 {
        assert_eq!(ask(&server, "/count/data/n").await, format!("ok: {n}"));
    }
    server.stop().await;
}
