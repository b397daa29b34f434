//! What one instance may take of the host, each bound a documented constant: linear memory
//! up to the route's `memory`; core instances, tables and memories per component (checked
//! when a component is loaded, and again by the store); live host resources (files,
//! streams, pollables) and component handles; random bytes per call; what its wasi:http
//! resources hold ([`add_to_linker`]). Memory growths refused are counted as the route's
//! "memory" limit hits.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime::{StoreContextMut, StoreLimitsBuilder};
use wasmtime_wasi_http::p2::bindings::http::types::{
    self as http_types, HeaderError, HostFields, HostOutgoingRequest as _, Method,
};
use wasmtime_wasi_http::p2::types::{HostOutgoingRequest, HostOutgoingResponse};
use wasmtime_wasi_http::{FieldMap, WasiHttpCtxView, WasiHttpView};

use crate::config::Route;
use crate::http::stats::RouteStats;

/// Core module instances one component may create: a Rust component has a handful, a
/// componentize-py one about twenty. A component that instantiates a module more often (to
/// multiply its memories) is refused when it is loaded.
pub const MAX_CORE_INSTANCES: u32 = 32;
/// Tables one component may have (one per core instance at most, as above).
pub const MAX_TABLES: u32 = 32;
/// Linear memories one component may have: components share one memory between their core
/// modules (Rust and Python guests have exactly one); two leaves room. Each is bounded by the
/// route's `memory`, so this is what keeps a component's memory at most 2 × `memory`.
pub const MAX_MEMORIES: u32 = 2;
/// Host resources (open files, streams, pollables, ...) one instance may hold at once: each
/// costs the host about 1 KiB, outside the route's `memory`, and an open file a descriptor.
/// A guest that asks for one more traps (500) and its instance is dropped.
pub const MAX_HOST_RESOURCES: usize = 1024;
/// Handles in one instance's component handle tables (its own resources and the host's).
pub const MAX_COMPONENT_HANDLES: usize = 4096;
/// The most bytes one `wasi:random` call may ask for (wasmtime's default is 64 MiB, made on
/// the host); more traps.
pub const MAX_RANDOM_BYTES: u64 = 1 << 20;

/// The most one wasi:http `fields` (headers or trailers a guest builds) may take, counted
/// as wasmtime-wasi-http counts it: each name and value with the size of its `HeaderName` or
/// `HeaderValue` (wasmtime's default is 128 KiB). As a response head's
/// `MAX_RESPONSE_HEAD_BYTES`; past it the guest traps (wasi:http 0.2 has no `header-error`
/// for it).
pub const MAX_FIELDS_BYTES: usize = 64 << 10;
/// The most one outgoing body's stream takes at once (wasmtime's default is 1 MiB); its
/// channel holds one chunk being written and one queued, whether or not the body is ever
/// sent, so an outgoing body holds at most twice this.
pub const OUTGOING_BODY_CHUNK_BYTES: usize = 64 << 10;
/// The most host memory one instance's wasi:http resources may hold together: its `fields`,
/// the headers and strings of its outgoing requests and responses not yet sent, and the
/// buffers of their bodies (each counted as full). wasi:http is linked for every guest, WSGI
/// ones too, and all of it lives outside the route's `memory`: without this, 1,024 `fields`
/// (`MAX_HOST_RESOURCES`) of 64 KiB each would pin 64 MiB per instance. Checked before each
/// call that adds to it; past it the guest traps, and its instance (and what it held) is
/// dropped.
pub const MAX_HELD_HTTP_BYTES: usize = 2 << 20;

/// Counts as "memory" limit hits the growths a [`wasmtime::StoreLimits`] refuses.
pub struct CountingLimiter {
    /// The limits.
    pub limits: wasmtime::StoreLimits,
    /// Where refusals are counted.
    pub stats: Arc<RouteStats>,
}

