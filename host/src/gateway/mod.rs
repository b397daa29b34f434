//! The wasm side: everything that knows wasmtime. One request goes through one instance of
//! its route's component here, and nothing here knows sockets, TLS or hyper's connections.
//!
//! - [`engine`]: the process's engine, the compile cache, the linker (start-up).
//! - [`pool`]: instances lent to requests, warm or fresh; [`state`] is the data of each
//!   instance's store, [`limits`] what it may take of the host.
//! - [`call`]: one exchange — `handle(environ, start_response)`, the body iterable pumped
//!   into the response, `close()`, inside the route's budget.
//! - The WIT resources: [`input`] (`wsgi.input`), [`start_response`] (`start_response`,
//!   `write`, and the response they build), [`output`] (the guest's stdout and stderr).
//! - [`bindings`]: the generated types of wit/wsgi.wit.
//!
//! Another guest ABI (another world) would be a sibling of [`call`] and [`bindings`].

pub(crate) mod bindings;
pub(crate) mod call;
pub mod engine;
pub(crate) mod input;
pub(crate) mod limits;
pub(crate) mod output;
pub(crate) mod pool;
pub(crate) mod start_response;
pub(crate) mod state;

pub(crate) use call::{Call, Target, respond};
pub(crate) use input::RequestBody;
pub(crate) use pool::Pool;
