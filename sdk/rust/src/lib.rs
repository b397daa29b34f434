//! Write a cheroot-wasm application in Rust without touching the raw WIT bindings.
//!
//! A handler is a function from a [`Request`] (environ accessors, and `wsgi.input` as
//! [`std::io::Read`] + [`std::io::BufRead`]) to a [`Response`] with a fixed, streaming or
//! lazy body; [`export!`] makes it the component's `cheroot:wsgi/application`:
//!
//! ```ignore
//! use cheroot_wsgi::{Request, Response};
//!
//! fn hello(request: Request) -> Result<Response, String> {
//!     Ok(Response::text("200 OK", format!("Hello from {}!\n", request.path())))
//! }
//!
//! cheroot_wsgi::export!(hello);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2` on a `cdylib` crate: the output
//! is the component to name in routes.toml. Errors (`Err(text)`, or a failed read of the
//! body) are uncaught exceptions: the server logs them with the route and answers 500.

use std::cell::RefCell;
use std::io::{BufRead, Read};

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "app",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "__export_app",
        default_bindings_module: "::cheroot_wsgi::bindings",
    });
}

use bindings::cheroot::wsgi::types::{Environ, Input, StartResponse};
use bindings::exports::cheroot::wsgi::application::{self, GuestBody};

/// One request: the WSGI environ and the body.
pub struct Request {
    vars: Vec<(String, String)>,
    body: BodyReader,
}

impl Request {
    fn new(environ: Environ) -> Request {
        Request {
            vars: environ.vars,
            body: BodyReader {
                input: environ.input,
                buffer: Vec::new(),
                at: 0,
            },
        }
    }

    /// An environ value (`"REQUEST_METHOD"`, `"wsgi.url_scheme"`, ...).
    pub fn var(&self, key: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every environ pair, in the server's order.
    pub fn vars(&self) -> &[(String, String)] {
        &self.vars
    }

    /// `REQUEST_METHOD`.
    pub fn method(&self) -> &str {
        self.var("REQUEST_METHOD").unwrap_or("GET")
    }

    /// `PATH_INFO`: the path below the route's prefix (percent-decoded; `%2F` stays encoded).
    pub fn path(&self) -> &str {
        self.var("PATH_INFO").unwrap_or("")
    }

    /// `PATH_INFO` as the bytes the client sent (the environ holds them as Latin-1).
    pub fn path_bytes(&self) -> Vec<u8> {
        self.path().chars().map(|c| c as u32 as u8).collect()
    }

    /// `SCRIPT_NAME`: the route's prefix.
    pub fn script_name(&self) -> &str {
        self.var("SCRIPT_NAME").unwrap_or("")
    }

    /// `QUERY_STRING`, raw.
    pub fn query(&self) -> &str {
        self.var("QUERY_STRING").unwrap_or("")
    }

    /// The first `key=value` of the query string with this key (not percent-decoded).
    pub fn query_param(&self, key: &str) -> Option<&str> {
        self.query()
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// A request header by name, case-insensitive (`"content-type"`, `"X-Token"`).
    pub fn header(&self, name: &str) -> Option<&str> {
        let key: String = name
            .chars()
            .map(|c| {
                if c == '-' {
                    '_'
                } else {
                    c.to_ascii_uppercase()
                }
            })
            .collect();
        match key.as_str() {
            "CONTENT_TYPE" | "CONTENT_LENGTH" => self.var(&key),
            _ => self.var(&format!("HTTP_{key}")),
        }
    }

    /// `wsgi.input`: the request body, read from the client as you read it.
    pub fn body(&mut self) -> &mut BodyReader {
        &mut self.body
    }

    /// Splits off the body reader, to move it into a streaming response.
    pub fn into_body(self) -> BodyReader {
        self.body
    }
}

/// `wsgi.input` as [`Read`] and [`BufRead`]. A failed read (the client went away, the body
/// is larger than the route allows) is an [`std::io::Error`] naming the WIT error.
pub struct BodyReader {
    input: Input,
    buffer: Vec<u8>,
    at: usize,
}

/// How much one read asks the server for.
const READ_SIZE: u64 = 64 << 10;

impl BodyReader {
    /// One `input.read-line`: up to and including `\n`, at most `max` bytes; empty at the end.
    pub fn read_line_raw(&mut self, max: u64) -> std::io::Result<Vec<u8>> {
        if self.at < self.buffer.len() {
            let rest = &self.buffer[self.at..];
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |i| i + 1)
                .min(max as usize);
            self.at += end;
            return Ok(rest[..end].to_vec());
        }
        self.input.read_line(max).map_err(io_error)
    }
}

fn io_error(e: bindings::cheroot::wsgi::types::Error) -> std::io::Error {
    std::io::Error::other(format!("wsgi.input: {e}"))
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for BodyReader {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.at >= self.buffer.len() {
            self.buffer = self.input.read(READ_SIZE).map_err(io_error)?;
            self.at = 0;
        }
        Ok(&self.buffer[self.at..])
    }

    fn consume(&mut self, amount: usize) {
        self.at = (self.at + amount).min(self.buffer.len());
    }
}

type Chunks = Box<dyn Iterator<Item = Result<Vec<u8>, String>>>;

/// What a handler returns: status, headers and a body.
pub struct Response {
    status: String,
    headers: Vec<(String, String)>,
    body: Body,
}

enum Body {
    Fixed(Vec<u8>),
    Stream(Chunks),
    Lazy(Box<dyn FnOnce() -> Result<Response, String>>),
}

impl Response {
    /// A fixed body with a Content-Length; `status` is e.g. `"200 OK"`.
    pub fn new(status: impl Into<String>, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status: status.into(),
            headers: Vec::new(),
            body: Body::Fixed(body.into()),
        }
    }

