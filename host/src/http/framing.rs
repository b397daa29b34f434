//! HTTP/1 request boundaries, followed in the raw bytes beside hyper, for the two checks
//! hyper's parser does not make: every line of every request head must end in CRLF (a bare
//! LF is a request-smuggling shape behind a proxy that reads lines differently; cheroot
//! refuses it), and whether a head has begun when the head timeout strikes (408, or a quiet
//! close).
//!
//! Bodies are skipped by their framing (Content-Length, or chunked to its last chunk and
//! trailers), so a body's bytes are never taken for a head — pipelined heads behind a body
//! are checked too. What cannot be followed (a Content-Length that does not parse, a chunk
//! size that overflows) stops the checks for the rest of the connection: hyper refuses such a
//! request itself and closes. The HTTP/2 prior-knowledge preface also stops them. Pure: fed
//! bytes, table-tested below.

/// How much of a header line is kept to recognise Content-Length and Transfer-Encoding.
const LINE_KEEP: usize = 64;

/// A bare LF ended a line of a request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BareLf;

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
    content_length: Option<u64>,
    chunked: bool,
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

impl Default for Framing {
    fn default() -> Self {
        Framing {
            state: State::Head,
            line: [0; LINE_KEEP],
            line_len: 0,
            after_cr: false,
            lines: 0,
            content_length: None,
            chunked: false,
        }
    }
}

impl Framing {
    /// Follows `bytes`, the next ones read from the client.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), BareLf> {
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
                    bytes = &bytes[skip as usize..];
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

    /// The client opened with the HTTP/2 prior-knowledge preface.
    pub fn is_h2(&self) -> bool {
        self.state == State::Off && self.line.starts_with(b"pri * http/2")
    }

    fn end_chunk_size(&mut self, size: u64) {
        self.state = if size == 0 {
            State::Trailers
        } else {
            State::ChunkData(size)
        };
    }

    /// One byte of a head or of the trailers.
    fn head_byte(&mut self, b: u8) -> Result<(), BareLf> {
        if b == b'\n' {
            if !self.after_cr {
                return Err(BareLf);
            }
            self.end_line();
        } else if b != b'\r' {
            if self.line_len < LINE_KEEP {
                self.line[self.line_len] = b.to_ascii_lowercase();
            }
            self.line_len += 1;
        }
        self.after_cr = b == b'\r';
        Ok(())
    }

    fn end_line(&mut self) {
        let len = self.line_len;
        let kept = &self.line[..len.min(LINE_KEEP)];
        let empty = len == 0;
        let first = self.lines == 0;
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
                self.state = match (self.chunked, self.content_length) {
                    (true, _) => State::ChunkSize(0),
                    (false, Some(n)) if n > 0 => State::Body(n),
                    _ => State::Head,
                };
                self.lines = 0;
                self.content_length = None;
                self.chunked = false;
            }
            return;
        }
        self.lines += 1;
        if first {
            if kept.starts_with(b"pri * http/2") {
                self.state = State::Off;
            }
            return;
        }
        let value = |name: &[u8]| {
            kept.strip_prefix(name)
                .map(|v| std::str::from_utf8(v).unwrap_or("").trim())
        };
        if let Some(v) = value(b"content-length:") {
            let parsed = (len <= LINE_KEEP).then(|| v.parse::<u64>().ok()).flatten();
            match (parsed, self.content_length) {
                (Some(n), None) => self.content_length = Some(n),
                (Some(n), Some(m)) if n == m => {}
                // hyper refuses these (400, close); nothing more to follow.
                _ => self.state = State::Off,
            }
        } else if let Some(v) = value(b"transfer-encoding:") {
            self.chunked |= v.contains("chunked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(pieces: &[&[u8]]) -> (Result<(), BareLf>, Framing) {
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
            assert_eq!(feed(pieces).0, Err(BareLf), "{pieces:?}");
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
}
