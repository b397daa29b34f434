//! Every integration test, in one binary: a real cheroot-wasm server on 127.0.0.1:0, real
//! clients, real guests built by `tests/build.rs`. One binary links wasmtime once instead of
//! once per file; run one file's tests with `cargo test -p cheroot-wasm-tests --test all
//! -- dispatch::`.

mod common;

mod admin;
mod data;
mod databases;
mod deploy;
mod dispatch;
mod django;
mod environ;
mod errors;
mod guests;
mod js;
mod lifecycle;
mod outbound;
mod pool;
mod protocol;
mod python;
mod response;
mod sandbox;
mod streaming;
mod tls;
mod wasi_http;
