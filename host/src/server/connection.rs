//! One client connection, from accept to close: the TLS handshake (in the connection's own
//! task, with a timeout, so a slow client never stalls the accept loop as it does in
//! cheroot), then hyper's HTTP/1.1 or HTTP/2 on it, with the head timeout hyper lacks.
//!
//! The head timeout (`Watched`): a client has `header-timeout` to send a request head,
//! counted from accept and from the end of the previous response. Some bytes of a head but
//! not all of it (slowloris), or nothing at all on a fresh connection, gets cheroot's
//! `408 Request Timeout` and a close; a keep-alive connection idle after a response is
//! closed quietly, an idle HTTP/2 connection with a GOAWAY. hyper's own header timeout is
//! off: it closes without a 408. A head with a bare LF line end ([`crate::http::framing`] follows
//! every request, pipelined or not), which hyper's parser accepts, gets cheroot's 400 "HTTP
//! requires CRLF terminators" and a close (a request-smuggling shape when a proxy in front
//! reads lines differently). A client that stops reading is cut off once nothing could be
//! sent to it for `write-timeout` (a slow-read attack otherwise holds its connection and,
//! for a streaming body, its instance). The connection
//! ends gracefully (the response in flight finishes) when the server stops or a response
//! asks for the connection to close. An HTTP/1 connection the server ends while the client
//! may still be sending (an early answer: 413, 431, 400, 408) is closed with a linger
//! ([`super::linger`]), so the client reads its answer instead of a reset.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{oneshot, watch};
use tokio::time::{Instant, Sleep};

use super::access_log::AccessLog;
use super::linger::{self, DEFAULT_LINGER_IDLE};
use super::listener::Accepted;
use super::site::Live;
use super::tls::{DEFAULT_HANDSHAKE_TIMEOUT, Handshake};
use crate::config::HttpLimits;
use crate::http::close::CloseRequest;
use crate::http::environ::Connection;
use crate::http::error::REQUEST_TIMEOUT_RESPONSE;
use crate::http::framing::Framing;

/// Requests of one connection whose responses have not ended yet, and whether the client
/// is taking what they send.
#[derive(Debug)]
pub struct Activity {
    in_flight: AtomicUsize,
    /// Bumped each time the connection becomes idle (no response in flight).
    idle_epoch: AtomicU64,
    /// The connection has idled for header-timeout: close it gracefully (an HTTP/2 GOAWAY).
    expired: tokio::sync::Notify,
    /// A request began on an idle connection: the stall watch has something to watch.
    begun: tokio::sync::Notify,
    /// Response frames handed to hyper that the client has not taken yet.
    owed: AtomicUsize,
    /// When a frame was last taken, or became owed with none owed before (ms since `born`).
    progress: AtomicU64,
    born: Instant,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            in_flight: AtomicUsize::new(0),
            idle_epoch: AtomicU64::new(0),
            expired: tokio::sync::Notify::new(),
            begun: tokio::sync::Notify::new(),
            owed: AtomicUsize::new(0),
            progress: AtomicU64::new(0),
            born: Instant::now(),
        }
    }
}

impl Activity {
    /// A request's head has arrived; it is in flight until the guard is dropped (with its
    /// response, or with the request if hyper gives up on it first).
    pub fn begin(self: &Arc<Self>) -> InFlight {
        if self.in_flight.fetch_add(1, Ordering::SeqCst) == 0 {
            self.begun.notify_one();
        }
        InFlight(self.clone())
    }

    fn now(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Resolves when responses are in flight, frames of theirs are owed, and the client has
    /// taken none for `timeout`: over HTTP/2 a client can keep its window shut without ever
    /// making a write block, so this is where `write-timeout` sees it.
    async fn stalled(&self, timeout: Duration) {
        let every = (timeout / 4).max(Duration::from_millis(50));
        loop {
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                self.begun.notified().await;
                continue;
            }
            tokio::time::sleep(every).await;
            let since = self
                .now()
                .saturating_sub(self.progress.load(Ordering::SeqCst));
            if self.owed.load(Ordering::SeqCst) > 0 && Duration::from_millis(since) >= timeout {
                return;
            }
        }
    }

    fn idle(&self) -> Option<u64> {
        (self.in_flight.load(Ordering::SeqCst) == 0).then(|| self.idle_epoch.load(Ordering::SeqCst))
    }
}

