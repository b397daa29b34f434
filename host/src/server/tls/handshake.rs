//! One TLS handshake per connection, under a single deadline that also covers the client's
//! first bytes, so a client that connects and says nothing cannot hold a task for longer than
//! that. Before handing the connection to rustls it peeks at the first byte: a TLS
//! connection starts with a handshake record (content type 22, RFC 8446 §5.1); anything else
//! is taken as plain HTTP sent to the HTTPS port and gets cheroot's `400 Bad Request`
//! ([`PLAIN_HTTP_RESPONSE`]) instead of a TLS alert the client cannot read.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{anyhow, bail};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::{self, Instant};

use super::Acceptor;
use crate::http::environ::TlsInfo;
use crate::http::error::PLAIN_HTTP_RESPONSE;

/// How long a client may take to finish its TLS handshake (including sending its first bytes).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Every TLS connection opens with a handshake record (ContentType 22, RFC 8446 §5.1;
/// RFC 5246 §6.2.1 for TLS 1.2).
pub(super) const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// How many bytes the sniff asks for: one TLS record header. It takes whatever arrives, so a
/// client that sends a single byte is not kept waiting for the rest.
const SNIFF_LEN: usize = 5;

/// After answering plain HTTP, how long to keep reading (and discarding) what the client still
/// sends, so that closing does not reset the connection under the 400 (RFC 9112 §9.6).
const PLAIN_HTTP_LINGER: Duration = Duration::from_secs(2);

/// The most a plain-HTTP client may make us read and discard while lingering.
const PLAIN_HTTP_DRAIN_LIMIT: u64 = 64 * 1024;

impl Acceptor {
    /// Runs one handshake on `io` with `timeout` covering everything (first bytes included).
    ///
    /// If the client's first byte is not a TLS handshake record it is taken as plain HTTP:
    /// this writes [`PLAIN_HTTP_RESPONSE`], shuts the write side down, reads and discards
    /// what the client still sends for a moment (so closing does not reset the connection
    /// under the response) and returns `Ok(Handshake::PlainHttp)`. A timeout, a client that
    /// closes before sending anything, or a failed handshake is an `Err`.
    pub async fn accept<IO>(&self, mut io: IO, timeout: Duration) -> anyhow::Result<Handshake<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let deadline = Instant::now() + timeout;

        let mut prefix = [0u8; SNIFF_LEN];
        let len = match time::timeout_at(deadline, io.read(&mut prefix)).await {
            Err(_) => bail!("TLS handshake: the client sent nothing within {timeout:?}"),
            Ok(Err(e)) => return Err(anyhow!(e).context("TLS handshake: reading the first bytes")),
            Ok(Ok(0)) => bail!("TLS handshake: the client closed the connection before sending"),
            Ok(Ok(len)) => len,
        };

        if prefix[0] != TLS_HANDSHAKE_RECORD {
            let answer = async {
                io.write_all(PLAIN_HTTP_RESPONSE).await?;
                io.shutdown().await
            };
            match time::timeout_at(deadline, answer).await {
                Err(_) => bail!("plain HTTP on the TLS port: the 400 was not sent in {timeout:?}"),
                Ok(Err(e)) => {
                    return Err(anyhow!(e).context("plain HTTP on the TLS port: sending the 400"));
                }
                Ok(Ok(())) => {}
            }
            // Close in stages (RFC 9112 §9.6): a close with unread input sends a RST, and a
            // client that gets it may discard the 400 before its application reads it.
            let linger = deadline.min(Instant::now() + PLAIN_HTTP_LINGER);
            let mut rest = (&mut io).take(PLAIN_HTTP_DRAIN_LIMIT);
            // Whatever ends the drain (EOF, an error, the limit, the clock), we are done.
            let _ =
                time::timeout_at(linger, tokio::io::copy(&mut rest, &mut tokio::io::sink())).await;
            return Ok(Handshake::PlainHttp);
        }

        let io = Prefixed {
            prefix,
            pos: 0,
            len,
            io,
        };
        let stream = match time::timeout_at(deadline, self.inner.accept(io)).await {
            Err(_) => bail!("TLS handshake: not finished within {timeout:?}"),
            Ok(Err(e)) => bail!("TLS handshake failed: {e}"),
            Ok(Ok(stream)) => stream,
        };
        let info = super::certificate::facts(stream.get_ref().1)?;
        Ok(Handshake::Done(stream, info))
    }
}

/// The outcome of [`Acceptor::accept`].
#[expect(
    clippy::large_enum_variant,
    reason = "made once per connection and destructured at once; the stream then moves into \
              the connection's task, so boxing it would only add an allocation"
)]
pub enum Handshake<IO> {
    /// The handshake finished: the encrypted stream and what it settled.
    Done(tokio_rustls::server::TlsStream<Prefixed<IO>>, TlsInfo),
    /// The client spoke plain HTTP; it has been answered with [`PLAIN_HTTP_RESPONSE`] and the
    /// connection should be dropped.
    PlainHttp,
}

/// An IO that first yields bytes already read from `io` (the sniffed prefix), then reads `io`.
/// Writes, flush and shutdown go straight to `io`.
pub struct Prefixed<IO> {
    prefix: [u8; SNIFF_LEN],
    pos: usize,
    len: usize,
    io: IO,
}

impl<IO> Prefixed<IO> {
    /// The underlying connection (for example to read its peer address).
    pub fn get_ref(&self) -> &IO {
        &self.io
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Prefixed<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.len {
            let n = (this.len - this.pos).min(buf.remaining());
            buf.put_slice(&this.prefix[this.pos..this.pos + n]);
            this.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Prefixed<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
