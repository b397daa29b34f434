//! The harness: a real cheroot-wasm server on 127.0.0.1:0, and clients that speak raw bytes.
#![allow(
    dead_code,
    unused_imports,
    reason = "each test file uses a different part of the harness"
)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

pub use cheroot_wasm_tests::{
    BAD_IMPORT, CACHE_DIR, ECHO, ENVIRON, ERRORS, HELLO, HOSTILE, HTTP_HELLO, OUTBOUND, STREAM,
};

/// Every read in a test gives up after this long, so a hung server fails the test.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A server running in this test's runtime.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The admin listener, when routes.toml asks for one.
    pub admin: Option<SocketAddr>,
    /// The site being served, to reload it.
    pub live: std::sync::Arc<cheroot_wasm::Live>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// The directory routes.toml is in.
    pub dir: PathBuf,
}

/// A `[[route]]` table; `extra` is more TOML lines for it.
pub fn route(path: &str, component: &str, extra: &str) -> String {
    format!("[[route]]\npath = {path:?}\ncomponent = {component:?}\n{extra}\n")
}

impl TestServer {
    /// Writes `routes` to a fresh directory and serves it.
    pub async fn start(routes: &str) -> TestServer {
        TestServer::start_with(routes, |_| {}).await
    }

    /// Like [`TestServer::start`], with `setup` filling the directory first (files the
    /// routes refer to, such as `dirs`).
    pub async fn start_with(routes: &str, setup: impl FnOnce(&std::path::Path)) -> TestServer {
        TestServer::start_bound(routes, setup, &["127.0.0.1:0"]).await
    }

    /// Like [`TestServer::start_with`], listening on `binds`, one of them TCP (`addr`, the
    /// first).
    pub async fn start_bound(
        routes: &str,
        setup: impl FnOnce(&std::path::Path),
        binds: &[&str],
    ) -> TestServer {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cheroot-wasm-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        setup(&dir);
        let file = dir.join("routes.toml");
        std::fs::write(&file, routes).unwrap();
        let config = cheroot_wasm::Config::load(&file).unwrap();
        let options = cheroot_wasm::ServeOptions {
            bind: binds.iter().map(|b| b.to_string()).collect(),
            cache_dir: Some(CACHE_DIR.into()),
            // Quiet unless the test is about the access log.
            access_log: (!routes.contains("access-log")).then(|| "off".into()),
            ..Default::default()
        };
        let server = cheroot_wasm::Server::bind(config, options).await.unwrap();
        let addr = server
            .local_addr()
            .expect("tests bind at least one TCP address");
        let live = server.live().clone();
        let admin = server.admin_addr();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        TestServer {
            addr,
            admin,
            live,
            shutdown: Some(tx),
            task: Some(task),
            dir,
        }
    }

    /// One route at `/`.
    pub async fn single(component: &str, extra: &str) -> TestServer {
        TestServer::start(&route("/", component, extra)).await
    }

    /// Begins a graceful shutdown and waits for it.
    pub async fn stop(mut self) {
        self.begin_stop();
        self.finish_stop().await;
    }

