//! Every way a request can end without the application's own response, and the one
//! mapping from those to HTTP statuses ([`Failure::response`]), including the few answers
//! written as raw bytes because they go out before (or instead of) hyper's parser: a slow
//! head's 408, a bare LF's 400 and plain HTTP on the TLS port's 400.
//!
//! The hyper service itself is infallible: whatever goes wrong — a malformed request, a
//! path no route serves, a guest that traps, raises, times out or breaks the WSGI protocol —
//! becomes a [`Failure`], and this module alone decides the status, the short text/plain
//! body, and whether the connection must close. Guest-side details go to the log, never to
//! the client.

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use super::body::ResponseBody;

/// Why a request got no response from its application.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Failure {
    /// The request is malformed (RFC 9112 §3.2 Host rules, bad target, ...).
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// The request-target is longer than `max-uri-length`.
    #[error("request-target too long")]
    UriTooLong,
    /// A TLS connection opened for one host (SNI) asked for another.
    #[error("misdirected request: the Host is not the TLS server name")]
    Misdirected,
    /// CONNECT: this is not a proxy, and a 2xx would turn the connection into a tunnel.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A transfer coding other than chunked (RFC 9112 §6.1).
    #[error("transfer coding not implemented")]
    NotImplemented,
    /// No route's prefix matches the path.
    #[error("no route for this path")]
    NotFound,
    /// The request body's framing broke (bad chunk, connection lost) while the guest read it.
    #[error("malformed request body")]
    BodyMalformed,
    /// The request body is larger than the route accepts.
    #[error("request body too large")]
    BodyTooLarge,
    /// The client was too slow sending its body.
    #[error("timed out waiting for the request body")]
    ClientTimeout,
    /// The guest trapped (panic, unreachable, out of bounds, stack overflow, ...).
    #[error("guest trapped: {0}")]
    Trap(String),
    /// The guest raised: `handle` or `next` returned an error.
    #[error("application raised: {0}")]
    Raised(String),
    /// The body ended without `start_response` ever being called.
    #[error("the application returned without calling start_response")]
    NoStartResponse,
    /// A wasi:http guest's response broke HTTP: an invalid head, no response at all, an
    /// error code instead of one, or a body it never finished.
    #[error("the application's response is invalid: {0}")]
    InvalidResponse(String),
    /// The body produced a chunk before `start_response` was called.
    #[error("the application produced body data before calling start_response")]
    ChunkBeforeStart,
    /// The body held more bytes than the declared Content-Length.
    #[error("the application returned more bytes than its Content-Length")]
    BodyExceedsContentLength,
    /// The route's time budget ran out.
    #[error("the application did not finish within its timeout")]
    Timeout,
    /// The client went away; nobody will read an answer.
    #[error("client disconnected")]
    Disconnected,
    /// No instance could be had (instance limits reached).
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A bug or resource problem in the host.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Failure {
    /// The status the client sees.
    pub fn status(&self) -> StatusCode {
        match self {
            Failure::BadRequest(_) | Failure::BodyMalformed => StatusCode::BAD_REQUEST,
            Failure::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Failure::UriTooLong => StatusCode::URI_TOO_LONG,
            Failure::Misdirected => StatusCode::MISDIRECTED_REQUEST,
            Failure::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            Failure::NotFound => StatusCode::NOT_FOUND,
            Failure::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Failure::ClientTimeout => StatusCode::REQUEST_TIMEOUT,
            Failure::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Failure::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Failure::Trap(_)
            | Failure::Raised(_)
            | Failure::NoStartResponse
            | Failure::InvalidResponse(_)
            | Failure::ChunkBeforeStart
            | Failure::BodyExceedsContentLength
            | Failure::Disconnected
            | Failure::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether the connection must close after the answer: its framing can no longer be
    /// trusted (RFC 9112 §9.6), or what follows was never meant as HTTP (the bytes after a
    /// CONNECT are tunnel data).
    pub fn closes_connection(&self) -> bool {
        matches!(
            self,
            Failure::BadRequest(_)
                | Failure::UriTooLong
                | Failure::MethodNotAllowed
                | Failure::BodyMalformed
                | Failure::BodyTooLarge
                | Failure::ClientTimeout
                | Failure::NotImplemented
        )
    }

    /// Whether the guest is to blame (logged at error level with the route).
    pub fn is_guest_fault(&self) -> bool {
        matches!(
            self,
            Failure::Trap(_)
                | Failure::Raised(_)
                | Failure::NoStartResponse
                | Failure::InvalidResponse(_)
                | Failure::ChunkBeforeStart
                | Failure::BodyExceedsContentLength
                | Failure::Timeout
        )
    }

    /// The response the client gets.
    pub fn response(&self) -> Response<ResponseBody> {
        let status = self.status();
        let text = match self {
            Failure::BadRequest(why) => format!("Bad Request: {why}\n"),
            _ => format!("{}\n", status.canonical_reason().unwrap_or("Error")),
        };
        let mut response = Response::new(ResponseBody::full(Some(text.into())));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(
            header::SERVER,
            HeaderValue::from_static(super::SERVER_SOFTWARE),
        );
        if self.closes_connection() {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// cheroot's answer to a client too slow to send its request head.
pub const REQUEST_TIMEOUT_RESPONSE: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// cheroot's answer to a head with a bare LF line ending (a request-smuggling shape that
/// hyper's parser lets through, RFC 9112 §2.2 allowing it).
pub const BARE_LF_RESPONSE: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 30\r\nConnection: close\r\n\r\nHTTP requires CRLF terminators";

/// The answer to a request line with a `#` or a control byte (RFC 9112 §3.2: a
/// request-target carries no fragment; the `http` crate would drop it silently), written
/// before hyper parses the head, as [`BARE_LF_RESPONSE`] is.
pub const BAD_REQUEST_LINE_RESPONSE: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 72\r\nConnection: close\r\n\r\nThe request-target must not contain a fragment (#) or control characters";

/// cheroot's exact answer to plain HTTP on a TLS port (Content-Type first, body 85 bytes).
pub const PLAIN_HTTP_RESPONSE: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 85\r\nConnection: close\r\n\r\nThe client sent a plain HTTP request, but this server only speaks HTTPS on this port.";
