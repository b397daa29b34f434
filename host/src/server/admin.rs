//! The admin listener: `/healthz`, `/readyz`, `/stats` (JSON) and `/metrics` (OpenMetrics
//! text), on an address of its own, never the public one (loopback unless the operator says
//! otherwise), so tenants' clients cannot read other tenants' figures.
//!
//! Owns only the HTTP side; the figures are [`crate::http::stats`]. The listener is bounded
//! like the public one, so that no client can hurt the server through it: at most
//! [`MAX_ADMIN_CONNECTIONS`] at once (more wait in the kernel's listen backlog), HTTP/1.1
//! only, and a request head must arrive within the server's `header-timeout`, never more
//! than [`ADMIN_HEADER_TIMEOUT`] (hyper's own header timeout: a slow or silent client is
//! cut off, and an idle keep-alive connection closed).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::site::Live;

/// Admin connections served at once; more wait in the listen backlog. A prober and a metrics
/// scraper need a few; the bound keeps a client that opens many from holding memory and
/// file descriptors without end.
pub const MAX_ADMIN_CONNECTIONS: usize = 64;

/// The longest an admin client may take to send a request head, or leave a keep-alive
/// connection idle: the server's `header-timeout` when that is shorter.
pub const ADMIN_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

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
        let timeout = admin
            .live
            .get()
            .server
            .http
            .header_timeout
            .min(ADMIN_HEADER_TIMEOUT);
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(timeout);
        let admin = admin.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let response = admin.answer(&req);
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(slot);
        });
    }
}