    /// Begins a graceful shutdown.
    pub fn begin_stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Waits for the shutdown [`TestServer::begin_stop`] began.
    pub async fn finish_stop(mut self) {
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(40), task)
                .await
                .expect("shutdown in time")
                .unwrap()
                .unwrap();
        }
    }

    /// `GET path` on a fresh connection.
    pub async fn get(&self, path: &str) -> Response {
        let raw = raw(
            self.addr,
            format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
        parse_one(&raw)
    }

    /// The server still answers: a fresh `GET` of `path` gives 200.
    pub async fn assert_alive(&self, path: &str) {
        let r = self.get(path).await;
        assert_eq!(r.status, 200, "server stopped serving {path}: {r:?}");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A GET to the server's admin listener.
pub async fn admin_get(server: &TestServer, path: &str) -> Response {
    let request = format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
    parse_one(&raw(server.admin.expect("an admin listener"), request.as_bytes()).await)
}

/// Writes `bytes`, shuts down the write side, reads until the server closes.
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    stream.shutdown().await.unwrap();
    read_to_close(&mut stream).await
}

/// Writes `bytes` and reads until the server closes the connection (the write side stays
/// open, so only the server can end it).
pub async fn raw_until_close(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    read_to_close(&mut stream).await
}

/// Reads until EOF (or a reset), failing after [`READ_TIMEOUT`].
pub async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match tokio::time::timeout(READ_TIMEOUT, stream.read(&mut buf))
            .await
            .expect("the server neither answered nor closed")
        {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads until `out` holds `needle`, failing after [`READ_TIMEOUT`].
pub async fn read_until(stream: &mut TcpStream, out: &mut Vec<u8>, needle: &[u8]) {
    let mut buf = [0u8; 65536];
    while !contains(out, needle) {
        let n = tokio::time::timeout(READ_TIMEOUT, stream.read(&mut buf))
            .await
            .expect("timed out")
            .unwrap();
        assert!(
            n > 0,
            "connection closed before {:?}; got {:?}",
            String::from_utf8_lossy(needle),
            String::from_utf8_lossy(out)
        );
        out.extend_from_slice(&buf[..n]);
    }
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// One parsed HTTP/1 response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub status_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Trailer fields after a chunked body.
    pub trailers: Vec<(String, String)>,
    /// The body's framing was complete (Content-Length reached, or the last chunk seen).
    pub complete: bool,
}

impl Response {
    /// The first value of a header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Parses exactly one response (the body ends where its framing says, or at EOF).
pub fn parse_one(raw: &[u8]) -> Response {
    let (responses, rest) = parse_all(raw, false);
    assert_eq!(
        responses.len(),
        1,
        "expected one response in {:?}",
        String::from_utf8_lossy(raw)
    );
    assert!(
        rest.is_empty(),
        "bytes after the response: {:?}",
        String::from_utf8_lossy(rest)
    );
    responses.into_iter().next().unwrap()
}

/// Parses back-to-back responses; `head` means responses to HEAD (no bodies). Returns the
/// responses and any unparsed rest.
pub fn parse_all(mut raw: &[u8], head: bool) -> (Vec<Response>, &[u8]) {
    let mut out = Vec::new();
    while !raw.is_empty() {
        let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            break;
        };
        let head_text = String::from_utf8_lossy(&raw[..end]).into_owned();
        let mut lines = head_text.split("\r\n");
        let status_line = lines.next().unwrap().to_string();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (k, v) = l
                    .split_once(':')
                    .unwrap_or_else(|| panic!("bad header line {l:?}"));
                (k.to_string(), v.trim().to_string())
            })
            .collect();
        // Header values as raw bytes would need Latin-1; tests read them via `raw` when it matters.
        raw = &raw[end + 4..];
        let mut response = Response {
            status,
            status_line,
            headers,
            body: Vec::new(),
            trailers: Vec::new(),
            complete: true,
        };
        if status == 100 {
            out.push(response);
            continue;
        }
        let bodiless = head || status == 204 || status == 304;
        if bodiless {
        } else if response
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            response.complete = false;
            loop {
                let Some(line_end) = raw.windows(2).position(|w| w == b"\r\n") else {
                    raw = &[];
                    break;
                };
                let size_text = String::from_utf8_lossy(&raw[..line_end]).into_owned();
                let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
                    .unwrap_or_else(|_| panic!("bad chunk size {size_text:?}"));
                raw = &raw[line_end + 2..];
                if size == 0 {
                    // Trailer fields, then the empty line.
                    while let Some(line_end) = raw.windows(2).position(|w| w == b"\r\n") {
                        let line = String::from_utf8_lossy(&raw[..line_end]).into_owned();
                        raw = &raw[line_end + 2..];
                        if line.is_empty() {
                            response.complete = true;
                            break;
                        }
                        let (k, v) = line.split_once(':').expect("a trailer field line");
                        response
                            .trailers
                            .push((k.to_string(), v.trim().to_string()));
                    }
                    break;
                }
                if raw.len() < size + 2 {
                    response.body.extend_from_slice(&raw[..size.min(raw.len())]);
                    raw = &[];
                    break;
                }
                response.body.extend_from_slice(&raw[..size]);
                raw = &raw[size + 2..];
            }
        } else if let Some(len) = response
            .header("content-length")
            .map(|v| v.parse::<usize>().unwrap())
        {
            let take = len.min(raw.len());
            response.body = raw[..take].to_vec();
            response.complete = take == len;
            raw = &raw[take..];
        } else {
            response.body = raw.to_vec();
            raw = &[];
        }
        out.push(response);
    }
    (out, raw)
}

/// One GET over HTTP/2 with prior knowledge (h2c): status and body.
pub async fn h2_get(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    h2_get_authority(addr, &addr.to_string(), path).await
}

