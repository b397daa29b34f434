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

use std::cell::{OnceCell, RefCell};
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
use bindings::exports::cheroot::wsgi::application::{self, GuestBody, Reply};

/// One request: the WSGI environ and the body.
pub struct Request {
    /// `KEY\0value\0` for every variable but PATH_INFO, as the server sends them.
    packed: String,
    path_info: String,
    /// Every pair, PATH_INFO included, once [`Request::vars`] asked for them.
    pairs: OnceCell<Vec<(String, String)>>,
    body: BodyReader,
}

impl Request {
    fn new(environ: Environ) -> Request {
        Request {
            packed: environ.vars,
            path_info: environ.path_info,
            pairs: OnceCell::new(),
            body: BodyReader {
                input: environ.input,
                buffer: Vec::new(),
                at: 0,
            },
        }
    }

    /// An environ value (`"REQUEST_METHOD"`, `"wsgi.url_scheme"`, ...).
    pub fn var(&self, key: &str) -> Option<&str> {
        if key == "PATH_INFO" {
            return Some(&self.path_info);
        }
        self.packed_pairs().find(|&(k, _)| k == key).map(|(_, v)| v)
    }

    /// Every environ pair, PATH_INFO first, then in the server's order.
    pub fn vars(&self) -> &[(String, String)] {
        self.pairs.get_or_init(|| {
            std::iter::once(("PATH_INFO", self.path_info.as_str()))
                .chain(self.packed_pairs())
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
    }

    fn packed_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut parts = self.packed.split_terminator('\0');
        std::iter::from_fn(move || Some((parts.next()?, parts.next()?)))
    }

    /// `REQUEST_METHOD`.
    pub fn method(&self) -> &str {
        self.var("REQUEST_METHOD").unwrap_or("GET")
    }

    /// `PATH_INFO`: the path below the route's prefix (percent-decoded; `%2F` stays encoded).
    pub fn path(&self) -> &str {
        &self.path_info
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

    /// A lazy response, like a Python generator: `make` runs when the first chunk is
    /// needed (right after the handler returns), and only then are status and headers
    /// decided.
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

    /// Calls start_response; the reply for the server: a fixed body whole, a stream's
    /// first chunk (pulled now, as the server would at once) and the stream as the rest.
    fn start(self, start_response: StartResponse) -> Result<Reply, String> {
        let Response {
            status,
            mut headers,
            body,
        } = self;
        let mut stream = match body {
            Body::Fixed(bytes) => {
                if !headers
                    .iter()
                    .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                {
                    headers.push(("Content-Length".into(), bytes.len().to_string()));
                }
                call(&start_response, &status, &headers)?;
                return Ok(Reply {
                    ready: bytes,
                    rest: None,
                });
            }
            Body::Stream(chunks) => chunks,
            Body::Lazy(make) => return make()?.start(start_response),
        };
        call(&start_response, &status, &headers)?;
        let Some(first) = stream.next().transpose()? else {
            return Ok(Reply {
                ready: Vec::new(),
                rest: None,
            });
        };
        let rest = application::Body::new(ResponseBody {
            chunks: RefCell::new(Some(stream)),
            _start_response: start_response,
        });
        Ok(Reply {
            ready: first,
            rest: Some(rest),
        })
    }
}

fn call(
    start_response: &StartResponse,
    status: &str,
    headers: &[(String, String)],
) -> Result<(), String> {
    start_response
        .call(status, headers, None)
        .map_err(|e| format!("start_response({status:?}): {e}"))
}

/// The rest of a streamed body, as the resource the component exports; the server pulls
/// it with `next`.
#[doc(hidden)]
pub struct ResponseBody {
    /// `None` once the stream ended.
    chunks: RefCell<Option<Chunks>>,
    /// Lives as long as the body, as a Python generator's would.
    _start_response: StartResponse,
}

impl GuestBody for ResponseBody {
    fn next(&self) -> Result<Option<Vec<u8>>, String> {
        let mut chunks = self.chunks.borrow_mut();
        let Some(stream) = chunks.as_mut() else {
            return Ok(None);
        };
        match stream.next() {
            Some(chunk) => chunk.map(Some),
            None => {
                *chunks = None;
                Ok(None)
            }
        }
    }
}

/// What [`export!`] calls: runs `handler` and starts its response.
#[doc(hidden)]
pub fn handle(
    handler: impl FnOnce(Request) -> Result<Response, String>,
    environ: Environ,
    start_response: StartResponse,
) -> Result<Reply, String> {
    handler(Request::new(environ))?.start(start_response)
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
            ) -> Result<$crate::bindings::exports::cheroot::wsgi::application::Reply, String> {
                $crate::handle($handler, environ, start_response)
            }
        }

        $crate::bindings::__export_app!(__CherootWsgiApplication with_types_in $crate::bindings);
    };
}
