//! The admin listener: `/healthz`, `/readyz`, `/stats` (JSON) and `/metrics` (OpenMetrics
//! text), on an address of its own, never the public one (loopback unless the operator says
//! otherwise), so tenants' clients cannot read other tenants' figures.
//!
//! Owns only the HTTP side; the figures are [`crate::http::stats`].

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use super::site::Live;

/// What the admin service reads.
pub struct Admin {
    /// The site being served (its routes, for the instance gauges) and the figures.
    pub live: Arc<Live>,
}

impl Admin {
    /// Reads the pools' current instance counts into the gauges.
    fn refresh(&self) {
        for target in &self.live.get().targets {
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
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let admin = admin.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let response = admin.answer(&req);
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
