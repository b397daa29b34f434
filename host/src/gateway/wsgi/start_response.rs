//! The `start-response` resource: PEP 3333's `start_response` and `write`, and the
//! [`ResponseWriter`] that turns them into one HTTP response.
//!
//! Owns status and header validation (the WIT `error` variants), the "headers go out with
//! the first non-empty chunk" rule, `exc_info` replacement before sending, Content-Length
//! enforcement (never trust a guest's framing: hyper would put extra bytes on the wire as a
//! second response), and which statuses carry no body. It hands the finished head to the
//! waiting hyper service through a oneshot and the body chunks through a bounded channel,
//! so a guest that writes faster than the client reads waits (backpressure). It does not
//! decide statuses for failures ([`crate::http::error`]) nor call the guest (`super::run`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use http_body::Frame;
use tokio::sync::{mpsc, oneshot};

use super::super::bindings::WsgiError;
use crate::http::body::ResponseBody;
use crate::http::close::CloseRequest;
use crate::http::error::Failure;
use crate::http::protocol::is_hop_by_hop;

/// The host side of one WIT `start-response` handle: which exchange it belongs to.
#[derive(Debug)]
pub struct StartResponse {
    pub(crate) exchange: u64,
}

/// What the hyper service waits for: the response head (with its body), or why there is none.
pub type Outcome = Result<Response<ResponseBody>, Failure>;

/// How many body chunks may wait between the guest and hyper: one in flight, one queued.
const BODY_CHANNEL_DEPTH: usize = 1;

/// The most header lines one response may have. hyper's `HeaderMap` panics past 24,576
/// names, and no real application comes near this (a Django page sends about ten).
pub const MAX_RESPONSE_HEADERS: usize = 256;
/// The most bytes a response's status line and headers may take (names, values and
/// separators), as for a request's `max-header-size`.
pub const MAX_RESPONSE_HEAD_BYTES: usize = 64 << 10;
/// How much of a guest's status or header name an error message quotes.
pub(super) const QUOTE_MAX: usize = 64;

/// A validated status line and headers, not yet sent.
#[derive(Debug, Clone)]
struct Head {
    status: StatusCode,
    reason: Option<hyper::ext::ReasonPhrase>,
    headers: HeaderMap,
    content_length: Option<u64>,
}

/// One response under construction; lives in the store for the length of one exchange.
pub struct ResponseWriter {
    head_only: bool,
    staged: Option<Head>,
    outcome: Option<oneshot::Sender<Outcome>>,
    /// Present once the head is sent with a streaming body.
    body: Option<mpsc::Sender<Frame<Bytes>>>,
    /// A streaming body's end: set when the body ends properly; without it, the end of the
    /// channel aborts the connection (so a crashed or cancelled guest never looks like a
    /// complete response).
    complete: Option<Arc<AtomicBool>>,
    sent: bool,
    /// [`Self::finish`] was called: the body is over.
    finished: bool,
    written: u64,
    /// Makes the connection close once the response in flight is complete.
    close: Arc<CloseRequest>,
}

impl ResponseWriter {
    /// A writer for a request; `head_only` for HEAD. The receiver resolves when the head is
    /// sent, or with the failure if it never will be.
    pub fn new(head_only: bool, close: Arc<CloseRequest>) -> (Self, oneshot::Receiver<Outcome>) {
        let (tx, rx) = oneshot::channel();
        let writer = ResponseWriter {
            head_only,
            staged: None,
            outcome: Some(tx),
            body: None,
            complete: None,
            sent: false,
            finished: false,
            written: 0,
            close,
        };
        (writer, rx)
    }

    /// Body bytes sent so far (none for HEAD, 204 and 304).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Whether the head has gone to the client (and so a failure can only close the connection).
    pub fn headers_sent(&self) -> bool {
        self.sent
    }

