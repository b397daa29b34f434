//! The response body hyper sends: fixed bytes, or a stream of chunks fed by the gateway.
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

/// Why a response body stopped before its end; hyper then closes the connection.
#[derive(Debug, thiserror::Error)]
#[error("the application's response body ended early")]
pub struct BodyAborted;

/// A response body: fixed bytes, or a stream of chunks from a guest.
pub struct ResponseBody {
    first: Option<Bytes>,
    stream: Option<(mpsc::Receiver<Frame<Bytes>>, Arc<AtomicBool>)>,
    /// The body is to abort; one poll was given to hyper to flush what came before.
    aborting: bool,
    /// What to settle when the response has ended.
    ending: Option<Ending>,
    /// Who is told when a frame is handed to hyper, and when hyper comes back for more;
    /// `true` while a frame is out.
    flow: Option<(Arc<dyn Flow>, bool)>,
}

/// Told when hyper takes a frame of a response body (`owed`: the frame now waits for the
/// client to take it) and when hyper comes back for the next one or drops the body (`paid`).
/// hyper asks for the next frame only once it could send the last, so a body that stays
/// owed is a client that stopped taking data: over HTTP/2 one that keeps its flow-control
/// window shut (RFC 9113 §5.2) never makes the socket block, and only this shows it.
pub trait Flow: Send + Sync {
    /// A frame went to hyper.
    fn owed(&self);
    /// hyper came back for more, or is done with the body.
    fn paid(&self);
}

/// What happens when a response has ended — sent, cut off, or abandoned by hyper: the
/// server's closure gets the body bytes that went out (for the access log), once.
pub struct Ending {
    settle: Option<Box<dyn FnOnce(u64) + Send>>,
    bytes: u64,
}

impl Ending {
    /// Calls `settle` with the bytes sent when the response has ended.
    pub fn new(settle: impl FnOnce(u64) + Send + 'static) -> Self {
        Ending {
            settle: Some(Box::new(settle)),
            bytes: 0,
        }
    }
}

impl Drop for Ending {
    fn drop(&mut self) {
        if let Some(settle) = self.settle.take() {
            settle(self.bytes);
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
            flow: None,
        }
    }

    /// A body that starts with `first` and continues with what arrives on `rx` (data, then
    /// perhaps trailers); it ends cleanly only if `complete` is set when the channel closes.
    pub fn stream(
        first: Option<Bytes>,
        rx: mpsc::Receiver<Frame<Bytes>>,
        complete: Arc<AtomicBool>,
    ) -> Self {
        ResponseBody {
            first: first.filter(|d| !d.is_empty()),
            stream: Some((rx, complete)),
            aborting: false,
            ending: None,
            flow: None,
        }
    }

    /// Settles `ending` when this body is done with.
    pub fn ending(mut self, ending: Ending) -> Self {
        self.ending = Some(ending);
        self
    }

    /// Tells `flow` when frames go out and when hyper comes back for more.
    pub fn flow(mut self, flow: Arc<dyn Flow>) -> Self {
        self.flow = Some((flow, false));
        self
    }

    fn sent(&mut self, chunk: Bytes) -> Poll<Option<Result<Frame<Bytes>, BodyAborted>>> {
        if let Some(ending) = &mut self.ending {
            ending.bytes += chunk.len() as u64;
        }
        if let Some((flow, out)) = &mut self.flow {
            flow.owed();
            *out = true;
        }
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    /// hyper is back for more (or done): the frame that was out is paid for.
    fn settle_flow(&mut self) {
        if let Some((flow, out)) = &mut self.flow
            && std::mem::take(out)
        {
            flow.paid();
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        self.settle_flow();
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyAborted;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyAborted>>> {
        self.settle_flow();
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
            Poll::Ready(Some(frame)) => match frame.into_data() {
                Ok(chunk) => self.sent(chunk),
                Err(trailers) => Poll::Ready(Some(Ok(trailers))),
            },
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