/// One GET over h2c with `authority` as `:authority` (the host HTTP/2 routes by).
pub async fn h2_get_authority(addr: SocketAddr, authority: &str, path: &str) -> (u16, Vec<u8>) {
    use http_body_util::BodyExt;
    let stream = TcpStream::connect(addr).await.unwrap();
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
            .await
            .unwrap();
    tokio::spawn(conn);
    let request = http::Request::get(format!("http://{authority}{path}"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    (
        status,
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
}

/// guest-examples/python.
pub fn python_examples() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-examples/python")
}

/// Builds `spec` from guest-examples/python (with its `requirements` file there, if any)
/// into the test target directory as `name.wasm`.
pub fn build_python_example(spec: &str, name: &str, requirements: Option<&str>) -> PathBuf {
    let output = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.wasm"));
    cheroot_wasm::build_python(&cheroot_wasm::PythonBuild {
        app: spec.into(),
        output: output.clone(),
        paths: vec![python_examples()],
        requirements: requirements.map(|file| python_examples().join(file)),
        include: vec![],
    })
    .unwrap_or_else(|e| panic!("build-python {spec}: {e:#}"));
    output
}

/// Builds `spec` from a copy of the project directory `project` (guest-examples/python/
/// `project`, copied into the test target directory so that neither the build nor a native
/// run leaves `__pycache__` in the source tree) into the test target directory as
/// `name.wasm`, with `requirements` (a file in guest-examples/python), if any. Returns the
/// component and the copy.
pub fn build_python_project(
    spec: &str,
    name: &str,
    project: &str,
    requirements: Option<&str>,
) -> (PathBuf, PathBuf) {
    let tmp = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let copy = tmp.join(format!("{name}-src"));
    let _ = std::fs::remove_dir_all(&copy);
    copy_tree(&python_examples().join(project), &copy);
    let output = tmp.join(format!("{name}.wasm"));
    cheroot_wasm::build_python(&cheroot_wasm::PythonBuild {
        app: spec.into(),
        output: output.clone(),
        paths: vec![copy.clone()],
        requirements: requirements.map(|file| python_examples().join(file)),
        include: vec![],
    })
    .unwrap_or_else(|e| panic!("build-python {spec}: {e:#}"));
    (output, copy)
}

/// Copies the directory `from` to `to`, without `__pycache__` directories.
pub fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "__pycache__" {
                copy_tree(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// What must be equal between cheroot-wasm and cheroot answering one request: status, body,
/// and every header but the ones each server sets for itself.
pub fn comparable(r: &Response) -> (u16, Vec<(String, String)>, String) {
    let mut headers: Vec<(String, String)> = r
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .filter(|(k, _)| !matches!(k.as_str(), "date" | "server" | "connection"))
        .collect();
    headers.sort();
    (r.status, headers, r.text())
}

/// The real cheroot serving `spec` (`module:callable`) natively from `dir`, with `env`, on a
/// free port of 127.0.0.1; stopped when dropped.
pub struct Cheroot {
    child: std::process::Child,
    pub addr: SocketAddr,
}

impl Cheroot {
    pub async fn start(
        spec: &str,
        dir: &std::path::Path,
        env: &[(&str, &std::path::Path)],
    ) -> Cheroot {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "cheroot",
                "--bind",
                &format!("127.0.0.1:{port}"),
                spec,
            ])
            .current_dir(dir)
            .env("PYTHONPATH", dir)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 -m cheroot (scripts/test installs cheroot)");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let started = std::time::Instant::now();
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "cheroot did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Cheroot { child, addr }
    }
}

impl Drop for Cheroot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TLS server side for `cert` and its `key`.
pub fn tls_acceptor(cert: &rcgen::Certificate, key: &rcgen::KeyPair) -> tokio_rustls::TlsAcceptor {
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    )
    .unwrap();
    tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
}

/// An HTTP/1.1 upstream on 127.0.0.1 that answers every request with `body`, over TLS when
/// `tls` is given; returns its port.
pub async fn http_upstream(body: &'static str, tls: Option<tokio_rustls::TlsAcceptor>) -> u16 {
    use tokio::io::{AsyncBufReadExt, BufReader};
    async fn serve<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
        stream: S,
        answer: String,
    ) {
        let (read, mut write) = tokio::io::split(stream);
        let mut lines = BufReader::new(read).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.is_empty() {
                let _ = write.write_all(answer.as_bytes()).await;
                let _ = write.shutdown().await;
                return;
            }
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tls = tls.clone();
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            tokio::spawn(async move {
                match tls {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            serve(stream, answer).await;
                        }
                    }
                    None => serve(stream, answer).await,
                }
            });
        }
    });
    port
}
