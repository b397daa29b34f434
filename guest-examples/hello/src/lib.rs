//! The smallest WSGI application: `200 OK`, `Hello, world!` for every path and method.
//!
//! Written against the raw bindings of wit/wsgi.wit, to show the whole contract:
//! `handle` calls `start_response`, then returns a body iterable that yields one chunk.

wit_bindgen::generate!({ world: "app", path: "../../wit" });

use std::cell::Cell;

use cheroot::wsgi::types::{Environ, StartResponse};
use exports::cheroot::wsgi::application::{Body, Guest, GuestBody};

const GREETING: &[u8] = b"Hello, world!\n";

struct Hello;

/// The response iterable: one chunk, then the end.
struct Once(Cell<bool>);

impl GuestBody for Once {
    fn next(&self) -> Result<Option<Vec<u8>>, String> {
        Ok((!self.0.replace(true)).then(|| GREETING.to_vec()))
    }
}

impl Guest for Hello {
    type Body = Once;

    fn handle(_environ: Environ, start_response: StartResponse) -> Result<Body, String> {
        let headers = [
            ("Content-Type".to_string(), "text/plain".to_string()),
            ("Content-Length".to_string(), GREETING.len().to_string()),
        ];
        start_response
            .call("200 OK", &headers, None)
            .map_err(|e| e.to_string())?;
        Ok(Body::new(Once(Cell::new(false))))
    }
}

export!(Hello);
