//! `wsgi.input`: the request body, pulled from the client only as the guest reads it.
//!
//! Owns the [`RequestBody`] reader behind the WIT `input` resource: `read` and `read-line`
//! wait for the next frame of hyper's body (which is also when hyper sends
//! `100 Continue`, PEP 3333's preferred moment), hand out at most `max` bytes, and keep the
//! rest for the next call, so an upload of any size streams through a small buffer. It
//! remembers *why* a body ended badly (malformed framing, too large, client gone), so the
//! gateway can answer 400 or 413 instead of blaming the guest.

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::bindings::WsgiError;

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

/// The request body of one exchange.
pub struct RequestBody {
    body: Option<Incoming>,
    buffer: Bytes,
    received: u64,
    limit: Option<u64>,
    failure: Option<BodyFailure>,
    /// Set while a read is waiting for the client, so a timeout then is the client's (408).
    pub(crate) waiting: bool,
}

/// Largest single `read` or `read-line` answer, whatever `max` the guest asks for: the guest
/// loops anyway, and this bounds the copy into guest memory.
pub const MAX_READ: u64 = 1 << 20;

impl RequestBody {
    /// A reader over hyper's body; `limit` caps the bytes accepted.
    pub fn new(body: Incoming, limit: Option<u64>) -> Self {
        RequestBody {
            body: Some(body),
            buffer: Bytes::new(),
            received: 0,
            limit,
            failure: None,
            waiting: false,
        }
    }

    /// Body bytes received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Why the body failed, if it did.
    pub fn failure(&self) -> Option<BodyFailure> {
        self.failure
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
        if let Some(failure) = self.failure {
            return Err(failure.into());
        }
        while self.buffer.is_empty() {
            let Some(body) = self.body.as_mut() else {
                return Ok(false);
            };
            self.waiting = true;
            let frame = body.frame().await;
            self.waiting = false;
            match frame {
                None => {
                    self.body = None;
                    return Ok(false);
                }
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "request body failed");
                    self.body = None;
                    self.failure = Some(BodyFailure::Malformed);
                    return Err(WsgiError::Disconnected);
                }
                Some(Ok(frame)) => {
                    // Trailers carry nothing WSGI can express; they are read and dropped, so
                    // they can never be mistaken for the next request (cheroot#69).
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    self.received += data.len() as u64;
                    if self.limit.is_some_and(|limit| self.received > limit) {
                        self.body = None;
                        self.failure = Some(BodyFailure::TooLarge);
                        return Err(WsgiError::RequestBodyTooLarge);
                    }
                    self.buffer = data;
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

impl super::bindings::HostInput for super::state::HostState {
    async fn read(
        &mut self,
        this: wasmtime::component::Resource<Input>,
        max: u64,
    ) -> wasmtime::Result<Result<Vec<u8>, WsgiError>> {
        let id = self.table().get(&this)?.exchange;
        Ok(match self.exchange_for(id) {
            Ok(exchange) => exchange.input.read(max).await,
            Err(e) => Err(e),
        })
    }

    async fn read_line(
        &mut self,
        this: wasmtime::component::Resource<Input>,
        max: u64,
    ) -> wasmtime::Result<Result<Vec<u8>, WsgiError>> {
        let id = self.table().get(&this)?.exchange;
        Ok(match self.exchange_for(id) {
            Ok(exchange) => exchange.input.read_line(max).await,
            Err(e) => Err(e),
        })
    }

    async fn drop(&mut self, this: wasmtime::component::Resource<Input>) -> wasmtime::Result<()> {
        self.table().delete(this)?;
        Ok(())
    }
}
