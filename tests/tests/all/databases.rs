//! Python applications with services of their own, reached through their route's
//! `outbound` grant: guest-examples/python/db_app.py (Flask, pg8000, redis-py: pure-Python
//! drivers over sockets) against a real PostgreSQL and a real Redis, each started on a
//! temporary directory and a loopback port; and fetch_app.py (niquests over wasi:http)
//! calling an HTTPS API whose TLS the host does.
//!
//! Needs Debian's `postgresql` and `redis-server` packages (`scripts/test` installs them),
//! componentize-py, and PyPI for the pinned packages the first time.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_for(port: u16, what: &str) {
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what} did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `command` as the `postgres` user when we are root (PostgreSQL refuses root).
fn as_postgres(command: &str) -> Command {
    let root = is_root();
    let mut cmd = if root {
        let mut c = Command::new("su");
        c.args(["postgres", "-s", "/bin/sh", "-c", command]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", command]);
        c
    };
    cmd.stdout(Stdio::null());
    cmd
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// A PostgreSQL cluster on a temporary directory, stopped when dropped.
struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl Postgres {
    async fn start() -> Postgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| versions.flatten().map(|v| v.path().join("bin")).max())
            .filter(|bin| bin.join("initdb").is_file())
            .expect("PostgreSQL is not installed: apt-get install postgresql (scripts/test does)");
        let dir = std::env::temp_dir().join(format!("cheroot-wasm-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(status.success());
        }
        let port = free_port();
        let initdb = format!(
            "{}/initdb -D {} -U postgres --auth=trust",
            bin.display(),
            dir.display()
        );
        assert!(as_postgres(&initdb).status().unwrap().success(), "initdb");
        let start = format!(
            "{}/pg_ctl -D {} -l {}/log -w -o '-p {port} -k {} -c listen_addresses=127.0.0.1' start",
            bin.display(),
            dir.display(),
            dir.display(),
            dir.display()
        );
        assert!(
            as_postgres(&start).status().unwrap().success(),
            "pg_ctl start"
        );
        wait_for(port, "PostgreSQL").await;
        Postgres { bin, dir, port }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let stop = format!(
            "{}/pg_ctl -D {} -m immediate -w stop",
            self.bin.display(),
            self.dir.display()
        );
        let _ = as_postgres(&stop).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis server without persistence, killed when dropped.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    async fn start() -> Redis {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect(
                "redis-server is not installed: apt-get install redis-server (scripts/test does)",
            );
        wait_for(port, "Redis").await;
        Redis { child, port }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn flask_keeps_its_data_in_a_real_postgresql_and_redis_it_is_granted() {
    let (postgres, redis) = (Postgres::start().await, Redis::start().await);
    let component = build_python_example("db_app:app", "db_app", Some("db-requirements.txt"));
    let env = format!(
        "env = {{ PGHOST = \"127.0.0.1\", PGPORT = \"{}\", PGUSER = \"postgres\", PGDATABASE = \"postgres\", REDIS_HOST = \"127.0.0.1\", REDIS_PORT = \"{}\" }}",
        postgres.port, redis.port
    );
    let routes = format!(
        "{}{}{}",
        route(
            "/db",
            &component.display().to_string(),
            &format!(
                "{env}\noutbound = [\"tcp://127.0.0.1:{}\", \"tcp://127.0.0.1:{}\"]",
                postgres.port, redis.port
            )
        ),
        route("/nogrant", &component.display().to_string(), &env),
        route("/", HELLO, ""),
    );
    let server = TestServer::start(&routes).await;

    assert_eq!(
        server.get("/db/notes.json").await.text(),
        "{\"notes\":[]}\n"
    );
    let page = server.get("/db/").await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("shown 1 time "), "{}", page.text());
    let body = "text=hello+from+the+sandbox";
    let posted = parse_one(
        &raw(
            server.addr,
            format!(
                "POST /db/notes HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await,
    );
    assert_eq!(posted.status, 303, "{}", posted.text());
    let notes = server.get("/db/notes.json").await.json();
    assert_eq!(notes["notes"][0]["text"], "hello from the sandbox");
    let page = server.get("/db/").await.text();
    assert!(
        page.contains("shown 2 times") && page.contains("hello from the sandbox"),
        "{page}"
    );

    // The same application without the grant: an error it raises (500), nothing more.
    assert_eq!(server.get("/nogrant/notes.json").await.status, 500);
    server.assert_alive("/").await;
    assert_eq!(server.get("/db/notes.json").await.status, 200);
}

/// An HTTPS upstream on 127.0.0.1 (a leaf for 127.0.0.1 signed by a throwaway CA)
/// answering `body`; returns its port and the CA's PEM.
async fn tls_upstream(body: &'static str) -> (u16, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let port = http_upstream(body, Some(tls_acceptor(&leaf, &key))).await;
    (port, ca.pem())
}

#[tokio::test]
async fn python_calls_an_https_api_it_is_granted_through_the_host() {
    let (port, ca) = tls_upstream("hello from the API").await;
    let component = build_python_example(
        "fetch_app:application",
        "fetch_app",
        Some("fetch-requirements.txt"),
    );
    let routes = format!(
        "[server]\noutbound-ca = \"ca.pem\"\n\n{}",
        route(
            "/",
            &component.display().to_string(),
            &format!("outbound = [\"https://127.0.0.1:{port}\"]")
        ),
    );
    let server = TestServer::start_with(&routes, |dir| {
        std::fs::write(dir.join("ca.pem"), &ca).unwrap()
    })
    .await;
    let text = server
        .get(&format!("/?url=https://127.0.0.1:{port}/v1"))
        .await
        .text();
    assert_eq!(text, "200 hello from the API\n");
    // Not granted: another origin, and the same one over plain HTTP.
    for url in [
        format!("https://127.0.0.1:{}/", port + 1),
        format!("http://127.0.0.1:{port}/"),
    ] {
        let text = server.get(&format!("/?url={url}")).await.text();
        assert!(
            text.starts_with("failed: ") && text.contains("HttpRequestDenied"),
            "{url}: {text}"
        );
    }
}
