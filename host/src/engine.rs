//! The wasmtime side of start-up: one [`Engine`] for the process, each component compiled
//! once (through an on-disk cache), linked, and turned into an [`AppPre`] before the server
//! listens.
//!
//! Owns the engine configuration (async, epoch interruption), the compile cache, the
//! [`Linker`] with exactly the imports a guest may have (WASI p2 and `cheroot:wsgi/types`;
//! no wasi:http, no network), and the epoch ticker thread that drives every deadline.
//! It does not create instances ([`crate::pool`]).
//!
//! The cache holds native code: anyone who can write to it can run code in this process, so
//! it lives in the user's cache directory (or `--cache-dir`), never in a tenant's.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine};

use crate::bindings::{App, AppPre};
use crate::pool::HostState;

/// How often the epoch advances: the granularity of guest yields and deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Builds the process's engine and starts its epoch ticker.
pub fn new_engine() -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config)
        .map_err(|e| anyhow!(e))
        .context("configuring wasmtime")?;
    start_epoch_ticker(&engine);
    Ok(engine)
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
/// whose every use the WASI context denies) plus the WSGI host interface.
pub fn linker(engine: &Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| anyhow!(e))?;
    App::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
        .map_err(|e| anyhow!(e))?;
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

/// Compiles a component, or loads its native code from `cache` when this exact file was
/// compiled before by an engine with the same settings.
pub fn compile(engine: &Engine, file: &Path, cache: Option<&Path>) -> anyhow::Result<Component> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    check_is_component(&bytes)?;
    let Some(cache) = cache else {
        return Component::new(engine, &bytes).map_err(|e| anyhow!(e));
    };
    let key = cache_key(engine, &bytes);
    let cached = cache.join(format!("{key}.cwasm"));
    if cached.is_file() {
        // SAFETY: the file was written by `Component::serialize` of an engine with the same
        // compatibility hash (it is part of the key), into a directory only the operator
        // controls (see the module docs).
        match unsafe { Component::deserialize_file(engine, &cached) } {
            Ok(component) => return Ok(component),
            Err(e) => {
                tracing::warn!(file = %cached.display(), error = %e, "ignoring unusable cache entry")
            }
        }
    }
    let component = Component::new(engine, &bytes).map_err(|e| anyhow!(e))?;
    if let Err(e) = store_in_cache(&component, cache, &cached) {
        tracing::warn!(dir = %cache.display(), error = %e, "cannot write the compile cache; continuing without it");
    }
    Ok(component)
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

fn cache_key(engine: &Engine, bytes: &[u8]) -> String {
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
    hasher.0.update(bytes);
    hasher
        .0
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn store_in_cache(component: &Component, dir: &Path, path: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let code = component.serialize().map_err(|e| anyhow!(e))?;
    // Write then rename, so a concurrent reader never sees half a file.
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        std::process::id(),
        path.file_name().and_then(|n| n.to_str()).unwrap_or("entry")
    ));
    std::fs::write(&tmp, code)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Pre-instantiates a component: resolves every import now, so a guest that imports what
/// the host does not provide fails at start-up, naming the import.
pub fn prepare(
    linker: &Linker<HostState>,
    component: &Component,
) -> anyhow::Result<AppPre<HostState>> {
    let pre = linker.instantiate_pre(component).map_err(|e| anyhow!(e))?;
    AppPre::new(pre).map_err(|e| anyhow!(e)).context(
        "the component does not export cheroot:wsgi/application (world `app` of wit/wsgi.wit)",
    )
}

/// Compiles and prepares one component on a blocking thread (compilation is CPU-bound).
pub async fn load(
    engine: &Engine,
    linker: &Arc<Linker<HostState>>,
    file: &Path,
    cache: Option<&Path>,
) -> anyhow::Result<AppPre<HostState>> {
    let (engine, linker, file, cache) = (
        engine.clone(),
        linker.clone(),
        file.to_path_buf(),
        cache.map(Path::to_path_buf),
    );
    tokio::task::spawn_blocking(move || {
        let component = compile(&engine, &file, cache.as_deref())?;
        prepare(&linker, &component)
    })
    .await
    .context("compile task panicked")?
}
