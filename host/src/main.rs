//! The `cheroot-wasm` command: `serve` a routes.toml, or `check` it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use cheroot_wasm::config::Config;
use cheroot_wasm::engine::Compiled;
use cheroot_wasm::{ServeOptions, Server};
use clap::{Parser, Subcommand};

/// Serve WSGI applications compiled to WebAssembly components, one sandbox per route.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Server log lines as `text` or `json` (filter with RUST_LOG, e.g. RUST_LOG=debug).
    #[arg(long, global = true, value_name = "FORMAT", default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Compile every route's component, then serve them.
    Serve {
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
    },
    /// Compile every route's component into the cache, so that `serve` starts at once.
    Compile {
        /// The routes file.
        routes: PathBuf,
        /// Cache compiled components here (default: $XDG_CACHE_HOME/cheroot-wasm or ~/.cache/cheroot-wasm).
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
    },
    /// Build a Python WSGI application (MODULE:APP, as cheroot takes it) into a component.
    BuildPython {
        /// `module:callable`; the callable defaults to `application`.
        app: String,
        /// The component to write.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        /// A directory with the application's modules (repeatable; default: the current one).
        #[arg(long = "path", value_name = "DIR")]
        paths: Vec<PathBuf>,
        /// A pip requirements file to install into the component.
        #[arg(short, long, value_name = "FILE")]
        requirements: Option<PathBuf>,
    },
    /// Create a new application directory (rust or python) with its routes.toml.
    New {
        /// `rust` or `python`.
        language: String,
        /// The directory to create; its name names the crate or module.
        dir: PathBuf,
    },
    /// Check routes.toml and compile every component without serving.
    Check {
        /// The routes file.
        routes: PathBuf,
        #[command(flatten)]
        cache: CacheArgs,
    },
}

#[derive(clap::Args)]
struct CacheArgs {
    /// Cache compiled components here (default: $XDG_CACHE_HOME/cheroot-wasm or ~/.cache/cheroot-wasm).
    #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
    cache_dir: Option<PathBuf>,
    /// Compile every component at every start.
    #[arg(long)]
    no_cache: bool,
}

impl CacheArgs {
    fn dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            None
        } else {
            self.cache_dir
                .clone()
                .or_else(cheroot_wasm::engine::default_cache_dir)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => logs.json().init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            routes,
            bind,
            build,
            admin,
            access_log,
            watch,
            cache,
        } => {
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
            for address in server.addresses() {
                println!("Listening on {address}");
            }
            if let Some(admin) = server.admin_addr() {
                println!("Admin on http://{admin}/ (/healthz /readyz /stats /metrics)");
            }
            for route in server.live().get().routes() {
                println!(
                    "  {:<24} {}",
                    route.display_name(),
                    route.component.display()
                );
            }
            let live = server.live().clone();
            if watch {
                tokio::spawn(watch_files(live.clone()));
            }
            server.run(signals(live)).await
        }
        Command::Compile { routes, cache_dir } => {
            let config = Config::load(&routes)?;
            config.check_components()?;
            let dir = cache_dir
                .or_else(cheroot_wasm::engine::default_cache_dir)
                .context(
                    "no cache directory: pass --cache-dir (neither XDG_CACHE_HOME nor HOME is set)",
                )?;
            let engine = cheroot_wasm::engine::new_engine(&config)?;
            let linker = cheroot_wasm::engine::linker(&engine)?;
            for route in &config.routes {
                let started = std::time::Instant::now();
                let (component, how) =
                    cheroot_wasm::engine::compile(&engine, &route.component, Some(&dir))
                        .and_then(|(c, how)| {
                            cheroot_wasm::engine::prepare(&linker, &c)?;
                            Ok((c, how))
                        })
                        .with_context(|| cheroot_wasm::engine::load_context(route))?;
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
        Command::BuildPython {
            app,
            output,
            paths,
            requirements,
        } => {
            let job = cheroot_wasm::python::PythonBuild {
                app,
                output,
                paths,
                requirements,
            };
            cheroot_wasm::python::build(&job)?;
            println!("built {}", job.output.display());
            Ok(())
        }
        Command::New { language, dir } => {
            cheroot_wasm::template::create(&language, &dir)?;
            println!(
                "created {}: cd there and run `cheroot-wasm serve routes.toml --build`",
                dir.display()
            );
            Ok(())
        }
        Command::Check { routes, cache } => {
            let config = Config::load(&routes)?;
            let site = cheroot_wasm::site::Site::build(
                &config,
                &cheroot_wasm::site::SiteOptions {
                    cache_dir: cache.dir(),
                    access_log: Some(cheroot_wasm::config::AccessLogTarget::Off),
                    ..Default::default()
                },
                &cheroot_wasm::stats::Stats::new(),
            )
            .await?;
            println!("{}: ok, {} routes", routes.display(), site.targets.len());
            // Grouped by virtual host, as requests are routed: exact hosts, wildcards, then
            // the default server.
            let mut by_host: Vec<_> = site.routes().collect();
            by_host.sort_by_key(|r| (r.host.is_none(), r.host.clone()));
            let mut current = None;
            for route in by_host {
                if current != Some(&route.host) {
                    current = Some(&route.host);
                    match &route.host {
                        Some(host) => println!("host {host}"),
                        None => println!("any other host"),
                    }
                }
                println!(
                    "  {:<24} {}",
                    route.display_prefix(),
                    route.component.display()
                );
                println!("  {:<24} {}", "", route.limits);
                if !route.env.is_empty() {
                    let names: Vec<&str> = route.env.iter().map(|(k, _)| k.as_str()).collect();
                    println!("  {:<24} env: {}", "", names.join(", "));
                }
                for (guest, host) in &route.dirs {
                    println!("  {:<24} dir: {guest} = {} (read-only)", "", host.display());
                }
            }
            Ok(())
        }
    }
}

/// Runs every distinct `build` command, in routes.toml's directory.
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
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(dir_or_dot(config.dir()))
            .status()
            .with_context(|| {
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

fn dir_or_dot(dir: &Path) -> &Path {
    if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }
}

/// Reloads `live`, logging why and how it went; `true` if the new routes are serving.
async fn reload(live: &cheroot_wasm::site::Live, why: &str) -> bool {
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
async fn watch_files(live: std::sync::Arc<cheroot_wasm::site::Live>) {
    let stamp = |live: &cheroot_wasm::site::Live| {
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

/// Resolves on the first Ctrl-C or SIGTERM (a graceful shutdown); a second one exits at
/// once. SIGHUP reloads routes.toml meanwhile; a reload that fails leaves the running site.
async fn signals(live: std::sync::Arc<cheroot_wasm::site::Live>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        eprintln!("error: cannot install signal handlers; stop the server with SIGKILL");
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
