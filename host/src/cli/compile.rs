//! `cheroot-wasm compile ROUTES`: fill the compile cache ahead of time (a deploy step), and
//! say per route whether it was compiled or already cached.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::config::Config;
use crate::gateway::engine::Compiled;

/// Compiles every route of `routes` into `cache_dir` (or the default cache).
pub(super) fn run(routes: PathBuf, cache_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let config = Config::load(&routes)?;
    config.check_components()?;
    let dir = cache_dir
        .or_else(crate::gateway::engine::default_cache_dir)
        .context("no cache directory: pass --cache-dir (neither XDG_CACHE_HOME nor HOME is set)")?;
    let engine = crate::gateway::engine::new_engine(&config)?;
    let linker = crate::gateway::engine::linker(&engine)?;
    for route in &config.routes {
        let started = std::time::Instant::now();
        let (component, how) =
            crate::gateway::engine::compile(&engine, &route.component, Some(&dir))
                .and_then(|(c, how)| {
                    crate::gateway::engine::prepare(&linker, &c)?;
                    Ok((c, how))
                })
                .with_context(|| crate::gateway::engine::load_context(route))?;
        drop(component);
        let how = match how {
            Compiled::FromCache => "already in the cache".to_string(),
            Compiled::Now => format!("compiled in {:.1?}", started.elapsed()),
        };
        println!(
            "  {:<24} {}  {how}",
            route.display_prefix(),
            route.component.display()
        );
    }
    println!("cache: {}", dir.display());
    Ok(())
}
