//! The guest's side of wasi:http beyond its own request: the headers it may never set, and
//! its outgoing requests (`wasi:http/outgoing-handler`), which [`OutboundHttp`] decides.
//!
//! No route is granted outbound HTTP yet, so every request is refused before any
//! connection, with `error-code.http-request-denied`: an error the guest sees and can
//! answer, not a trap. A grant from routes.toml is checked in [`OutboundHttp::send_request`]
//! (the one place a request leaves the sandbox) and nowhere else.

use std::future::Future;
use std::sync::Arc;

use http::HeaderName;
use wasmtime_wasi_http::{
    DEFAULT_FORBIDDEN_HEADERS, Error as HttpError, ForbiddenHeaderFilter, RequestOptions, WasiBody,
    WasiHttpHooks,
};

use super::start_response::is_hop_by_hop;

/// A store's outbound HTTP policy.
pub struct OutboundHttp {
    route: Arc<str>,
    /// A refusal is logged once per instance: a guest in a loop cannot flood the log.
    logged: bool,
}

impl OutboundHttp {
    /// The policy of `route` (its display name, for the log).
    pub fn new(route: Arc<str>) -> Self {
        OutboundHttp {
            route,
            logged: false,
        }
    }
}

type SendResult = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ),
    HttpError,
>;

impl WasiHttpHooks for OutboundHttp {
    /// wasmtime-wasi-http's list (connection, keep-alive, host, proxy-*, transfer-encoding,
    /// upgrade, http2-settings) and every other hop-by-hop field (`te`, `proxy-*`): a guest
    /// can neither set them on a response nor see them on its request. `trailer` stays
    /// allowed: a wasi:http guest can send trailers, and HTTP/1.1 needs them declared.
    fn forbidden_header_filter(&mut self) -> ForbiddenHeaderFilter {
        Arc::new(|name: &HeaderName| {
            DEFAULT_FORBIDDEN_HEADERS.contains(name)
                || (is_hop_by_hop(name.as_str()) && name != http::header::TRAILER)
        })
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _body_sent: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        if !std::mem::replace(&mut self.logged, true) {
            let target = request
                .uri()
                .authority()
                .map_or_else(String::new, |a| a.as_str().to_owned());
            tracing::warn!(
                route = %self.route,
                target = %super::output::log_safe(&target, 256),
                "outbound HTTP refused: this route has no outbound grant"
            );
        }
        Box::new(async { Err(HttpError::HttpRequestDenied) })
    }
}
