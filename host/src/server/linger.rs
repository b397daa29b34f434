//! The lingering close (RFC 9112 §9.6): how an HTTP/1 connection the server ends while the
//! client may still be sending is closed, so that the client reads the answer.
//!
//! A server that answers early (`413` for a declared body over `max-request-body`, `431`,
//! `400`, `408`) and closes at once leaves the client's unsent or unread bytes behind; TCP
//! answers a close with unread data, and every segment that arrives after it, with a reset,
//! and a reset makes the client's stack drop the answer it has not read yet. A client that
//! writes its whole request before reading (Python's http.client, most libraries) then
//! sees `EPIPE` or `ECONNRESET` instead of the status. So, as RFC 9112 §9.6 asks and as
//! nginx's `lingering_close` does: half-close (`shutdown(SHUT_WR)`, after a TLS
//! `close_notify`), then read and discard what the client still sends until it closes its
//! side, or until [`DEFAULT_LINGER_IDLE`] passes without a byte, [`DEFAULT_LINGER_TIME`] in
//! all, or [`DEFAULT_LINGER_BYTES`] have been discarded; then close.
//!
//! A linger happens only when the client may still be sending: its bytes stop inside a
//! request, the server wrote an answer of its own before closing, or bytes are waiting to
//! be read at the close (nginx's test). A lingering connection stays in its connection
//! task: it keeps its `max-connections` slot and counts as open, and a server shutdown's
//! `shutdown-timeout` ends it like any other connection. HTTP/2 needs none: it ends with
//! GOAWAY, and the client learns which streams were processed from it (RFC 9113 §6.8).

use std::io;
use std::time::Duration;

use socket2::SockRef;
use tokio::time::Instant;

use super::listener::Stream;

/// The longest a lingering connection waits for the client's next bytes (nginx's
/// `lingering_timeout` is 5 s; a client still sending a body sends without pauses).
pub const DEFAULT_LINGER_IDLE: Duration = Duration::from_secs(2);

/// The longest a connection lingers in all (nginx's `lingering_time` is 30 s).
pub const DEFAULT_LINGER_TIME: Duration = Duration::from_secs(10);

/// The most bytes a lingering connection reads and discards: a client still sending more
/// than this after its answer is reset.
pub const DEFAULT_LINGER_BYTES: u64 = 16 << 20;

/// What a linger reads at once.
const CHUNK: usize = 64 * 1024;

/// Closes `stream`, whose connection the server is ending: with a linger if `wanted` (the
/// client may still be sending) or if bytes are waiting to be read now; at once otherwise.
/// Returns when the connection may be dropped.
pub async fn close(stream: &Stream, wanted: bool) {
    let mut buf = vec![0; CHUNK];
    if !wanted {
        match try_read(stream, &mut buf) {
            // Bytes arrived after what hyper read: they would turn the close into a reset.
            Ok(n) if n > 0 => {}
            // The client has closed its side, or has nothing more to say: close.
            _ => return,
        }
    }
    let _ = shutdown_write(stream);
    let deadline = Instant::now() + DEFAULT_LINGER_TIME;
    let mut discarded = 0u64;
    while discarded < DEFAULT_LINGER_BYTES {
        let until = deadline.min(Instant::now() + DEFAULT_LINGER_IDLE);
        match tokio::time::timeout_at(until, read(stream, &mut buf)).await {
            Ok(Ok(n)) if n > 0 => discarded += n as u64,
            // The client closed its side (it has read the answer), reset, or went quiet.
            _ => break,
        }
    }
    tracing::debug!(discarded, "lingering close done");
}

/// `shutdown(SHUT_WR)`: the client reads the end of the answer, and may still send.
fn shutdown_write(stream: &Stream) -> io::Result<()> {
    match stream {
        Stream::Tcp(s) => SockRef::from(s).shutdown(std::net::Shutdown::Write),
        Stream::Unix(s) => SockRef::from(s).shutdown(std::net::Shutdown::Write),
    }
}

/// Reads what is there now, without waiting: `WouldBlock` when nothing is.
fn try_read(stream: &Stream, buf: &mut [u8]) -> io::Result<usize> {
    match stream {
        Stream::Tcp(s) => s.try_read(buf),
        Stream::Unix(s) => s.try_read(buf),
    }
}

/// Reads the next bytes (0 at the client's end of stream).
async fn read(stream: &Stream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match stream {
            Stream::Tcp(s) => s.readable().await?,
            Stream::Unix(s) => s.readable().await?,
        }
        match try_read(stream, buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            done => return done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A connected pair: the server's side as a [`Stream`], and the client's.
    async fn pair() -> (Stream, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (Stream::Tcp(server), client)
    }

    #[tokio::test]
    async fn a_linger_half_closes_and_reads_until_the_client_closes() {
        let (server, mut client) = pair().await;
        let lingering = tokio::spawn(async move { close(&server, true).await });
        // The client sees the server's end of stream, and can still send.
        let mut buf = [0u8; 16];
        assert_eq!(client.read(&mut buf).await.unwrap(), 0);
        client.write_all(&[b'x'; 200_000]).await.unwrap();
        client.shutdown().await.unwrap();
        tokio::time::timeout(Duration::from_secs(1), lingering)
            .await
            .expect("the linger ends when the client closes")
            .unwrap();
    }

    #[tokio::test]
    async fn a_silent_client_is_given_up_after_the_idle_time() {
        let (server, _client) = pair().await;
        let started = Instant::now();
        close(&server, true).await;
        assert!(started.elapsed() >= DEFAULT_LINGER_IDLE);
        assert!(started.elapsed() < DEFAULT_LINGER_TIME);
    }

    #[tokio::test]
    async fn no_linger_when_not_wanted_and_nothing_is_waiting() {
        let (server, _client) = pair().await;
        tokio::time::timeout(Duration::from_millis(100), close(&server, false))
            .await
            .expect("closed at once");
    }
}
