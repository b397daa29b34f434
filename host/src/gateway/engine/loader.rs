//! A site's components loaded: each distinct one (by content) compiled once and prepared
//! once, its imports resolved and its kind read from its exports, before the server
//! listens.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use super::super::bindings::{AppPre, ProxyPre};
use super::super::grants::limits::{MAX_MEMORIES, MAX_TABLES};
use super::super::state::HostState;
use super::cache::{Digest, compile, read_component};
use super::guest::GuestPre;

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
