//! `cheroot-wasm compile ROUTES`: fill the compile cache ahead of time (a deploy step), and
//! say per route whether it was compiled or already cached.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::config::Config;
use crate::gateway::engine::{self, Compiled};

/// Compiles every route of `routes` into `cache_dir` (or the default cache).
pub(super) fn run(routes: PathBuf, cache_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let config = Config::load(&routes)?;
    config.check_components()?;
    let dir = cache_dir
        .or_else(engine::default_cache_dir)
        .context("no cache directory: pass --cache-dir (neither XDG_CACHE_HOME nor HOME is set)")?;
    let engine = engine::new_engine(&config)?;
    let linker = engine::linker(&engine)?;
    // Each distinct component once: the routes that share one say so.
    let mut seen: HashMap<engine::Digest, String> = HashMap::new();
    for route in &config.routes {
        let started = std::time::Instant::now();
        let how = engine::read_component(&route.component)
            .and_then(|(bytes, digest)| {
                if let Some(first) = seen.get(&digest) {
                    return Ok(format!("the same component as {first}"));
                }
                let loaded =
                    engine::compile(&engine, &route.component, (&bytes, &digest), Some(&dir))?;
                engine::prepare(&linker, &loaded.component)?;
                seen.insert(digest, route.display_name());
                Ok(match loaded.compiled {
                    Compiled::FromCache => "already in the cache".to_string(),
                    Compiled::Now => format!("compiled in {:.1?}", started.elapsed()),
                })
            })
            .with_context(|| engine::load_context(route))?;
        println!(
            "  {:<24} {}  {how}",
            route.display_prefix(),
            route.component.display()
        );
    }
    println!("cache: {}", dir.display());
    Ok(())
}
