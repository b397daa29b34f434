//! A lazy body, like a Python generator: `handle` returns at once without calling
//! `start_response`; the first `next` calls it, then yields chunks one at a time.
//!
//! Query: `n` chunks (default 5; `0` = endless), each `chunk <i>\n`, or `size` bytes of `x`
//! ending in a newline; `delay_ms` sleeps before every chunk after the first. No
//! Content-Length, so HTTP/1.1 gets chunked framing and HTTP/1.0 a close-delimited body.

wit_bindgen::generate!({ world: "app", path: "../../wit" });

use std::cell::Cell;
use std::time::Duration;

use cheroot::wsgi::types::{Environ, StartResponse};
use exports::cheroot::wsgi::application::{Body, Guest, GuestBody};

struct Stream;

/// The generator's state.
struct Chunks {
    start_response: StartResponse,
    next: Cell<u64>,
    n: u64,
    size: Option<usize>,
    delay: Duration,
}

impl GuestBody for Chunks {
    fn next(&self) -> Result<Option<Vec<u8>>, String> {
        let i = self.next.get();
        if i == 0 {
            let headers = [("Content-Type".to_string(), "text/plain".to_string())];
            self.start_response
                .call("200 OK", &headers, None)
                .map_err(|e| e.to_string())?;
        }
        if self.n != 0 && i >= self.n {
            return Ok(None);
        }
        if i > 0 && !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        self.next.set(i + 1);
        Ok(Some(match self.size {
            Some(size) => {
                let mut chunk = vec![b'x'; size.max(1)];
                *chunk.last_mut().expect("at least one byte") = b'\n';
                chunk
            }
            None => format!("chunk {i}\n").into_bytes(),
        }))
    }
}

impl Guest for Stream {
    type Body = Chunks;

    fn handle(environ: Environ, start_response: StartResponse) -> Result<Body, String> {
        let query = environ
            .vars
            .iter()
            .find(|(k, _)| k == "QUERY_STRING")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let param = |key: &str| {
            query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == key)
                .and_then(|(_, v)| v.parse::<u64>().ok())
        };
        Ok(Body::new(Chunks {
            start_response,
            next: Cell::new(0),
            n: param("n").unwrap_or(5),
            size: param("size").map(|s| s as usize),
            delay: Duration::from_millis(param("delay_ms").unwrap_or(0)),
        }))
    }
}

export!(Stream);
