//! The baseline of the benchmark: the hello guest's response, served by hyper with the same
//! builder settings as cheroot-wasm, and no WebAssembly at all.
//!
//! `native-hello ADDR` (e.g. 127.0.0.1:0) prints `Listening on http://ADDR/` and serves
//! until killed.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("Listening on http://{}/", listener.local_addr()?);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .half_close(true)
        .title_case_headers(true);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = service_fn(|_req: Request<hyper::body::Incoming>| async {
                let mut response = Response::new(Full::new(Bytes::from_static(b"Hello, world!\n")));
                let headers = response.headers_mut();
                headers.insert("content-type", "text/plain".parse().expect("static"));
                headers.insert("server", "native-hyper".parse().expect("static"));
                Ok::<_, Infallible>(response)
            });
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
