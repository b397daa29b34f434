//! A Rust guest for `wasi:http/proxy` (wasi:http 0.2), the standard world that
//! componentize-js, the `wasi` crate, Spin and `wasmtime serve` use: cheroot-wasm serves it
//! beside WSGI applications, and bench/run serves `/` with `wasmtime serve` too.
//!
//! Its paths are relative to its mount point: cheroot-wasm passes the rest of the path in
//! the `cheroot-path-info` header (see docs/other-languages.md); without it
//! (under `wasmtime serve`), the whole path counts.
//!
//! - `/`: `200`, `Hello, world!` (with a Content-Length).
//! - `/echo`: the request body streamed back, with the request's content-type.
//! - `/stream`: five chunks, then a trailer `chunks: 5` (declared in a `trailer` header, as
//!   HTTP/1.1 needs).
//! - `/request`: what the guest was told of the request, one `name: value` per line.
//! - `/outbound?url=URL`: fetches URL (default `http://example.com/`) through wasi:http's
//!   outgoing handler and says what it got back: `answered: STATUS BODY`, or the error
//!   (`http-request-denied` unless the route's `outbound` grants the URL's target).
//! - `/forbidden-header`: tries to set `connection` and `transfer-encoding` headers and says
//!   what wasi:http answered.
//! - `/short`: declares 100 bytes of body and writes 5.
//! - `/no-response`: returns without a response.
//! - `/trap`: panics; `/spin`: never returns.

use wasi::exports::http::incoming_handler::Guest;
use wasi::http::outgoing_handler;
use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingRequest, OutgoingResponse, ResponseOutparam,
    Scheme,
};

const GREETING: &[u8] = b"Hello, world!\n";

struct HttpHello;

impl Guest for HttpHello {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path_info = request
            .headers()
            .get("cheroot-path-info")
            .into_iter()
            .next()
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_else(|| {
                let full = request.path_with_query().unwrap_or_default();
                full.split('?').next().unwrap_or_default().to_owned()
            });
        match path_info.as_str() {
            "" | "/" => respond(response_out, 200, "text/plain", &[GREETING], true),
            "/echo" => echo(request, response_out),
            "/stream" => stream(response_out),
            "/request" => {
                let text = describe(&request);
                respond(response_out, 200, "text/plain", &[text.as_bytes()], true)
            }
            "/outbound" => {
                let query = request.path_with_query().unwrap_or_default();
                let url = query
                    .split_once("?url=")
                    .map_or("http://example.com/", |(_, url)| url);
                let text = outbound(url);
                respond(response_out, 200, "text/plain", &[text.as_bytes()], true)
            }
            "/forbidden-header" => {
                let fields = Fields::new();
                let text = format!(
                    "connection: {:?}\ntransfer-encoding: {:?}\n",
                    fields.set("connection", &[b"close".to_vec()]),
                    fields.set("transfer-encoding", &[b"chunked".to_vec()]),
                );
                respond(response_out, 200, "text/plain", &[text.as_bytes()], true)
            }
            "/short" => short(response_out),
            "/no-response" => {}
            "/trap" => panic!("a deliberate panic in a wasi:http guest"),
            "/spin" => spin(),
            _ => respond(response_out, 404, "text/plain", &[b"not found\n"], true),
        }
    }
}

/// Never returns: the route's `timeout` stops it.
#[expect(clippy::empty_loop, reason = "the point: a guest that never returns")]
fn spin() {
    loop {}
}

/// Sends `status` with `chunks` as the body (written one by one), with a Content-Length if
/// `sized`.
fn respond(out: ResponseOutparam, status: u16, content_type: &str, chunks: &[&[u8]], sized: bool) {
    let mut headers = vec![("content-type".to_owned(), content_type.as_bytes().to_vec())];
    if sized {
        let length: usize = chunks.iter().map(|c| c.len()).sum();
        headers.push(("content-length".to_owned(), length.to_string().into_bytes()));
    }
    let fields = Fields::from_list(&headers).expect("valid headers");
    let response = OutgoingResponse::new(fields);
    response.set_status_code(status).expect("a valid status");
    let body = response.body().expect("the body is taken once");
    ResponseOutparam::set(out, Ok(response));
    let stream = body.write().expect("the stream is taken once");
    for chunk in chunks {
        write_all(&stream, chunk);
    }
    drop(stream);
    OutgoingBody::finish(body, None).expect("the body matches its content-length");
}