impl wasmtime::ResourceLimiter for CountingLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if !allowed {
            self.stats.memory_refused();
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

impl CountingLimiter {
    /// The limits of one instance of `route`, counted in `stats`.
    pub fn new(route: &Route, stats: &Arc<RouteStats>) -> Self {
        let limits = StoreLimitsBuilder::new()
            .memory_size(usize::try_from(route.limits.memory).unwrap_or(usize::MAX))
            .tables(MAX_TABLES as usize)
            .instances(MAX_CORE_INSTANCES as usize)
            .memories(MAX_MEMORIES as usize)
            .build();
        CountingLimiter {
            limits,
            stats: stats.clone(),
        }
    }
}

/// Shadows the wasi:http functions that make a guest's wasi:http resources hold more (a
/// `fields` built or grown or cloned; an outgoing request's body, authority, path or method;
/// an outgoing response's body), so that each first checks [`MAX_HELD_HTTP_BYTES`] and then
/// does what wasmtime-wasi-http does. What the instance holds is counted afresh each time,
/// from its resource table: wherever a `fields` goes (into a request, a response, a clone),
/// it is counted as long as it is there, and nothing has to be told when it goes away.
pub fn add_to_linker<T: WasiHttpView + 'static>(linker: &mut Linker<T>) -> anyhow::Result<()> {
    let mut types = linker.instance("wasi:http/types@0.2.12")?;
    types.func_wrap(
        "[static]fields.from-list",
        |mut store: StoreContextMut<'_, T>, (entries,): (Vec<(String, Vec<u8>)>,)| {
            let mut http = store.data_mut().http();
            let adding = entries.iter().map(|(n, v)| line_bytes(n, v)).sum();
            check_held(&mut http, adding)?;
            header_result(&mut http, |http| HostFields::from_list(http, entries))
        },
    )?;
    types.func_wrap(
        "[method]fields.set",
        |mut store: StoreContextMut<'_, T>,
         (this, name, values): (Resource<FieldMap>, String, Vec<Vec<u8>>)| {
            let mut http = store.data_mut().http();
            let adding = values.iter().map(|v| line_bytes(&name, v)).sum();
            check_held(&mut http, adding)?;
            header_result(&mut http, |http| HostFields::set(http, this, name, values))
        },
    )?;
    types.func_wrap(
        "[method]fields.append",
        |mut store: StoreContextMut<'_, T>,
         (this, name, value): (Resource<FieldMap>, String, Vec<u8>)| {
            let mut http = store.data_mut().http();
            check_held(&mut http, line_bytes(&name, &value))?;
            header_result(&mut http, |http| {
                HostFields::append(http, this, name, value)
            })
        },
    )?;
    types.func_wrap(
        "[method]fields.clone",
        |mut store: StoreContextMut<'_, T>, (this,): (Resource<FieldMap>,)| {
            let mut http = store.data_mut().http();
            let adding = map_bytes(http.table.get(&this)?);
            check_held(&mut http, adding)?;
            Ok((HostFields::clone(&mut http, this)?,))
        },
    )?;
    types.func_wrap(
        "[method]outgoing-request.body",
        |mut store: StoreContextMut<'_, T>, (this,): (Resource<HostOutgoingRequest>,)| {
            let mut http = store.data_mut().http();
            let adding = body_bytes(&mut http);
            check_held(&mut http, adding)?;
            Ok((http_types::HostOutgoingRequest::body(&mut http, this)?,))
        },
    )?;
    types.func_wrap(
        "[method]outgoing-response.body",
        |mut store: StoreContextMut<'_, T>, (this,): (Resource<HostOutgoingResponse>,)| {
            let mut http = store.data_mut().http();
            let adding = body_bytes(&mut http);
            check_held(&mut http, adding)?;
            Ok((http_types::HostOutgoingResponse::body(&mut http, this)?,))
        },
    )?;
    types.func_wrap(
        "[method]outgoing-request.set-method",
        |mut store: StoreContextMut<'_, T>,
         (this, method): (Resource<HostOutgoingRequest>, Method)| {
            let mut http = store.data_mut().http();
            let adding = match &method {
                Method::Other(name) => name.len(),
                _ => 0,
            };
            check_held(&mut http, adding)?;
            Ok((http.set_method(this, method)?,))
        },
    )?;
    types.func_wrap(
        "[method]outgoing-request.set-path-with-query",
        |mut store: StoreContextMut<'_, T>,
         (this, path): (Resource<HostOutgoingRequest>, Option<String>)| {
            let mut http = store.data_mut().http();
            check_held(&mut http, path.as_ref().map_or(0, String::len))?;
            Ok((http.set_path_with_query(this, path)?,))
        },
    )?;
    types.func_wrap(
        "[method]outgoing-request.set-authority",
        |mut store: StoreContextMut<'_, T>,
         (this, authority): (Resource<HostOutgoingRequest>, Option<String>)| {
            let mut http = store.data_mut().http();
            check_held(&mut http, authority.as_ref().map_or(0, String::len))?;
            Ok((http.set_authority(this, authority)?,))
        },
    )?;
    Ok(())
}

