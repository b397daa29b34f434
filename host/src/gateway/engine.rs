//! The wasmtime side of start-up: one [`Engine`] for the process, each component compiled
//! once (through an on-disk cache), linked, and turned into a [`GuestPre`] of its kind before
//! the server listens.
//!
//! Owns the engine configuration (async, epoch interruption), the compile cache, the
//! [`Linker`] with exactly the imports a guest may have (WASI p2, with name lookups and TCP
//! socket creation answered by [`super::outbound`]; wasi:http's types and outgoing handler;
//! `cheroot:wsgi/types`), and the epoch ticker thread that drives every deadline.
//! It does not create instances ([`super::pool`]).
//!
//! The cache holds native code: anyone who can write to it can run code in this process, so
//! it lives in the user's cache directory (or `--cache-dir`), never in a tenant's, and is
//! used only when this user owns it and nobody else may write it (the directory is made
//! 0700, its files 0600); otherwise the server warns and compiles instead.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use sha2::{Digest as _, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings::{App, AppPre, ProxyPre, add_ip_name_lookup, add_tcp_create_socket};
use super::guest::GuestPre;
use super::limits::{MAX_CORE_INSTANCES, MAX_MEMORIES, MAX_TABLES};
use super::state::HostState;

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
/// instance that may be alive at once (`max-instances`, see [`super::pool::Slots`]), each
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

/// The linker every route shares: WASI p2 (filesystem, clocks, random, cli, and sockets
/// whose every use the WASI context denies), wasi:http's types and outgoing handler (whose
/// every request [`super::outbound`] refuses), and the WSGI host interface.
pub fn linker(engine: &Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| anyhow!(e))?;
    // Name lookups are answered by the host itself, for granted names only.
    linker.allow_shadowing(true);
    add_ip_name_lookup::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
        .map_err(|e| anyhow!(e))?;
    // TCP sockets count against the route's max-outbound-connections from creation to drop,
    // their connects are bounded, their bytes counted.
    add_tcp_create_socket::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
        .map_err(|e| anyhow!(e))?;
    super::tcp::add_to_linker(&mut linker)?;
    // What takes space in a route's data directories is charged to its quota.
    super::data::add_to_linker(&mut linker)?;
    linker.allow_shadowing(false);
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(|e| anyhow!(e))?;
    App::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
        .map_err(|e| anyhow!(e))?;
    // Response headers are sized before they are copied into the host.
    linker.allow_shadowing(true);
    super::start_response::add_to_linker(&mut linker)?;
    linker.allow_shadowing(false);
    Ok(linker)
}

/// The default compile cache: `$XDG_CACHE_HOME/cheroot-wasm` or `~/.cache/cheroot-wasm`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("cheroot-wasm"))
}

/// Where a component's native code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compiled {
    /// The compile cache had it.
    FromCache,
    /// Compiled now (and stored in the cache, if there is one).
    Now,
}

/// Components larger than this get a log line before they compile (which can take seconds).
const ANNOUNCE_COMPILE_BYTES: usize = 4 << 20;

/// A component's identity: the SHA-256 of its bytes.
pub type Digest = [u8; 32];

/// Reads a component file and names its content.
pub fn read_component(file: &Path) -> anyhow::Result<(Vec<u8>, Digest)> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    check_is_component(&bytes)?;
    let digest = Sha256::digest(&bytes).into();
    Ok((bytes, digest))
}

