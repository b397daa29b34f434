//! What a guest may reach beyond its request, and how much of the host it may take.
//!
//! - [`outbound`]: the route's `outbound` grant — which names, addresses and URLs it opens
//!   — enforced where anything leaves: name lookups, TCP ([`tcp`] counts, bounds and
//!   meters the sockets) and wasi:http requests ([`egress`] sends the ones it allows).
//! - [`data`]: the route's writable directories and their quota ([`tree`] walks them by
//!   descriptors); [`watched`]: an output stream with the host's hook before each write
//!   (quota, byte counts).
//! - [`limits`]: what one store may take of the host (memory, tables, instances, host
//!   resources).
//!
//! These hook into wasmtime-wasi's imports, but never name the store's data: each declares
//! the trait it needs of it, and `super::state` implements them. Nothing here runs a
//! request.

pub(crate) mod data;
pub(crate) mod egress;
pub(crate) mod limits;
pub(crate) mod outbound;
pub(crate) mod tcp;
pub(crate) mod tree;
pub(crate) mod watched;
