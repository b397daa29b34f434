//! A lazy body, like a Python generator: `handle` returns at once without calling
//! `start_response`; the first `next` calls it, then yields chunks one at a time.
//!
//! Query: `n` chunks (default 5; `0` = endless), each `chunk <i>\n`, or `size` bytes of `x`
//! ending in a newline; `delay_ms` sleeps before every chunk after the first. No
//! Content-Length, so HTTP/1.1 gets chunked framing and HTTP/1.0 a close-delimited body.
//!
//! Written with the Rust SDK (sdk/rust): `Response::lazy` around `Response::stream`.

use std::time::Duration;

use cheroot_wsgi::{Request, Response};

fn stream(request: Request) -> Result<Response, String> {
    let param = |key: &str| request.query_param(key).and_then(|v| v.parse::<u64>().ok());
    let n = param("n").unwrap_or(5);
    let size = param("size").map(|s| s as usize);
    let delay = Duration::from_millis(param("delay_ms").unwrap_or(0));
    Ok(Response::lazy(move || {
        let chunks = (0..).take_while(move |&i| n == 0 || i < n).map(move |i| {
            if i > 0 && !delay.is_zero() {
                std::thread::sleep(delay);
            }
            Ok(match size {
                Some(size) => {
                    let mut chunk = vec![b'x'; size.max(1)];
                    *chunk.last_mut().expect("at least one byte") = b'\n';
                    chunk
                }
                None => format!("chunk {i}\n").into_bytes(),
            })
        });
        Ok(Response::stream("200 OK", chunks).header("Content-Type", "text/plain"))
    }))
}

cheroot_wsgi::export!(stream);
