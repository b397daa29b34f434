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

/// `ok: N bytes written`: N.
fn bytes_written(answer: &str) -> u64 {
    answer
        .strip_prefix("ok: ")
        .and_then(|rest| rest.strip_suffix(" bytes written"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{answer}"))
}

/// The bytes of the deleted files under `dir` that this process (the server) holds open.
fn deleted_but_open(dir: &std::path::Path) -> u64 {
    let dir = dir.canonicalize().unwrap();
    let mut total = 0;
    for fd in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(target) = std::fs::read_link(fd.path()) else {
            continue;
        };
        let target = target.to_string_lossy();
        if target.starts_with(&*dir.to_string_lossy()) && target.ends_with(" (deleted)") {
            total += std::fs::metadata(fd.path()).map_or(0, |m| m.len());
        }
    }
    total
}

/// What `dir` holds, every file's apparent size and every directory's, however deep, as
/// `du` counts it (it walks with directory descriptors).
fn disk_usage(dir: &std::path::Path) -> u64 {
    let out = std::process::Command::new("du")
        .args(["-s", "--apparent-size", "--block-size=1"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().next().unwrap().parse().unwrap()
}

const MIB: u64 = 1 << 20;

#[tokio::test]
async fn an_open_deleted_file_is_charged_until_it_is_closed() {
    // The attack: open, unlink, write through the handle; each refusal makes the host count
    // the directory again, which must not forget the file it no longer lists.
    let server = start("data-quota = \"8MiB\"").await;
    let data = server.dir.join("var/files");
    let answer = ask(&server, &format!("/unlink-write/data/x?n={}", 64 * MIB)).await;
    let written = bytes_written(&answer);
    assert!(written <= 8 * MIB, "{written} bytes written");
    // The instance keeps the file open, so its bytes are still on the disk, and a second
    // request (in that instance or another) gets no more.
    let answer = ask(&server, &format!("/unlink-write/data/y?n={}", 64 * MIB)).await;
    // With the quota taken, even creating the file is refused.
    let again = match answer.contains("StorageFull") {
        true => 0,
        false => bytes_written(&answer),
    };
    let held = deleted_but_open(&data);
    assert!(
        written + again <= 8 * MIB && held <= 8 * MIB,
        "{written} + {again} bytes written, {held} held open"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_tree_deeper_than_path_max_is_counted() {
    // 18 directories of 250-byte names: their host paths pass PATH_MAX (4096), though the
    // guest only ever names one at a time.
    let server = start("data-quota = \"8MiB\"").await;
    let data = server.dir.join("var/files");
    for i in 0..3 {
        let answer = ask(&server, &format!("/deep/data/f{i}?depth=18&n={}", 7 * MIB)).await;
        // Refused past the quota: ENOSPC where the host answers a call, EIO where it
        // refuses a stream's write (wasi-libc's errno for a stream that failed).
        assert!(
            answer.starts_with("ok: ")
                || answer.contains("StorageFull")
                || answer.contains("os error 29"),
            "{answer}"
        );
    }
    let used = disk_usage(&data);
    assert!(used <= 8 * MIB + 19 * 4096, "{used} bytes on disk");
    server.stop().await;
}

#[tokio::test]
async fn a_lock_beside_a_link_to_a_fifo_is_left_alone_and_the_route_serves_on() {
    // The guest links x.db to a FIFO outside its directory and leaves x.db.lock, then is
    // killed: clearing its locks must not open (and block on) what the link points to.
    let server = start("timeout = \"1s\"\nqueue-timeout = \"3s\"").await;
    let fifo = server.dir.join("var/fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let killed = server.get("/fifo-lock/data/x.db").await;
    assert_eq!(killed.status, 504, "{}", killed.text());
    let after = tokio::time::timeout(READ_TIMEOUT, server.get("/count/data/n")).await;
    // Whatever happened, let a host thread blocked opening the FIFO go.
    std::thread::spawn(move || drop(std::fs::OpenOptions::new().write(true).open(fifo)));
    let after = after.expect("the route answers");
    assert_eq!(after.status, 200, "{}", after.text());
    assert_eq!(after.text().trim_end(), "ok: 1");
    let data = server.dir.join("var/files");
    assert!(data.join("x.db").is_symlink() && data.join("x.db.lock").is_dir());
    server.stop().await;
}
