//! HTTPS: the certificate, key and client-certificate policy from `[server.tls]` (this
//! file), one TLS handshake per connection ([`handshake`]), and what that handshake settled
//! ([`certificate`]: the facts the environ spells as mod_ssl keys).
//!
//! [`Acceptor::load`] reads the PEM files once, before the server listens, and fails with a
//! message naming the file and the fix (missing file, no certificate, no key, a key that does
//! not belong to the certificate, an unusable client CA).
//!
//! Not here: reading `[server.tls]` from routes.toml (`config`), the accept loop, logging a
//! failed handshake and choosing HTTP/1.1 or HTTP/2 for the connection (`server`), and
//! the environ keys (`http::environ`). The crypto provider is always passed explicitly (`ring`), so
//! nothing here depends on a process-wide default provider being installed.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{Error as RustlsError, InconsistentKeys, RootCertStore, ServerConfig};

use crate::config::TlsSettings;

mod certificate;
mod handshake;

pub use handshake::{DEFAULT_HANDSHAKE_TIMEOUT, Handshake};

/// A loaded certificate, key and client-certificate policy; cheap to clone.
#[derive(Clone)]
pub struct Acceptor {
    inner: tokio_rustls::TlsAcceptor,
    client_auth: bool,
}

impl fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acceptor")
            .field("client_auth", &self.client_auth)
            .finish_non_exhaustive()
    }
}

impl Acceptor {
    /// Reads the PEM files. Errors name the file and say what is wrong and how to fix it.
    /// ALPN offers "h2" then "http/1.1". With `client_ca`, client certificates are required
    /// and verified against it.
    pub fn load(settings: &TlsSettings) -> anyhow::Result<Acceptor> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = read_certs(&settings.cert, "cert")?;
        let key = read_key(&settings.key)?;

        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("the ring crypto provider supports no TLS version (a build problem)")?;
        let builder = match &settings.client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => builder.with_client_cert_verifier(client_verifier(path, &provider)?),
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|e| key_error(e, settings))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

        Ok(Acceptor {
            inner: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            client_auth: settings.client_ca.is_some(),
        })
    }
}

/// Reads a whole file, with a message that names it and the routes.toml key it came from.
fn read_file(path: &Path, key: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => anyhow!(
            "TLS {key} file {} does not exist: fix `{key}` in [server.tls] of routes.toml",
            path.display()
        ),
        _ => anyhow!("cannot read TLS {key} file {}: {e}", path.display()),
    })
}

fn pem_error(path: &Path, e: pem::Error) -> anyhow::Error {
    anyhow!("{} is not a valid PEM file: {e}", path.display())
}

/// Every certificate in a PEM file; at least one.
pub(crate) fn read_certs(path: &Path, key: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let bytes = read_file(path, key)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        let hint = match PrivateKeyDer::from_pem_slice(&bytes) {
            Ok(_) if key == "cert" => " but a private key: are `cert` and `key` swapped?",
            Ok(_) => " but a private key",
            Err(_) => "",
        };
        bail!(
            "TLS {key} file {} holds no certificate{hint} (it must contain at least one \
             `-----BEGIN CERTIFICATE-----` block)",
            path.display()
        );
    }
    Ok(certs)
}

/// The first private key in a PEM file.
fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let bytes = read_file(path, "key")?;
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) if contains(&bytes, b"ENCRYPTED") => bail!(
            "TLS key file {} holds an encrypted private key, which cannot be used: decrypt it \
             with `openssl pkey -in KEY -out KEY.plain`",
            path.display()
        ),
        Err(pem::Error::NoItemsFound) => bail!(
            "TLS key file {} holds no private key: it must contain a `-----BEGIN PRIVATE KEY-----` \
             (or `RSA PRIVATE KEY` / `EC PRIVATE KEY`) block",
            path.display()
        ),
        Err(e) => Err(pem_error(path, e)),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Explains why rustls refused the certificate and key together.