    /// A `text/plain; charset=utf-8` body.
    pub fn text(status: impl Into<String>, text: impl Into<String>) -> Response {
        Response::new(status, text.into()).header("Content-Type", "text/plain; charset=utf-8")
    }

    /// A streamed body, sent chunk by chunk as the iterator yields (no Content-Length, so
    /// HTTP/1.1 clients get chunked framing); an `Err` aborts the response.
    pub fn stream(
        status: impl Into<String>,
        chunks: impl Iterator<Item = Result<Vec<u8>, String>> + 'static,
    ) -> Response {
        Response {
            status: status.into(),
            headers: Vec::new(),
            body: Body::Stream(Box::new(chunks)),
        }
    }

    /// A lazy response, like a Python generator: `make` runs when the server asks for the
    /// first chunk, and only then are status and headers decided.
    pub fn lazy(make: impl FnOnce() -> Result<Response, String> + 'static) -> Response {
        Response {
            status: String::new(),
            headers: Vec::new(),
            body: Body::Lazy(Box::new(make)),
        }
    }

    /// Adds a header (the server refuses hop-by-hop headers and CR/LF in values).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Calls start_response; what is left to send.
    fn start(self, start_response: &StartResponse) -> Result<Chunks, String> {
        let Response {
            status,
            mut headers,
            body,
        } = self;
        let chunks: Chunks = match body {
            Body::Fixed(bytes) => {
                if !headers
                    .iter()
                    .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                {
                    headers.push(("Content-Length".into(), bytes.len().to_string()));
                }
                Box::new(std::iter::once(Ok(bytes)))
            }
            Body::Stream(chunks) => chunks,
            Body::Lazy(make) => return make()?.start(start_response),
        };
        start_response
            .call(&status, &headers, None)
            .map_err(|e| format!("start_response({status:?}): {e}"))?;
        Ok(chunks)
    }
}

/// The body resource the component exports; the server pulls it with `next`.
#[doc(hidden)]
pub struct ResponseBody {
    state: RefCell<State>,
    start_response: StartResponse,
}

enum State {
    Unstarted(Response),
    Sending(Chunks),
    Done,
}

impl GuestBody for ResponseBody {
    fn next(&self) -> Result<Option<Vec<u8>>, String> {
        let mut state = self.state.borrow_mut();
        if let State::Unstarted(_) = &*state {
            let State::Unstarted(response) = std::mem::replace(&mut *state, State::Done) else {
                unreachable!("matched above")
            };
            *state = State::Sending(response.start(&self.start_response)?);
        }
        let State::Sending(chunks) = &mut *state else {
            return Ok(None);
        };
        match chunks.next() {
            Some(chunk) => chunk.map(Some),
            None => {
                *state = State::Done;
                Ok(None)
            }
        }
    }
}

/// What [`export!`] calls: runs `handler`, starting the response now unless it is lazy.
#[doc(hidden)]
pub fn handle(
    handler: impl FnOnce(Request) -> Result<Response, String>,
    environ: Environ,
    start_response: StartResponse,
) -> Result<application::Body, String> {
    let response = handler(Request::new(environ))?;
    let state = match response.body {
        Body::Lazy(_) => State::Unstarted(response),
        _ => State::Sending(response.start(&start_response)?),
    };
    Ok(application::Body::new(ResponseBody {
        state: RefCell::new(state),
        start_response,
    }))
}

/// Exports `handler: fn(Request) -> Result<Response, String>` as the component's WSGI
/// application.
#[macro_export]
macro_rules! export {
    ($handler:path) => {
        struct __CherootWsgiApplication;

        impl $crate::bindings::exports::cheroot::wsgi::application::Guest
            for __CherootWsgiApplication
        {
            type Body = $crate::ResponseBody;

            fn handle(
                environ: $crate::bindings::cheroot::wsgi::types::Environ,
                start_response: $crate::bindings::cheroot::wsgi::types::StartResponse,
            ) -> Result<$crate::bindings::exports::cheroot::wsgi::application::Body, String> {
                $crate::handle($handler, environ, start_response)
            }
        }

        $crate::bindings::__export_app!(__CherootWsgiApplication with_types_in $crate::bindings);
    };
}
