//! HTTP/1 request boundaries, followed in the raw bytes beside hyper, for the checks hyper's
//! parser does not make: every line of every request head must end in CRLF (a bare LF is a
//! request-smuggling shape behind a proxy that reads lines differently; cheroot refuses it);
//! a request line must not hold a `#` (RFC 9112 §3.2: a request-target has no fragment, and
//! the `http` crate would drop it silently, so the application would see another target
//! than a proxy in front did) or a control byte; and whether a head has begun when the head
//! timeout strikes (408, or a quiet close).
//!
//! Bodies are skipped by their framing (Content-Length, or chunked to its last chunk and
//! trailers), read as hyper reads them (RFC 9112 §6.3): a `Transfer-Encoding` whose last
//! coding is `chunked` wins over any Content-Length; a Content-Length is digits between
//! optional whitespace, however long the line (leading zeros, padding), so no header line
//! can make the checks lose their place. A body's bytes are never taken for a head, and
//! pipelined heads behind a body are checked too. What cannot be followed (a Content-Length
//! that does not parse or disagrees with another, a chunk size that overflows) stops the
//! checks for the rest of the connection: hyper refuses such a request itself and closes.
//! The HTTP/2 prior-knowledge preface also stops them. Pure: fed bytes, table-tested below.

use super::error::{BAD_REQUEST_LINE_RESPONSE, BARE_LF_RESPONSE};

/// How much of a line is kept: the request line's start (to recognise the HTTP/2 preface)
/// and header names up to this length (`transfer-encoding` is 17 bytes). Values are
/// followed byte by byte, never kept.
const LINE_KEEP: usize = 64;

/// Why the request stream was refused: each is answered with a 400 and a close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A bare LF ended a line of a request head (RFC 9112 §2.2).
    BareLf,
    /// A request line held a `#` or a control byte (RFC 9112 §3, §3.2).
    RequestLine,
}

impl Refused {
    /// The raw answer, written before hyper would parse the head.
    pub fn response(self) -> &'static [u8] {
        match self {
            Refused::BareLf => BARE_LF_RESPONSE,
            Refused::RequestLine => BAD_REQUEST_LINE_RESPONSE,
        }
    }

    /// Why, for the server log.
    pub fn reason(self) -> &'static str {
        match self {
            Refused::BareLf => "bare LF in a request head",
            Refused::RequestLine => "a fragment or a control byte in a request line",
        }
    }
}

/// Where in the request stream the bytes so far end.
#[derive(Debug)]
pub struct Framing {
    state: State,
    /// The current line's first bytes (lower-cased) and its length.
    line: [u8; LINE_KEEP],
    line_len: usize,
    after_cr: bool,
    /// Lines of the current head (request line included).
    lines: usize,
    /// What the current header line's value is followed for.
    field: Field,
    /// The head's Content-Length, once one parsed.
    content_length: Option<u64>,
    /// A Content-Length that does not parse, or that disagrees with another.
    length_invalid: bool,
    /// The head's (last) Transfer-Encoding ends in `chunked`.
    chunked: bool,
    /// The client opened with the HTTP/2 prior-knowledge preface.
    h2: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a head (or the empty lines before one).
    Head,
    /// Skipping this many body bytes.
    Body(u64),
    /// A chunk-size line; the size so far.
    ChunkSize(u64),
    /// The rest of a chunk-size line (extensions), then a chunk of this size.
    ChunkExt(u64),
    /// Chunk data, then its CRLF.
    ChunkData(u64),
    /// The CRLF after chunk data.
    ChunkEnd,
    /// Trailer lines after the last chunk, up to an empty line.
    Trailers,
    /// HTTP/2, or framing that cannot be followed: nothing more is checked.
    Off,
}

/// The part of a head line being read, and what its value is followed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// The field name, up to its colon (or the request line, or a trailer).
    Name,
    /// A value that does not matter here.
    Ignored,
    /// Content-Length (RFC 9110 §8.6: `1*DIGIT`, as hyper parses it).
    Length(Digits),
    /// Transfer-Encoding: its last coding so far (hyper: the last comma-separated element,
    /// trimmed, is `chunked` or the request is refused).
    Coding(LastCoding),
}

/// A Content-Length value, digit by digit, between optional whitespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Digits {
    /// The number so far; `None` before the first digit.
    value: Option<u64>,
    /// Whitespace after the digits: only more whitespace may follow.
    ended: bool,
    /// Anything else: not a Content-Length hyper accepts.
    invalid: bool,
}