    /// `start_response(status, headers, exc_info)`.
    pub fn start(
        &mut self,
        status: &str,
        headers: Vec<(String, String)>,
        exc_info: Option<&str>,
    ) -> Result<(), WsgiError> {
        match (&self.staged, exc_info) {
            (Some(_), None) => return Err(WsgiError::AlreadyStarted),
            (Some(_), Some(_)) if self.sent => return Err(WsgiError::AlreadyStarted),
            _ => {}
        }
        // Replacing on exc_info replaces everything, headers included (cheroot keeps the
        // first call's headers: a bug).
        self.staged = Some(validate(status, headers)?);
        Ok(())
    }

    /// A wasi:http guest's response head, held to the rules of [`Self::start`]: status
    /// 200 to 599, no hop-by-hop headers but `Trailer` (wasi:http guests may send
    /// trailers), Latin-1 values without controls, one Content-Length, bounded size.
    pub fn start_head(&mut self, status: StatusCode, headers: &HeaderMap) -> Result<(), WsgiError> {
        if self.staged.is_some() {
            return Err(WsgiError::AlreadyStarted);
        }
        let status = format!(
            "{} {}",
            status.as_str(),
            status.canonical_reason().unwrap_or("Unknown")
        );
        let lines = headers
            .iter()
            .filter(|(name, _)| **name != header::TRAILER)
            .map(|(name, value)| {
                let value = value.as_bytes().iter().map(|&b| char::from(b)).collect();
                (name.as_str().to_owned(), value)
            })
            .collect();
        let mut head = validate(&status, lines)?;
        for trailer in headers.get_all(header::TRAILER) {
            if !trailer.as_bytes().iter().all(|&b| is_field_byte(b)) {
                return Err(WsgiError::InvalidHeader("trailer: invalid value".into()));
            }
            head.headers.append(header::TRAILER, trailer.clone());
        }
        self.staged = Some(head);
        Ok(())
    }

    /// `write(data)`, and each chunk of the body iterable: sends the head if needed, then
    /// `data`, waiting while the client is not reading.
    pub async fn write(&mut self, data: impl Into<Bytes>) -> Result<(), WsgiError> {
        let Some(head) = &self.staged else {
            return Err(WsgiError::NotStarted);
        };
        let data: Bytes = data.into();
        if data.is_empty() {
            return Ok(());
        }
        if self.head_only || head.no_content() {
            // The application runs as for GET; its body is counted as sent and dropped.
            return if self.sent || self.send_head(None, true, false) {
                Ok(())
            } else {
                Err(WsgiError::Disconnected)
            };
        }
        let mut data = data;
        let mut exceeded = false;
        if let Some(declared) = head.content_length {
            let remaining = declared - self.written;
            if data.len() as u64 > remaining {
                data.truncate(remaining as usize);
                exceeded = true;
            }
        }
        self.written += data.len() as u64;
        if exceeded {
            // The connection must close after this response, since this application's
            // framing cannot be trusted; say so before the last bytes go, so that hyper
            // never starts on a pipelined request behind it.
            self.close.request();
        }
        if !self.sent {
            // A first chunk that makes up the declared length is the whole body. Too much
            // already in it: say so in the head, since the connection cannot be reused
            // after a body the application could not frame.
            let whole = exceeded || head.content_length == Some(self.written);
            if !self.send_head(Some(data), whole, exceeded) {
                return Err(WsgiError::Disconnected);
            }
        } else if !data.is_empty() {
            let tx = self.body.as_ref().ok_or(WsgiError::Disconnected)?;
            tx.send(Frame::data(data))
                .await
                .map_err(|_| WsgiError::Disconnected)?;
        }
        if exceeded {
            // The client got exactly the declared length; the rest is dropped.
            self.end_body(true);
            return Err(WsgiError::BodyExceedsContentLength);
        }
        Ok(())
    }

