//! A site: everything one routes.toml serves with — compiled routes and their pools, the
//! router, trusted proxies, TLS, HTTP limits, the access log — built whole before it serves
//! a request, and replaced whole on reload.
//!
//! [`Live`] holds the current site. Every connection reads it when it starts (TLS, limits)
//! and every request when it arrives (routing), so a reload ([`Live::reload`], SIGHUP) takes
//! effect at once for new requests while requests already running finish on the site they
//! started with: the old site and its instances are dropped when the last of them ends. A
//! routes.toml that does not load, or a component that does not compile, leaves the running
//! site as it is. Listeners, the admin address and max-connections belong to the process:
//! changing them needs a restart, and a reload says so.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;

use super::access_log::AccessLog;
use super::tls;
use crate::config::{AccessLogTarget, Config, HttpLimits, Route, ServerConfig};
use crate::gateway::{Pool, Slots, Target, engine};
use crate::http::router::Router;
use crate::http::stats::{RouteStats, Stats, UNROUTED};

/// What every connection and request is served with.
pub struct Site {
    /// Host and path → route.
    pub router: Router<Arc<Target>>,
    /// Every route, in routes.toml's order.
    pub targets: Vec<Arc<Target>>,
    /// Distinct components among them (routes naming identical bytes share one).
    pub components: usize,
    /// The places (`max-instances`) their instances share.
    pub slots: Arc<Slots>,
    /// Figures of requests no route answered.
    pub unrouted: Arc<RouteStats>,
    /// The TLS certificate and policy, when listeners speak TLS.
    pub tls: Option<tls::Acceptor>,
    /// The access log, unless it is off.
    pub access_log: Option<Arc<AccessLog>>,
    /// hyper's connection builder, configured with `limits`.
    pub http: auto::Builder<TokioExecutor>,
    /// The `[server]` table it was built from: trusted proxies, HTTP limits, and what a
    /// reload cannot change.
    pub server: ServerConfig,
}

/// Start-up choices that are not in routes.toml and that reloads keep.
#[derive(Debug, Clone, Default)]
pub struct SiteOptions {
    /// Where compiled components are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// Overrides routes.toml's `access-log`.
    pub access_log: Option<AccessLogTarget>,
    /// The listeners come from the command line (`--bind`): routes.toml's `bind` is not used.
    pub bind_from_command_line: bool,
    /// The admin address comes from the command line (`--admin`).
    pub admin_from_command_line: bool,
}

impl Site {
    /// Compiles and prepares every route of `config`. Any bad route fails here, naming
    /// routes.toml's line.
    pub async fn build(
        config: &Config,
        options: &SiteOptions,
        stats: &Stats,
    ) -> anyhow::Result<Site> {
        config.check_components()?;
        let engine = engine::new_engine(config)?;
        let slots = Slots::new(config.max_instances());
        let mut loader = engine::Loader::new(
            &engine,
            engine::linker(&engine)?,
            options.cache_dir.as_deref(),
        );
        let outbound_ca = match &config.server.outbound_ca {
            Some(path) => Some(
                tls::read_certs(path, "server.outbound-ca")
                    .with_context(|| format!("{}: server.outbound-ca", config.file.display()))?,
            ),
            None => None,
        };
        let outbound_tls = crate::gateway::grants::egress::tls_client(outbound_ca.as_deref())?;
        let mut targets = Vec::with_capacity(config.routes.len());
        for route in &config.routes {
            let started = std::time::Instant::now();
            let pre = loader
                .load(&route.component)
                .await
                .with_context(|| engine::load_context(route))?;
            tracing::debug!(route = %route.display_name(), elapsed = ?started.elapsed(), "component ready");
            let route = Arc::new(route.clone());
            let route_stats = stats.route(&route.display_name());
            targets.push(Arc::new(Target {
                pool: Pool::new(
                    pre,
                    route.clone(),
                    route_stats.clone(),
                    outbound_tls.clone(),
                    slots.clone(),
                )
                .with_context(|| {
                    format!(
                        "{}: route {:?}: opening its directories",
                        route
                            .dirs_at
                            .as_ref()
                            .or(route.data_at.as_ref())
                            .unwrap_or(&route.component_at),
                        route.display_name()
                    )
                })?,
                route,
                stats: route_stats,
            }));
        }
        let server = &config.server;
        let tls = match &server.tls {
            Some(settings) => Some(
                tls::Acceptor::load(settings)
                    .with_context(|| format!("{}: [server.tls]", config.file.display()))?,
            ),
            None => None,
        };
        let access_log = AccessLog::open(
            options.access_log.as_ref().unwrap_or(&server.access_log),
            server.access_log_format,
        )?;
        Ok(Site {
            router: Router::new(
                targets
                    .iter()
                    .map(|t| (t.route.host.clone(), t.route.prefix.clone(), t.clone()))
                    .collect::<Vec<_>>(),
            ),
            targets,
            components: loader.distinct(),
            slots,
            unrouted: stats.route(UNROUTED),
            tls,
            access_log,
            http: http_builder(&server.http),
            server: server.clone(),
        })
    }

