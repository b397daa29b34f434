//! One request's path, top to bottom: checked ([`crate::http::protocol`]), a trusted proxy's
//! forwarding applied ([`crate::http::proxy`]), routed by host and path
//! ([`crate::http::router`]), the environ built ([`crate::http::environ`]; for a wasi:http
//! guest, its request, [`crate::http::incoming`]) and the call handed to the gateway
//! ([`crate::gateway`]); then the head the application sent, or the
//! status of what went wrong ([`crate::http::error`]), with the access log and the
//! connection's in-flight count settled when the response ends. The service never fails:
//! hyper only ever sees responses.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::request::Parts;
use http::{Method, Request, Response};
use hyper::body::Incoming;

use super::site::Site;
use crate::gateway::{self, Call, Kind, LimitedBody};
use crate::http::body::{Ending, Flow, ResponseBody};
use crate::http::close::CloseRequest;
use crate::http::environ::{self, Connection, Mount};
use crate::http::error::Failure;
use crate::http::stats::RouteStats;

/// One request, start to head, counted under the route that answered it. `in_flight` is the
/// connection's guard for this request, held until the response has ended; `flow` hears
/// when its body's frames go out and are taken.
pub async fn serve(
    site: &Site,
    connection: Connection,
    close: Arc<CloseRequest>,
    in_flight: impl Send + 'static,
    flow: Arc<dyn Flow>,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    // The access log's time is the request's arrival; nothing to read when it is off.
    let received = site
        .access_log
        .as_ref()
        .map(|log| (log, std::time::SystemTime::now()));
    let (parts, body) = req.into_parts();
    let mut routed = None;
    let mut client = connection.remote.map(|a| a.ip());
    let response = answer(
        site,
        connection,
        close,
        &parts,
        body,
        &mut routed,
        &mut client,
    )
    .await;
    let status = response.status();
    routed.as_deref().unwrap_or(&site.unrouted).answered(status);
    let log = received.map(|(log, at)| (log.entry(&parts, client, at), status.as_u16()));
    // When the response has ended: its access-log line, with the bytes that went out, and
    // one response fewer in flight on its connection.
    response.map(|body| {
        body.flow(flow).ending(Ending::new(move |bytes| {
            if let Some((entry, status)) = log {
                entry.finish(status, bytes);
            }
            drop(in_flight);
        }))
    })
}

/// [`serve`]'s work; `routed` is set to the route's figures once the request is routed, and
/// `client` to the client a trusted proxy names.
async fn answer(
    site: &Site,
    connection: Connection,
    close: Arc<CloseRequest>,
    parts: &Parts,
    body: Incoming,
    routed: &mut Option<Arc<RouteStats>>,
    client: &mut Option<IpAddr>,
) -> Response<ResponseBody> {
    if let Err(failure) = crate::http::protocol::check(parts, &site.server.http) {
        return failure.response();
    }
    let mut host = environ::requested_host(parts);
    // Over TLS, the host asked for must be the one the connection was opened for (SNI).
    if let Some(sni) = connection.tls.as_ref().and_then(|tls| tls.sni.as_deref())
        && host
            .as_deref()
            .is_some_and(|h| crate::http::router::host_key(h) != sni)
    {
        return Failure::Misdirected.response();
    }
    // Behind a trusted proxy, the client, scheme and host are the ones it forwards.
    let mut connection = connection;
    if let Some(forwarded) = crate::http::proxy::resolve(
        &parts.headers,
        *client,
        &site.server.trusted_proxies,
        site.server.forwarded_header,
    ) {
        if let Some(ip) = forwarded.client {
            connection.remote = Some(SocketAddr::new(ip, 0));
            *client = Some(ip);
        }
        connection.scheme = forwarded.scheme.unwrap_or(connection.scheme);
        host = forwarded.host.or(host);
    }
    let path = environ::decode_path(parts.uri.path());
    let route_host = host.as_deref().map(crate::http::router::host_key);
    let Some(matched) = site.router.route(route_host.as_deref(), &path) else {
        return Failure::NotFound.response();
    };
    let target = matched.route.clone();
    *routed = Some(target.stats.clone());
    let mount = Mount {
        script_name: matched.script_name,
        path_info: matched.path_info,
    };
    let limit = target.route.limits.max_request_body;
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if limit.is_some_and(|limit| declared.is_some_and(|declared| declared > limit)) {
        // Refused before the application runs or a byte of the body is read.
        target.stats.failed(&Failure::BodyTooLarge);
        return Failure::BodyTooLarge.response();
    }
    let request = match target.pool.kind() {
        Kind::Wsgi => gateway::Request::Wsgi(environ::build(
            parts,
            &connection,
            host.as_deref(),
            route_host.as_deref(),
            mount,
            target.pool.concurrency(),
        )),
        Kind::WasiHttp => gateway::Request::WasiHttp(crate::http::incoming::build(
            parts,
            &connection,
            host.as_deref(),
            mount,
        )),
    };
    let call = Call {
        request,
        input: LimitedBody::new(body, limit),
        head_only: parts.method == Method::HEAD,
        close,
    };
    match gateway::respond(target, call).await {
        Ok(response) => response,
        Err(failure) => failure.response(),
    }
}