    /// Trailers after the body (wasi:http): sent when the body streams (HTTP/1.1 chunked,
    /// to a client that said `TE: trailers`; HTTP/2 always), without the fields no trailer
    /// may carry (hop-by-hop, framing, `Host`); dropped when the whole body already went out
    /// with a Content-Length, and for HEAD, 204 and 304.
    pub async fn trailers(&mut self, mut trailers: HeaderMap) -> Result<(), WsgiError> {
        let Some(head) = &self.staged else {
            return Err(WsgiError::NotStarted);
        };
        if self.head_only || head.no_content() {
            return Ok(());
        }
        let names: Vec<HeaderName> = trailers.keys().cloned().collect();
        for name in names {
            let forbidden = is_hop_by_hop(name.as_str())
                || name == header::CONTENT_LENGTH
                || name == header::HOST
                || trailers
                    .get_all(&name)
                    .iter()
                    .any(|v| !v.as_bytes().iter().all(|&b| is_field_byte(b)));
            if forbidden {
                trailers.remove(&name);
                continue;
            }
            let values: Vec<HeaderValue> = trailers
                .get_all(&name)
                .iter()
                .filter_map(|v| HeaderValue::from_bytes(trim_ows(v.as_bytes())).ok())
                .collect();
            trailers.remove(&name);
            for value in values {
                trailers.append(name.clone(), value);
            }
        }
        if trailers.is_empty() {
            return Ok(());
        }
        if !self.sent && !self.send_head(None, false, false) {
            return Err(WsgiError::Disconnected);
        }
        match &self.body {
            Some(tx) => tx
                .send(Frame::trailers(trailers))
                .await
                .map_err(|_| WsgiError::Disconnected),
            None => Ok(()),
        }
    }

    /// The body iterable ended: send the head if it is still waiting, end the body. Once;
    /// later calls change nothing.
    pub fn finish(&mut self) -> Result<(), Failure> {
        let Some(head) = &self.staged else {
            return Err(Failure::NoStartResponse);
        };
        if std::mem::replace(&mut self.finished, true) {
            return Ok(());
        }
        let short = !self.head_only
            && !head.no_content()
            && head
                .content_length
                .is_some_and(|declared| self.written < declared);
        if short {
            tracing::warn!(
                declared = head.content_length,
                written = self.written,
                "application sent less than its Content-Length; closing the connection"
            );
        }
        if !self.sent {
            // Not `whole`: without a Content-Length, HTTP/1.1 frames it as cheroot does, one
            // empty last chunk.
            self.send_head(None, false, false);
        }
        self.end_body(!short);
        Ok(())
    }

    /// The exchange failed: the service answers `failure` if nothing was sent, otherwise the
    /// body is aborted and the connection closed (unless it was finished already).
    pub fn fail(&mut self, failure: Failure) {
        if let Some(tx) = self.outcome.take() {
            let _ = tx.send(Err(failure));
        }
        // A body the guest already finished (a wasi:http guest that failed afterwards) went
        // out whole: it stays complete.
        if !self.finished {
            self.end_body(false);
        }
    }

    /// Ends a streaming body, `complete` or cut off.
    fn end_body(&mut self, complete: bool) {
        if let Some(flag) = &self.complete {
            flag.store(complete, Ordering::Release);
        }
        self.body = None;
    }

