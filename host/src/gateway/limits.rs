//! What one store may take of the host beyond the guest's own code: linear memory up to the
//! route's `memory`, and a bound on tables, instances and memories. Growths refused are
//! counted as the route's "memory" limit hits.

use std::sync::Arc;

use wasmtime::StoreLimitsBuilder;

use crate::config::Route;
use crate::http::stats::RouteStats;

/// Tables, instances and memories per store: far above what a WSGI component needs.
const MAX_TABLES_INSTANCES_MEMORIES: usize = 1000;

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
            .tables(MAX_TABLES_INSTANCES_MEMORIES)
            .instances(MAX_TABLES_INSTANCES_MEMORIES)
            .memories(MAX_TABLES_INSTANCES_MEMORIES)
            .build();
        CountingLimiter {
            limits,
            stats: stats.clone(),
        }
    }
}
