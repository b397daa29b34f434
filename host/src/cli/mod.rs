//! The `cheroot-wasm` command: the top layer. One file per subcommand — [`serve`],
//! [`check`], [`compile`], [`new`] (application templates), [`build_python`] (a Python WSGI
//! application into a component) — each with the helpers only it uses. `src/main.rs` only
//! calls [`main`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod build_python;
mod check;
mod compile;
pub mod new;
mod serve;

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
    Serve(serve::Args),
    /// Compile every route's component into the cache, so that `serve` starts at once.
    Compile {
        /// The routes file.
        routes: PathBuf,
        /// Cache compiled components here (default: $XDG_CACHE_HOME/cheroot-wasm or ~/.cache/cheroot-wasm).
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
    },
    /// Build a Python WSGI application (MODULE:APP, as cheroot takes it) into a component.
    BuildPython(build_python::PythonBuild),
    /// Create a new application directory (rust, python or js) with its routes.toml.
    New {
        /// `rust`, `python` or `js` (a wasi:http component built with componentize-js).
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
pub(crate) struct CacheArgs {
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
                .or_else(crate::gateway::engine::default_cache_dir)
        }
    }
}

/// The `cheroot-wasm` command: parses the command line, sets up logging and the runtime,
/// runs the subcommand.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The log is written by a thread of its own through a bounded queue: a slow or stopped
    // reader of stderr never blocks a request (lines beyond the queue are dropped, and
    // counted by `report_dropped_log_lines`).
    let (stderr, _flush_on_exit) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .thread_name("log-writer")
        .finish(std::io::stderr());
    report_dropped_log_lines(stderr.error_counter());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(stderr);
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

/// Server log lines that may wait for a slow stderr before new ones are dropped.
const LOG_QUEUE_LINES: usize = 64 * 1024;

/// Says, every ten seconds while it happens, how many log lines a slow stderr made the
/// server drop.
fn report_dropped_log_lines(counter: tracing_appender::non_blocking::ErrorCounter) {
    let spawned = std::thread::Builder::new()
        .name("log-drops".into())
        .spawn(move || {
            let mut reported = 0;
            loop {
                std::thread::sleep(std::time::Duration::from_secs(10));
                let dropped = counter.dropped_lines();
                if dropped > reported {
                    tracing::warn!(
                        dropped = dropped - reported,
                        "log lines dropped: stderr is not keeping up"
                    );
                    reported = dropped;
                }
            }
        });
    if let Err(e) = spawned {
        eprintln!("warning: cannot count dropped log lines: {e}");
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Compile { routes, cache_dir } => compile::run(routes, cache_dir),
        Command::BuildPython(job) => {
            build_python::build(&job)?;
            println!("built {}", job.output.display());
            Ok(())
        }
        Command::New { language, dir } => {
            new::create(&language, &dir)?;
            println!(
                "created {}: cd there and run `cheroot-wasm serve routes.toml --build`",
                dir.display()
            );
            Ok(())
        }
        Command::Check { routes, cache } => check::run(routes, cache).await,
    }
}
