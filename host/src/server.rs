//! The server: start-up, the accept loop, the hyper service, graceful shutdown.
//!
//! Read top to bottom, this is one request's path: [`Server::bind`] compiles and prepares
//! every route before listening (habit 1: fail before you listen); [`Server::run`] accepts
//! connections and serves each with hyper-util's auto builder (HTTP/1.1 and h2c); [`serve`]
//! checks the request ([`crate::protocol`]), routes it ([`crate::router`]), builds the
//! environ ([`crate::environ`]) and hands it to the gateway ([`crate::gateway`]), then
//! answers with the head the application sent or the status of what went wrong
//! ([`crate::error`]). The service never fails: hyper only ever sees responses.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use http::{Method, Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::body::ResponseBody;
use crate::config::{Config, DEFAULT_BIND, Route};
use crate::environ::{self, Connection, Mount};
use crate::error::Failure;
use crate::gateway::{self, Call, Target};
use crate::input::RequestBody;
use crate::pool::Pool;
use crate::proxy::TrustedProxies;
use crate::router::Router;
use crate::start_response::CloseRequest;
use crate::stats::{RouteStats, Stats};

/// How long a client may take to send a request head (then the connection closes).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests may take to finish once shutdown begins.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Start-up choices that are not in routes.toml.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Listen here instead of routes.toml's `[server] bind` (or the default).
    pub bind: Option<String>,
    /// Where compiled components are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// Serve the admin endpoints here instead of routes.toml's `[server] admin` (if any).
    pub admin: Option<String>,
}

/// A server that has compiled its routes and is bound, ready to [`Server::run`].
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    site: Arc<Site>,
    routes: Vec<Arc<Route>>,
    targets: Vec<Arc<Target>>,
    stats: Arc<Stats>,
    admin: Option<TcpListener>,
    max_connections: usize,
}

/// What every request is checked and routed against.
struct Site {
    router: Router<Arc<Target>>,
    trusted: TrustedProxies,
    /// Figures of requests no route answered.
    unrouted: Arc<RouteStats>,
}

impl Server {
    /// Compiles and prepares every route of `config`, then binds. Any bad route fails here,
    /// naming routes.toml's line, before a single connection is accepted.
    pub async fn bind(config: Config, options: ServeOptions) -> anyhow::Result<Server> {
        config.check_components()?;
        let engine = crate::engine::new_engine(&config)?;
        let linker = Arc::new(crate::engine::linker(&engine)?);
        let stats = Arc::new(Stats::new());
        let mut targets = Vec::with_capacity(config.routes.len());
        for route in config.routes {
            let started = std::time::Instant::now();
            let pre = crate::engine::load(
                &engine,
                &linker,
                &route.component,
                options.cache_dir.as_deref(),
            )
            .await
            .with_context(|| crate::engine::load_context(&route))?;
            tracing::debug!(route = %route.display_name(), elapsed = ?started.elapsed(), "component ready");
            let route = Arc::new(route);
            let route_stats = stats.route(&route.display_name());
            let target = Arc::new(Target {
                pool: Pool::new(pre, route.clone(), route_stats.clone()),
                route: route.clone(),
                stats: route_stats,
            });
            targets.push((route.host.clone(), route.prefix.clone(), target));
        }
        let routes = targets.iter().map(|(_, _, t)| t.route.clone()).collect();
        let all = targets.iter().map(|(_, _, t)| t.clone()).collect();
        let site = Arc::new(Site {
            router: Router::new(targets),
            trusted: config.server.trusted_proxies.clone(),
            unrouted: stats.route(crate::stats::UNROUTED),
        });

        let bind = options
            .bind
            .or(config.server.bind)
            .unwrap_or_else(|| DEFAULT_BIND.to_string());
        let listener = listen(&bind).await?;
        let local_addr = listener.local_addr()?;
        let admin = match options.admin.or(config.server.admin) {
            Some(addr) => Some(
                listen(&addr)
                    .await
                    .with_context(|| format!("admin listener {addr}"))?,
            ),
            None => None,
        };
        Ok(Server {
            listener,
            local_addr,
            site,
            routes,
            targets: all,
            stats,
            admin,
            max_connections: config.server.max_connections,
        })
    }

    /// The address the server listens on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The admin listener's address, if there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Every route, in routes.toml's order.
    pub fn routes(&self) -> &[Arc<Route>] {
        &self.routes
    }

