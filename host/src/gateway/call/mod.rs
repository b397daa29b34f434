//! One exchange: a request through one instance of its route's guest.
//!
//! - here: the exchange, top to bottom;
//! - [`wsgi`] and [`wasi_http`]: the guest run, by its kind;
//! - [`fault`]: a guest's trap or exception as a failure.
//!
//! An instance is leased from the route's pool, the guest is run — [`wsgi`] or
//! [`wasi_http`], by its kind — inside the route's wall-clock budget, and whatever
//! happened is settled here, once: success, guest failure, timeout, client gone. The writer
//! sends the head or the failure, the figures and logs are written, and the instance goes
//! back to the pool only if it finished cleanly. [`respond`] drives the exchange inside the
//! connection's own task until the response head is ready — for a small response that is
//! the whole exchange, with no task spawned and no cross-thread wake-up — and hands whatever
//! remains (a streaming body) to a task of its own, as it does if hyper drops the request
//! early: an exchange, once begun, always runs to its end, so the application's `close()` is
//! always called and its instance always settled.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

pub(crate) mod fault;
pub(crate) mod wasi_http;
pub(crate) mod wsgi;

use super::engine::pool::Pool;
use super::wsgi::input::{BodyFailure, LimitedBody, RequestBody};
use super::wsgi::start_response::{Outcome, ResponseWriter};
use crate::config::Route;
use crate::http::close::CloseRequest;
use crate::http::error::Failure;
use crate::http::stats::RouteStats;

/// What the gateway needs to know of a request.
pub struct Call {
    /// The request as the route's kind of guest sees it.
    pub request: Request,
    /// The request body.
    pub input: LimitedBody,
    /// HEAD: the application runs, no body bytes are sent.
    pub head_only: bool,
    /// Closes the connection after this response, when the response cannot be trusted.
    pub close: Arc<CloseRequest>,
}

/// A request, as each kind of guest is handed it.
pub enum Request {
    /// A WSGI application's environ variables.
    Wsgi(crate::http::environ::Vars),
    /// A wasi:http guest's request head: an absolute URI with the client's scheme and
    /// authority, and the headers it may see.
    WasiHttp(http::Request<()>),
}

/// A route as the gateway sees it: its pool and budget.
pub struct Target {
    /// Where its instances come from.
    pub pool: Pool,
    /// The route's configuration.
    pub route: Arc<Route>,
    /// The route's figures.
    pub stats: Arc<RouteStats>,
}

/// Runs `call` through its route; resolves with the response head or a failure.
pub async fn respond(target: Arc<Target>, call: Call) -> Outcome {
    let Call {
        request,
        input,
        head_only,
        close,
    } = call;
    let (writer, mut head) = ResponseWriter::new(head_only, close.clone());
    let mut work = Detachable(Some(Box::pin(exchange(target, request, input, writer))));
    let head = tokio::select! {
        biased;
        head = &mut head => head,
        () = work.as_mut() => head.await,
    };
    drop(work);
    let mut head = head.unwrap_or_else(|_| {
        Err(Failure::Internal(
            "the exchange ended without an answer".into(),
        ))
    });
    // The exchange may have asked for a close before hyper saw the head (it ran inline, and
    // hyper would go on to a pipelined request within the same poll): say it in the head.
    if let Ok(response) = &mut head
        && close.is_requested()
    {
        response.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    head
}

/// An exchange in progress: dropped before it finished, it goes on as a task of its own.
struct Detachable(Option<Pin<Box<dyn Future<Output = ()> + Send>>>);

impl Detachable {
    fn as_mut(&mut self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| match &mut self.0 {
            Some(work) => {
                let done = work.as_mut().poll(cx);
                if done.is_ready() {
                    self.0 = None;
                }
                done
            }
            None => std::task::Poll::Ready(()),
        })
    }
}

impl Drop for Detachable {
    fn drop(&mut self) {
        // Outside a runtime (it is shutting down) there is nothing left to finish for.
        if let (Some(work), Ok(runtime)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(work);
        }
    }
}

/// One exchange, from getting an instance to settling it.
async fn exchange(
    target: Arc<Target>,
    request: Request,
    input: LimitedBody,
    mut writer: ResponseWriter,
) {
    let started = Instant::now();
    let mut lease = match target.pool.get().await {
        Ok(lease) => lease,
        Err(failure) => {
            if failure.is_guest_fault() {
                tracing::error!(route = %target.route.display_name(), "{failure} (starting an instance)");
            } else {
                tracing::warn!(route = %target.route.display_name(), "{failure}");
            }
            target.stats.failed(&failure);
            writer.fail(failure);
            return;
        }
    };
    let progress = input.progress();
    let instance = &mut lease.instance;
    // A warm store's deadline is from its last request: start counting afresh.
    instance.store.set_epoch_deadline(1);
    let guest_started = Instant::now();
    let (result, mut writer) = match request {
        Request::Wsgi(vars) => {
            let input = RequestBody::new(input);
            wsgi::run(instance, vars, input, writer, lease.deadline).await
        }
        Request::WasiHttp(head) => {
            let request = head.map(|()| input);
            wasi_http::run(instance, request, writer, lease.deadline).await
        }
    };
    let guest_time = guest_started.elapsed();
    // The guest returned control normally (even with an exception or to a vanished
    // client): its instance is sound. A trap, a cut-off call, or a response that broke
    // HTTP leaves it unusable.
    let reusable = match &result {
        Ok(Ok(())) => true,
        Ok(Err(failure)) => !matches!(
            failure,
            Failure::Trap(_) | Failure::Internal(_) | Failure::InvalidResponse(_)
        ),
        Err(_elapsed) => false,
    };
    let failure = match result {
        Ok(Ok(())) => writer.finish().err(),
        Ok(Err(failure)) => Some(failure),
        Err(_elapsed) if progress.waiting() => Some(Failure::ClientTimeout),
        Err(_elapsed) => Some(Failure::Timeout),
    };
    if let Some(failure) = failure {
        // A broken or oversized request body explains the guest's failure better than
        // the guest can: answer for the client's mistake.
        let failure = match progress.failure() {
            Some(BodyFailure::Malformed)
                if !matches!(failure, Failure::Timeout | Failure::ClientTimeout) =>
            {
                Failure::BodyMalformed
            }
            Some(BodyFailure::TooLarge) => Failure::BodyTooLarge,
            _ => failure,
        };
        let route = target.route.display_name();
        if failure.is_guest_fault() {
            tracing::error!(route, headers_sent = writer.headers_sent(), "{failure}");
        } else {
            tracing::debug!(route, "{failure}");
        }
        target.stats.failed(&failure);
        writer.fail(failure);
    }
    target.stats.exchanged(
        progress.received(),
        writer.written(),
        started.elapsed(),
        guest_time,
    );
    lease.instance.store.data().output().settle(&target.route);
    target.pool.put(lease, reusable);
}
