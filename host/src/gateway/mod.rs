//! The wasm side: everything that knows wasmtime. One request goes through one instance of
//! its route's component here, and nothing here knows sockets, TLS or hyper's connections.
//!
//! Four rooms, and the store's data between them, bottom up:
//!
//! - [`grants`]: what a guest may reach and how much of the host it may take — its
//!   `data` directories and their quota, its `outbound` grant (names, TCP, HTTP: the
//!   policy, the sockets, the outgoing requests), the limits of its store. Each grant
//!   declares the trait it needs of the store's data ([`grants::data::DataView`],
//!   [`grants::tcp::TcpView`], [`grants::outbound::GrantView`]) and never names the store.
//! - [`wsgi`]: the WSGI contract — its resources ([`wsgi::input`], [`wsgi::start_response`])
//!   and the exchange they belong to ([`wsgi::exchange`], with [`wsgi::exchange::WsgiView`]).
//! - [`state`]: the data of every `Store` ([`state::HostState`]), which holds the pieces
//!   of the rooms below and implements their traits, and [`state::new_store`], which gives
//!   an instance its route's sandbox.
//! - [`engine`]: the process's engine, the compile cache, the linker, each distinct
//!   component loaded once (start-up), and the [`engine::pool`] of instances lent to
//!   requests, warm or fresh, within the server's `max-instances`.
//! - [`call`]: one exchange, top to bottom — an instance leased, the guest run inside the
//!   route's budget ([`call::wsgi`], [`call::wasi_http`]), the outcome settled (failure
//!   status, logs, figures, the instance kept or dropped).
//! - [`output`]: the guest's stdout and stderr, and how much of them reaches the log.
//! - [`bindings`]: the generated types of wit/wsgi.wit, and wasi:http's. bindgen names the
//!   host's resource types (`input`, `start-response`, a name lookup), and those
//!   implement the generated traits: the one circle of imports here.

pub(crate) mod bindings;
pub(crate) mod call;
pub mod engine;
pub(crate) mod grants;
pub(crate) mod output;
pub(crate) mod state;
pub(crate) mod wsgi;

pub(crate) use call::{Call, Request, Target, respond};
pub(crate) use engine::guest::Kind;
pub(crate) use engine::pool::{Pool, Slots};
pub(crate) use wsgi::input::LimitedBody;
