//! The WSGI gateway: runs one request through one instance of a route's application.
//!
//! `environ` in, `handle(environ, start_response)` called, the returned iterable pumped
//! into the response ([`crate::body::pump`]) and closed (dropped) in every case, all inside
//! the route's wall-clock budget. It runs on its own task, so the hyper service only waits
//! for the head ([`spawn`] returns the receiver) and a slow client never holds a guest call
//! open beyond what backpressure allows. Every ending — success, guest failure, timeout,
//! client gone — is settled here, once: the writer sends the head or the failure, and the
//! instance goes back to the pool only if it finished cleanly.

use std::sync::Arc;

use tokio::sync::oneshot;

use crate::bindings::Environ;
use crate::error::Failure;
use crate::input::{BodyFailure, Input, RequestBody};
use crate::pool::{Instance, Pool};
use crate::start_response::{Outcome, ResponseWriter, StartResponse};

/// What the gateway needs to know of a request.
pub struct Call {
    /// The environ's `vars`.
    pub vars: Vec<(String, String)>,
    /// The request body.
    pub input: RequestBody,
    /// HEAD: the application runs, no body bytes are sent.
    pub head_only: bool,
    /// Closes the connection after this response, when the response cannot be trusted.
    pub close: Arc<tokio::sync::Notify>,
}

/// A route as the gateway sees it: its pool and budget.
pub struct Target {
    /// Where its instances come from.
    pub pool: Pool,
    /// The route's configuration.
    pub route: Arc<crate::config::Route>,
}

/// Runs `call` on its own task; the receiver resolves with the response head or a failure.
pub fn spawn(target: Arc<Target>, call: Call) -> oneshot::Receiver<Outcome> {
    let (mut writer, outcome) = ResponseWriter::new(call.head_only, call.close);
    tokio::spawn(async move {
        let mut lease = match target.pool.get().await {
            Ok(lease) => lease,
            Err(failure) => {
                tracing::warn!(route = target.route.display_prefix(), "{failure}");
                writer.fail(failure);
                return;
            }
        };
        let instance = &mut lease.instance;
        instance.store.data_mut().begin(call.input, writer);
        // A warm store's deadline is from its last request: start counting afresh.
        instance.store.set_epoch_deadline(1);
        let result =
            tokio::time::timeout(target.route.limits.timeout, run(instance, call.vars)).await;
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
            let route = target.route.display_prefix();
            if failure.is_guest_fault() {
                tracing::error!(
                    route,
                    headers_sent = exchange.response.headers_sent(),
                    "{failure}"
                );
            } else {
                tracing::debug!(route, "{failure}");
            }
            exchange.response.fail(failure);
        }
        target.pool.put(lease, reusable);
    });
    outcome
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
    let body = match app
        .cheroot_wsgi_application()
        .call_handle(&mut *store, &environ, start_response)
        .await
    {
        Err(trap) => return Err(Failure::trap(trap)),
        Ok(Err(raised)) => return Err(Failure::Raised(raised)),
        Ok(Ok(body)) => body,
    };
    let pumped = crate::body::pump(store, app, body).await;
    if matches!(pumped, Err(Failure::Trap(_))) {
        // A trapped instance cannot be entered again, not even to close its body.
        return pumped;
    }
    // WSGI close(): always, whether the body ended, failed or the client left.
    let closed = body
        .resource_drop_async(&mut *store)
        .await
        .map_err(Failure::trap);
    pumped.and(closed)
}

fn internal(e: impl std::fmt::Display) -> Failure {
    Failure::Internal(e.to_string())
}
