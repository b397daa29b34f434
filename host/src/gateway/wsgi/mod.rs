//! The WSGI contract of wit/wsgi.wit, host side: PEP 3333's `environ`, `wsgi.input`,
//! `start_response` and body iterable for a component that exports
//! `cheroot:wsgi/application`.
//!
//! - [`input`]: `wsgi.input`, the request body as the application reads it;
//! - [`start_response`]: `start_response` and `write`, and the [`start_response::ResponseWriter`]
//!   that turns them into one HTTP response (shared with wasi:http guests);
//! - [`exchange`]: one request in flight in a store, which the `input` and
//!   `start-response` handles reach through [`exchange::WsgiView`], and the host functions
//!   behind those handles.
//!
//! It does not build the environ (`crate::http::environ`), nor run the application
//! (`super::call::wsgi`).

pub(crate) mod exchange;
pub(crate) mod input;
pub(crate) mod start_response;
