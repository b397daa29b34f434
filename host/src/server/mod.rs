//! The network side: hyper, rustls and sockets. This file is the server's life: start-up,
//! the accept loop, graceful shutdown.
//!
//! [`Server::bind`] builds the site ([`site`]: every route compiled and prepared before
//! listening — fail before you listen) and binds every listener ([`listener`]);
//! [`Server::run`] accepts connections and hands each to [`connection`] (TLS from [`tls`],
//! hyper's HTTP/1.1 and HTTP/2, the head and write timeouts), which hands each request to
//! [`service`]: one request's path, top to bottom. Beside them: [`access_log`] and
//! [`admin`] (the operators' listener) and [`linger`] (how a connection the server ends
//! early is closed).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{AccessLogTarget, BindAddr, Config, DEFAULT_BIND};
use crate::http::stats::Stats;
use listener::Listener;
use site::{Live, Site, SiteOptions};

pub mod access_log;
pub mod admin;
pub mod connection;
pub mod linger;
pub mod listener;
pub mod service;
pub mod site;
pub mod tls;

/// Start-up choices that are not in routes.toml.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Listen here instead of routes.toml's `[server] bind` (or the default).
    pub bind: Vec<String>,
    /// Where compiled components are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// Serve the admin endpoints here instead of routes.toml's `[server] admin` (if any).
    pub admin: Option<String>,
    /// The access log instead of routes.toml's `[server] access-log`: `-`, a file, `off`.
    pub access_log: Option<String>,
}

/// A server that has compiled its routes and is bound, ready to [`Server::run`].
pub struct Server {
    listeners: Vec<Listener>,
    live: Arc<Live>,
    admin: Option<TcpListener>,
    max_connections: usize,
    shutdown_timeout: Duration,
}

impl Server {
    /// Compiles and prepares every route of `config`, then binds. Any bad route fails here,
    /// naming routes.toml's line, before a single connection is accepted.
    pub async fn bind(config: Config, options: ServeOptions) -> anyhow::Result<Server> {
        let stats = Arc::new(Stats::new());
        let access_log = match &options.access_log {
            Some(value) => Some(
                AccessLogTarget::parse(value, std::path::Path::new("."))
                    .map_err(|e| anyhow::anyhow!("--access-log: {e}"))?,
            ),
            None => None,
        };
        let site_options = SiteOptions {
            cache_dir: options.cache_dir.clone(),
            access_log,
            bind_from_command_line: !options.bind.is_empty(),
            admin_from_command_line: options.admin.is_some(),
        };
        let site = Site::build(&config, &site_options, &stats).await?;
        let binds = if options.bind.is_empty() {
            if config.server.bind.is_empty() {
                vec![BindAddr::Tcp(DEFAULT_BIND.to_string())]
            } else {
                config.server.bind.clone()
            }
        } else {
            options
                .bind
                .iter()
                .map(|b| BindAddr::parse(b).map_err(|e| anyhow::anyhow!("--bind: {e}")))
                .collect::<anyhow::Result<_>>()?
        };
        let mut listeners = Vec::new();
        for bind in &binds {
            listeners.extend(Listener::bind(bind, config.server.bind_options).await?);
        }
        let admin = match options.admin.or(config.server.admin.clone()) {
            Some(addr) => Some(
                TcpListener::bind(&addr)
                    .await
                    .with_context(|| format!("admin listener {addr}"))?,
            ),
            None => None,
        };
        let mut own: Vec<SocketAddr> = listeners.iter().filter_map(Listener::tcp_addr).collect();
        own.extend(admin.as_ref().and_then(|a| a.local_addr().ok()));
        crate::gateway::grants::outbound::set_own_listeners(&own);
        Ok(Server {
            listeners,
            admin,
            max_connections: config.server.max_connections,
            shutdown_timeout: config.server.shutdown_timeout,
            live: Arc::new(Live::new(site, config.file, site_options, stats)),
        })
    }

    /// The first TCP address the server listens on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listeners.iter().find_map(Listener::tcp_addr)
    }

    /// Every listener, for people: `http://127.0.0.1:8080/`, `unix:/run/app.sock (https)`.
    pub fn addresses(&self) -> Vec<String> {
        let scheme = if self.live.get().tls.is_some() {
            "https"
        } else {
            "http"
        };
        self.listeners.iter().map(|l| l.describe(scheme)).collect()
    }

    /// The admin listener's address, if there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The site being served (its routes), and the handle that reloads it.
    pub fn live(&self) -> &Arc<Live> {
        &self.live
    }

    /// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests
    /// finish for up to `shutdown-timeout`.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        // Connections watch `stopping` (server shutdown); it makes hyper finish the response
        // in flight and then close, instead of cutting it off.
        let (stopping_tx, stopping) = watch::channel(false);
        let stats = self.live.stats().clone();
        let admin = self.admin.map(|listener| {
            tokio::spawn(admin::serve(
                listener,
                Arc::new(admin::Admin {
                    live: self.live.clone(),
                }),
            ))
        });
        stats.set_ready();
        let mut connections = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        // At most max-connections at once: beyond it the server stops accepting, and new
        // connections wait in the kernel's backlog instead of exhausting descriptors.
        let slots = Arc::new(tokio::sync::Semaphore::new(self.max_connections));
        let mut next = 0;
        loop {
            while connections.try_join_next().is_some() {}
            let slot = tokio::select! {
                slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
                () = &mut shutdown => break,
            };
            let accepted = tokio::select! {
                accepted = listener::accept(&self.listeners, &mut next) => match accepted {
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
            let counted = stats.connection();
            let live = self.live.clone();
            let stopping = stopping.clone();
            connections.spawn(async move {
                connection::serve(live, accepted, stopping).await;
                drop(counted);
                drop(slot);
            });
        }
        drop(self.listeners);
        stats.set_draining();
        tracing::info!("shutting down: no new connections; waiting for in-flight requests");
        let _ = stopping_tx.send(true);
        let drained = tokio::time::timeout(self.shutdown_timeout, async {
            while connections.join_next().await.is_some() {}
        });
        if drained.await.is_err() {
            tracing::warn!("shutdown timeout: closing the remaining connections");
            connections.shutdown().await;
        }
        if let Some(admin) = admin {
            admin.abort();
        }
        // The last requests' lines are on their way to the access log: see them written.
        if let Some(log) = self.live.get().access_log.clone() {
            let _ = tokio::task::spawn_blocking(move || log.flush(Duration::from_secs(2))).await;
        }
        Ok(())
    }
}
