//! The wasmtime side of start-up: one [`Engine`] for the process, each component compiled
//! once (through an on-disk cache), linked, and turned into a [`guest::GuestPre`] of its kind before
//! the server listens; then the instances lent to requests.
//!
//! - here: the engine's configuration (async, epoch interruption, the pooling allocator
//!   sized from the routes) and the epoch ticker thread that drives every deadline;
//! - [`cache`]: each component compiled once, through a compile cache only this user may
//!   write;
//! - [`mod@linker`]: the [`wasmtime::component::Linker`] with exactly the imports a guest may
//!   have, the grants' hooks (`super::grants`) and the WSGI imports (`super::wsgi`) in
//!   place of wasmtime-wasi's own where they shadow them;
//! - [`loader`]: a site's components prepared, each distinct one once, told apart by kind
//!   ([`guest`]: a WSGI application or a wasi:http proxy);
//! - [`pool`]: instances lent to requests, warm or fresh, within the server's
//!   `max-instances`.
//!
//! It does not run a request (`super::call`) nor decide what a guest may reach
//! (`super::grants`).

pub(crate) mod cache;
pub(crate) mod guest;
pub(crate) mod linker;
pub(crate) mod loader;
pub(crate) mod pool;

pub use cache::{Compiled, Digest, compile, default_cache_dir, read_component};
pub use linker::linker;
pub use loader::{Loader, load_context, prepare};

use std::time::Duration;

use anyhow::{Context as _, anyhow};

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::grants::limits::{MAX_CORE_INSTANCES, MAX_MEMORIES, MAX_TABLES};

/// How often the epoch advances: the granularity of guest yields and deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How much of a freed pooled slot's linear memory, table and async stack is reset by hand
/// (`memset`, or a copy of the memory image) and kept resident, rather than given back with
/// `madvise`. Giving pages back is what makes a fresh instance slow: each `madvise` and each
/// copy-on-write fault of the next instance flushes the TLB of every core running this
/// process (an inter-processor interrupt, dear in a VM), which was half the CPU of a fresh
/// request on a 2-core VM. With Linux's `PAGEMAP_SCAN` (6.7+) the budget goes to the pages
/// the instance actually dirtied, wherever they are.
const KEEP_RESIDENT_DIRTY: usize = 1 << 20;
/// Without `PAGEMAP_SCAN` the budget covers the lowest addresses only, dirty or not; a Rust
/// guest's stack, at the bottom, is mostly untouched, so keep it small.
const KEEP_RESIDENT_LOW: usize = 64 << 10;

/// Builds the process's engine for `routes` and starts its epoch ticker.
///
/// Instances come from wasmtime's pooling allocator, sized from the routes: one slot per
/// instance that may be alive at once (`max-instances`, see [`pool::Slots`]), each
/// memory slot as large as the largest `memory` limit. Reusing slots, with copy-on-write
/// images and dirty pages reset in place, is what makes a fresh instance cheap (no mmap,
/// munmap or fiber-stack allocation per request). Should the machine refuse the reservation
/// (a `ulimit -v`, say), the engine falls back to allocating on demand, with a warning.
pub fn new_engine(routes: &crate::config::Config) -> anyhow::Result<Engine> {
    let instances = u32::try_from(routes.max_instances()).unwrap_or(u32::MAX);
    let memory = routes
        .routes
        .iter()
        .map(|r| r.limits.memory)
        .max()
        .unwrap_or(crate::config::DEFAULT_MEMORY);
    // PAGEMAP_SCAN resets only the dirty pages that are present: one swapped out (to a swap
    // device or zram) would be neither reset nor given back, and the next instance in the
    // slot, any tenant's, could read it. With swap, slots are reset the old way.
    let swap = std::fs::read_to_string("/proc/swaps")
        .map(|swaps| swap_active(&swaps))
        .unwrap_or(true);
    let pagemap = !swap && PoolingAllocationConfig::is_pagemap_scan_available();
    let keep_resident = if pagemap {
        tracing::info!(
            "instance slots are reset in place: the pages each instance dirtied (PAGEMAP_SCAN)"
        );
        KEEP_RESIDENT_DIRTY
    } else {
        tracing::info!(
            swap,
            "instance slots are reset by memset of the first {} KiB and madvise of the rest",
            KEEP_RESIDENT_LOW >> 10
        );
        KEEP_RESIDENT_LOW
    };
    let mut pooling = PoolingAllocationConfig::new();
    // Each memory slot reserves address space (not RAM) for a whole 4 GiB wasm32 memory
    // plus guards: MAX_MEMORIES decides the reservation, about 8 GiB per possible instance.
    pooling
        .total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(MAX_CORE_INSTANCES))
        .total_memories(instances.saturating_mul(MAX_MEMORIES))
        .total_tables(instances.saturating_mul(MAX_TABLES))
        .max_core_instances_per_component(MAX_CORE_INSTANCES)
        .max_memories_per_component(MAX_MEMORIES)
        .max_tables_per_component(MAX_TABLES)
        .total_stacks(instances)
        .max_memories_per_module(1)
        .max_memory_size(usize::try_from(memory).unwrap_or(usize::MAX))
        .max_component_instance_size(4 << 20)
        .max_core_instance_size(4 << 20)
        .linear_memory_keep_resident(keep_resident)
        .async_stack_keep_resident(keep_resident)
        .table_keep_resident(keep_resident)
        .pagemap_scan(if pagemap {
            wasmtime::Enabled::Auto
        } else {
            wasmtime::Enabled::No
        });
    let mut config = base_config();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    let engine = match Engine::new(&config) {
        Ok(engine) => engine,
        Err(e) => {
            tracing::warn!(error = %e, instances, "cannot reserve the instance pool; allocating instances on demand (slower fresh instances)");
            Engine::new(&base_config())
                .map_err(|e| anyhow!(e))
                .context("configuring wasmtime")?
        }
    };
    start_epoch_ticker(&engine);
    Ok(engine)
}

/// Whether `/proc/swaps` lists a swap area (a header line, then one line per area).
fn swap_active(swaps: &str) -> bool {
    swaps.lines().skip(1).any(|line| !line.trim().is_empty())
}

/// The settings that decide compiled code (and so the compile cache key).
fn base_config() -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config
}

/// One thread for every deadline of every store: it advances the engine's epoch each
/// [`EPOCH_TICK`] and ends when the engine is dropped.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch ticker thread");
}

#[cfg(test)]
mod swap_tests {
    use super::*;

    #[test]
    fn swap_is_seen_in_proc_swaps() {
        let header = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";
        assert!(!swap_active(header));
        assert!(!swap_active(""));
        assert!(swap_active(&format!(
            "{header}/dev/zram0                              partition\t4194300\t\t0\t\t100\n"
        )));
        assert!(swap_active(&format!(
            "{header}/swapfile                               file\t\t2097148\t\t1024\t\t-2\n"
        )));
    }
}
