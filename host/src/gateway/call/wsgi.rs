//! One request through a WSGI application: `handle(environ, start_response)`, the body its
//! reply holds written, and the rest of the body iterable, if any, pumped into the response
//! ([`pump`]) and closed (dropped) in every case. The exchange's reader and writer live in
//! the store for the call (the `input` and `start-response` handles reach them through
//! it), and come back out when it ends.

use tokio::time::{Instant, error::Elapsed};
use wasmtime::Store;
use wasmtime::component::ResourceAny;

use super::super::bindings::{App, Environ, Reply, WsgiError};
use super::super::engine::guest::Guest;
use super::super::engine::pool::Instance;
use super::super::state::HostState;
use super::super::wsgi::input::{Input, RequestBody};
use super::super::wsgi::start_response::{ResponseWriter, StartResponse};
use super::fault::{internal, raised_failure, trap};
use crate::http::environ::Vars;
use crate::http::error::Failure;

/// Runs the application until its body iterable is done or `deadline` passes; gives back
/// the writer, which the caller settles.
pub(super) async fn run(
    instance: &mut Instance,
    vars: Vars,
    input: RequestBody,
    writer: ResponseWriter,
    deadline: Instant,
) -> (Result<Result<(), Failure>, Elapsed>, ResponseWriter) {
    instance.store.data_mut().begin(input, writer);
    let result = tokio::time::timeout_at(deadline, call(instance, vars)).await;
    let exchange = instance
        .store
        .data_mut()
        .end()
        .expect("the exchange begun above is still there");
    (result, exchange.response)
}

/// `handle`, the body iteration, and `close()`.
async fn call(instance: &mut Instance, vars: Vars) -> Result<(), Failure> {
    let Instance { store, guest, .. } = instance;
    let Guest::Wsgi(app) = guest else {
        return Err(internal("a WSGI request reached a wasi:http guest"));
    };
    let id = store.data_mut().exchange_mut().id;
    let table = store.data_mut().table();
    let input = table.push(Input { exchange: id }).map_err(internal)?;
    let start_response = table
        .push(StartResponse { exchange: id })
        .map_err(internal)?;
    let environ = Environ {
        vars: vars.packed,
        path_info: vars.path_info,
        input,
    };
    let handled = app
        .cheroot_wsgi_application()
        .call_handle(&mut *store, &environ, start_response)
        .await;
    crate::http::environ::recycle(Vars {
        packed: environ.vars,
        path_info: environ.path_info,
    });
    let Reply { ready, rest } = match handled {
        Err(error) => return Err(trap(error)),
        Ok(Err(raised)) => return Err(raised_failure(&raised)),
        Ok(Ok(reply)) => reply,
    };
    let written = write(store, ready).await;
    let Some(body) = rest else {
        // The application closed its iterable before returning.
        return written;
    };
    let pumped = match written {
        Ok(()) => pump(store, app, body).await,
        Err(failure) => Err(failure),
    };
    if matches!(pumped, Err(Failure::Trap(_))) {
        // A trapped instance cannot be entered again, not even to close its body.
        return pumped;
    }
    // WSGI close(): always, whether the body ended, failed or the client left.
    let closed = body.resource_drop_async(&mut *store).await.map_err(trap);
    pumped.and(closed)
}

/// Pulls `body.next()` until the iterable ends, writing each chunk. Returns how the
/// iteration ended; the caller drops the body (WSGI `close()`) afterwards in every case.
async fn pump(store: &mut Store<HostState>, app: &App, body: ResourceAny) -> Result<(), Failure> {
    let iterable = app.cheroot_wsgi_application().body();
    loop {
        match iterable.call_next(&mut *store, body).await {
            Err(error) => return Err(trap(error)),
            Ok(Err(raised)) => return Err(raised_failure(&raised)),
            Ok(Ok(None)) => return Ok(()),
            Ok(Ok(Some(chunk))) => write(store, chunk).await?,
        }
    }
}

/// One body chunk through the exchange's [`ResponseWriter`]; empty ones are skipped.
async fn write(store: &mut Store<HostState>, chunk: Vec<u8>) -> Result<(), Failure> {
    if chunk.is_empty() {
        return Ok(());
    }
    let writer = &mut store.data_mut().exchange_mut().response;
    match writer.write(chunk).await {
        Ok(()) => Ok(()),
        Err(WsgiError::NotStarted) => Err(Failure::ChunkBeforeStart),
        Err(WsgiError::BodyExceedsContentLength) => Err(Failure::BodyExceedsContentLength),
        Err(_) => Err(Failure::Disconnected),
    }
}