/// wasmtime-wasi-http's answer as the guest gets it: a `header-error`, or a trap (its
/// `fields` past [`MAX_FIELDS_BYTES`]).
fn header_result<R>(
    http: &mut WasiHttpCtxView<'_>,
    call: impl FnOnce(&mut WasiHttpCtxView<'_>) -> Result<R, wasmtime_wasi_http::p2::HeaderError>,
) -> wasmtime::Result<(Result<R, HeaderError>,)> {
    match call(http) {
        Ok(r) => Ok((Ok(r),)),
        Err(e) => Ok((Err(http_types::Host::convert_header_error(http, e)?),)),
    }
}

/// Traps unless what the instance's wasi:http resources hold, and `adding` more, stay within
/// [`MAX_HELD_HTTP_BYTES`].
fn check_held(http: &mut WasiHttpCtxView<'_>, adding: usize) -> wasmtime::Result<()> {
    let held = held_bytes(http);
    if held.saturating_add(adding) > MAX_HELD_HTTP_BYTES {
        return Err(wasmtime::format_err!(
            "this instance's wasi:http fields, requests and responses would hold {} bytes of \
             the host's memory: at most {MAX_HELD_HTTP_BYTES}",
            held.saturating_add(adding)
        ));
    }
    Ok(())
}

/// What an outgoing body may hold until its request or response is sent: its stream's
/// chunks (one being written, the queued ones) and the trailers it was finished with (which
/// leave the table for the body's channel).
fn body_bytes(http: &mut WasiHttpCtxView<'_>) -> usize {
    let chunks = http
        .hooks
        .p2_outgoing_body_buffer_chunks()
        .saturating_add(1);
    chunks
        .saturating_mul(http.hooks.p2_outgoing_body_chunk_size())
        .saturating_add(MAX_FIELDS_BYTES)
}

/// What the instance's wasi:http resources hold now: every `fields` in its table (shared
/// ones as many times as they are there: a clone shares its original's map only until either
/// changes), and the outgoing requests and responses not yet sent, with their bodies.
fn held_bytes(http: &mut WasiHttpCtxView<'_>) -> usize {
    let body = body_bytes(http);
    let table: &mut ResourceTable = http.table;
    let mut held = 0usize;
    for entry in table.iter_mut() {
        let entry: &(dyn std::any::Any + Send) = entry;
        held = held.saturating_add(if let Some(fields) = entry.downcast_ref::<FieldMap>() {
            map_bytes(fields)
        } else if let Some(request) = entry.downcast_ref::<HostOutgoingRequest>() {
            let method = match &request.method {
                Method::Other(name) => name.len(),
                _ => 0,
            };
            map_bytes(&request.headers)
                + request.authority.as_ref().map_or(0, String::len)
                + request.path_with_query.as_ref().map_or(0, String::len)
                + method
                + if request.body.is_some() { body } else { 0 }
        } else if let Some(response) = entry.downcast_ref::<HostOutgoingResponse>() {
            map_bytes(&response.headers) + if response.body.is_some() { body } else { 0 }
        } else {
            // An `outgoing-body` is counted with the request or response it belongs to.
            0
        });
    }
    held
}

/// A header map's size as wasmtime-wasi-http counts it against [`MAX_FIELDS_BYTES`].
fn map_bytes(map: &HeaderMap) -> usize {
    map.keys()
        .map(|name| name.as_str().len() + size_of::<HeaderName>())
        .chain(map.values().map(|v| v.len() + size_of::<HeaderValue>()))
        .sum()
}

/// What one name and value add to a `fields` (at most: a name already there is not
/// counted again).
fn line_bytes(name: &str, value: &[u8]) -> usize {
    name.len() + size_of::<HeaderName>() + value.len() + size_of::<HeaderValue>()
}
