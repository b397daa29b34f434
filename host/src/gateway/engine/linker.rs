//! The linker every route shares, with exactly the imports a guest may have.
//!
//! Where the host hooks into wasmtime-wasi (name lookups and TCP for the outbound grant,
//! the filesystem for the data quota) or into its own bindings (`start-response.call`,
//! sized before it is copied), the hook shadows the generated function here, so the order
//! below is the order of precedence.

use anyhow::anyhow;
use wasmtime::Engine;
use wasmtime::component::Linker;

use super::super::bindings::{App, View, ViewOf, add_ip_name_lookup, add_tcp_create_socket};
use super::super::grants::{data, limits, tcp};
use super::super::state::HostState;
use super::super::wsgi::exchange;

/// The linker every route shares: WASI p2 (filesystem, clocks, random, cli, and sockets
/// whose every use the WASI context denies), wasi:http's types and outgoing handler (whose
/// every request `grants::outbound` refuses), and the WSGI host interface.
pub fn linker(engine: &Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| anyhow!(e))?;
    // Name lookups are answered by the host itself, for granted names only.
    linker.allow_shadowing(true);
    add_ip_name_lookup::<HostState, ViewOf<HostState>>(&mut linker, |s| View(s))
        .map_err(|e| anyhow!(e))?;
    // TCP sockets count against the route's max-outbound-connections from creation to drop,
    // their connects are bounded, their bytes counted.
    add_tcp_create_socket::<HostState, ViewOf<HostState>>(&mut linker, |s| View(s))
        .map_err(|e| anyhow!(e))?;
    tcp::add_to_linker(&mut linker)?;
    // What takes space in a route's data directories is charged to its quota.
    data::add_to_linker(&mut linker)?;
    linker.allow_shadowing(false);
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(|e| anyhow!(e))?;
    // What wasi:http resources hold of the host's memory is bounded per instance.
    linker.allow_shadowing(true);
    limits::add_to_linker(&mut linker)?;
    linker.allow_shadowing(false);
    App::add_to_linker::<HostState, ViewOf<HostState>>(&mut linker, |s| View(s))
        .map_err(|e| anyhow!(e))?;
    // Response headers are sized before they are copied into the host.
    linker.allow_shadowing(true);
    exchange::add_to_linker(&mut linker)?;
    linker.allow_shadowing(false);
    Ok(linker)
}