fn key_error(e: RustlsError, settings: &TlsSettings) -> anyhow::Error {
    let (cert, key) = (settings.cert.display(), settings.key.display());
    match e {
        RustlsError::InconsistentKeys(InconsistentKeys::KeyMismatch) => anyhow!(
            "the private key in {key} does not belong to the certificate in {cert}: the first \
             certificate in the `cert` file must be the one issued for this key (intermediates \
             follow it)"
        ),
        e => anyhow!("cannot use the private key in {key} with the certificate in {cert}: {e}"),
    }
}

/// Requires a client certificate that chains to a CA in `path`.
fn client_verifier(
    path: &Path,
    provider: &Arc<CryptoProvider>,
) -> anyhow::Result<Arc<dyn rustls::server::danger::ClientCertVerifier>> {
    let mut roots = RootCertStore::empty();
    for (i, ca) in read_certs(path, "client-ca")?.into_iter().enumerate() {
        roots.add(ca).map_err(|e| {
            anyhow!(
                "certificate #{} in TLS client-ca file {} cannot be a trust anchor: {e}",
                i + 1,
                path.display()
            )
        })?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| anyhow!("TLS client-ca file {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::path::PathBuf;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

    use super::handshake::TLS_HANDSHAKE_RECORD;

    use crate::http::environ::{ClientCert, TlsInfo};
    use crate::http::error::PLAIN_HTTP_RESPONSE;

    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
        ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
    };
    use rustls::ClientConfig;
    use rustls::pki_types::ServerName;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::DuplexStream;
    use tokio_rustls::TlsConnector;

    /// A directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "cheroot-wasm-tls-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&path).expect("create temp dir");
            TempDir(path)
        }

        fn write(&self, name: &str, contents: &str) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, contents).expect("write temp file");
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        CertifiedIssuer::self_signed(params, KeyPair::generate().expect("ca key")).expect("ca")
    }

    /// A leaf certificate signed by `ca`, and its key.
    fn leaf(
        ca: &CertifiedIssuer<'static, KeyPair>,
        sans: &[&str],
        dn: &[(DnType, &str)],
        usage: ExtendedKeyUsagePurpose,
    ) -> (rcgen::Certificate, KeyPair) {
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).expect("leaf params");
        params.distinguished_name = DistinguishedName::new();
        for (ty, value) in dn {
            params.distinguished_name.push(ty.clone(), *value);
        }
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, ca).expect("sign leaf");
        (cert, key)
    }

    /// A server CA, a `localhost` certificate from it, and (optionally) a client CA, on disk.
    struct Pki {
        dir: TempDir,
        server_ca: CertifiedIssuer<'static, KeyPair>,
        client_ca: CertifiedIssuer<'static, KeyPair>,
        settings: TlsSettings,
    }

    impl Pki {
        fn new(require_client_cert: bool) -> Pki {
            let dir = TempDir::new();
            let server_ca = ca("Test Server CA");
            let client_ca = ca("Test Client CA");
            let (cert, key) = leaf(
                &server_ca,
                &["localhost"],
                &[(DnType::CommonName, "localhost")],
                ExtendedKeyUsagePurpose::ServerAuth,
            );
            let settings = TlsSettings {
                cert: dir.write("cert.pem", &cert.pem()),
                key: dir.write("key.pem", &key.serialize_pem()),
                client_ca: require_client_cert
                    .then(|| dir.write("client-ca.pem", &client_ca.pem())),
            };
            Pki {
                dir,
                server_ca,
                client_ca,
                settings,
            }
        }

        fn acceptor(&self) -> Acceptor {
            Acceptor::load(&self.settings).expect("load")
        }

        fn client(&self, alpn: &[&[u8]], cert: Option<(&rcgen::Certificate, &KeyPair)>) -> Client {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut roots = RootCertStore::empty();
            roots
                .add(self.server_ca.der().clone())
                .expect("trust server ca");
            let builder = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots);
            let mut config = match cert {
                None => builder.with_no_client_auth(),
                Some((cert, key)) => builder
                    .with_client_auth_cert(
                        vec![cert.der().clone()],
                        PrivateKeyDer::try_from(key.serialize_der()).expect("key der"),
                    )
                    .expect("client auth"),
            };
            config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            Client(config)
        }
    }

    struct Client(ClientConfig);

    type ClientStream = tokio_rustls::client::TlsStream<DuplexStream>;

    impl Client {
        /// Connects to a fresh `accept` on an in-memory pipe; returns both sides' results.
        async fn handshake(
            self,
            acceptor: &Acceptor,
            server_name: &str,
        ) -> (
            anyhow::Result<Handshake<DuplexStream>>,
            io::Result<ClientStream>,
        ) {
            let (client_io, server_io) = tokio::io::duplex(64 * 1024);
            let acceptor = acceptor.clone();
            let server =
                tokio::spawn(
                    async move { acceptor.accept(server_io, Duration::from_secs(5)).await },
                );
            let name = ServerName::try_from(server_name.to_owned()).expect("server name");
            let client = TlsConnector::from(Arc::new(self.0))
                .connect(name, client_io)
                .await;
            // Keep the client alive until the server has read everything it sent.
            let server = server.await.expect("server task");
            (server, client)
        }
    }

    fn done(result: anyhow::Result<Handshake<DuplexStream>>) -> TlsInfo {
        match result.expect("server handshake") {
            Handshake::Done(_, info) => info,
            Handshake::PlainHttp => panic!("TLS client taken for plain HTTP"),
        }
    }

    #[test]
    fn plain_http_response_is_well_framed() {
        let text = std::str::from_utf8(PLAIN_HTTP_RESPONSE).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())));
        assert_eq!(body.len(), 85);
    }

    #[test]
    fn environ_table() {
        let bare = TlsInfo {
            protocol: "TLSv1.3".into(),
            cipher: "TLS_AES_256_GCM_SHA384".into(),
            ..TlsInfo::default()
        };
        let full = TlsInfo {
            sni: Some("example.com".into()),
            client: Some(ClientCert {
                subject_dn: "O=Example,CN=alice".into(),
                pem: "-----BEGIN CERTIFICATE-----".into(),
            }),
            ..bare.clone()
        };
        let owned = |env: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
            env.iter().map(|(k, v)| (*k, v.to_string())).collect()
        };
        assert_eq!(
            bare.environ(),
            owned(&[
                ("HTTPS", "on"),
                ("SSL_PROTOCOL", "TLSv1.3"),
                ("SSL_CIPHER", "TLS_AES_256_GCM_SHA384"),
                ("SSL_CLIENT_VERIFY", "NONE"),
            ])
        );
        assert_eq!(
            full.environ(),
            owned(&[
                ("HTTPS", "on"),
                ("SSL_PROTOCOL", "TLSv1.3"),
                ("SSL_CIPHER", "TLS_AES_256_GCM_SHA384"),
                ("SSL_TLS_SNI", "example.com"),
                ("SSL_CLIENT_VERIFY", "SUCCESS"),
                ("SSL_CLIENT_S_DN", "O=Example,CN=alice"),
                ("SSL_CLIENT_CERT", "-----BEGIN CERTIFICATE-----"),
            ])
        );
    }

    #[tokio::test]
    async fn handshake_with_alpn_h2() {
        let pki = Pki::new(false);
        let client = pki.client(&[b"h2", b"http/1.1"], None);
        let (server, client) = client.handshake(&pki.acceptor(), "localhost").await;
        let client = client.expect("client handshake");
        let info = done(server);
        assert_eq!(info.protocol, "TLSv1.3");
        assert!(info.cipher.starts_with("TLS_AES_"), "{}", info.cipher);
        assert_eq!(info.sni.as_deref(), Some("localhost"));
        assert!(info.h2);
        assert!(info.client.is_none());
        assert_eq!(client.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let env = info.environ();
        assert!(env.contains(&("SSL_TLS_SNI", "localhost".into())));
        assert!(env.contains(&("SSL_CLIENT_VERIFY", "NONE".into())));
    }

    #[tokio::test]
    async fn handshake_with_alpn_http11_and_mixed_case_sni() {
        let pki = Pki::new(false);
        let client = pki.client(&[b"http/1.1"], None);
        let (server, client) = client.handshake(&pki.acceptor(), "LocalHost").await;
        client.expect("client handshake");
        let info = done(server);
        assert!(!info.h2);
        assert_eq!(info.sni.as_deref(), Some("localhost"));
    }

    #[tokio::test]
    async fn handshake_without_sni_or_alpn_over_tls12() {
        let pki = Pki::new(false);
        let mut roots = RootCertStore::empty();
        roots.add(pki.server_ca.der().clone()).expect("trust");
        let mut config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(&[&rustls::version::TLS12])
                .expect("tls12")
                .with_root_certificates(roots)
                .with_no_client_auth();
        config.enable_sni = false;
        let (server, client) = Client(config).handshake(&pki.acceptor(), "localhost").await;
        client.expect("client handshake");
        let info = done(server);
        assert_eq!(info.protocol, "TLSv1.2");
        assert!(
            info.cipher.starts_with("TLS_ECDHE_ECDSA_WITH_"),
            "{}",
            info.cipher
        );
        assert_eq!(info.sni, None);
        assert!(!info.h2);
        assert!(!info.environ().iter().any(|(k, _)| *k == "SSL_TLS_SNI"));
    }

    /// Hands out at most one byte per read, as a slow network might.
    struct Trickle(DuplexStream);

    impl AsyncRead for Trickle {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let mut one = [0u8; 1];
            let mut small = ReadBuf::new(&mut one[..buf.remaining().min(1)]);
            let result = Pin::new(&mut self.get_mut().0).poll_read(cx, &mut small);
            buf.put_slice(small.filled());
            result
        }
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().0).poll_flush(cx)
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
        }
    }

    #[tokio::test]
    async fn handshake_survives_one_byte_reads() {
        // The sniff gets a single byte and everything else must come through Prefixed, in
        // order, one byte per read.
        let pki = Pki::new(false);
        let acceptor = pki.acceptor();
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(async move {
            acceptor
                .accept(Trickle(server_io), Duration::from_secs(5))
                .await
        });
        let config = pki.client(&[b"h2"], None).0;
        let mut client = TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").expect("name"), client_io)
            .await
            .expect("client handshake");
        let Handshake::Done(mut stream, info) = server.await.expect("task").expect("server") else {
            panic!("taken for plain HTTP");
        };
        assert!(info.h2);
        client.write_all(b"ping").await.expect("write");
        client.flush().await.expect("flush");
        let mut got = [0u8; 4];
        stream.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"ping");
        stream.write_all(b"pong").await.expect("write back");
        stream.flush().await.expect("flush back");
        client.read_exact(&mut got).await.expect("read back");
        assert_eq!(&got, b"pong");
    }

    #[tokio::test]
    async fn plain_http_gets_the_400() {
        let pki = Pki::new(false);
        let acceptor = pki.acceptor();
        let (mut client, server_io) = tokio::io::duplex(64 * 1024);
        let server =
            tokio::spawn(async move { acceptor.accept(server_io, Duration::from_secs(5)).await });
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .expect("write");
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.expect("read");
        assert_eq!(answer, PLAIN_HTTP_RESPONSE);
        // The server lingers: what the client still sends is read, not refused.
        client
            .write_all(b"late body bytes")
            .await
            .expect("still read");
        drop(client);
        assert!(matches!(
            server.await.expect("task"),
            Ok(Handshake::PlainHttp)
        ));
    }

    #[tokio::test]
    async fn plain_http_over_tcp_reaches_the_client() {
        let pki = Pki::new(false);
        let acceptor = pki.acceptor();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            acceptor.accept(tcp, Duration::from_secs(5)).await
        });
        let mut client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let request = format!(
            "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 20000\r\n\r\n{}",
            "x".repeat(20000)
        );
        client.write_all(request.as_bytes()).await.expect("write");
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.expect("read");
        drop(client);
        assert_eq!(answer, PLAIN_HTTP_RESPONSE);
        assert!(matches!(
            server.await.expect("task"),
            Ok(Handshake::PlainHttp)
        ));
    }

    #[tokio::test]
    async fn client_certificate_is_verified_and_described() {
        let pki = Pki::new(true);
        let (cert, key) = leaf(
            &pki.client_ca,
            &[],
            &[
                (DnType::CountryName, "US"),
                (DnType::OrganizationName, "Example"),
                (DnType::CommonName, "alice"),
            ],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let client = pki.client(&[b"http/1.1"], Some((&cert, &key)));
        let (server, client) = client.handshake(&pki.acceptor(), "localhost").await;
        client.expect("client handshake");
        let info = done(server);
        let client_cert = info.client.clone().expect("client cert");
        assert_eq!(client_cert.subject_dn, "C=US,O=Example,CN=alice");
        // rcgen writes CRLF line ends and a final newline; cheroot's (and ours) has neither.
        assert_eq!(client_cert.pem, cert.pem().replace("\r\n", "\n").trim_end());
        let env = info.environ();
        assert!(env.contains(&("SSL_CLIENT_VERIFY", "SUCCESS".into())));
        assert!(env.contains(&("SSL_CLIENT_S_DN", "C=US,O=Example,CN=alice".into())));
        assert!(env.contains(&("SSL_CLIENT_CERT", client_cert.pem.clone())));
    }

    #[tokio::test]
    async fn client_without_certificate_is_refused() {
        let pki = Pki::new(true);
        let client = pki.client(&[b"http/1.1"], None);
        // Under TLS 1.3 the client finishes before the server has judged its (empty)
        // certificate, so only the server's verdict is certain.
        let (server, _client) = client.handshake(&pki.acceptor(), "localhost").await;
        let err = server.err().expect("handshake must fail");
        assert!(
            format!("{err:#}").contains("TLS handshake failed"),
            "{err:#}"
        );
    }

    #[tokio::test]
    async fn client_certificate_from_another_ca_is_refused() {
        let pki = Pki::new(true);
        let (cert, key) = leaf(
            &pki.server_ca,
            &[],
            &[(DnType::CommonName, "mallory")],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let client = pki.client(&[b"http/1.1"], Some((&cert, &key)));
        let (server, _client) = client.handshake(&pki.acceptor(), "localhost").await;
        assert!(server.is_err());
    }

    #[tokio::test]
    async fn silent_client_times_out() {
        let pki = Pki::new(false);
        let (_client, server_io) = tokio::io::duplex(1024);
        let start = std::time::Instant::now();
        let result = pki
            .acceptor()
            .accept(server_io, Duration::from_millis(200))
            .await;
        let err = result.err().expect("must time out");
        assert!(start.elapsed() >= Duration::from_millis(200));
        assert!(start.elapsed() < Duration::from_secs(3));
        assert!(format!("{err:#}").contains("sent nothing"), "{err:#}");
    }

    #[tokio::test]
    async fn stalled_handshake_times_out() {
        // The deadline covers the whole handshake, not just the first bytes.
        let pki = Pki::new(false);
        let (mut client, server_io) = tokio::io::duplex(1024);
        client
            .write_all(&[TLS_HANDSHAKE_RECORD, 3])
            .await
            .expect("write");
        let start = std::time::Instant::now();
        let result = pki
            .acceptor()
            .accept(server_io, Duration::from_millis(200))
            .await;
        let err = result.err().expect("must time out");
        assert!(start.elapsed() < Duration::from_secs(3));
        assert!(format!("{err:#}").contains("not finished"), "{err:#}");
    }

    #[tokio::test]
    async fn client_that_closes_at_once_is_an_error() {
        let pki = Pki::new(false);
        let (client, server_io) = tokio::io::duplex(1024);
        drop(client);
        let result = pki
            .acceptor()
            .accept(server_io, Duration::from_secs(5))
            .await;
        let err = result.err().expect("must fail");
        assert!(format!("{err:#}").contains("closed"), "{err:#}");
    }

    fn load_error(settings: &TlsSettings) -> String {
        format!(
            "{:#}",
            Acceptor::load(settings).expect_err("load must fail")
        )
    }

    #[test]
    fn load_reports_a_missing_file() {
        let pki = Pki::new(false);
        let missing = pki.dir.0.join("nope.pem");
        let settings = TlsSettings {
            cert: missing.clone(),
            ..pki.settings.clone()
        };
        let err = load_error(&settings);
        assert!(err.contains(&missing.display().to_string()), "{err}");
        assert!(err.contains("does not exist"), "{err}");

        let settings = TlsSettings {
            key: missing.clone(),
            ..pki.settings.clone()
        };
        let err = load_error(&settings);
        assert!(err.contains(&missing.display().to_string()), "{err}");
    }

    #[test]
    fn load_reports_a_key_that_does_not_match() {
        let pki = Pki::new(false);
        let other = KeyPair::generate().expect("key");
        let settings = TlsSettings {
            key: pki.dir.write("other-key.pem", &other.serialize_pem()),
            ..pki.settings.clone()
        };
        let err = load_error(&settings);
        assert!(err.contains("does not belong"), "{err}");
        assert!(err.contains(&settings.key.display().to_string()), "{err}");
        assert!(err.contains(&settings.cert.display().to_string()), "{err}");
    }

    #[test]
    fn load_reports_a_file_without_certificate() {
        let pki = Pki::new(false);
        // The classic mistake: cert and key swapped.
        let settings = TlsSettings {
            cert: pki.settings.key.clone(),
            key: pki.settings.cert.clone(),
            client_ca: None,
        };
        let err = load_error(&settings);
        assert!(err.contains("holds no certificate"), "{err}");
        assert!(err.contains("swapped"), "{err}");
        assert!(err.contains(&settings.cert.display().to_string()), "{err}");

        let settings = TlsSettings {
            cert: pki.dir.write("empty.pem", "just some text\n"),
            ..pki.settings.clone()
        };
        let err = load_error(&settings);
        assert!(err.contains("holds no certificate"), "{err}");
        assert!(err.contains(&settings.cert.display().to_string()), "{err}");
    }

    #[test]
    fn load_reports_a_file_without_key() {
        let pki = Pki::new(false);
        let settings = TlsSettings {
            key: pki.settings.cert.clone(),
            ..pki.settings.clone()
        };
        let err = load_error(&settings);
        assert!(err.contains("holds no private key"), "{err}");
        assert!(err.contains(&settings.key.display().to_string()), "{err}");
    }

    #[test]
    fn load_reports_a_bad_client_ca() {
        let pki = Pki::new(true);
        let settings = TlsSettings {
            client_ca: Some(pki.settings.key.clone()),
            ..pki.settings.clone()
        };
        let err = load_error(&settings);
        assert!(err.contains("client-ca"), "{err}");
        assert!(
            err.contains("holds no certificate but a private key"),
            "{err}"
        );
        assert!(!err.contains("swapped"), "{err}");
        assert!(
            err.contains(&pki.settings.key.display().to_string()),
            "{err}"
        );
    }
}
