//! Pure request logic: no sockets, no wasmtime. What a request means, where it goes, what
//! its environ is, and what the client gets when it goes wrong — each table-tested.
//!
//! - [`protocol`]: the RFC 9110/9112 checks hyper leaves to the service; [`framing`]: where
//!   a client's bytes are in its requests (bare-LF heads, HTTP/2 prefaces).
//! - [`proxy`]: the client, scheme and host that a trusted proxy forwards.
//! - [`router`]: virtual host, then cheroot's PathInfoDispatcher.
//! - [`environ`]: request parts → the PEP 3333 environ; [`incoming`]: → the request a
//!   wasi:http guest sees.
//! - [`error`]: every failure → its status, in one place (raw byte answers included);
//!   [`body`]: the response body hyper sends; [`close`]: a response's request to close its
//!   connection.
//! - [`stats`]: the counters the request path updates and the admin listener serves.

pub mod body;
pub mod close;
pub mod environ;
pub mod error;
pub mod framing;
pub mod incoming;
pub mod protocol;
pub mod proxy;
pub mod router;
pub mod stats;

/// The `Server` header and SERVER_SOFTWARE value.
pub const SERVER_SOFTWARE: &str = concat!("cheroot-wasm/", env!("CARGO_PKG_VERSION"));