/// Writes all of `data` (`blocking-write-and-flush` takes at most 4096 bytes at a time).
fn write_all(stream: &wasi::io::streams::OutputStream, data: &[u8]) {
    for piece in data.chunks(4096) {
        stream
            .blocking_write_and_flush(piece)
            .expect("the client is reading");
    }
}

fn echo(request: IncomingRequest, out: ResponseOutparam) {
    let content_type = request
        .headers()
        .get("content-type")
        .into_iter()
        .next()
        .unwrap_or_else(|| b"application/octet-stream".to_vec());
    let fields = Fields::from_list(&[("content-type".to_owned(), content_type)]).expect("valid");
    let response = OutgoingResponse::new(fields);
    let body = response.body().expect("the body is taken once");
    ResponseOutparam::set(out, Ok(response));
    let output = body.write().expect("the stream is taken once");
    let incoming = request.consume().expect("the body is consumed once");
    let input = incoming.stream().expect("the stream is taken once");
    // Chunk by chunk: the upload streams through, whatever its size.
    while let Ok(chunk) = input.blocking_read(64 * 1024) {
        write_all(&output, &chunk);
    }
    drop(input);
    drop(output);
    OutgoingBody::finish(body, None).expect("no content-length to miss");
}

fn stream(out: ResponseOutparam) {
    let fields = Fields::from_list(&[
        ("content-type".to_owned(), b"text/plain".to_vec()),
        ("trailer".to_owned(), b"chunks".to_vec()),
    ])
    .expect("valid headers");
    let response = OutgoingResponse::new(fields);
    let body = response.body().expect("the body is taken once");
    ResponseOutparam::set(out, Ok(response));
    let output = body.write().expect("the stream is taken once");
    for i in 0..5 {
        write_all(&output, format!("chunk {i}\n").as_bytes());
    }
    drop(output);
    let trailers =
        Fields::from_list(&[("chunks".to_owned(), b"5".to_vec())]).expect("valid trailers");
    OutgoingBody::finish(body, Some(trailers)).expect("no content-length to miss");
}

fn describe(request: &IncomingRequest) -> String {
    let mut text = format!(
        "method: {:?}\nscheme: {:?}\nauthority: {:?}\npath-with-query: {:?}\n",
        request.method(),
        request.scheme(),
        request.authority(),
        request.path_with_query(),
    );
    for (name, value) in request.headers().entries() {
        text.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(&value)));
    }
    text
}

fn outbound(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    let request = OutgoingRequest::new(Fields::new());
    let scheme = if scheme == "https" {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let _ = request.set_scheme(Some(&scheme));
    let _ = request.set_authority(Some(authority));
    let _ = request.set_path_with_query(Some(path));
    match outgoing_handler::handle(request, None) {
        Err(code) => format!("refused at once: {code:?}\n"),
        Ok(future) => {
            future.subscribe().block();
            match future.get() {
                Some(Ok(Ok(response))) => {
                    let status = response.status();
                    let body = response.consume().expect("the body is consumed once");
                    let stream = body.stream().expect("the stream is taken once");
                    let mut text = Vec::new();
                    while let Ok(chunk) = stream.blocking_read(64 * 1024) {
                        text.extend_from_slice(&chunk);
                    }
                    format!("answered: {status} {}\n", String::from_utf8_lossy(&text))
                }
                Some(Ok(Err(code))) => format!("refused: {code:?}\n"),
                other => format!("no answer: {other:?}\n"),
            }
        }
    }
}

fn short(out: ResponseOutparam) {
    let fields = Fields::from_list(&[("content-length".to_owned(), b"100".to_vec())])
        .expect("valid headers");
    let response = OutgoingResponse::new(fields);
    let body = response.body().expect("the body is taken once");
    ResponseOutparam::set(out, Ok(response));
    let output = body.write().expect("the stream is taken once");
    write_all(&output, b"short");
    drop(output);
    // wasi:http refuses to finish a body shorter than its content-length.
    let _ = OutgoingBody::finish(body, None);
}

wasi::http::proxy::export!(HttpHello with_types_in wasi);
