//! An outgoing HTTP request sent for a guest (`wasi:http/outgoing-handler`), once its
//! route's grant allows it: to an address the grant resolved (never one the request's own
//! authority would resolve to later), over TLS for `https` (rustls, with the web's root
//! certificates or the operator's `[server] outbound-ca`), HTTP/1.1. Redirects are the
//! guest's business: each hop is a new request, checked again.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

use crate::http::stats::RouteStats;

/// How long the response head may take when the guest sets no timeout.
pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(60);

/// The TLS client every route's outgoing HTTPS uses.
pub fn tls_client(
    ca: Option<&[rustls::pki_types::CertificateDer<'static>]>,
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(certs) => {
            for cert in certs {
                roots.add(cert.clone())?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// What wasi:http waits on after the response: the connection's end.
type Connection = Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send>;

/// A connection, plain or TLS.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Io for T {}

/// Sends `request` to one of `addrs` (the grant's, for its authority), `tls` as `host`,
/// connecting (TCP, then TLS) within the guest's timeout, at most `connect_cap` (the route's
/// `outbound-connect-timeout`); `open` is the connection's place in the route's count, held
/// until it closes.
pub async fn send(
    mut request: http::Request<WasiBody>,
    addrs: Vec<SocketAddr>,
    tls: Option<(Arc<rustls::ClientConfig>, String)>,
    options: Option<RequestOptions>,
    connect_cap: Duration,
    stats: Arc<RouteStats>,
    open: impl Send + 'static,
) -> Result<(http::Response<WasiBody>, Connection), HttpError> {
    let connect_timeout = options
        .and_then(|o| o.connect_timeout)
        .map_or(connect_cap, |t| t.min(connect_cap));
    let first_byte_timeout = options
        .and_then(|o| o.first_byte_timeout)
        .unwrap_or(DEFAULT_FIRST_BYTE_TIMEOUT);
    let connect = async {
        let mut last = HttpError::DestinationUnavailable;
        for addr in &addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = HttpError::Connect(e),
            }
        }
        Err(last)
    };
    let stream = tokio::time::timeout(connect_timeout, connect)
        .await
        .map_err(|_| HttpError::ConnectionTimeout)??;
    let stream = Metered(stream, stats);
    // The request line carries the path only (origin-form): the authority is in Host.
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    *request.uri_mut() = path.parse().map_err(|_| HttpError::HttpRequestUriInvalid)?;
    let io: Box<dyn Io> = match tls {
        Some((config, host)) => {
            let name = match host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
                Ok(ip) => ServerName::from(ip),
                Err(_) => {
                    ServerName::try_from(host).map_err(|_| HttpError::HttpRequestUriInvalid)?
                }
            };
            let tls = tokio_rustls::TlsConnector::from(config).connect(name, stream);
            Box::new(
                tokio::time::timeout(connect_timeout, tls)
                    .await
                    .map_err(|_| HttpError::ConnectionTimeout)?
                    .map_err(HttpError::Tls)?,
            )
        }
        None => Box::new(stream),
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(HttpError::from)?;
    // The connection is driven by its own task; the guest's response body ends with it.
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = done_tx.send(connection.await.map_err(HttpError::from));
        // Counted against the route's max-outbound-connections until here.
        drop(open);
    });
    let response = tokio::time::timeout(first_byte_timeout, sender.send_request(request))
        .await
        .map_err(|_| HttpError::ConnectionReadTimeout)?
        .map_err(HttpError::from)?;
    let response = response.map(|body| Incoming(body).boxed_unsync());
    let finished: Connection = Box::new(async move { done_rx.await.unwrap_or(Ok(())) });
    Ok((response, finished))
}

/// hyper's response body with wasi:http's error type.
struct Incoming(hyper::body::Incoming);

impl Body for Incoming {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        Pin::new(&mut self.0)
            .poll_frame(cx)
            .map_err(HttpError::from)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

/// A connection whose bytes, both ways, are counted for the route (before TLS: what the
/// network carries).
struct Metered(TcpStream, Arc<RouteStats>);

impl tokio::io::AsyncRead for Metered {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.0).poll_read(cx, buf);
        self.1
            .outbound_received((buf.filled().len() - before) as u64);
        polled
    }
}

impl tokio::io::AsyncWrite for Metered {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.0).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &polled {
            self.1.outbound_sent(*n as u64);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