    /// Every route, in routes.toml's order.
    pub fn routes(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.targets.iter().map(|t| &t.route)
    }

    /// Every route with the kind of guest it serves and the limits it runs under (its
    /// instance model settled by that kind).
    pub fn guests(
        &self,
    ) -> impl Iterator<Item = (&Arc<Route>, crate::gateway::Kind, crate::config::Limits)> {
        self.targets.iter().map(|t| {
            let mut limits = t.route.limits.clone();
            limits.instances = Some(t.pool.model());
            (&t.route, t.pool.kind(), limits)
        })
    }
}

/// hyper's HTTP/1.1 and HTTP/2 settings for `limits`.
fn http_builder(limits: &HttpLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // The head timeout is the connection's own ([`crate::connection`]): hyper's would
        // close without the 408 a client is owed.
        .header_read_timeout(None)
        .max_headers(limits.max_headers)
        // A head that does not fit the read buffer is refused with 431.
        .max_buf_size(limits.max_header_size)
        // A client that sends its request and then shuts down its write side still gets
        // the response (raw sockets and `nc -N` do this).
        .half_close(true)
        // `Content-Type`, not `content-type`: what cheroot and most servers send, and what
        // naive HTTP/1 clients look for.
        .title_case_headers(true)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_size).unwrap_or(u32::MAX))
        // A peer that stops answering PINGs is gone: close its connection.
        .keep_alive_interval(H2_KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(H2_KEEP_ALIVE_TIMEOUT)
        // What one connection may make the server hold: streams at once, and the data
        // queued per stream that the client's window does not let out yet.
        .max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS)
        .max_send_buf_size(H2_MAX_SEND_BUFFER);
    builder
}

/// How long an HTTP/2 connection may be silent before the server PINGs it.
pub const H2_KEEP_ALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);
/// How long a PING may go unanswered before the connection is closed.
pub const H2_KEEP_ALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);
/// Streams one HTTP/2 connection may have open at once (RFC 9113 §5.1.2).
pub const H2_MAX_CONCURRENT_STREAMS: u32 = 100;
/// Response bytes queued per HTTP/2 stream beyond what the client's window lets out.
pub const H2_MAX_SEND_BUFFER: usize = 64 << 10;

/// The site being served, and how to replace it.
pub struct Live {
    current: ArcSwap<Site>,
    file: PathBuf,
    options: SiteOptions,
    stats: Arc<Stats>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
}

impl Live {
    /// Serves `site`, built from `file` with `options`.
    pub fn new(site: Site, file: PathBuf, options: SiteOptions, stats: Arc<Stats>) -> Live {
        Live {
            current: ArcSwap::from_pointee(site),
            file,
            options,
            stats,
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// The site now.
    pub fn get(&self) -> Arc<Site> {
        self.current.load_full()
    }

    /// The routes.toml it reloads from.
    pub fn file(&self) -> &std::path::Path {
        &self.file
    }

    /// The figures.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Rereads routes.toml and its components, builds the new site beside the running one,
    /// and swaps it in. On any error the running site stays (its access log reopened, as
    /// logrotate expects of a SIGHUP) and the error is returned.
    pub async fn reload(&self) -> anyhow::Result<Arc<Site>> {
        let _one = self.reloading.lock().await;
        let built = async {
            let config = Config::load(&self.file)?;
            Site::build(&config, &self.options, &self.stats).await
        };
        let site = match built.await {
            Ok(site) => Arc::new(site),
            Err(e) => {
                if let Some(log) = &self.get().access_log {
                    log.reopen();
                }
                return Err(e);
            }
        };
        let old = self.current.swap(site.clone());
        let restart = needs_restart(&old.server, &site.server, &self.options);
        if !restart.is_empty() {
            tracing::warn!(
                "reloaded, but {} only change with a restart",
                restart.join(", ")
            );
        }
        Ok(site)
    }
}

/// The `[server]` keys whose change a reload cannot apply (and that the command line does
/// not override).
fn needs_restart(
    old: &ServerConfig,
    new: &ServerConfig,
    options: &SiteOptions,
) -> Vec<&'static str> {
    let mut keys = Vec::new();
    if old.bind_options != new.bind_options
        || (old.bind != new.bind && !options.bind_from_command_line)
    {
        keys.push("bind, reuse-port and socket-mode");
    }
    if old.admin != new.admin && !options.admin_from_command_line {
        keys.push("admin");
    }
    if old.max_connections != new.max_connections {
        keys.push("max-connections");
    }
    if old.shutdown_timeout != new.shutdown_timeout {
        keys.push("shutdown-timeout");
    }
    keys
}
