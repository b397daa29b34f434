//! `hello`'s answer as a wasi:http proxy instead of a WSGI application: `200`,
//! `content-type: text/plain`, `Hello, world!` for every path and method.
//!
//! Not served by cheroot-wasm: it exports `wasi:http/incoming-handler`, so that
//! `wasmtime serve` can run it as the baseline beside cheroot-wasm's `fresh` route in
//! bench/run (both instantiate the component once per request).

use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

const GREETING: &[u8] = b"Hello, world!\n";

struct HttpHello;

impl Guest for HttpHello {
    fn handle(_request: IncomingRequest, response_out: ResponseOutparam) {
        let headers = Fields::from_list(&[
            ("content-type".to_string(), b"text/plain".to_vec()),
            (
                "content-length".to_string(),
                GREETING.len().to_string().into_bytes(),
            ),
        ])
        .expect("valid headers");
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("the body is taken once");
        // The response is sent first; its body follows, written in one go and finished.
        ResponseOutparam::set(response_out, Ok(response));
        let stream = body.write().expect("the stream is taken once");
        stream
            .blocking_write_and_flush(GREETING)
            .expect("the greeting fits in one write");
        drop(stream);
        OutgoingBody::finish(body, None).expect("the body matches its content-length");
    }
}

wasi::http::proxy::export!(HttpHello with_types_in wasi);
