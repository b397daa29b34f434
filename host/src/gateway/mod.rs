//! The wasm side: everything that knows wasmtime. One request goes through one instance of
//! its route's component here, and nothing here knows sockets, TLS or hyper's connections.
//!
//! - [`engine`]: the process's engine, the compile cache, the linker, each distinct
//!   component loaded once (start-up).
//! - [`pool`]: instances lent to requests, warm or fresh, within the server's
//!   `max-instances` ([`pool::Slots`]); [`state`] is the data of each
//!   instance's store, [`limits`] what it may take of the host.
//! - [`call`]: one exchange — an instance leased, the guest run inside the route's budget,
//!   the outcome settled (failure status, logs, figures, the instance kept or dropped);
//!   [`fault`]: a guest's trap or exception as a failure.
//! - The WIT resources: [`input`] (`wsgi.input`), [`start_response`] (`start_response`,
//!   `write`, and the response they build), [`output`] (the guest's stdout and stderr).
//! - [`guest`]: the two kinds of guest — a WSGI application or a wasi:http proxy — told
//!   apart by their exports; [`wsgi`] and [`wasi_http`] run one request through each.
//! - [`data`]: the route's writable directories: its quota, one request at a time;
//!   [`watched`]: a guest's output stream with the host's hook before each write.
//! - [`outbound`]: what a guest may reach beyond its request (its route's grant, for names,
//!   TCP and HTTP); [`tcp`] counts, bounds and meters its sockets; [`egress`] sends the
//!   outgoing HTTP requests it allows.
//! - [`bindings`]: the generated types of wit/wsgi.wit, and wasi:http's.

pub(crate) mod bindings;
pub(crate) mod call;
pub(crate) mod data;
pub(crate) mod egress;
pub mod engine;
pub(crate) mod fault;
pub(crate) mod guest;
pub(crate) mod input;
pub(crate) mod limits;
pub(crate) mod outbound;
pub(crate) mod output;
pub(crate) mod pool;
pub(crate) mod start_response;
pub(crate) mod state;
pub(crate) mod tcp;
pub(crate) mod wasi_http;
pub(crate) mod watched;
pub(crate) mod wsgi;

pub(crate) use call::{Call, Request, Target, respond};
pub(crate) use guest::Kind;
pub(crate) use input::LimitedBody;
pub(crate) use pool::{Pool, Slots};
