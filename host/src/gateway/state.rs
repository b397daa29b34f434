//! The data of every `Store<T>`: [`HostState`] (resource table, WASI and wasi:http
//! contexts, limits, the grants' pieces, and a WSGI guest's current [`Exchange`]), and
//! [`new_store`], which gives an instance its route's sandbox.
//!
//! The rooms below never name this type: each declares what it needs of a store's data
//! ([`WsgiView`], [`DataView`], [`GrantView`], [`TcpView`]), and it is implemented here,
//! each a view onto the fields it owns.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store};
use wasmtime_wasi::filesystem::WasiFilesystemCtx;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::WsgiError;
use super::grants::data::{Data, DataView};
use super::grants::limits::{
    CountingLimiter, MAX_COMPONENT_HANDLES, MAX_FIELDS_BYTES, MAX_HOST_RESOURCES, MAX_RANDOM_BYTES,
};
use super::grants::outbound::{Grant, GrantView, OutboundHttp};
use super::grants::tcp::{TcpSockets, TcpView};
use super::output::{GuestOutput, OutputBudget};
use super::wsgi::exchange::{Exchange, WsgiView};
use super::wsgi::input::RequestBody;
use super::wsgi::start_response::ResponseWriter;
use crate::config::Route;
use crate::http::stats::RouteStats;

/// The data of every store.
pub struct HostState {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    outbound: OutboundHttp,
    /// The guest's TCP sockets.
    tcp: TcpSockets,
    /// The route's data directories, if it has any.
    data: Option<Arc<Data>>,
    limits: CountingLimiter,
    exchange: Option<Exchange>,
    exchanges: u64,
    output: OutputBudget,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

impl HostState {
    /// The resource table (for the WSGI call, which makes the `input` and `start-response`
    /// handles).
    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// Starts an exchange; returns its number.
    pub fn begin(&mut self, input: RequestBody, response: ResponseWriter) -> u64 {
        self.exchanges += 1;
        self.output.renew();
        self.exchange = Some(Exchange {
            id: self.exchanges,
            input,
            response,
        });
        self.exchanges
    }

    /// What the instance may still log in this request.
    pub fn output(&self) -> &OutputBudget {
        &self.output
    }

    /// Ends the current exchange, returning it.
    pub fn end(&mut self) -> Option<Exchange> {
        self.exchange.take()
    }

    /// The current exchange. Only called by the gateway between `begin` and `end`.
    pub fn exchange_mut(&mut self) -> &mut Exchange {
        self.exchange
            .as_mut()
            .expect("the gateway always begins an exchange before calling the guest")
    }
}

impl WsgiView for HostState {
    fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    fn output(&self) -> &OutputBudget {
        &self.output
    }

    fn exchange_for(&mut self, id: u64) -> Result<&mut Exchange, WsgiError> {
        self.exchange
            .as_mut()
            .filter(|e| e.id == id)
            .ok_or(WsgiError::Disconnected)
    }
}

impl DataView for HostState {
    fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    fn data(&self) -> Option<&Arc<Data>> {
        self.data.as_ref()
    }
}

impl GrantView for HostState {
    fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    fn grant(&self) -> &Arc<Grant> {
        self.outbound.grant()
    }
}

impl TcpView for HostState {
    fn tcp(&mut self) -> &mut TcpSockets {
        &mut self.tcp
    }
}

/// A route's directories, `dirs` read-only and `data` read-write (created first, by
/// [`Data::open`]), opened once (at start-up, and again on reload) and shared by all its
/// instances: a symlink swapped in for a directory later changes nothing.
pub(super) fn open_dirs(route: &Route) -> wasmtime::Result<WasiFilesystemCtx> {
    let mut wasi = WasiCtx::builder();
    for (guest, host) in &route.dirs {
        wasi.preopened_dir(host, guest, FsPerms::ReadOnly)?;
    }
    for (guest, host) in &route.data {
        wasi.preopened_dir(host, guest, FsPerms::ReadWrite)?;
    }
    Ok(wasi.build().filesystem().clone())
}

/// A store with the route's sandbox: its env and directories (from [`open_dirs`]; `data`
/// within its quota, [`super::grants::data`]), the network its `outbound` grant opens (see
/// [`super::grants::outbound`]; nothing by default) and nothing else of the host (no inherited
/// environment), guest output to the log, and the limits of [`super::grants::limits`].
pub(super) fn new_store(
    engine: &Engine,
    route: &Route,
    dirs: &WasiFilesystemCtx,
    grant: &Arc<Grant>,
    data: Option<&Arc<Data>>,
    stats: &Arc<RouteStats>,
) -> wasmtime::Result<Store<HostState>> {
    let output = OutputBudget::default();
    let name = route.display_name();
    let (stdout, stderr) = GuestOutput::pair(&name, &output);
    let mut wasi = WasiCtx::builder();
    wasi.envs(&route.env)
        .stdout(stdout)
        .stderr(stderr)
        // TCP is on, and the address check below refuses what the grant does not list, so
        // every refused attempt is seen (and logged) there.
        .allow_tcp(true)
        .allow_udp(false)
        // Names are the host's own ip-name-lookup's (engine::linker), never wasmtime-wasi's.
        .allow_ip_name_lookup(false)
        .max_random_size(MAX_RANDOM_BYTES);
    let checked = grant.clone();
    wasi.socket_addr_check(move |addr, use_| {
        let grant = checked.clone();
        Box::pin(async move { grant.allows(addr, use_).await })
    });
    let mut wasi = wasi.build();
    *wasi.filesystem() = dirs.clone();
    let mut table = ResourceTable::new();
    table.set_max_capacity(MAX_HOST_RESOURCES);
    let limits = CountingLimiter::new(route, stats);
    // Each `fields` a guest builds is bounded, and all its wasi:http resources hold together
    // too (`grants::limits::add_to_linker`).
    let mut http = WasiHttpCtx::new();
    http.set_field_size_limit(MAX_FIELDS_BYTES);
    let state = HostState {
        table,
        wasi,
        http,
        outbound: OutboundHttp::new(grant.clone()),
        tcp: TcpSockets::default(),
        data: data.cloned(),
        limits,
        exchange: None,
        exchanges: 0,
        output,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limits);
    store.set_max_component_handles(MAX_COMPONENT_HANDLES);
    // What one call may hand the host: wasmtime's bound (against a list whose entries all
    // point at the same bytes, copied once each) or, when larger, the route's memory, so
    // that a body chunk as large as the instance can hold still gets through.
    let memory = usize::try_from(route.limits.memory).unwrap_or(usize::MAX);
    store.set_hostcall_fuel(store.hostcall_fuel().max(memory));
    // Guests yield to tokio at every epoch tick, so a busy guest never holds a worker
    // thread; the wall-clock timeout around the call is what stops it.
    store.set_epoch_deadline(1);
    store.epoch_deadline_async_yield_and_update(1);
    Ok(store)
}
