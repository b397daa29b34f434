//! Response bodies: the hyper [`ResponseBody`] fed by the guest, and [`pump`], which pulls the
//! guest's body iterable into it chunk by chunk.
//!
//! Owns streaming and its end: a chunk reaches the client as soon as the guest returns it,
//! the guest is asked for the next one only when the previous one was taken (backpressure
//! through a one-slot channel), and a body whose producer stopped without saying it was
//! complete (a trap, a timeout, a cancelled task) ends in an error, so hyper closes the
//! connection instead of framing a truncated body as a complete one.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;
use wasmtime::Store;
use wasmtime::component::ResourceAny;

use crate::bindings::App;
use crate::error::Failure;
use crate::pool::HostState;

/// Why a response body stopped before its end; hyper then closes the connection.
#[derive(Debug, thiserror::Error)]
#[error("the application's response body ended early")]
pub struct BodyAborted;

/// A response body: fixed bytes, or a stream of chunks from a guest.
pub struct ResponseBody {
    first: Option<Bytes>,
    stream: Option<(mpsc::Receiver<Bytes>, Arc<AtomicBool>)>,
    /// The body is to abort; one poll was given to hyper to flush what came before.
    aborting: bool,
    /// What to settle when the response has ended.
    ending: Option<Ending>,
}

/// What happens when a response has ended — sent, cut off, or abandoned by hyper: its
/// access-log line is written with the bytes that went out, and its connection learns that
/// it has one response fewer in flight.
pub struct Ending {
    log: Option<(crate::access_log::Entry, u16)>,
    _in_flight: crate::connection::InFlight,
    bytes: u64,
}

impl Ending {
    /// `log` is the access-log line and the status, if the log is on.
    pub fn new(
        log: Option<(crate::access_log::Entry, u16)>,
        in_flight: crate::connection::InFlight,
    ) -> Self {
        Ending {
            log,
            _in_flight: in_flight,
            bytes: 0,
        }
    }
}

impl Drop for Ending {
    fn drop(&mut self) {
        if let Some((entry, status)) = self.log.take() {
            entry.finish(status, self.bytes);
        }
    }
}

impl ResponseBody {
    /// A body of at most one chunk, known now.
    pub fn full(data: Option<Bytes>) -> Self {
        ResponseBody {
            first: data.filter(|d| !d.is_empty()),
            stream: None,
            aborting: false,
            ending: None,
        }
    }

    /// A body that starts with `first` and continues with what arrives on `rx`; it ends
    /// cleanly only if `complete` is set when the channel closes.
    pub fn stream(
        first: Option<Bytes>,
        rx: mpsc::Receiver<Bytes>,
        complete: Arc<AtomicBool>,
    ) -> Self {
        ResponseBody {
            first: first.filter(|d| !d.is_empty()),
            stream: Some((rx, complete)),
            aborting: false,
            ending: None,
        }
    }

    /// Settles `ending` when this body is done with.
    pub fn ending(mut self, ending: Ending) -> Self {
        self.ending = Some(ending);
        self
    }

    fn sent(&mut self, chunk: Bytes) -> Poll<Option<Result<Frame<Bytes>, BodyAborted>>> {
        if let Some(ending) = &mut self.ending {
            ending.bytes += chunk.len() as u64;
        }
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyAborted;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyAborted>>> {
        if let Some(first) = self.first.take() {
            return self.sent(first);
        }
        if self.aborting {
            self.aborting = false;
            return Poll::Ready(Some(Err(BodyAborted)));
        }
        let Some((rx, complete)) = self.stream.as_mut() else {
            return Poll::Ready(None);
        };
        match rx.poll_recv(cx) {
            Poll::Ready(Some(chunk)) => self.sent(chunk),
            Poll::Ready(None) if complete.load(Ordering::Acquire) => {
                self.stream = None;
                Poll::Ready(None)
            }
            Poll::Ready(None) => {
                // hyper drops its unflushed output when a body fails: yield once first, so
                // what was already produced (the head, earlier chunks) reaches the client
                // before the connection is cut.
                self.stream = None;
                self.aborting = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.stream.is_none() && !self.aborting
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.first, &self.stream) {
            (None, None) => SizeHint::with_exact(0),
            (Some(b), None) => SizeHint::with_exact(b.len() as u64),
            (first, Some(_)) => {
                let mut hint = SizeHint::new();
                hint.set_lower(first.as_ref().map_or(0, |b| b.len() as u64));
                hint
            }
        }
    }
}

/// Pulls `body.next()` until the iterable ends, writing each chunk through the exchange's
/// [`crate::start_response::ResponseWriter`]. Returns how the iteration ended; the caller
/// drops the body (WSGI `close()`) afterwards in every case.
pub async fn pump(
    store: &mut Store<HostState>,
    app: &App,
    body: ResourceAny,
) -> Result<(), Failure> {
    let iterable = app.cheroot_wsgi_application().body();
    loop {
        let chunk = match iterable.call_next(&mut *store, body).await {
            Err(trap) => return Err(Failure::trap(trap)),
            Ok(Err(raised)) => return Err(Failure::Raised(raised)),
            Ok(Ok(None)) => return Ok(()),
            Ok(Ok(Some(chunk))) => chunk,
        };
        let writer = &mut store.data_mut().exchange_mut().response;
        if chunk.is_empty() {
            continue;
        }
        match writer.write(chunk).await {
            Ok(()) => {}
            Err(crate::bindings::WsgiError::NotStarted) => return Err(Failure::ChunkBeforeStart),
            Err(crate::bindings::WsgiError::BodyExceedsContentLength) => {
                return Err(Failure::BodyExceedsContentLength);
            }
            Err(_) => return Err(Failure::Disconnected),
        }
    }
}