    /// Sends the staged head, with `first` as the start of the body, or as all of it if
    /// `whole`; `false` if the service is gone (the client disconnected).
    fn send_head(&mut self, first: Option<Bytes>, whole: bool, close: bool) -> bool {
        let (Some(head), Some(outcome)) = (self.staged.as_mut(), self.outcome.take()) else {
            return false;
        };
        self.sent = true;
        // A sent head is never replaced (exc_info then gets already-started): its headers
        // move into the response.
        let mut headers = std::mem::take(&mut head.headers);
        let (status, reason, no_content) = (head.status, head.reason.take(), head.no_content());
        if no_content {
            // RFC 9110 §15.3.5, §15.4.5: no content, and no framing headers to announce any.
            headers.remove(header::CONTENT_LENGTH);
        }
        if close {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if !headers.contains_key(header::SERVER) {
            headers.insert(
                header::SERVER,
                HeaderValue::from_static(crate::http::SERVER_SOFTWARE),
            );
        }
        let body = if self.head_only || no_content {
            ResponseBody::full(None)
        } else if whole {
            ResponseBody::full(first)
        } else {
            let (tx, rx) = mpsc::channel(BODY_CHANNEL_DEPTH);
            let complete = Arc::new(AtomicBool::new(false));
            self.body = Some(tx);
            self.complete = Some(complete.clone());
            ResponseBody::stream(first, rx, complete)
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        if let Some(reason) = reason {
            response.extensions_mut().insert(reason);
        }
        if outcome.send(Ok(response)).is_err() {
            self.body = None;
            return false;
        }
        true
    }
}

impl Head {
    /// 204 and 304 carry no content (RFC 9110 §6.4.1).
    fn no_content(&self) -> bool {
        self.status == StatusCode::NO_CONTENT || self.status == StatusCode::NOT_MODIFIED
    }
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Text as Latin-1 bytes, or `None` if a char is above U+00FF.
fn latin1_bytes(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

/// Field-value bytes (RFC 9110 §5.5): visible chars, SP, HTAB, obs-text; no CR, LF, NUL or
/// other controls.
fn is_field_byte(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

/// A field value without the whitespace around it: RFC 9110 §5.5, a field value does not
/// include leading or trailing whitespace (SP, HTAB), which is the `OWS` of the field line
/// around it (RFC 9112 §5). `start_response("200 OK", [("Set-Cookie", " a=1")])` (as Django
/// sends its cookies) goes out as `set-cookie: a=1`, not with two spaces.
fn trim_ows(value: &[u8]) -> &[u8] {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !ows(b)).unwrap_or(value.len());
    let end = value.iter().rposition(|b| !ows(b)).map_or(start, |i| i + 1);
    &value[start..end]
}

/// `text` for an error message: at most [`QUOTE_MAX`] characters, debug-escaped.
fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_MAX) {
        Some((end, _)) => format!("{:?}...", &text[..end]),
        None => format!("{text:?}"),
    }
}

fn validate(status: &str, headers: Vec<(String, String)>) -> Result<Head, WsgiError> {
    let bad_status = |why: &str| WsgiError::InvalidStatus(format!("{}: {why}", quote(status)));
    let bytes = status.as_bytes();
    if bytes.len() < 4 || !bytes[..3].iter().all(u8::is_ascii_digit) || bytes[3] != b' ' {
        return Err(bad_status(
            "must be three digits, a space and a reason phrase, e.g. \"200 OK\"",
        ));
    }
    let code: u16 = status[..3]
        .parse()
        .map_err(|_| bad_status("not a number"))?;
    if !(200..=599).contains(&code) {
        return Err(bad_status(
            "the code must be from 200 to 599 (1xx responses are the server's own)",
        ));
    }
    let status_code = StatusCode::from_u16(code).map_err(|_| bad_status("not a status code"))?;
    let reason = latin1_bytes(&status[4..])
        .filter(|r| r.iter().all(|&b| is_field_byte(b)))
        .ok_or_else(|| bad_status("the reason phrase must be printable Latin-1"))?;
    let reason = if status_code.canonical_reason().map(str::as_bytes) == Some(&reason[..]) {
        None
    } else {
        Some(
            hyper::ext::ReasonPhrase::try_from(reason)
                .map_err(|_| bad_status("the reason phrase must be printable Latin-1"))?,
        )
    };

    check_count(headers.len())?;
    check_size(
        status.len()
            + headers
                .iter()
                .map(|(name, value)| header_size(name, value))
                .sum::<usize>(),
    )?;
    // Both bounded above: the server's own Date and Server, and the guest's lines.
    let mut map = HeaderMap::with_capacity(headers.len() + 2);
    let mut content_length: Option<u64> = None;
    for (name, value) in headers {
        let bad = |why: &str| WsgiError::InvalidHeader(format!("{}: {why}", quote(&name)));
        if name.is_empty() || !name.chars().all(is_tchar) {
            return Err(bad(
                "a header name must be a token (letters, digits and !#$%&'*+-.^_`|~)",
            ));
        }
        if is_hop_by_hop(&name) {
            return Err(bad(
                "hop-by-hop headers are set by the server, not the application",
            ));
        }
        let value_bytes = latin1_bytes(&value)
            .filter(|v| v.iter().all(|&b| is_field_byte(b)))
            .ok_or_else(|| {
                bad("a value must be Latin-1 text without CR, LF, NUL or other control characters")
            })?;
        let header_name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("not a valid header name"))?;
        let header_value = HeaderValue::from_bytes(trim_ows(&value_bytes))
            .map_err(|_| bad("not a valid header value"))?;
        if header_name == header::CONTENT_LENGTH {
            let trimmed = value.trim_matches([' ', '\t']);
            let n = (!trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()))
                .then(|| trimmed.parse::<u64>().ok())
                .flatten()
                .ok_or_else(|| bad("Content-Length must be a decimal number of bytes"))?;
            if content_length.is_some_and(|c| c != n) {
                return Err(bad("two different Content-Length values"));
            }
            content_length = Some(n);
            map.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
            continue;
        }
        map.append(header_name, header_value);
    }
    Ok(Head {
        status: status_code,
        reason,
        headers: map,
        content_length,
    })
}

