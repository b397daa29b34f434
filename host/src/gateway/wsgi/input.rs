//! The request body, pulled from the client only as the guest reads it: [`LimitedBody`]
//! (hyper's body under the route's `max-request-body`, remembering *why* it ended badly —
//! malformed framing, too large, client gone — so the gateway can answer 400 or 413 instead
//! of blaming the guest), and `wsgi.input` over it.
//!
//! The [`RequestBody`] reader behind the WIT `input` resource: `read` and `read-line` wait
//! for the next frame of the body (which is also when hyper sends `100 Continue`, PEP 3333's
//! preferred moment), hand out at most `max` bytes, and keep the rest for the next call, so
//! an upload of any size streams through a small buffer. A wasi:http guest reads the same
//! [`LimitedBody`] through wasi:http's `incoming-body`.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::super::bindings::WsgiError;

/// The host side of one WIT `input` handle: which request it belongs to.
///
/// The reader itself lives in the store's current exchange, not in the handle, so a handle a
/// guest smuggles into the next request reads nothing of it.
#[derive(Debug)]
pub struct Input {
    pub(crate) exchange: u64,
}

/// How a request body failed, as far as the client is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFailure {
    /// Bad chunked framing, or the connection broke mid-body.
    Malformed,
    /// More bytes than the route's `max-request-body` (checked as they arrive).
    TooLarge,
}

/// What the gateway learns of a request body while the guest reads it.
#[derive(Debug, Default)]
pub struct BodyProgress {
    received: AtomicU64,
    /// 0: none; 1: [`BodyFailure::Malformed`]; 2: [`BodyFailure::TooLarge`].
    failure: AtomicU8,
    waiting: AtomicBool,
}

impl BodyProgress {
    /// Body bytes received so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Why the body failed, if it did.
    pub fn failure(&self) -> Option<BodyFailure> {
        match self.failure.load(Ordering::Relaxed) {
            1 => Some(BodyFailure::Malformed),
            2 => Some(BodyFailure::TooLarge),
            _ => None,
        }
    }

    /// Whether a read is waiting for the client right now (a timeout then is the client's:
    /// 408).
    pub fn waiting(&self) -> bool {
        self.waiting.load(Ordering::Relaxed)
    }

    fn fail(&self, failure: BodyFailure) {
        let code = match failure {
            BodyFailure::Malformed => 1,
            BodyFailure::TooLarge => 2,
        };
        self.failure.store(code, Ordering::Relaxed);
    }
}

/// hyper's request body under the route's limit: data frames are counted as they arrive and
/// the body fails with [`BodyFailure::TooLarge`] past `max-request-body`; trailers pass.
pub struct LimitedBody {
    body: Option<Incoming>,
    limit: Option<u64>,
    progress: Arc<BodyProgress>,
}

impl LimitedBody {
    /// hyper's body, capped at `limit` bytes.
    pub fn new(body: Incoming, limit: Option<u64>) -> Self {
        LimitedBody {
            body: Some(body),
            limit,
            progress: Arc::default(),
        }
    }

    /// What the gateway reads of the body after the guest is done with it.
    pub fn progress(&self) -> Arc<BodyProgress> {
        self.progress.clone()
    }

    fn failed(&mut self, failure: BodyFailure) -> Poll<Option<Result<Frame<Bytes>, BodyFailure>>> {
        self.body = None;
        self.progress.fail(failure);
        Poll::Ready(Some(Err(failure)))
    }
}

impl Body for LimitedBody {
    type Data = Bytes;
    type Error = BodyFailure;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyFailure>>> {
        if let Some(failure) = self.progress.failure() {
            return Poll::Ready(Some(Err(failure)));
        }
        let Some(body) = self.body.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(body).poll_frame(cx);
        self.progress
            .waiting
            .store(polled.is_pending(), Ordering::Relaxed);
        match polled {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                self.body = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                tracing::debug!(error = %e, "request body failed");
                self.failed(BodyFailure::Malformed)
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let received = self
                        .progress
                        .received
                        .fetch_add(data.len() as u64, Ordering::Relaxed)
                        + data.len() as u64;
                    if self.limit.is_some_and(|limit| received > limit) {
                        return self.failed(BodyFailure::TooLarge);
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.body.as_ref().map(Body::size_hint).unwrap_or_default()
    }
}

/// `wsgi.input` of one exchange.
pub struct RequestBody {
    body: LimitedBody,
    buffer: Bytes,
}

/// Largest single `read` or `read-line` answer, whatever `max` the guest asks for: the guest
/// loops anyway, and this bounds the copy into guest memory.
pub const MAX_READ: u64 = 1 << 20;

impl RequestBody {
    /// A reader over the request's body.
    pub fn new(body: LimitedBody) -> Self {
        RequestBody {
            body,
            buffer: Bytes::new(),
        }
    }

    /// What is known of the body so far.
    pub fn progress(&self) -> &BodyProgress {
        &self.body.progress
    }

    /// `input.read(max)`.
    pub async fn read(&mut self, max: u64) -> Result<Vec<u8>, WsgiError> {
        let max = max.min(MAX_READ) as usize;
        if max == 0 {
            return Ok(Vec::new());
        }
        if self.buffer.is_empty() {
            self.fill().await?;
        }
        let n = max.min(self.buffer.len());
        Ok(self.buffer.split_to(n).to_vec())
    }

    /// `input.read-line(max)`: up to and including the next `\n`.
    pub async fn read_line(&mut self, max: u64) -> Result<Vec<u8>, WsgiError> {
        let max = max.min(MAX_READ) as usize;
        let mut line = BytesMut::new();
        while line.len() < max {
            if self.buffer.is_empty() && !self.fill().await? {
                break;
            }
            let want = max - line.len();
            let end = match self.buffer.iter().take(want).position(|&b| b == b'\n') {
                Some(i) => i + 1,
                None => want.min(self.buffer.len()),
            };
            line.extend_from_slice(&self.buffer[..end]);
            self.buffer.advance(end);
            if line.last() == Some(&b'\n') {
                break;
            }
        }
        Ok(line.to_vec())
    }

    /// Waits for the next data frame; `false` at the end of the body.
    async fn fill(&mut self) -> Result<bool, WsgiError> {
        while self.buffer.is_empty() {
            match self.body.frame().await {
                None => return Ok(false),
                Some(Err(failure)) => return Err(failure.into()),
                // Trailers carry nothing WSGI can express; they are read and dropped, so
                // they can never be mistaken for the next request (cheroot#69).
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer = data;
                    }
                }
            }
        }
        Ok(true)
    }
}

impl From<BodyFailure> for WsgiError {
    fn from(f: BodyFailure) -> Self {
        match f {
            BodyFailure::Malformed => WsgiError::Disconnected,
            BodyFailure::TooLarge => WsgiError::RequestBodyTooLarge,
        }
    }
}
