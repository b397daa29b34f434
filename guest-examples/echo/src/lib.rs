//! Streams `wsgi.input` back, to show (and test) request bodies in every shape.
//!
//! `?mode=` picks how:
//! - `read` (default): a lazy body; each `next` is one `input.read(size)` (`?size=`, default
//!   65536), so an upload flows back while it is still arriving.
//! - `lines`: each `next` is one `input.read-line(65536)`.
//! - `count`: reads everything first, answers `<bytes> <FNV-1a 64 hex>\n` (for huge uploads),
//!   the whole body returned with `handle`.
//! - `write`: the legacy way: `write()` for every chunk read, then an empty body.
//!
//! An input error (body too large, client gone) becomes a 500 with `X-Wsgi-Error`, as a
//! framework would turn the exception into an error page.

wit_bindgen::generate!({ world: "app", path: "../../wit" });

use cheroot::wsgi::types::{Environ, Error, Input, StartResponse};
use exports::cheroot::wsgi::application::{Body, Guest, GuestBody, Reply};

struct Echo;

enum Mode {
    Read(u64),
    Lines,
}

/// The response iterable.
struct EchoBody {
    input: Input,
    mode: Mode,
    // Kept so a failure mid-body could still be reported (and to own it, as a generator would).
    _start_response: StartResponse,
}

impl GuestBody for EchoBody {
    fn next(&self) -> Result<Option<Vec<u8>>, String> {
        let chunk = match &self.mode {
            Mode::Read(size) => self.input.read(*size),
            Mode::Lines => self.input.read_line(65536),
        };
        match chunk {
            Ok(chunk) if chunk.is_empty() => Ok(None),
            Ok(chunk) => Ok(Some(chunk)),
            Err(e) => Err(format!("reading wsgi.input: {e}")),
        }
    }
}

/// An environ variable: `vars` is `KEY\0value\0...`.
fn var<'a>(environ: &'a Environ, key: &str) -> &'a str {
    let mut parts = environ.vars.split_terminator('\0');
    while let (Some(k), Some(v)) = (parts.next(), parts.next()) {
        if k == key {
            return v;
        }
    }
    ""
}

fn query<'a>(environ: &'a Environ, key: &str) -> Option<&'a str> {
    var(environ, "QUERY_STRING")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

fn header(name: &str, value: &str) -> (String, String) {
    (name.to_string(), value.to_string())
}

/// A framework's error page for a host error.
fn error_page(start_response: StartResponse, error: &Error) -> Result<Reply, String> {
    let text = format!("{error}\n");
    let headers = [
        header("Content-Type", "text/plain"),
        header("X-Wsgi-Error", kebab(error)),
    ];
    start_response
        .call("500 Internal Server Error", &headers, Some(&text))
        .map_err(|e| format!("{error}; then {e}"))?;
    Ok(Reply {
        ready: text.into_bytes(),
        rest: None,
    })
}

fn kebab(error: &Error) -> &'static str {
    match error {
        Error::AlreadyStarted => "already-started",
        Error::NotStarted => "not-started",
        Error::InvalidStatus(_) => "invalid-status",
        Error::InvalidHeader(_) => "invalid-header",
        Error::BodyExceedsContentLength => "body-exceeds-content-length",
        Error::RequestBodyTooLarge => "request-body-too-large",
        Error::Disconnected => "disconnected",
    }
}

/// FNV-1a, 64 bits.
fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Guest for Echo {
    type Body = EchoBody;

    fn handle(environ: Environ, start_response: StartResponse) -> Result<Reply, String> {
        let mode = query(&environ, "mode").unwrap_or("read").to_string();
        let size = query(&environ, "size")
            .and_then(|s| s.parse().ok())
            .unwrap_or(65536);
        let input = environ.input;
        let octets = [header("Content-Type", "application/octet-stream")];
        let mode = match mode.as_str() {
            "lines" => Mode::Lines,
            "count" => {
                let (mut total, mut hash) = (0u64, 0xcbf2_9ce4_8422_2325u64);
                loop {
                    match input.read(65536) {
                        Ok(chunk) if chunk.is_empty() => break,
                        Ok(chunk) => {
                            total += chunk.len() as u64;
                            hash = fnv1a(hash, &chunk);
                        }
                        Err(e) => return error_page(start_response, &e),
                    }
                }
                let text = format!("{total} {hash:016x}\n");
                let headers = [
                    header("Content-Type", "text/plain"),
                    header("Content-Length", &text.len().to_string()),
                ];
                start_response
                    .call("200 OK", &headers, None)
                    .map_err(|e| e.to_string())?;
                return Ok(Reply {
                    ready: text.into_bytes(),
                    rest: None,
                });
            }
            "write" => {
                start_response
                    .call("200 OK", &octets, None)
                    .map_err(|e| e.to_string())?;
                loop {
                    match input.read(size) {
                        Ok(chunk) if chunk.is_empty() => break,
                        Ok(chunk) => start_response.write(&chunk).map_err(|e| e.to_string())?,
                        Err(e) => return Err(format!("reading wsgi.input: {e}")),
                    }
                }
                return Ok(Reply {
                    ready: Vec::new(),
                    rest: None,
                });
            }
            _ => Mode::Read(size),
        };
        start_response
            .call("200 OK", &octets, None)
            .map_err(|e| e.to_string())?;
        Ok(Reply {
            ready: Vec::new(),
            rest: Some(Body::new(EchoBody {
                input,
                mode,
                _start_response: start_response,
            })),
        })
    }
}

export!(Echo);