impl crate::http::body::Flow for Activity {
    fn owed(&self) {
        if self.owed.fetch_add(1, Ordering::SeqCst) == 0 {
            self.progress.store(self.now(), Ordering::SeqCst);
        }
    }

    fn paid(&self) {
        self.owed.fetch_sub(1, Ordering::SeqCst);
        self.progress.store(self.now(), Ordering::SeqCst);
    }
}

/// One request in flight on its connection.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle_epoch.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Serves one accepted connection until it closes or `stopping` turns true.
pub async fn serve(live: Arc<Live>, accepted: Accepted, stopping: watch::Receiver<bool>) {
    // What the connection needs of the site now; each request reads the site anew, and the
    // connection holds no site, so a reload's old one can go when its last request ends.
    let Accepted {
        stream,
        remote,
        local,
    } = accepted;
    let (tls, http) = {
        let site = live.get();
        (
            site.tls.clone(),
            Http {
                builder: site.http.clone(),
                limits: site.server.http,
                refused: site
                    .access_log
                    .clone()
                    .map(|log| (log, remote.map(|a| a.ip()))),
            },
        )
    };
    let mut connection = Connection {
        remote,
        local,
        scheme: "http",
        tls: None,
    };
    match tls {
        None => {
            if let Some((stream, wanted)) =
                run(live, http, connection, stream, false, stopping).await
            {
                linger::close(&stream, wanted).await;
            }
        }
        Some(acceptor) => match acceptor.accept(stream, DEFAULT_HANDSHAKE_TIMEOUT).await {
            Ok(Handshake::Done(stream, info)) => {
                let h2 = info.h2;
                connection.scheme = "https";
                connection.tls = Some(Arc::new(info));
                if let Some((mut stream, wanted)) =
                    run(live, http, connection, stream, h2, stopping).await
                {
                    // The TLS close first (RFC 8446 §6.1: close_notify, which hyper's own
                    // shutdown may have sent already), then the linger on the raw socket:
                    // what the client still sends is discarded undecrypted.
                    let _ = tokio::time::timeout(
                        DEFAULT_LINGER_IDLE,
                        tokio::io::AsyncWriteExt::shutdown(&mut stream),
                    )
                    .await;
                    linger::close(stream.get_ref().0.get_ref(), wanted).await;
                }
            }
            Ok(Handshake::PlainHttp) => {
                tracing::debug!(?remote, "plain HTTP on the TLS port: answered 400");
                if let Some((log, client)) = &http.refused {
                    log.refused(*client, 400);
                }
            }
            Err(e) => tracing::debug!(?remote, error = %e, "TLS handshake failed"),
        },
    }
}

/// hyper's settings for one connection.
struct Http {
    builder: hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    limits: HttpLimits,
    /// Where a request refused before hyper parsed it is logged, and whose it was.
    refused: Option<(Arc<AccessLog>, Option<std::net::IpAddr>)>,
}

/// hyper on `io`, until the connection ends. Returns the IO, and whether the client may
/// still be sending ([`linger::close`]), when the connection is HTTP/1 and its client was
/// not cut off; `None` when it is to be dropped at once.
async fn run<IO>(
    live: Arc<Live>,
    http: Http,
    connection: Connection,
    io: IO,
    h2: bool,
    mut stopping: watch::Receiver<bool>,
) -> Option<(IO, bool)>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::default());
    // Watched hands the IO back here when hyper drops it.
    let (give_back, mut returned) = oneshot::channel();
    let io = Watched::new(io, activity.clone(), &http, h2, give_back);
    let close = Arc::new(CloseRequest::default());
    let close_handle = close.clone();
    let remote = connection.remote;
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |req| {
        // Counted when hyper takes the request, before its future is first polled: HTTP/2
        // goes on reading the connection meanwhile, and must not look idle.
        let in_flight = requests.begin();
        let flow: Arc<dyn crate::http::body::Flow> = requests.clone();
        let site = live.get();
        let connection = connection.clone();
        let close = close_handle.clone();
        async move {
            Ok::<_, std::convert::Infallible>(
                super::service::serve(&site, connection, close, in_flight, flow, req).await,
            )
        }
    });
    // In a block of its own: hyper's connection, and with it the IO, is dropped at its end.
    let result = {
        let conn = http
            .builder
            .serve_connection(hyper_util::rt::TokioIo::new(io), service);
        let mut conn = std::pin::pin!(conn);
        // The server stopping, a response that must be the last, or an idle connection: each
        // ends the connection gracefully (the response in flight finishes).
        let last = async {
            tokio::select! {
                _ = stopping.wait_for(|stop| *stop) => {}
                () = close.requested() => {}
                () = activity.expired.notified() => {}
            }
        };
        let stalled = || async {
            activity.stalled(http.limits.write_timeout).await;
            // Nothing to finish gracefully, and no answer to linger for: the client is not
            // taking what it asked for.
            tracing::debug!(
                ?remote,
                "the client took nothing for write-timeout: closing"
            );
        };
        tokio::select! {
            // A close request must win over the connection's own progress, or hyper could
            // start on a pipelined request first.
            biased;
            () = last => {
                conn.as_mut().graceful_shutdown();
                tokio::select! {
                    result = conn => result,
                    () = stalled() => return None,
                }
            }
            () = stalled() => return None,
            result = conn.as_mut() => result,
        }
    };
    let mut answered = false;
    if let Err(e) = result {
        tracing::debug!(?remote, error = %e, "connection ended with an error");
        // A head hyper could not parse was answered by hyper itself: log it as the ones
        // refused before parsing are.
        let refusal = e.downcast_ref::<hyper::Error>().and_then(hyper_refusal);
        answered = refusal.is_some();
        if let (Some(status), Some((log, client))) = (refusal, &http.refused) {
            log.refused(*client, status.as_u16());
        }
    }
    let ended = returned.try_recv().ok()?;
    ended.linger.map(|wanted| (ended.io, wanted || answered))
}

