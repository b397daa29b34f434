//! HTTPS: TLS 1.3 and 1.2 with rustls clients (HTTP/1.1 and HTTP/2 by ALPN), client
//! certificates, plain HTTP on the TLS port, SNI/Host mismatch, and a stalled handshake
//! that must not hold up anyone else. Throwaway certificates from rcgen; none checked in.

use crate::common::*;

use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::pki_types::{PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A CA, a `localhost` server certificate, and a client certificate for "alice".
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    server: (rcgen::Certificate, KeyPair),
    alice: (rcgen::Certificate, KeyPair),
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "Test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let leaf = |names: &[&str], cn: &str, usage| {
            let mut params =
                CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                    .unwrap();
            params
                .distinguished_name
                .push(DnType::OrganizationName, "Example");
            params.distinguished_name.push(DnType::CommonName, cn);
            params.extended_key_usages = vec![usage];
            let key = KeyPair::generate().unwrap();
            (params.signed_by(&key, &ca).unwrap(), key)
        };
        let server = Pki::new_leaf(&ca);
        let alice = leaf(&[], "alice", ExtendedKeyUsagePurpose::ClientAuth);
        Pki { ca, server, alice }
    }

    /// A `localhost` server certificate from `ca`, and its key.
    fn new_leaf(ca: &CertifiedIssuer<'static, KeyPair>) -> (rcgen::Certificate, KeyPair) {
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        (params.signed_by(&key, ca).unwrap(), key)
    }

    /// Writes cert.pem, key.pem and ca.pem into `dir`.
    fn write(&self, dir: &std::path::Path) {
        std::fs::write(dir.join("cert.pem"), self.server.0.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), self.server.1.serialize_pem()).unwrap();
        std::fs::write(dir.join("ca.pem"), self.ca.pem()).unwrap();
    }

    fn client(&self, alpn: &[&[u8]], with_cert: bool, tls12: bool) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        let versions: &[&rustls::SupportedProtocolVersion] = if tls12 {
            &[&rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS13]
        };
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
        let mut config = if with_cert {
            builder
                .with_client_auth_cert(
                    vec![self.alice.0.der().clone()],
                    PrivateKeyDer::try_from(self.alice.1.serialize_der()).unwrap(),
                )
                .unwrap()
        } else {
            builder.with_no_client_auth()
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsConnector::from(Arc::new(config))
    }
}

const TLS: &str = "[server.tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n";

async fn https_server(pki: &Pki, tls_extra: &str) -> TestServer {
    let routes = format!("{TLS}{tls_extra}\n{}", route("/", ENVIRON, ""));
    TestServer::start_with(&routes, |dir| pki.write(dir)).await
}

/// One HTTP/1.1 request over TLS; the raw response bytes.
async fn https_raw(
    server: &TestServer,
    connector: &TlsConnector,
    request: &str,
) -> std::io::Result<Vec<u8>> {
    let tcp = TcpStream::connect(server.addr).await?;
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    tls.write_all(request.as_bytes()).await?;
    let mut out = Vec::new();
    tokio::time::timeout(READ_TIMEOUT, tls.read_to_end(&mut out))
        .await
        .expect("no answer")?;
    Ok(out)
}

const GET: &str = "GET /p HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

#[tokio::test]
async fn https_environ_over_tls13_and_tls12() {
    let pki = Pki::new();
    let server = https_server(&pki, "").await;
    for (tls12, protocol) in [(false, "TLSv1.3"), (true, "TLSv1.2")] {
        let raw = https_raw(&server, &pki.client(&[b"http/1.1"], false, tls12), GET)
            .await
            .unwrap();
        let env = parse_one(&raw).json();
        assert_eq!(env["wsgi.url_scheme"], "https");
        assert_eq!(env["HTTPS"], "on");
        assert_eq!(env["SSL_PROTOCOL"], protocol);
        assert!(
            env["SSL_CIPHER"].as_str().unwrap().starts_with("TLS_"),
            "{env:?}"
        );
        assert_eq!(env["SSL_TLS_SNI"], "localhost");
        assert_eq!(env["SSL_CLIENT_VERIFY"], "NONE");
        assert!(env.get("SSL_CLIENT_S_DN").is_none());
    }
}