    /// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests
    /// finish for up to [`DEFAULT_SHUTDOWN_TIMEOUT`].
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(DEFAULT_HEADER_READ_TIMEOUT)
            // A client that sends its request and then shuts down its write side still
            // gets the response (raw sockets and `nc -N` do this).
            .half_close(true)
            // `Content-Type`, not `content-type`: what cheroot and most servers send, and
            // what naive HTTP/1 clients look for.
            .title_case_headers(true)
            .keep_alive(true);
        builder.http2().timer(TokioTimer::new());
        // Connections watch `stopping` (server shutdown) and their own `close` handle (a
        // response that must be the connection's last); either makes hyper finish the
        // response in flight and then close, instead of cutting it off.
        let (stopping_tx, stopping) = watch::channel(false);
        let admin = self.admin.map(|listener| {
            tokio::spawn(crate::admin::serve(
                listener,
                Arc::new(crate::admin::Admin {
                    stats: self.stats.clone(),
                    targets: self.targets.clone(),
                }),
            ))
        });
        self.stats.set_ready();
        let mut connections = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        // At most max-connections at once: beyond it the server stops accepting, and new
        // connections wait in the kernel's backlog instead of exhausting descriptors.
        let slots = Arc::new(tokio::sync::Semaphore::new(self.max_connections));
        loop {
            while connections.try_join_next().is_some() {}
            let slot = tokio::select! {
                slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
                () = &mut shutdown => break,
            };
            let (stream, remote) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning or dying.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY");
            }
            let connection = Connection {
                remote,
                local: stream.local_addr().unwrap_or(self.local_addr),
                scheme: "http",
            };
            let counted = self.stats.connection();
            let close = Arc::new(CloseRequest::default());
            let site = self.site.clone();
            let close_handle = close.clone();
            let service = service_fn(move |req| {
                let site = site.clone();
                let close = close_handle.clone();
                async move { Ok::<_, Infallible>(serve(&site, connection, close, req).await) }
            });
            let builder = builder.clone();
            let mut stopping = stopping.clone();
            connections.spawn(async move {
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                let mut conn = std::pin::pin!(conn);
                let result = tokio::select! {
                    // A close request must win over the connection's own progress, or hyper
                    // could start on a pipelined request first.
                    biased;
                    () = async { let _ = stopping.wait_for(|stop| *stop).await; } => {
                        conn.as_mut().graceful_shutdown();
                        conn.await
                    }
                    () = close.requested() => {
                        conn.as_mut().graceful_shutdown();
                        conn.await
                    }
                    result = conn.as_mut() => result,
                };
                if let Err(e) = result {
                    tracing::debug!(%remote, error = %e, "connection ended with an error");
                }
                drop(counted);
                drop(slot);
            });
        }
        drop(self.listener);
        self.stats.set_draining();
        tracing::info!("shutting down: no new connections; waiting for in-flight requests");
        let _ = stopping_tx.send(true);
        let drained = tokio::time::timeout(DEFAULT_SHUTDOWN_TIMEOUT, async {
            while connections.join_next().await.is_some() {}
        });
        if drained.await.is_err() {
            tracing::warn!("shutdown timeout: closing the remaining connections");
            connections.shutdown().await;
        }
        if let Some(admin) = admin {
            admin.abort();
        }
        Ok(())
    }
}

/// Binds the first address `bind` resolves to.
async fn listen(bind: &str) -> anyhow::Result<TcpListener> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(bind)
        .await
        .with_context(|| format!("cannot resolve bind address {bind:?} (expected HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080)"))?
        .collect();
    let mut last = None;
    for addr in &addrs {
        match TcpListener::bind(addr).await {
            Ok(listener) => return Ok(listener),
            Err(e) => {
                last = Some(anyhow::Error::new(e).context(format!("cannot listen on {addr}")))
            }
        }
    }
    match last {
        Some(e) => Err(e),
        None => bail!("bind address {bind:?} resolved to nothing"),
    }
}

/// One request, start to head, counted under the route that answered it.
async fn serve(
    site: &Site,
    connection: Connection,
    close: Arc<CloseRequest>,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let mut routed = None;
    let response = answer(site, connection, close, req, &mut routed).await;
    routed
        .as_deref()
        .unwrap_or(&site.unrouted)
        .answered(response.status());
    response
}

/// [`serve`]'s work; `routed` is set to the route's figures once the request is routed.
async fn answer(
    site: &Site,
    connection: Connection,
    close: Arc<CloseRequest>,
    req: Request<Incoming>,
    routed: &mut Option<Arc<RouteStats>>,
) -> Response<ResponseBody> {
    let (parts, body) = req.into_parts();
    if let Err(failure) = crate::protocol::check(&parts) {
        return failure.response();
    }
    // Behind a trusted proxy, the client, scheme and host are the ones it forwards.
    let mut connection = connection;
    let mut host = environ::requested_host(&parts);
    if let Some(forwarded) =
        crate::proxy::resolve(&parts.headers, connection.remote.ip(), &site.trusted)
    {
        if let Some(client) = forwarded.client {
            connection.remote = SocketAddr::new(client, 0);
        }
        connection.scheme = forwarded.scheme.unwrap_or(connection.scheme);
        host = forwarded.host.or(host);
    }
    let path = environ::decode_path(parts.uri.path());
    let route_host = host.as_deref().map(crate::router::host_key);
    let Some(matched) = site.router.route(route_host.as_deref(), &path) else {
        return Failure::NotFound.response();
    };
    let target = matched.route.clone();
    *routed = Some(target.stats.clone());
    let mount = Mount {
        script_name: matched.script_name,
        path_info: matched.path_info,
    };
    let vars = environ::build(
        &parts,
        &connection,
        host.as_deref(),
        route_host.as_deref(),
        mount,
        target.pool.concurrency(),
    );
    let limit = target.route.limits.max_request_body;
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if limit.is_some_and(|limit| declared.is_some_and(|declared| declared > limit)) {
        // Refused before the application runs or a byte of the body is read.
        target.stats.failed(&Failure::BodyTooLarge);
        return Failure::BodyTooLarge.response();
    }
    let call = Call {
        vars,
        input: RequestBody::new(body, limit),
        head_only: parts.method == Method::HEAD,
        close,
    };
    match gateway::respond(target, call).await {
        Ok(response) => response,
        Err(failure) => failure.response(),
    }
}
