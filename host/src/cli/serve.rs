//! `cheroot-wasm serve ROUTES`: compile every route, listen, serve until SIGTERM; SIGHUP and
//! `--watch` reload; `--build` runs the routes' build commands first.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use super::CacheArgs;
use crate::config::Config;
use crate::server::{ServeOptions, Server};

/// `serve`'s flags.
// `[server] bind` and the like are routes.toml's words in the help text, not links.
#[allow(rustdoc::broken_intra_doc_links)]
#[derive(clap::Args)]
pub(super) struct Args {
    /// The routes file.
    routes: PathBuf,
    /// Listen on HOST:PORT, unix:PATH or systemd (repeatable; default: routes.toml's
    /// [server] bind, else 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    bind: Vec<String>,
    /// Run each route's `build` command first.
    #[arg(long)]
    build: bool,
    /// Serve /healthz, /readyz, /stats and /metrics on HOST:PORT (default: routes.toml's
    /// [server] admin, else none).
    #[arg(long, value_name = "ADDR")]
    admin: Option<String>,
    /// Write the access log to FILE, `-` (stdout) or `off` (default: routes.toml's
    /// [server] access-log, else stdout).
    #[arg(long, value_name = "FILE")]
    access_log: Option<String>,
    /// Reload (as on SIGHUP) when routes.toml or a route's component changes.
    #[arg(long)]
    watch: bool,
    #[command(flatten)]
    cache: CacheArgs,
}

/// Runs the server until it is stopped.
pub(super) async fn run(args: Args) -> anyhow::Result<()> {
    let Args {
        routes,
        bind,
        build,
        admin,
        access_log,
        watch,
        cache,
    } = args;
    let config = Config::load(&routes)?;
    if build {
        run_builds(&config)?;
    }
    let server = Server::bind(
        config,
        ServeOptions {
            bind,
            cache_dir: cache.dir(),
            admin,
            access_log,
        },
    )
    .await?;
    // Before anyone is told where to connect: a SIGTERM from then on is a graceful stop.
    let signals = Signals::install();
    for address in server.addresses() {
        println!("Listening on {address}");
    }
    if let Some(admin) = server.admin_addr() {
        println!("Admin on http://{admin}/ (/healthz /readyz /stats /metrics)");
    }
    for (route, kind, _) in server.live().get().guests() {
        println!(
            "  {:<24} {:<9} {}",
            route.display_name(),
            kind,
            route.component.display()
        );
    }
    let live = server.live().clone();
    if watch {
        tokio::spawn(watch_files(live.clone()));
    }
    server.run(signals.serve(live)).await
}

/// Runs every distinct `build` command, in routes.toml's directory.
///
/// A build is a tenant's command, run before any listener is opened. It gets the routes
/// file's directory, no standard input, none of the server's inherited descriptors (a
/// systemd socket, say), and only the environment a build needs ([`BUILD_ENV`]), so no
/// secret of the server's environment and no socket-activation variable.
fn run_builds(config: &Config) -> anyhow::Result<()> {
    let mut done: Vec<&str> = Vec::new();
    for route in &config.routes {
        let Some(command) = route.build.as_deref() else {
            continue;
        };
        if done.contains(&command) {
            continue;
        }
        done.push(command);
        eprintln!("building route {}: {command}", route.display_prefix());
        let mut build = std::process::Command::new("sh");
        build
            .arg("-c")
            .arg(command)
            .current_dir(dir_or_dot(config.dir()))
            .stdin(std::process::Stdio::null())
            .env_clear()
            .envs(std::env::vars_os().filter(|(name, _)| {
                name.to_str().is_some_and(|name| {
                    BUILD_ENV.contains(&name)
                        || name.starts_with("LC_")
                        || name.starts_with("PYENV_")
                })
            }));
        // SAFETY: the closure only makes one async-signal-safe system call.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut build, || {
                // Every descriptor past stderr closes on exec (std's own are already).
                libc::close_range(3, libc::c_uint::MAX, libc::CLOSE_RANGE_CLOEXEC as i32);
                Ok(())
            });
        }
        let status = build.status().with_context(|| {
            format!(
                "cannot run the build command of route {}",
                route.display_prefix()
            )
        })?;
        if !status.success() {
            bail!(
                "{}: route {}: build command failed ({status}): {command}",
                config.file.display(),
                route.display_prefix()
            );
        }
    }
    Ok(())
}

/// The variables a build command sees, besides `LC_*` and `PYENV_*`: what compilers,
/// cargo, rustup, Python and pip need to find themselves.
const BUILD_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TERM",
    "TMPDIR",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN",
    "VIRTUAL_ENV",
];

fn dir_or_dot(dir: &Path) -> &Path {
    if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }
}

/// Reloads `live`, logging why and how it went; `true` if the new routes are serving.
async fn reload(live: &crate::server::site::Live, why: &str) -> bool {
    tracing::info!("{why}: reloading {}", live.file().display());
    match live.reload().await {
        Ok(site) => {
            tracing::info!(routes = site.targets.len(), "reloaded");
            true
        }
        Err(e) => {
            tracing::error!("reload refused, still serving the previous routes: {e:#}");
            false
        }
    }
}

/// `serve --watch`: reloads when routes.toml or a component of the running routes changes
/// (size or modification time, checked every second). A reload that fails (a component
/// half-written by a build) is logged and retried at the next change.
async fn watch_files(live: std::sync::Arc<crate::server::site::Live>) {
    let stamp = |live: &crate::server::site::Live| {
        let site = live.get();
        let files = std::iter::once(live.file().to_path_buf())
            .chain(site.routes().map(|r| r.component.clone()));
        files
            .map(|f| {
                std::fs::metadata(&f)
                    .ok()
                    .map(|m| (m.len(), m.modified().ok()))
            })
            .collect::<Vec<_>>()
    };
    let mut last = stamp(&live);
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let now = stamp(&live);
        if now == last {
            continue;
        }
        last = now;
        if reload(&live, "a watched file changed").await {
            last = stamp(&live);
        }
    }
}

/// The signals the server answers: SIGTERM and SIGINT stop it, SIGHUP reloads.
struct Signals(
    Option<(
        tokio::signal::unix::Signal,
        tokio::signal::unix::Signal,
        tokio::signal::unix::Signal,
    )>,
);

impl Signals {
    /// Installs the handlers now (not when first awaited), so that no signal sent after the
    /// server announced itself finds the default action (exit) still in place.
    fn install() -> Signals {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(term), Ok(int), Ok(hup)) => Signals(Some((term, int, hup))),
            _ => {
                eprintln!("error: cannot install signal handlers; stop the server with SIGKILL");
                Signals(None)
            }
        }
    }

    /// Resolves on the first Ctrl-C or SIGTERM (a graceful shutdown); a second one exits at
    /// once. SIGHUP reloads routes.toml meanwhile; a reload that fails leaves the running
    /// site.
    async fn serve(self, live: std::sync::Arc<crate::server::site::Live>) {
        let Some((mut term, mut int, mut hup)) = self.0 else {
            return std::future::pending().await;
        };
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => {
                    // In a task of its own: a long compile must not hold up SIGTERM.
                    let live = live.clone();
                    tokio::spawn(async move { reload(&live, "SIGHUP").await });
                }
            }
        }
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
            eprintln!("second signal: exiting without waiting for in-flight requests");
            std::process::exit(130);
        });
    }
}