#[tokio::test]
async fn http2_over_tls_by_alpn() {
    use http_body_util::BodyExt;
    let pki = Pki::new();
    let server = https_server(&pki, "").await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let tls = pki
        .client(&[b"h2", b"http/1.1"], false, false)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    for path in ["/a", "/b"] {
        let request = http::Request::get(format!("https://localhost{path}"))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let env: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(env["SERVER_PROTOCOL"], "HTTP/2.0");
        assert_eq!(env["PATH_INFO"], path);
        assert_eq!(env["HTTPS"], "on");
    }

    // curl, as users check it, when it is here.
    let ca = server.dir.join("ca.pem");
    if let Ok(out) = tokio::process::Command::new("curl")
        .args([
            "-s",
            "--http2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
        ])
        .arg("--cacert")
        .arg(&ca)
        .arg(format!("https://localhost:{}/curl", server.addr.port()))
        .output()
        .await
    {
        assert_eq!(String::from_utf8_lossy(&out.stdout), "2 200");
    }
}

#[tokio::test]
async fn plain_http_on_the_tls_port_gets_cheroots_400() {
    let pki = Pki::new();
    let server = https_server(&pki, "").await;
    let got = raw(server.addr, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert_eq!(got, cheroot_wasm::PLAIN_HTTP_RESPONSE);
}

#[tokio::test]
async fn a_host_other_than_the_tls_server_name_is_misdirected() {
    let pki = Pki::new();
    let server = https_server(&pki, "").await;
    let connector = pki.client(&[b"http/1.1"], false, false);
    let raw = https_raw(
        &server,
        &connector,
        "GET / HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    assert_eq!(parse_one(&raw).status, 421);
    // The same name with a port, in another case, is the same host.
    let raw = https_raw(
        &server,
        &connector,
        "GET / HTTP/1.1\r\nHost: LocalHost:443\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    assert_eq!(parse_one(&raw).status, 200);
}

#[tokio::test]
async fn client_certificates_are_required_and_reach_the_environ() {
    let pki = Pki::new();
    let server = https_server(&pki, "client-ca = \"ca.pem\"\n").await;
    let raw = https_raw(&server, &pki.client(&[b"http/1.1"], true, false), GET)
        .await
        .unwrap();
    let env = parse_one(&raw).json();
    assert_eq!(env["SSL_CLIENT_VERIFY"], "SUCCESS");
    assert_eq!(
        env["SSL_CLIENT_S_DN"], "CN=alice,O=Example",
        "in certificate order"
    );
    let pem = env["SSL_CLIENT_CERT"].as_str().unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"), "{pem}");
    assert_eq!(
        pem.replace('\n', ""),
        pki.alice.0.pem().replace(['\r', '\n'], "")
    );

    // Without a certificate the server never answers.
    let refused = https_raw(&server, &pki.client(&[b"http/1.1"], false, false), GET).await;
    match refused {
        Err(_) => {}
        Ok(bytes) => assert!(bytes.is_empty(), "{:?}", String::from_utf8_lossy(&bytes)),
    }
}

#[tokio::test]
async fn a_stalled_handshake_does_not_hold_up_other_clients() {
    let pki = Pki::new();
    let server = https_server(&pki, "").await;
    // Connected, silent: cheroot would block its accept thread on this one.
    let _stalled: Vec<TcpStream> = futures::future::join_all(
        (0..5).map(|_| async { TcpStream::connect(server.addr).await.unwrap() }),
    )
    .await;
    let connector = pki.client(&[b"http/1.1"], false, false);
    let raw = tokio::time::timeout(Duration::from_secs(2), https_raw(&server, &connector, GET))
        .await
        .expect("served while others stall")
        .unwrap();
    assert_eq!(parse_one(&raw).status, 200);
}

#[tokio::test]
async fn a_reload_serves_a_renewed_certificate() {
    let pki = Pki::new();
    let server = https_server(&pki, "").await;
    let served_cert = |server: &TestServer| {
        let connector = pki.client(&[b"http/1.1"], false, false);
        let addr = server.addr;
        async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let tls = connector
                .connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await
                .unwrap();
            tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
        }
    };
    assert_eq!(served_cert(&server).await, pki.server.0.der().to_vec());
    // Renewal: a new certificate and key from the same CA, written over the old files.
    let renewed = Pki::new_leaf(&pki.ca);
    std::fs::write(server.dir.join("cert.pem"), renewed.0.pem()).unwrap();
    std::fs::write(server.dir.join("key.pem"), renewed.1.serialize_pem()).unwrap();
    server.live.reload().await.unwrap();
    assert_eq!(served_cert(&server).await, renewed.0.der().to_vec());
}