/// Compiles a component, or loads its native code from `cache` when this exact component
/// was compiled before by an engine with the same settings. Code compiled now is stored in
/// the cache and loaded back from it, so that, like cached code, it is a mapping of a file
/// (see [`Loaded::release_code`]).
pub fn compile(
    engine: &Engine,
    file: &Path,
    (bytes, digest): (&[u8], &Digest),
    cache: Option<&Path>,
) -> anyhow::Result<Loaded> {
    let cached = cache.map(|dir| {
        (
            dir,
            dir.join(format!("{}.cwasm", cache_key(engine, digest))),
        )
    });
    // A cache directory someone else could write is not used at all: not read, not written
    // (one that does not exist yet is made private by `store_in_cache`).
    let cached = cached.filter(|(dir, _)| match untrusted_cache(dir).filter(|_| dir.exists()) {
        Some(why) => {
            tracing::warn!(dir = %dir.display(), "not using the compile cache: {why}; compiling instead");
            false
        }
        None => true,
    });
    if let Some((_, path)) = &cached
        && path.is_file()
    {
        if let Some(why) = untrusted_cache(path) {
            tracing::warn!(file = %path.display(), "not loading the compile cache entry: {why}; compiling instead (the entry is replaced)");
        } else {
            match load_cached(engine, path) {
                Ok(component) => return Ok(Loaded::mapped(component, Compiled::FromCache)),
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "ignoring unusable cache entry")
                }
            }
        }
    }
    if bytes.len() >= ANNOUNCE_COMPILE_BYTES {
        tracing::info!(
            "compiling {} ({} MiB); {}",
            file.display(),
            bytes.len() >> 20,
            if cached.is_some() {
                "cached for the next start"
            } else {
                "no cache: every start compiles again"
            }
        );
    }
    let component = Component::new(engine, bytes).map_err(|e| anyhow!(e))?;
    if let Some((dir, path)) = &cached {
        match store_in_cache(&component, dir, path).and_then(|()| load_cached(engine, path)) {
            Ok(mapped) => return Ok(Loaded::mapped(mapped, Compiled::Now)),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot write the compile cache; continuing without it")
            }
        }
    }
    Ok(Loaded {
        component,
        compiled: Compiled::Now,
        mapped: false,
    })
}

/// A compiled component.
pub struct Loaded {
    /// The component.
    pub component: Component,
    /// Where its code came from.
    pub compiled: Compiled,
    /// Whether its code is a mapping of a cache file, rather than memory it was compiled in.
    mapped: bool,
}

impl Loaded {
    fn mapped(component: Component, compiled: Compiled) -> Self {
        Loaded {
            component,
            compiled,
            mapped: true,
        }
    }

    /// Lets go of the pages of the component's native code that loading it touched:
    /// wasmtime reads the whole image to load it (headers, function tables, unwind
    /// information), which would keep every route's code resident from the start, used or
    /// not (a thousand small tenants: 190 KiB each, 190 MiB). The pages stay in the
    /// kernel's page cache; a route's first request maps back those it runs, with minor
    /// faults.
    ///
    /// Only for code mapped from a cache file ([`compile`] maps all it can): dropping the
    /// pages of a private file mapping gives back the file's content, which is the code,
    /// because wasmtime never writes to a loaded image (it refuses images that need
    /// relocations, and makes them read-only as it loads them). Code compiled in memory is
    /// left alone: there, dropping the pages would zero it.
    pub fn release_code(&self) {
        if !self.mapped {
            return;
        }
        let image = self.component.image_range();
        let len = image.end as usize - image.start as usize;
        if len == 0 {
            return;
        }
        // SAFETY: the range is the component's own mapping of its cache file (page-aligned,
        // as mmap returns it), which nothing writes (above); MADV_DONTNEED on a private file
        // mapping only drops page-table entries, which the next access refills from the file.
        let rc =
            unsafe { libc::madvise(image.start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
        if rc != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "madvise(MADV_DONTNEED) of a component's code");
        }
    }
}

/// Maps a cache entry's native code.
fn load_cached(engine: &Engine, path: &Path) -> anyhow::Result<Component> {
    // SAFETY: the file was written by `Component::serialize` of an engine with the same
    // compatibility hash (it is part of the key), into a directory this user owns and
    // nobody else may write, and the file is this user's and nobody else's to write either
    // ([`untrusted_cache`]; only the owner can change that). Entries are replaced by
    // rename, never written in place, so a mapped entry does not change under the server.
    unsafe { Component::deserialize_file(engine, path) }.map_err(|e| anyhow!(e))
}

/// A clear word for the two common mistakes, before wasmtime's parser gets to them.
fn check_is_component(bytes: &[u8]) -> anyhow::Result<()> {
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', 0x0d, 0, 1, 0]) => Ok(()),
        Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => Err(anyhow!(
            "this is a core WebAssembly module, not a component: build it with `--target wasm32-wasip2` (or wrap it with `wasm-tools component new`)"
        )),
        _ => Err(anyhow!(
            "this is not a WebAssembly component (no `\\0asm` header)"
        )),
    }
}

