//! `cheroot-wasm check ROUTES`: everything `serve` does before listening (parse, validate,
//! compile, link), then the routes grouped by virtual host with their effective limits.

use std::path::PathBuf;

use super::CacheArgs;
use crate::config::Config;

/// Checks `routes` and prints what would be served.
pub(super) async fn run(routes: PathBuf, cache: CacheArgs) -> anyhow::Result<()> {
    let config = Config::load(&routes)?;
    let site = crate::server::site::Site::build(
        &config,
        &crate::server::site::SiteOptions {
            cache_dir: cache.dir(),
            access_log: Some(crate::config::AccessLogTarget::Off),
            ..Default::default()
        },
        &crate::http::stats::Stats::new(),
    )
    .await?;
    println!(
        "{}: ok, {} routes, {} distinct components",
        routes.display(),
        site.targets.len(),
        site.components
    );
    // Grouped by virtual host, as requests are routed: exact hosts, wildcards, then
    // the default server.
    let mut by_host: Vec<_> = site.guests().collect();
    by_host.sort_by_key(|(r, _, _)| (r.host.is_none(), r.host.clone()));
    let mut current = None;
    for (route, kind, limits) in by_host {
        if current != Some(&route.host) {
            current = Some(&route.host);
            match &route.host {
                Some(host) => println!("host {host}"),
                None => println!("any other host"),
            }
        }
        println!(
            "  {:<24} {:<9} {}",
            route.display_prefix(),
            kind,
            route.component.display()
        );
        println!("  {:<24} {}", "", limits);
        if !route.env.is_empty() {
            let names: Vec<&str> = route.env.iter().map(|(k, _)| k.as_str()).collect();
            println!("  {:<24} env: {}", "", names.join(", "));
        }
        for target in &route.limits.outbound {
            let any = matches!(target.host, crate::config::OutboundHost::Any);
            println!(
                "  {:<24} outbound: {target}{}",
                "",
                if any {
                    "  (warning: any host on this port, public addresses only)"
                } else {
                    ""
                }
            );
        }
        for (guest, host) in &route.dirs {
            println!("  {:<24} dir: {guest} = {} (read-only)", "", host.display());
        }
        for (guest, host) in &route.data {
            println!(
                "  {:<24} data: {guest} = {} (read-write, quota {}{})",
                "",
                host.display(),
                crate::config::show_size(route.limits.data_quota),
                if route.data_shared { ", shared" } else { "" }
            );
        }
    }
    Ok(())
}
