//! The admin listener: `/healthz`, `/readyz`, `/stats` (JSON) and `/metrics` (OpenMetrics
//! text), on an address of its own, never the public one (loopback unless the operator says
//! otherwise), so tenants' clients cannot read other tenants' figures.
//!
//! Owns only the HTTP side; the figures are [`crate::http::stats`]. The listener is bounded
//! like the public one, so that no client can hurt the server through it: at most
//! [`MAX_ADMIN_CONNECTIONS`] at once (more wait in the kernel's listen backlog), HTTP/1.1
//! only, and a request head must arrive within the server's `header-timeout`, never more
//! than [`ADMIN_HEADER_TIMEOUT`] (hyper's own header timeout: a slow or silent client is
//! cut off, and an idle keep-alive connection closed). A client that stops reading is cut
//! off once nothing could be sent to it for the server's `write-timeout`, never more than
//! [`ADMIN_WRITE_TIMEOUT`], and a connection serves at most
//! [`MAX_ADMIN_REQUESTS_PER_CONNECTION`] requests (the last answered with `Connection:
//! close`): clients that pipeline scrapes and never read cannot hold every slot, so a
//! prober gets through.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::connection::WriteStall;
use super::site::Live;

/// Admin connections served at once; more wait in the listen backlog. A prober and a metrics
/// scraper need a few; the bound keeps a client that opens many from holding memory and
/// file descriptors without end.
pub const MAX_ADMIN_CONNECTIONS: usize = 64;

/// The longest an admin client may take to send a request head, or leave a keep-alive
/// connection idle: the server's `header-timeout` when that is shorter.
pub const ADMIN_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest an admin client may take nothing that the server writes before it is cut
/// off: the server's `write-timeout` when that is shorter. A scraper reads its answer at
/// once; a client that pipelines requests and never reads would otherwise hold its slot
/// for as long as it likes.
pub const ADMIN_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Requests one admin connection serves; the last is answered with `Connection: close`. A
/// prober opens a connection per probe and a scraper needs one request per scrape, so this
/// only ends connections that pipeline many requests (each `/metrics` costs the server a
/// walk over every route) and makes a scraper reconnect now and then.
pub const MAX_ADMIN_REQUESTS_PER_CONNECTION: usize = 16;

/// What the admin service reads.
pub struct Admin {
    /// The site being served (its routes, for the instance gauges) and the figures.
    pub live: Arc<Live>,
}

impl Admin {
    /// Reads the server's and the pools' current instance counts into the gauges.
    fn refresh(&self) {
        let site = self.live.get();
        let slots = &site.slots;
        self.live
            .stats()
            .set_places(slots.alive(), slots.max(), slots.waiting());
        for target in &site.targets {
            target.stats.set_instances(
                target.pool.idle(),
                target.pool.busy(),
                target.pool.queued(),
            );
        }
    }

    fn answer(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        let reply = |status: StatusCode, kind: &'static str, body: String| {
            let mut r = Response::new(Full::new(Bytes::from(body)));
            *r.status_mut() = status;
            r.headers_mut()
                .insert(header::CONTENT_TYPE, header::HeaderValue::from_static(kind));
            r
        };
        const TEXT: &str = "text/plain; charset=utf-8";
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return reply(StatusCode::METHOD_NOT_ALLOWED, TEXT, "GET only\n".into());
        }
        match req.uri().path() {
            "/healthz" => reply(StatusCode::OK, TEXT, "ok\n".into()),
            "/readyz" if self.live.stats().is_ready() => {
                reply(StatusCode::OK, TEXT, "ready\n".into())
            }
            "/readyz" => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                TEXT,
                "not ready (starting or draining)\n".into(),
            ),
            "/stats" => {
                self.refresh();
                let json = serde_json::to_string_pretty(&self.live.stats().json())
                    .expect("JSON values always serialise");
                reply(StatusCode::OK, "application/json", json + "\n")
            }
            "/metrics" => {
                self.refresh();
                reply(
                    StatusCode::OK,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    self.live.stats().metrics_text(),
                )
            }
            _ => reply(
                StatusCode::NOT_FOUND,
                TEXT,
                "admin endpoints: /healthz /readyz /stats /metrics\n".into(),
            ),
        }
    }
}

/// Serves the admin endpoints on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, admin: Arc<Admin>) {
    let slots = Arc::new(Semaphore::new(MAX_ADMIN_CONNECTIONS));
    loop {
        // A free slot before the next accept: beyond the limit, clients wait in the backlog.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let limits = admin.live.get().server.http;
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout.min(ADMIN_HEADER_TIMEOUT));
        let stream = Timed {
            stream,
            write_stall: WriteStall::new(limits.write_timeout.min(ADMIN_WRITE_TIMEOUT)),
        };
        let admin = admin.clone();
        tokio::spawn(async move {
            let served = AtomicUsize::new(0);
            let service = service_fn(move |req| {
                let mut response = admin.answer(&req);
                if served.fetch_add(1, Ordering::Relaxed) + 1 >= MAX_ADMIN_REQUESTS_PER_CONNECTION {
                    // hyper ends the connection after a response that says so.
                    response.headers_mut().insert(
                        header::CONNECTION,
                        header::HeaderValue::from_static("close"),
                    );
                }
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(slot);
        });
    }
}

/// An admin connection's stream, with the write timeout.
struct Timed {
    stream: TcpStream,
    write_stall: WriteStall,
}

impl AsyncRead for Timed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Timed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let done = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.write_stall.check(cx, done)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let done = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.write_stall.check(cx, done)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let done = Pin::new(&mut this.stream).poll_flush(cx);
        this.write_stall.check(cx, done)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
