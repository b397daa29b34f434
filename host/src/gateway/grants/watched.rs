//! A guest's output stream with the host's hook before each write: what the hook refuses is
//! not written (the guest gets the hook's error), what it lets through goes to the stream
//! it wraps. Files in a route's data directories are charged to its quota this way
//! ([`super::data`]), a socket's bytes counted ([`super::tcp`]).

use bytes::Bytes;
use wasmtime_wasi::p2::{DynOutputStream, OutputStream, Pollable, StreamResult};

/// `inner`, with `before` called on every write.
pub struct Watched<F> {
    pub inner: DynOutputStream,
    pub before: F,
}

#[wasmtime_wasi::async_trait]
impl<F: FnMut(&Bytes) -> StreamResult<()> + Send + 'static> Pollable for Watched<F> {
    async fn ready(&mut self) {
        self.inner.ready().await
    }
}

#[wasmtime_wasi::async_trait]
impl<F: FnMut(&Bytes) -> StreamResult<()> + Send + 'static> OutputStream for Watched<F> {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        (self.before)(&bytes)?;
        self.inner.write(bytes)
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.inner.check_write()
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await
    }
}
