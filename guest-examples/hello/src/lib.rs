//! The smallest WSGI application: `200 OK`, `Hello, world!` for every path and method.
//!
//! Written against the raw bindings of wit/wsgi.wit, to show the whole contract: `handle`
//! calls `start_response`, then returns the whole body, with no iterable to pull.

wit_bindgen::generate!({ world: "app", path: "../../wit" });

use cheroot::wsgi::types::{Environ, StartResponse};
use exports::cheroot::wsgi::application::{Guest, GuestBody, Reply};

const GREETING: &[u8] = b"Hello, world!\n";

struct Hello;

/// Never made: the whole body is in `handle`'s reply.
struct NoRest;

impl GuestBody for NoRest {
    fn next(&self) -> Result<Option<Vec<u8>>, String> {
        Ok(None)
    }
}

impl Guest for Hello {
    type Body = NoRest;

    fn handle(_environ: Environ, start_response: StartResponse) -> Result<Reply, String> {
        let headers = [
            ("Content-Type".to_string(), "text/plain".to_string()),
            ("Content-Length".to_string(), GREETING.len().to_string()),
        ];
        start_response
            .call("200 OK", &headers, None)
            .map_err(|e| e.to_string())?;
        Ok(Reply {
            ready: GREETING.to_vec(),
            rest: None,
        })
    }
}

export!(Hello);
