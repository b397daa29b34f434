//! The WSGI gateway: runs one request through one instance of a route's application.
//!
//! `environ` in, `handle(environ, start_response)` called, the returned iterable pumped
//! into the response ([`pump`]) and closed (dropped) in every case, all inside
//! the route's wall-clock budget. [`respond`] drives the exchange inside the connection's
//! own task until the response head is ready — for a small response that is the whole
//! exchange, with no task spawned and no cross-thread wake-up — and hands whatever remains
//! (a streaming body) to a task of its own, as it does if hyper drops the request early: an
//! exchange, once begun, always runs to its end, so the application's `close()` is always
//! called and its instance always settled. Every ending — success, guest failure, timeout,
//! client gone — is settled here, once: the writer sends the head or the failure, and the
//! instance goes back to the pool only if it finished cleanly.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use wasmtime::Store;
use wasmtime::component::ResourceAny;

use super::bindings::{App, Environ, WsgiError};
use super::input::{BodyFailure, Input, RequestBody};
use super::output::{MAX_FAILURE_TEXT, log_safe};
use super::pool::{Instance, Pool};
use super::start_response::{Outcome, ResponseWriter, StartResponse};
use super::state::HostState;
use crate::config::Route;
use crate::http::close::CloseRequest;
use crate::http::error::Failure;
use crate::http::stats::RouteStats;

/// What the gateway needs to know of a request.
pub struct Call {
    /// The environ's `vars`.
    pub vars: Vec<(String, String)>,
    /// The request body.
    pub input: RequestBody,
    /// HEAD: the application runs, no body bytes are sent.
    pub head_only: bool,
    /// Closes the connection after this response, when the response cannot be trusted.
    pub close: Arc<CloseRequest>,
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
        vars,
        input,
        head_only,
        close,
    } = call;
    let (writer, mut head) = ResponseWriter::new(head_only, close.clone());
    let mut work = Detachable(Some(Box::pin(exchange(target, vars, input, writer))));
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
    vars: Vec<(String, String)>,
    input: RequestBody,
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
    let instance = &mut lease.instance;
    instance.store.data_mut().begin(input, writer);
    // A warm store's deadline is from its last request: start counting afresh.
    instance.store.set_epoch_deadline(1);
    let guest_started = Instant::now();
    let result = tokio::time::timeout_at(lease.deadline, run(instance, vars)).await;
    let guest_time = guest_started.elapsed();
    let Some(mut exchange) = instance.store.data_mut().end() else {
        return;
    };
    // The guest returned control normally (even with an exception or to a vanished
    // client): its instance is sound. A trap or a cut-off call leaves it unusable.
    let reusable = match &result {
        Ok(Ok(())) => true,
        Ok(Err(failure)) => !matches!(failure, Failure::Trap(_) | Failure::Internal(_)),
        Err(_elapsed) => false,
    };
    let failure = match result {
        Ok(Ok(())) => exchange.response.finish().err(),
        Ok(Err(failure)) => Some(failure),
        Err(_elapsed) if exchange.input.waiting => Some(Failure::ClientTimeout),
        Err(_elapsed) => Some(Failure::Timeout),
    };
    if let Some(failure) = failure {
        // A broken or oversized request body explains the guest's failure better than
        // the guest can: answer for the client's mistake.
        let failure = match exchange.input.failure() {
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
            tracing::error!(
                route,
                headers_sent = exchange.response.headers_sent(),
                "{failure}"
            );
        } else {
            tracing::debug!(route, "{failure}");
        }
        target.stats.failed(&failure);
        exchange.response.fail(failure);
    }
    target.stats.exchanged(
        exchange.input.received(),
        exchange.response.written(),
        started.elapsed(),
        guest_time,
    );
    lease.instance.store.data().output().settle(&target.route);
    target.pool.put(lease, reusable);
}

/// `handle`, the body iteration, and `close()`.
async fn run(instance: &mut Instance, vars: Vec<(String, String)>) -> Result<(), Failure> {
    let Instance { store, app, .. } = instance;
    let id = store.data_mut().exchange_mut().id;
    let table = store.data_mut().table();
    let input = table.push(Input { exchange: id }).map_err(internal)?;
    let start_response = table
        .push(StartResponse { exchange: id })
        .map_err(internal)?;
    let environ = Environ { vars, input };
    let handled = app
        .cheroot_wsgi_application()
        .call_handle(&mut *store, &environ, start_response)
        .await;
    crate::http::environ::recycle(environ.vars);
    let body = match handled {
        Err(error) => return Err(trap(error)),
        Ok(Err(raised)) => return Err(raised_failure(&raised)),
        Ok(Ok(body)) => body,
    };
    let pumped = pump(store, app, body).await;
    if matches!(pumped, Err(Failure::Trap(_))) {
        // A trapped instance cannot be entered again, not even to close its body.
        return pumped;
    }
    // WSGI close(): always, whether the body ended, failed or the client left.
    let closed = body.resource_drop_async(&mut *store).await.map_err(trap);
    pumped.and(closed)
}

/// Pulls `body.next()` until the iterable ends, writing each chunk through the exchange's
/// [`ResponseWriter`]. Returns how the iteration ended; the caller
/// drops the body (WSGI `close()`) afterwards in every case.
async fn pump(store: &mut Store<HostState>, app: &App, body: ResourceAny) -> Result<(), Failure> {
    let iterable = app.cheroot_wsgi_application().body();
    loop {
        let chunk = match iterable.call_next(&mut *store, body).await {
            Err(error) => return Err(trap(error)),
            Ok(Err(raised)) => return Err(raised_failure(&raised)),
            Ok(Ok(None)) => return Ok(()),
            Ok(Ok(Some(chunk))) => chunk,
        };
        let writer = &mut store.data_mut().exchange_mut().response;
        if chunk.is_empty() {
            continue;
        }
        match writer.write(chunk).await {
            Ok(()) => {}
            Err(WsgiError::NotStarted) => return Err(Failure::ChunkBeforeStart),
            Err(WsgiError::BodyExceedsContentLength) => {
                return Err(Failure::BodyExceedsContentLength);
            }
            Err(_) => return Err(Failure::Disconnected),
        }
    }
}

/// A trap from wasmtime: the trap itself first, then the wasm backtrace when there is one
/// (whose function names are the guest's to choose), made safe for the log.
fn trap(error: wasmtime::Error) -> Failure {
    let root = error.root_cause().to_string();
    let backtrace = error
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .map(|b| format!("\n{b}"))
        .unwrap_or_default();
    Failure::Trap(log_safe(&format!("{root}{backtrace}"), MAX_FAILURE_TEXT))
}

/// An exception the guest raised, its text made safe for the log.
fn raised_failure(text: &str) -> Failure {
    Failure::Raised(log_safe(text, MAX_FAILURE_TEXT))
}

fn internal(e: impl std::fmt::Display) -> Failure {
    Failure::Internal(e.to_string())
}
