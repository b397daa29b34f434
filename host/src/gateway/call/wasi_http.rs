//! One request through a wasi:http proxy: `incoming-handler.handle(request, response-out)`,
//! with the response the guest sets forwarded to the client as it is written.
//!
//! The guest runs and its response is forwarded side by side: the head arrives through the
//! `response-outparam`, the body through wasi:http's outgoing-body stream, and the guest
//! waits while the client is not reading (the stream's buffer is one chunk). The response
//! goes through the same [`ResponseWriter`] as a WSGI application's, so the same rules hold:
//! status 200–599, no hop-by-hop or CR/LF headers, the Content-Length honoured (extra bytes
//! cut, a short body closes the connection), no body for HEAD, 204 and 304.
//!
//! Once `handle` has returned, no guest code can run until the next request, so whatever
//! the guest did not send by then never will be: a response it never set, or a body it never
//! finished, is an invalid response, not something to wait for.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use http_body_util::BodyExt;
use tokio::sync::oneshot;
use tokio::time::{Instant, error::Elapsed};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::super::bindings::{ErrorCode, Scheme, WsgiError};
use super::super::engine::guest::Guest;
use super::super::engine::pool::Instance;
use super::super::wsgi::input::{BodyFailure, LimitedBody};
use super::super::wsgi::start_response::ResponseWriter;
use super::fault::{internal, raised_failure, trap};
use crate::http::error::Failure;

/// What the guest's `response-outparam.set` sends.
type Answer = Result<hyper::Response<HyperOutgoingBody>, ErrorCode>;

/// Runs the guest until it has returned and its response is forwarded, or `deadline`
/// passes; gives back the writer, which the caller settles.
pub(super) async fn run(
    instance: &mut Instance,
    request: http::Request<LimitedBody>,
    mut writer: ResponseWriter,
    deadline: Instant,
) -> (Result<Result<(), Failure>, Elapsed>, ResponseWriter) {
    let result = tokio::time::timeout_at(deadline, call(instance, request, &mut writer)).await;
    (result, writer)
}

async fn call(
    instance: &mut Instance,
    request: http::Request<LimitedBody>,
    writer: &mut ResponseWriter,
) -> Result<(), Failure> {
    let Instance { store, guest, .. } = instance;
    let Guest::WasiHttp(proxy) = guest else {
        return Err(internal("a wasi:http request reached a WSGI guest"));
    };
    let scheme = match request.uri().scheme_str() {
        Some("https") => Scheme::Https,
        _ => Scheme::Http,
    };
    let (answer_tx, answer) = oneshot::channel();
    let mut http = store.data_mut().http();
    let request = http
        .new_incoming_request(scheme, request)
        .map_err(internal)?;
    let response_out = http.new_response_outparam(answer_tx).map_err(internal)?;
    let returned = AtomicBool::new(false);
    let mut handle = pin!(proxy.wasi_http_incoming_handler().call_handle(
        &mut *store,
        request,
        response_out
    ));
    let forwarded = {
        let mut forward = pin!(forward(answer, writer, &returned));
        tokio::select! {
            biased;
            handled = &mut handle => {
                handled.map_err(trap)?;
                returned.store(true, Ordering::Release);
                forward.await
            }
            // The response is complete, or cannot be: dropping the body here makes the
            // guest's further writes fail (the client is gone), and it gets to return.
            forwarded = &mut forward => forwarded,
        }
    };
    if !returned.load(Ordering::Acquire) {
        handle.await.map_err(trap)?;
    }
    forwarded
}

/// Forwards the guest's response — head, body chunks, trailers — to `writer`, ending the
/// body when the guest finishes it.
async fn forward(
    answer: oneshot::Receiver<Answer>,
    writer: &mut ResponseWriter,
    returned: &AtomicBool,
) -> Result<(), Failure> {
    let response = match unless_returned(answer, returned).await {
        None | Some(Err(_)) => {
            return Err(Failure::InvalidResponse(
                "it returned without setting its response-outparam".into(),
            ));
        }
        Some(Ok(Err(code))) => {
            return Err(raised_failure(&format!(
                "it set its response-outparam to an error: {code:?}"
            )));
        }
        Some(Ok(Ok(response))) => response,
    };
    let (head, mut body) = response.into_parts();
    writer
        .start_head(head.status, &head.headers)
        .map_err(|e| Failure::InvalidResponse(e.to_string()))?;
    loop {
        let frame = match unless_returned(body.frame(), returned).await {
            None => {
                return Err(Failure::InvalidResponse(
                    "it returned without finishing its outgoing-body".into(),
                ));
            }
            Some(None) => break,
            Some(Some(Err(e))) => {
                return Err(Failure::InvalidResponse(format!("its body failed: {e}")));
            }
            Some(Some(Ok(frame))) => frame,
        };
        let sent = match frame.into_data() {
            Ok(data) => writer.write(data).await,
            Err(frame) => match frame.into_trailers() {
                Ok(trailers) => writer.trailers(trailers).await,
                Err(_) => Ok(()),
            },
        };
        match sent {
            Ok(()) => {}
            Err(WsgiError::BodyExceedsContentLength) => {
                return Err(Failure::BodyExceedsContentLength);
            }
            Err(_) => return Err(Failure::Disconnected),
        }
    }
    writer.finish()
}

/// `future`'s output, or `None` if it is still pending once the guest has returned (nothing
/// but the guest could complete it).
async fn unless_returned<F: Future>(future: F, returned: &AtomicBool) -> Option<F::Output> {
    let mut future = pin!(future);
    std::future::poll_fn(|cx| match future.as_mut().poll(cx) {
        Poll::Ready(output) => Poll::Ready(Some(output)),
        Poll::Pending if returned.load(Ordering::Acquire) => Poll::Ready(None),
        Poll::Pending => Poll::Pending,
    })
    .await
}

/// How the guest sees a request body that failed: a stream error on `incoming-body`.
impl From<BodyFailure> for wasmtime_wasi_http::Error {
    fn from(failure: BodyFailure) -> Self {
        match failure {
            BodyFailure::Malformed => wasmtime_wasi_http::Error::HttpProtocolError,
            BodyFailure::TooLarge => wasmtime_wasi_http::Error::HttpRequestBodySize(None),
        }
    }
}
