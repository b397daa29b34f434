//! What one instance may take of the host, each bound a documented constant: linear memory
//! up to the route's `memory`; core instances, tables and memories per component (checked
//! when a component is loaded, and again by the store); live host resources (files,
//! streams, pollables) and component handles; random bytes per call. Memory growths refused
//! are counted as the route's "memory" limit hits.

use std::sync::Arc;

use wasmtime::StoreLimitsBuilder;

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