pub(super) fn check_count(headers: usize) -> Result<(), WsgiError> {
    if headers > MAX_RESPONSE_HEADERS {
        return Err(WsgiError::InvalidHeader(format!(
            "{headers} headers: a response may have at most {MAX_RESPONSE_HEADERS}"
        )));
    }
    Ok(())
}

pub(super) fn check_size(size: usize) -> Result<(), WsgiError> {
    if size > MAX_RESPONSE_HEAD_BYTES {
        return Err(WsgiError::InvalidHeader(format!(
            "{size} bytes of status and headers (or more): a response head may take at most {MAX_RESPONSE_HEAD_BYTES}"
        )));
    }
    Ok(())
}

/// What one header line takes in the head's bound: name, value, `: ` and CRLF.
pub(super) fn header_size(name: &str, value: &str) -> usize {
    name.len() + value.len() + 4
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A guest's header list is bounded before anything is allocated for it: 30,000 names
    /// made `HeaderMap::with_capacity` panic in the host.
    #[test]
    fn header_count_and_size_are_bounded() {
        let many: Vec<(String, String)> = (0..30_000)
            .map(|i| (format!("X-{i}"), "v".to_string()))
            .collect();
        let Err(WsgiError::InvalidHeader(why)) = validate("200 OK", many) else {
            panic!("30,000 headers accepted");
        };
        assert!(why.contains("at most 256"), "{why}");
        let at_limit: Vec<(String, String)> = (0..MAX_RESPONSE_HEADERS)
            .map(|i| (format!("X-{i}"), "v".to_string()))
            .collect();
        assert!(validate("200 OK", at_limit).is_ok());
        let big = vec![("X-Big".to_string(), "v".repeat(MAX_RESPONSE_HEAD_BYTES))];
        assert!(matches!(
            validate("200 OK", big),
            Err(WsgiError::InvalidHeader(_))
        ));
        // The message quotes a bounded part of what the guest sent.
        let long_name = vec![("N".repeat(1 << 20), "\r".to_string())];
        let Err(WsgiError::InvalidHeader(why)) = validate("200 OK", long_name) else {
            panic!("a CR accepted");
        };
        assert!(why.len() < 300, "{} bytes", why.len());
    }

    #[test]
    fn statuses() {
        for ok in [
            "200 OK",
            "299 Very Custom Reason",
            "404 Not Found",
            "599 x",
            "200 ",
            "418 I'm a teapot",
            "200 caf\u{e9}",
        ] {
            assert!(validate(ok, vec![]).is_ok(), "{ok}");
        }
        for bad in [
            "20 OK",
            "200",
            "200OK",
            "101 Switching Protocols",
            "999 Nope",
            "600 x",
            "100 Continue",
            "abc OK",
            "200 a\r\nb",
            "200 \u{263a}",
            " 200 OK",
        ] {
            assert!(
                matches!(validate(bad, vec![]), Err(WsgiError::InvalidStatus(_))),
                "{bad}"
            );
        }
        assert!(validate("200 OK", vec![]).unwrap().reason.is_none());
        assert!(validate("200 Fine", vec![]).unwrap().reason.is_some());
    }

    #[test]
    fn headers() {
        let ok = validate(
            "200 OK",
            h(&[
                ("Content-Type", "text/plain"),
                ("X-Latin1", "caf\u{e9}"),
                ("Set-Cookie", "a=1"),
                ("Set-Cookie", "b=2"),
                ("Content-Length", "5"),
            ]),
        )
        .unwrap();
        assert_eq!(ok.content_length, Some(5));
        assert_eq!(ok.headers.get_all("set-cookie").iter().count(), 2);
        assert_eq!(ok.headers["x-latin1"].as_bytes(), b"caf\xe9");
        for bad in [
            ("X-Bad", "a\r\nInjected: 1"),
            ("X-Bad", "nul\0"),
            ("X-Bad", "\u{263a}"),
            ("Bad Name", "x"),
            ("", "x"),
            ("X:Y", "x"),
            ("Connection", "close"),
            ("transfer-encoding", "chunked"),
            ("Keep-Alive", "5"),
            ("TE", "trailers"),
            ("Trailer", "x"),
            ("Upgrade", "h2c"),
            ("Proxy-Connection", "x"),
            ("Content-Length", "-1"),
            ("Content-Length", "+3"),
            ("Content-Length", "1_0"),
            ("Content-Length", ""),
            ("Content-Length", "99999999999999999999999"),
        ] {
            assert!(
                matches!(
                    validate("200 OK", h(&[bad])),
                    Err(WsgiError::InvalidHeader(_))
                ),
                "{bad:?}"
            );
        }
        assert!(
            validate(
                "200 OK",
                h(&[("Content-Length", "3"), ("Content-Length", "4")])
            )
            .is_err()
        );
        assert_eq!(
            validate(
                "200 OK",
                h(&[("Content-Length", "3"), ("Content-Length", "3")])
            )
            .unwrap()
            .headers
            .get_all("content-length")
            .iter()
            .count(),
            1
        );
    }

    /// RFC 9110 §5.5: the whitespace around a value is not part of it (Django's
    /// `Set-Cookie:  csrftoken=...` went out with two spaces).
    #[test]
    fn header_values_are_trimmed() {
        let head = validate(
            "200 OK",
            h(&[
                ("Set-Cookie", " csrftoken=abc; Path=/"),
                ("X-Tabs", "\t a \tb\t "),
                ("X-Blank", "  \t"),
                ("X-Inner", "a  b"),
                ("Content-Length", " 5 "),
            ]),
        )
        .unwrap();
        assert_eq!(head.headers["set-cookie"], "csrftoken=abc; Path=/");
        assert_eq!(head.headers["x-tabs"], "a \tb");
        assert_eq!(head.headers["x-blank"], "");
        assert_eq!(head.headers["x-inner"], "a  b");
        assert_eq!(head.content_length, Some(5));
        assert_eq!(trim_ows(b""), b"");
        assert_eq!(trim_ows(b" x"), b"x");
    }

    #[test]
    fn start_response_protocol() {
        let (mut w, _rx) = ResponseWriter::new(false, Arc::default());
        assert!(matches!(w.start("200 OK", vec![], None), Ok(())));
        assert!(matches!(
            w.start("200 OK", vec![], None),
            Err(WsgiError::AlreadyStarted)
        ));
        assert!(matches!(
            w.start("500 Oops", h(&[("X-Second", "2")]), Some("boom")),
            Ok(())
        ));
        let staged = w.staged.as_ref().unwrap();
        assert_eq!(staged.status, 500);
        assert!(staged.headers.contains_key("x-second"));
    }
}