impl Digits {
    fn push(&mut self, b: u8) {
        match b {
            b' ' | b'\t' => self.ended |= self.value.is_some(),
            b'0'..=b'9' if !self.ended => {
                self.value = self
                    .value
                    .unwrap_or(0)
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(u64::from(b - b'0')));
                self.invalid |= self.value.is_none();
            }
            _ => self.invalid = true,
        }
    }

    fn get(self) -> Option<u64> {
        self.value.filter(|_| !self.invalid)
    }
}

/// The last element of a Transfer-Encoding list, as far as telling `chunked` apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct LastCoding {
    /// Its first bytes, lower-cased.
    kept: [u8; 7],
    len: usize,
    /// Whitespace after its first bytes: only more whitespace may follow.
    ended: bool,
    /// Longer than `chunked`, or whitespace inside it.
    other: bool,
}

impl LastCoding {
    fn push(&mut self, b: u8) {
        match b {
            b',' => *self = LastCoding::default(),
            b' ' | b'\t' => self.ended |= self.len > 0,
            _ if self.ended => self.other = true,
            _ => match self.kept.get_mut(self.len) {
                Some(slot) => {
                    *slot = b.to_ascii_lowercase();
                    self.len += 1;
                }
                None => self.other = true,
            },
        }
    }

    fn is_chunked(self) -> bool {
        !self.other && self.len == self.kept.len() && &self.kept == b"chunked"
    }
}

impl Default for Framing {
    fn default() -> Self {
        Framing {
            state: State::Head,
            line: [0; LINE_KEEP],
            line_len: 0,
            after_cr: false,
            lines: 0,
            field: Field::Name,
            content_length: None,
            length_invalid: false,
            chunked: false,
            h2: false,
        }
    }
}