/// The status hyper answered a request head it could not parse with (its `on_error`: 431
/// for a head over the buffer, 414 for a URI over its own limit, 400 for the rest), if it
/// answered one.
fn hyper_refusal(e: &hyper::Error) -> Option<http::StatusCode> {
    use http::StatusCode;
    // hyper tells some kinds apart only in its message.
    let message = e.to_string();
    if e.is_parse_too_large() {
        Some(if message.contains("URI too long") {
            StatusCode::URI_TOO_LONG
        } else {
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        })
    } else if e.is_parse() && !message.contains("HTTP2 preface") {
        Some(StatusCode::BAD_REQUEST)
    } else {
        None
    }
}

/// What [`Watched`] hands back when hyper drops it.
struct Ended<IO> {
    io: IO,
    /// `None`: drop the connection at once (HTTP/2, or a client cut off for not reading);
    /// `Some(wanted)`: close it with [`linger::close`], lingering if `wanted`.
    linger: Option<bool>,
}

/// An IO that enforces the head timeout and CRLF line ends in heads (see the module
/// documentation), and hands the IO back when dropped, for the close.
struct Watched<IO> {
    /// Taken only by `drop`.
    io: Option<IO>,
    give_back: Option<oneshot::Sender<Ended<IO>>>,
    activity: Arc<Activity>,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
    /// The idle period the deadline counts (`Activity::idle_epoch`).
    epoch: u64,
    /// Where the client's bytes are in its requests.
    framing: Framing,
    /// Nothing has been read yet.
    fresh: bool,
    /// HTTP/2 (ALPN, or the prior-knowledge preface): never answer with HTTP/1 bytes.
    h2: bool,
    /// Bytes written and not yet flushed: hyper's, so no answer of ours may go first.
    unflushed: bool,
    write_stall: WriteStall,
    /// The connection is over: every read fails.
    ended: bool,
    /// An answer of ours went out before the close (`end`).
    answered: bool,
    /// The client has closed its side: it sends nothing more.
    eof: bool,
    refused: Option<(Arc<AccessLog>, Option<std::net::IpAddr>)>,
}

impl<IO> Watched<IO> {
    fn new(
        io: IO,
        activity: Arc<Activity>,
        http: &Http,
        h2: bool,
        give_back: oneshot::Sender<Ended<IO>>,
    ) -> Self {
        let timeout = http.limits.header_timeout;
        Watched {
            io: Some(io),
            give_back: Some(give_back),
            activity,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            write_stall: WriteStall::new(http.limits.write_timeout),
            refused: http.refused.clone(),
            epoch: 0,
            framing: Framing::default(),
            fresh: true,
            h2,
            unflushed: false,
            ended: false,
            answered: false,
            eof: false,
        }
    }

    fn io(&mut self) -> Pin<&mut IO>
    where
        IO: Unpin,
    {
        Pin::new(
            self.io
                .as_mut()
                .expect("the IO is taken only when Watched is dropped"),
        )
    }
}

