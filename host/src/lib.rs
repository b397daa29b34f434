//! cheroot-wasm: a strict HTTP/1.1 and HTTP/2 server for WSGI applications that run as
//! sandboxed WebAssembly components, one per route, behind a PathInfoDispatcher.
//!
//! The crate is five layers, each a folder; a layer imports only from the layers below it
//! (`tests/layers.rs` checks it, and that no files import each other round a circle but for
//! the one bindgen forces):
//!
//! | layer | owns | knows |
//! |---|---|---|
//! | `cli` | the command line: one file per subcommand | everything below |
//! | `server` | listeners, TLS, connections, the per-request service, site and reload, access log, admin | hyper, rustls, sockets |
//! | `gateway` | by room: `engine/` (engine, compile cache, linker, loader, pools), `wsgi/` (the WIT resources and the exchange they reach), `grants/` (what a guest may reach and keep: outbound, tcp, egress, data, limits), `call/` (one request through one instance, by guest kind); the `Store` state at its root | wasmtime |
//! | `http` | protocol checks, framing, proxies, routing, the environ, failures → statuses, the response body, counters | `http` types only: no sockets, no wasmtime |
//! | `config` | routes.toml → typed, validated data, and the value types the others consume | serde, toml |
//!
//! One request, top to bottom: `server` accepts a connection and hands it to
//! `server::connection` (TLS, hyper, the head and write timeouts), which hands each request
//! to `server::service`: checked, routed and turned into an environ (or, for a wasi:http
//! guest, its request) by `http`, run through
//! an instance of its route by `gateway`, answered with the application's head or the
//! status `http` maps its failure to. Start-up is separate: `config` reads routes.toml,
//! `gateway::engine` compiles every component, `server::site` prepares the routes before
//! the server listens; a reload builds a new site the same way and swaps it in.
//!
//! `fuzzing` (hidden) is not part of the API: entry points into the crate's parsers for the
//! fuzz targets in `fuzz/` and their corpus replay, `tests/fuzz_corpus.rs`.
//!
//! `host/embed/` holds links to the files the binary embeds (the WIT contract, the Python
//! adapter and import scan, the Rust SDK and the JavaScript template's files), so a packaged
//! crate carries them.

pub(crate) mod cli;
pub(crate) mod config;
#[doc(hidden)]
pub mod fuzzing;
pub(crate) mod gateway;
pub(crate) mod http;
pub(crate) mod server;

pub use cli::build_python::{PythonBuild, build as build_python};
pub use cli::main;
pub use cli::new::create as new_project;
pub use config::{BindAddr, Config};
pub use http::SERVER_SOFTWARE;
pub use http::error::PLAIN_HTTP_RESPONSE;
pub use server::site::Live;
pub use server::{ServeOptions, Server};
