//! Instances of a route's component, and the per-store host state they run with.
//!
//! Owns [`HostState`] (the `T` of every `Store<T>`: resource table, WASI context, limits,
//! and the current [`Exchange`]) and [`Pool`], which hands out instances. Today every
//! request gets a fresh instance from the route's pre-instantiated component (WSGI
//! `run_once`); warm reuse will slot in behind the same `get`/`put`. Each exchange has a
//! number, and the `input` and `start-response` handles carry it, so a handle that a guest
//! keeps past its request can never touch another request's data.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::{App, AppPre, WsgiError};
use crate::config::Route;
use crate::environ::Concurrency;
use crate::error::Failure;
use crate::input::RequestBody;
use crate::output::GuestOutput;
use crate::start_response::ResponseWriter;

/// Linear memory one instance may grow to.
pub const DEFAULT_MEMORY: usize = 128 << 20;
/// Tables, instances and memories per store: far above what a WSGI component needs.
const MAX_TABLES_INSTANCES_MEMORIES: usize = 1000;

/// One request in flight in a store.
pub struct Exchange {
    /// Its number; handles carry it.
    pub id: u64,
    /// `wsgi.input`.
    pub input: RequestBody,
    /// `start_response` and the response it builds.
    pub response: ResponseWriter,
}

/// The data of every store.
pub struct HostState {
    table: ResourceTable,
    wasi: WasiCtx,
    limits: StoreLimits,
    exchange: Option<Exchange>,
    exchanges: u64,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl HostState {
    /// The resource table (for the host imports).
    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// Starts an exchange; returns its number.
    pub fn begin(&mut self, input: RequestBody, response: ResponseWriter) -> u64 {
        self.exchanges += 1;
        self.exchange = Some(Exchange {
            id: self.exchanges,
            input,
            response,
        });
        self.exchanges
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

    /// The exchange a handle belongs to, if it is still the current one; a stale handle
    /// behaves as if its client went away.
    pub fn exchange_for(&mut self, id: u64) -> Result<&mut Exchange, WsgiError> {
        self.exchange
            .as_mut()
            .filter(|e| e.id == id)
            .ok_or(WsgiError::Disconnected)
    }
}

/// One live instance of a route's component.
pub struct Instance {
    /// Its store.
    pub store: Store<HostState>,
    /// Its exports.
    pub app: App,
}

/// The instances of one route.
pub struct Pool {
    pre: AppPre<HostState>,
    route: Arc<Route>,
}

impl Pool {
    /// A pool over a prepared component.
    pub fn new(pre: AppPre<HostState>, route: Arc<Route>) -> Self {
        Pool { pre, route }
    }

    /// What the environ's wsgi.multithread/multiprocess/run_once say about this pool.
    pub fn concurrency(&self) -> Concurrency {
        Concurrency {
            multithread: false,
            multiprocess: true,
            run_once: true,
        }
    }

    /// An instance ready for one request.
    pub async fn get(&self) -> Result<Instance, Failure> {
        let mut store = new_store(self.pre.engine(), &self.route);
        let app = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| Failure::Internal(format!("instantiating: {e:?}")))?;
        Ok(Instance { store, app })
    }

    /// Returns an instance after a request that completed cleanly.
    pub fn put(&self, instance: Instance) {
        drop(instance);
    }
}

fn new_store(engine: &Engine, route: &Route) -> Store<HostState> {
    let (stdout, stderr) = GuestOutput::pair(route.display_prefix());
    let mut wasi = WasiCtx::builder();
    wasi.envs(&route.env)
        .stdout(stdout)
        .stderr(stderr)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    let limits = StoreLimitsBuilder::new()
        .memory_size(DEFAULT_MEMORY)
        .tables(MAX_TABLES_INSTANCES_MEMORIES)
        .instances(MAX_TABLES_INSTANCES_MEMORIES)
        .memories(MAX_TABLES_INSTANCES_MEMORIES)
        .build();
    let state = HostState {
        table: ResourceTable::new(),
        wasi: wasi.build(),
        limits,
        exchange: None,
        exchanges: 0,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limits);
    // Guests yield to tokio at every epoch tick, so a busy guest never holds a worker
    // thread; the wall-clock timeout around the call is what stops it.
    store.set_epoch_deadline(1);
    store.epoch_deadline_async_yield_and_update(1);
    store
}