fn cache_key(engine: &Engine, digest: &Digest) -> String {
    use std::hash::{Hash, Hasher};
    struct ShaHasher(Sha256);
    impl Hasher for ShaHasher {
        fn finish(&self) -> u64 {
            unreachable!("only write() is used")
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut hasher = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.update(env!("CARGO_PKG_VERSION").as_bytes());
    hasher.0.update(digest);
    hasher
        .0
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Why the compile cache directory or entry at `path` must not be used, if it must not. Its
/// native code runs in this process, so only what this user (the effective uid) owns and
/// nobody else may write is trusted; only the owner (or root) can change either.
fn untrusted_cache(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) => return Some(format!("cannot inspect it ({e})")),
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if meta.uid() != euid {
        return Some(format!(
            "it belongs to uid {}, not to this user (uid {euid}): remove it, or point \
             --cache-dir at a directory of this user's",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Some(format!(
            "its mode {mode:04o} lets others write it: `chmod go-w {}`",
            path.display()
        ));
    }
    None
}

/// Writes `component`'s native code to `path` in `dir`: the directory made with mode 0700
/// if it is new, the file with 0600, never through a file someone else put there.
fn store_in_cache(component: &Component, dir: &Path, path: &Path) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    if let Some(why) = untrusted_cache(dir) {
        anyhow::bail!("{why}");
    }
    let code = component.serialize().map_err(|e| anyhow!(e))?;
    // Write then rename, so a concurrent reader never sees half a file.
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        std::process::id(),
        path.file_name().and_then(|n| n.to_str()).unwrap_or("entry")
    ));
    let _ = std::fs::remove_file(&tmp);
    // `create_new`: O_EXCL, which also refuses to follow a symlink at `tmp`.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(&code)?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// The WSGI contract's export this host calls, wit/wsgi.wit's version.
const WSGI_APPLICATION: &str = "cheroot:wsgi/application@0.2.0";

/// Pre-instantiates a component: resolves every import now, so a guest that imports what
/// the host does not provide fails at start-up, naming the import. Its kind is read from
/// its exports: `wasi:http/incoming-handler` makes a wasi:http proxy, anything else must be
/// a WSGI application.
pub fn prepare(linker: &Linker<HostState>, component: &Component) -> anyhow::Result<GuestPre> {
    let exports: Vec<String> = component
        .component_type()
        .exports(component.engine())
        .map(|(name, _)| name.to_owned())
        .collect();
    let exports_wasi_http = exports
        .iter()
        .any(|name| name.starts_with("wasi:http/incoming-handler@0.2."));
    if let Some(old) = exports.iter().find(|name| {
        name.starts_with("cheroot:wsgi/application@") && name.as_str() != WSGI_APPLICATION
    }) {
        return Err(anyhow!(
            "the component was built for {old}, and this server speaks {WSGI_APPLICATION}: rebuild it against this release's wit/wsgi.wit or SDK (Rust: cargo build with this release's cheroot-wsgi; Python: cheroot-wasm build-python); an application on the SDKs needs no change to its code"
        ));
    }
    // The pooling allocator refuses these when the component is loaded; without it (the
    // reservation failed), the same bounds hold here.
    if let Some(needs) = component.resources_required() {
        if needs.num_memories > MAX_MEMORIES {
            return Err(anyhow!(
                "the component has {} linear memories; a component may have at most {MAX_MEMORIES}",
                needs.num_memories
            ));
        }
        if needs.num_tables > MAX_TABLES {
            return Err(anyhow!(
                "the component has {} tables; a component may have at most {MAX_TABLES}",
                needs.num_tables
            ));
        }
    }
    let pre = linker.instantiate_pre(component).map_err(|e| anyhow!(e))?;
    if exports_wasi_http {
        return ProxyPre::new(pre)
            .map(GuestPre::WasiHttp)
            .map_err(|e| anyhow!(e))
            .context("the component's wasi:http/incoming-handler is not wasi:http 0.2's");
    }
    AppPre::new(pre).map(GuestPre::Wsgi).map_err(|e| anyhow!(e)).context(
        "the component exports neither cheroot:wsgi/application (world `app` of wit/wsgi.wit) nor wasi:http/incoming-handler (world `wasi:http/proxy`)",
    )
}

/// What a failure to load `route`'s component is prefixed with: routes.toml's line, the
/// route, the file.
pub fn load_context(route: &crate::config::Route) -> String {
    format!(
        "{}: route {:?}: cannot load {}",
        route.component_at,
        route.display_name(),
        route.component.display()
    )
}

/// Compiles and prepares a site's components, each distinct one (by content) once however
/// many routes name it: a thousand routes of one component share one compiled image and
/// one [`GuestPre`]. Compiling runs on a blocking thread (it is CPU-bound).
pub struct Loader {
    engine: Engine,
    linker: Arc<Linker<HostState>>,
    cache: Option<PathBuf>,
    prepared: HashMap<Digest, GuestPre>,
}

impl Loader {
    /// A loader for `engine`, linking with `linker`, caching in `cache`.
    pub fn new(engine: &Engine, linker: Linker<HostState>, cache: Option<&Path>) -> Self {
        Loader {
            engine: engine.clone(),
            linker: Arc::new(linker),
            cache: cache.map(Path::to_path_buf),
            prepared: HashMap::new(),
        }
    }

    /// The component in `file`, prepared: the one loaded before, if it has the same bytes.
    pub async fn load(&mut self, file: &Path) -> anyhow::Result<GuestPre> {
        let path = file.to_path_buf();
        let (bytes, digest) = tokio::task::spawn_blocking(move || read_component(&path))
            .await
            .context("read task panicked")??;
        if let Some(pre) = self.prepared.get(&digest) {
            return Ok(pre.clone());
        }
        let (engine, linker, file, cache) = (
            self.engine.clone(),
            self.linker.clone(),
            file.to_path_buf(),
            self.cache.clone(),
        );
        let pre = tokio::task::spawn_blocking(move || {
            let loaded = compile(&engine, &file, (&bytes, &digest), cache.as_deref())?;
            let pre = prepare(&linker, &loaded.component)?;
            loaded.release_code();
            anyhow::Ok(pre)
        })
        .await
        .context("compile task panicked")??;
        self.prepared.insert(digest, pre.clone());
        Ok(pre)
    }

    /// How many distinct components it has loaded.
    pub fn distinct(&self) -> usize {
        self.prepared.len()
    }
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

#[cfg(test)]
mod cache_tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    /// The smallest component there is: the header alone.
    const EMPTY_COMPONENT: &[u8] = &[0, b'a', b's', b'm', 0x0d, 0, 1, 0];

    #[test]
    fn a_cache_others_may_write_is_never_loaded() {
        let engine = Engine::new(&base_config()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("app.wasm");
        std::fs::write(&file, EMPTY_COMPONENT).unwrap();
        let cache = dir.path().join("cache");
        let component = read_component(&file).unwrap();
        let compiled = |cache: &Path| {
            compile(&engine, &file, (&component.0, &component.1), Some(cache))
                .unwrap()
                .compiled
        };
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let chmod = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };

        assert_eq!(compiled(&cache), Compiled::Now);
        assert_eq!(mode(&cache), 0o700, "the cache directory is private");
        let entries: Vec<PathBuf> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        let [entry] = entries.as_slice() else {
            panic!("one cache entry expected: {entries:?}");
        };
        assert_eq!(mode(entry), 0o600, "a cache entry is private");
        assert_eq!(compiled(&cache), Compiled::FromCache);

        // A directory anyone may write: not trusted, whatever is in it.
        chmod(&cache, 0o777);
        assert_eq!(compiled(&cache), Compiled::Now);
        chmod(&cache, 0o770);
        assert_eq!(compiled(&cache), Compiled::Now);
        chmod(&cache, 0o700);
        assert_eq!(compiled(&cache), Compiled::FromCache);

        // An entry others may write: compiled instead, and replaced by a private one.
        chmod(entry, 0o666);
        assert_eq!(compiled(&cache), Compiled::Now);
        assert_eq!(mode(entry), 0o600);
        assert_eq!(compiled(&cache), Compiled::FromCache);
        assert!(untrusted_cache(&cache).is_none());
    }
}