impl<IO> Drop for Watched<IO> {
    fn drop(&mut self) {
        let (Some(io), Some(give_back)) = (self.io.take(), self.give_back.take()) else {
            return;
        };
        // RFC 9112 §9.6: a client whose request the server stopped reading (mid-head,
        // mid-body) or answered itself may still be sending; one that has closed its side
        // is not, nor an HTTP/2 one (GOAWAY), nor one cut off for not reading.
        let linger = (!self.h2 && !self.write_stall.expired)
            .then(|| !self.eof && (self.answered || self.framing.mid_request()));
        let _ = give_back.send(Ended { io, linger });
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Watched<IO> {
    /// Ends the connection, with `answer` first when HTTP/1 bytes may go out now.
    fn end(&mut self, cx: &mut Context<'_>, answer: (&[u8], u16), why: &'static str) -> io::Error {
        let (answer, status) = answer;
        self.ended = true;
        // Never into a response: not while one is in flight or hyper holds unflushed bytes
        // (a client that pipelined a bad request after a good one just loses the connection).
        let between_responses = self.activity.idle().is_some() && !self.unflushed;
        if !answer.is_empty() && !self.h2 && between_responses {
            // Best effort: the socket buffer of a connection between requests has room.
            if let Poll::Ready(Ok(_)) = self.io().poll_write(cx, answer) {
                let _ = self.io().poll_flush(cx);
                self.answered = true;
            }
            if let Some((log, client)) = &self.refused {
                log.refused(*client, status);
            }
        }
        io::Error::new(io::ErrorKind::InvalidData, why)
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
        }
        let idle = this.activity.idle();
        if let Some(epoch) = idle
            && epoch != this.epoch
        {
            // A response has just ended: the next head's time starts now.
            this.epoch = epoch;
            this.deadline.as_mut().reset(Instant::now() + this.timeout);
        }
        let before = buf.filled().len();
        let room = buf.remaining() > 0;
        match this.io().poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = &buf.filled()[before..];
                this.eof |= read.is_empty() && room;
                this.fresh &= read.is_empty();
                if !this.h2 {
                    let checked = this.framing.feed(read);
                    this.h2 = this.framing.is_h2();
                    if let Err(refused) = checked {
                        let error = this.end(cx, (refused.response(), 400), refused.reason());
                        return Poll::Ready(Err(error));
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if idle.is_none() || this.deadline.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                // Part of a head, or nothing at all on a fresh connection: 408. Nothing
                // after a response (or HTTP/2): a connection that has idled long enough,
                // closed gracefully (GOAWAY for HTTP/2).
                if !this.h2 && (this.framing.in_head() || this.fresh) {
                    let error = this.end(
                        cx,
                        (REQUEST_TIMEOUT_RESPONSE, 408),
                        "no request head within header-timeout",
                    );
                    return Poll::Ready(Err(error));
                }
                this.activity.expired.notify_one();
                Poll::Pending
            }
        }
    }
}

/// The write timeout of one connection: a write that cannot go on for its timeout (the
/// client stopped reading) fails.
pub(super) struct WriteStall {
    timeout: Duration,
    /// Armed while the client is not taking what the server writes.
    stall: Option<Pin<Box<Sleep>>>,
    /// The timeout has struck: the connection is to be dropped.
    expired: bool,
}

impl WriteStall {
    pub(super) fn new(timeout: Duration) -> Self {
        WriteStall {
            timeout,
            stall: None,
            expired: false,
        }
    }

    /// A write's outcome, against the write timeout: progress disarms it; being unable to
    /// write for `timeout` fails the write.
    pub(super) fn check<T>(
        &mut self,
        cx: &mut Context<'_>,
        done: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if done.is_ready() {
            self.stall = None;
            return done;
        }
        let timeout = self.timeout;
        let stall = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stall.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                self.expired = true;
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client took nothing for write-timeout",
                )))
            }
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.unflushed = true;
        let done = this.io().poll_write(cx, buf);
        this.write_stall.check(cx, done)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.unflushed = true;
        let done = this.io().poll_write_vectored(cx, bufs);
        this.write_stall.check(cx, done)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.as_ref().is_some_and(IO::is_write_vectored)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let flushed = this.io().poll_flush(cx);
        if matches!(flushed, Poll::Ready(Ok(()))) {
            this.unflushed = false;
        }
        this.write_stall.check(cx, flushed)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let done = this.io().poll_shutdown(cx);
        // A TLS close_notify is a write too: bounded like the others.
        this.write_stall.check(cx, done)
    }
}