impl Framing {
    /// Follows `bytes`, the next ones read from the client.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Refused> {
        while let Some((&b, rest)) = bytes.split_first() {
            match self.state {
                State::Off => return Ok(()),
                State::Body(n) | State::ChunkData(n) => {
                    let skip = n.min(bytes.len() as u64);
                    self.state = match (self.state, n - skip) {
                        (State::Body(_), 0) => State::Head,
                        (State::Body(_), left) => State::Body(left),
                        (_, 0) => State::ChunkEnd,
                        (_, left) => State::ChunkData(left),
                    };
                    // `skip` is at most `bytes.len()`, so it fits a usize.
                    bytes = bytes.get(skip as usize..).unwrap_or_default();
                    continue;
                }
                State::ChunkEnd => {
                    if b == b'\n' {
                        self.state = State::ChunkSize(0);
                    }
                }
                State::ChunkSize(size) => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        let digit = u64::from((b as char).to_digit(16).unwrap_or(0));
                        self.state = match size.checked_mul(16) {
                            Some(size) => State::ChunkSize(size + digit),
                            None => State::Off,
                        };
                    }
                    b'\n' => self.end_chunk_size(size),
                    _ => self.state = State::ChunkExt(size),
                },
                State::ChunkExt(size) => {
                    if b == b'\n' {
                        self.end_chunk_size(size);
                    }
                }
                State::Head | State::Trailers => self.head_byte(b)?,
            }
            bytes = rest;
        }
        Ok(())
    }

    /// Some bytes of a request head have arrived, but not all of it.
    pub fn in_head(&self) -> bool {
        self.state == State::Head && (self.lines > 0 || self.line_len > 0)
    }

    /// The bytes so far stop inside a request (its head, body or trailers), or can no
    /// longer be followed: a connection closed now may still have the client sending.
    pub fn mid_request(&self) -> bool {
        self.state != State::Head || self.in_head()
    }

    /// The client opened with the HTTP/2 prior-knowledge preface.
    pub fn is_h2(&self) -> bool {
        self.h2
    }

    fn end_chunk_size(&mut self, size: u64) {
        self.state = if size == 0 {
            State::Trailers
        } else {
            State::ChunkData(size)
        };
    }

    /// One byte of a head or of the trailers.
    fn head_byte(&mut self, b: u8) -> Result<(), Refused> {
        if b == b'\n' {
            if !self.after_cr {
                return Err(Refused::BareLf);
            }
            self.end_line();
        } else if b != b'\r' {
            let request_line = self.state == State::Head && self.lines == 0;
            // RFC 9112 §3.2: no fragment in a request-target; §3: the request line is
            // tokens and single spaces, never a control byte.
            if request_line && (b == b'#' || b.is_ascii_control()) {
                return Err(Refused::RequestLine);
            }
            if let Some(slot) = self.line.get_mut(self.line_len) {
                *slot = b.to_ascii_lowercase();
            }
            self.line_len += 1;
            self.field_byte(b, request_line);
        }
        self.after_cr = b == b'\r';
        Ok(())
    }

    /// One byte of a header line, past or up to its colon.
    fn field_byte(&mut self, b: u8, request_line: bool) {
        match &mut self.field {
            Field::Name if b == b':' && !request_line && self.state == State::Head => {
                let name = self
                    .line
                    .get(..self.line_len.saturating_sub(1))
                    .unwrap_or_default();
                self.field = match name {
                    b"content-length" => Field::Length(Digits::default()),
                    b"transfer-encoding" => Field::Coding(LastCoding::default()),
                    _ => Field::Ignored,
                };
            }
            Field::Name | Field::Ignored => {}
            Field::Length(digits) => digits.push(b),
            Field::Coding(coding) => coding.push(b),
        }
    }

    fn end_line(&mut self) {
        let kept = self.line.get(..self.line_len).unwrap_or(&self.line);
        let preface = kept.starts_with(b"pri * http/2");
        let empty = self.line_len == 0;
        let first = self.lines == 0;
        let field = std::mem::replace(&mut self.field, Field::Name);
        self.line_len = 0;
        if self.state == State::Trailers {
            if empty {
                self.state = State::Head;
            }
            return;
        }
        if empty {
            // The head ends (empty lines before a request line are skipped, RFC 9112 §2.2).
            if !first {
                // RFC 9112 §6.3: chunked wins over Content-Length; a Content-Length hyper
                // refuses (it then closes) cannot be followed.
                self.state = match (self.chunked, self.length_invalid, self.content_length) {
                    (true, _, _) => State::ChunkSize(0),
                    (false, true, _) => State::Off,
                    (false, false, Some(n)) if n > 0 => State::Body(n),
                    _ => State::Head,
                };
                self.lines = 0;
                self.content_length = None;
                self.length_invalid = false;
                self.chunked = false;
            }
            return;
        }
        self.lines += 1;
        if first {
            if preface {
                self.state = State::Off;
                self.h2 = true;
            }
            return;
        }
        match field {
            Field::Length(digits) => match (digits.get(), self.content_length) {
                (Some(n), None) => self.content_length = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => self.length_invalid = true,
            },
            // hyper: the last Transfer-Encoding line decides.
            Field::Coding(coding) => self.chunked = coding.is_chunked(),
            Field::Name | Field::Ignored => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(pieces: &[&[u8]]) -> (Result<(), Refused>, Framing) {
        let mut framing = Framing::default();
        let result = pieces.iter().try_for_each(|p| framing.feed(p));
        (result, framing)
    }

    #[test]
    fn crlf_heads_and_their_bodies_pass() {
        for pieces in [
            &[&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..]][..],
            &[b"GET / HTTP/1.1\r", b"\nHost: x\r\n\r", b"\n"],
            &[b"\r\nGET / HTTP/1.1\r\n\r\n"],
            &[b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\na\nb"],
            &[b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\na\nb\r\n0\r\nT: 1\r\n\r\n"],
            &[b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n\n\n\n", b"\n\n\n\n\n\n\n"],
        ] {
            let (result, framing) = feed(pieces);
            assert_eq!(result, Ok(()), "{pieces:?}");
            assert!(!framing.in_head(), "{pieces:?}");
        }
    }

    #[test]
    fn a_bare_lf_in_any_head_is_found() {
        for pieces in [
            &[&b"GET / HTTP/1.1\nHost: x\n\n"[..]][..],
            &[b"GET / HTTP/1.1\r\nHost: x\n\r\n"],
            &[b"GET / HTTP/1.1\r\nHost: x\r\n", b"\n"],
            // Pipelined behind a request without a body, with a body, with a chunked body.
            &[b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\nHost: x\n\n"],
            &[b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n\n\nGET /\n"],
            &[b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n\n\r\n0\r\n\r\nGET /\n"],
            &[b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: 1\n\r\n"],
        ] {
            assert_eq!(feed(pieces).0, Err(Refused::BareLf), "{pieces:?}");
        }
    }

    #[test]
    fn a_request_in_progress_is_known_for_the_lingering_close() {
        for (pieces, mid) in [
            (&[&b""[..]][..], false),
            (&[b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"], false),
            (&[b"GET / HTTP/1.1\r\nHo"], true),
            (&[b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n"], true),
            (&[b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nab"], true),
            (&[b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"], false),
            (
                &[b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n"],
                true,
            ),
            (
                &[b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"],
                false,
            ),
        ] {
            let (result, framing) = feed(pieces);
            assert_eq!(result, Ok(()), "{pieces:?}");
            assert_eq!(framing.mid_request(), mid, "{pieces:?}");
        }
    }

    #[test]
    fn a_head_in_progress_is_known() {
        assert!(feed(&[b"GET / HTT"]).1.in_head());
        assert!(feed(&[b"GET / HTTP/1.1\r\nHost: x\r\n"]).1.in_head());
        assert!(
            !feed(&[b"\r\n"]).1.in_head(),
            "an empty line is no head yet"
        );
        assert!(
            !feed(&[b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nabc"])
                .1
                .in_head(),
            "a body is not a head"
        );
    }

    #[test]
    fn what_cannot_be_followed_stops_the_checks() {
        let (result, framing) = feed(&[b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\n\x04\x00"]);
        assert_eq!(result, Ok(()));
        assert!(framing.is_h2());
        for pieces in [
            &[&b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n\n"[..]][..],
            &[b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n\n"],
        ] {
            assert_eq!(feed(pieces).0, Ok(()), "{pieces:?}");
        }
    }

    #[test]
    fn a_fragment_or_control_byte_in_a_request_line_is_refused() {
        for pieces in [
            &[&b"GET /x#frag HTTP/1.1\r\nHost: x\r\n\r\n"[..]][..],
            &[b"GET /x", b"#", b" HTTP/1.1\r\n"],
            &[b"GET /\x00 HTTP/1.1\r\n"],
            &[b"GET /\x7f HTTP/1.1\r\n"],
            &[b"GET\t/ HTTP/1.1\r\n"],
            &[b"\r\nGET /#a HTTP/1.1\r\n"],
            // Pipelined, behind a body that holds a `#` itself.
            &[b"POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\n#GET /#x HTTP/1.1\r\n"],
        ] {
            assert_eq!(feed(pieces).0, Err(Refused::RequestLine), "{pieces:?}");
        }
        // Only the request line: a `#` in a header, a body or a trailer is data.
        for pieces in [
            &[&b"GET /?a=%23 HTTP/1.1\r\nReferer: http://x/#top\r\n\r\n"[..]][..],
            &[b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n#\x00"],
            &[b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: #\r\n\r\n"],
        ] {
            assert_eq!(feed(pieces).0, Ok(()), "{pieces:?}");
        }
    }

    #[test]
    fn long_framing_header_lines_are_followed() {
        let padded = format!(
            "POST / HTTP/1.1\r\nContent-Length:{}3{}\r\n\r\n\n\n\nGET / HTTP/1.1\nHost: x\n\n",
            " ".repeat(200),
            "\t".repeat(100)
        );
        let zeros = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}3\r\n\r\n\n\n\nGET / HTTP/1.1\nHost: x\n\n",
            "0".repeat(200)
        );
        let coding = format!(
            "POST / HTTP/1.1\r\nTransfer-Encoding: {}Chunked\r\n\r\n1\r\n\n\r\n0\r\n\r\nGET /\n",
            " ".repeat(200)
        );
        for request in [&padded, &zeros, &coding] {
            // The body's bare LFs are skipped; the smuggled head behind it is found.
            assert_eq!(
                feed(&[request.as_bytes()]).0,
                Err(Refused::BareLf),
                "{request:?}"
            );
        }
        // hyper's reading: chunked wins over Content-Length; a list's last coding decides.
        for request in [
            &b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n\n\r\n0\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: x\r\n\r\n1\r\n\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip , chunked \r\n\r\n1\r\n\n\r\n0\r\n\r\n",
        ] {
            let (result, framing) = feed(&[request]);
            assert_eq!(result, Ok(()), "{request:?}");
            assert_eq!(framing.state, State::Head, "{request:?}");
        }
        for (value, want) in [
            ("chunked", true),
            ("CHUNKED ", true),
            ("chunked, gzip", false),
            ("chun ked", false),
            ("xchunked", false),
            ("", false),
        ] {
            let mut coding = LastCoding::default();
            value.bytes().for_each(|b| coding.push(b));
            assert_eq!(coding.is_chunked(), want, "{value:?}");
        }
        for (value, want) in [
            ("5", Some(5)),
            ("  007\t ", Some(7)),
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", None),
            ("5 5", None),
            ("5,5", None),
            ("+5", None),
            ("", None),
        ] {
            let mut digits = Digits::default();
            value.bytes().for_each(|b| digits.push(b));
            assert_eq!(digits.get(), want, "{value:?}");
        }
    }

    #[test]
    fn the_raw_answers_are_framed_by_their_length() {
        for refused in [Refused::BareLf, Refused::RequestLine] {
            let raw = refused.response();
            let text = std::str::from_utf8(raw).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
            assert!(
                head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())),
                "{head}"
            );
        }
    }
}
