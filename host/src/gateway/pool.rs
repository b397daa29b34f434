//! Instances of a route's component: [`Pool`] lends them to requests. Warm ones are reused
//! request after request (WSGI's model: the application object lives on), fresh ones serve
//! one request. The store each instance runs in is [`super::state`]'s.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use wasmtime::Store;

use super::guest::{Guest, GuestPre, Kind};
use super::outbound::Grant;
use super::output::{MAX_FAILURE_TEXT, log_safe};
use wasmtime_wasi::filesystem::WasiFilesystemCtx;

use super::data::{Data, DataLease};
use super::state::{HostState, new_store, open_dirs};
use crate::config::{DEFAULT_MAX_QUEUE, InstanceModel, Route};
use crate::http::environ::Concurrency;
use crate::http::error::Failure;
use crate::http::stats::{InstanceEvent, RouteStats};

/// One live instance of a route's component.
pub struct Instance {
    /// Its store.
    pub store: Store<HostState>,
    /// Its exports.
    pub guest: Guest,
    /// Requests it has served.
    served: u64,
}

/// An instance lent to one request, with the route's concurrency permit.
pub struct Lease {
    /// The instance.
    pub instance: Instance,
    /// When the request's `timeout` runs out: counted from the moment it got its permit,
    /// so a new instance's start-up (a core module's `start` function, `_initialize`) is
    /// part of it.
    pub deadline: tokio::time::Instant,
    /// The route's data directories, held for this request.
    data: Option<DataLease>,
    _permit: OwnedSemaphorePermit,
}

/// The instances of one route: at most `max-concurrency` running, warm ones kept idle for
/// reuse, requests beyond the limit queued (bounded in length and time), never refused
/// outright while a slot may free up soon.
pub struct Pool {
    pre: GuestPre,
    dirs: WasiFilesystemCtx,
    data: Option<Arc<Data>>,
    grant: Arc<Grant>,
    stats: Arc<RouteStats>,
    route: Arc<Route>,
    /// The route's `instances`, or its kind's default.
    model: InstanceModel,
    permits: Arc<Semaphore>,
    queued: AtomicUsize,
    idle: Arc<Mutex<Vec<Idle>>>,
}

struct Idle {
    instance: Instance,
    since: Instant,
}

impl Pool {
    /// A pool over a prepared component, with the route's directories opened and its
    /// outbound grant (HTTPS through `outbound_tls`). Warm pools
    /// start a task that drops instances idle for longer than the route's `idle-timeout`;
    /// it ends with the pool.
    pub fn new(
        pre: GuestPre,
        route: Arc<Route>,
        stats: Arc<RouteStats>,
        outbound_tls: Arc<rustls::ClientConfig>,
    ) -> anyhow::Result<Self> {
        let data = Data::open(&route)?;
        let dirs = open_dirs(&route).map_err(|e| anyhow::anyhow!(e))?;
        let model = route.limits.instances.unwrap_or(match pre.kind() {
            Kind::Wsgi => InstanceModel::Warm,
            Kind::WasiHttp => InstanceModel::Fresh,
        });
        let idle: Arc<Mutex<Vec<Idle>>> = Arc::default();
        if model == InstanceModel::Warm {
            let weak = Arc::downgrade(&idle);
            let every = (route.limits.idle_timeout / 2)
                .clamp(Duration::from_millis(100), Duration::from_secs(10));
            let timeout = route.limits.idle_timeout;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let Some(idle) = weak.upgrade() else { return };
                    // Oldest first: the list is a stack, most recently used on top.
                    let stale: Vec<Idle> = {
                        let mut idle = idle.lock().unwrap_or_else(|e| e.into_inner());
                        let keep_from = idle
                            .iter()
                            .position(|i| i.since.elapsed() < timeout)
                            .unwrap_or(idle.len());
                        idle.drain(..keep_from).collect()
                    };
                    drop(stale);
                }
            });
        }
        Ok(Pool {
            pre,
            dirs,
            data,
            grant: Grant::new(&route, outbound_tls, stats.clone()),
            stats,
            permits: Arc::new(Semaphore::new(route.limits.max_concurrency)),
            route,
            model,
            queued: AtomicUsize::new(0),
            idle,
        })
    }

    /// The kind of guest its instances are.
    pub fn kind(&self) -> Kind {
        self.pre.kind()
    }

    /// Whether its instances are warm or fresh.
    pub fn model(&self) -> InstanceModel {
        self.model
    }

    /// What the environ's wsgi.multithread/multiprocess/run_once say about this pool.
    pub fn concurrency(&self) -> Concurrency {
        Concurrency {
            multithread: false,
            multiprocess: true,
            run_once: self.model == InstanceModel::Fresh,
        }
    }

    /// An instance for one request: waits (up to `queue-timeout`, in a queue of at most
    /// [`DEFAULT_MAX_QUEUE`]) while `max-concurrency` instances are busy; then a warm one,
    /// or a new one instantiated within the request's `timeout`.
    pub async fn get(&self) -> Result<Lease, Failure> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if self.queued.fetch_add(1, Ordering::AcqRel) >= DEFAULT_MAX_QUEUE {
                    self.queued.fetch_sub(1, Ordering::AcqRel);
                    return Err(Failure::Unavailable(
                        "the route's request queue is full".into(),
                    ));
                }
                let waited = tokio::time::timeout(
                    self.route.limits.queue_timeout,
                    self.permits.clone().acquire_owned(),
                )
                .await;
                self.queued.fetch_sub(1, Ordering::AcqRel);
                match waited {
                    Ok(Ok(permit)) => permit,
                    _ => {
                        return Err(Failure::Unavailable(format!(
                            "all {} instances stayed busy for {:?}",
                            self.route.limits.max_concurrency, self.route.limits.queue_timeout
                        )));
                    }
                }
            }
        };
        // A route with data serves one request at a time (see `super::data`): the wait for
        // the directories is part of the wait in the queue.
        let data = match &self.data {
            None => None,
            Some(data) => {
                match tokio::time::timeout(self.route.limits.queue_timeout, data.lease()).await {
                    Ok(lease) => Some(lease),
                    Err(_elapsed) => {
                        return Err(Failure::Unavailable(format!(
                            "the route's data directories stayed busy for {:?}",
                            self.route.limits.queue_timeout
                        )));
                    }
                }
            }
        };
        let deadline = tokio::time::Instant::now() + self.route.limits.timeout;
        let warm = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let instance = match warm {
            Some(idle) => idle.instance,
            // The store yields at every epoch tick, so a start function that spins is
            // dropped here when the time is up.
            None => match tokio::time::timeout_at(deadline, self.instantiate()).await {
                Ok(instance) => instance?,
                Err(_elapsed) => return Err(Failure::Timeout),
            },
        };
        Ok(Lease {
            instance,
            deadline,
            data,
            _permit: permit,
        })
    }

    async fn instantiate(&self) -> Result<Instance, Failure> {
        let mut store = new_store(
            self.pre.engine(),
            &self.route,
            &self.dirs,
            &self.grant,
            self.data.as_ref(),
            &self.stats,
        )
        .map_err(|e| Failure::Internal(format!("preparing the sandbox: {e:?}")))?;
        let guest = self.pre.instantiate(&mut store).await.map_err(|e| {
            if e.is::<wasmtime::PoolConcurrencyLimitError>() {
                // Every slot of the server's instance pool is taken: a capacity problem
                // that passes, like a full queue (hyper-pitfalls: 503, not 500).
                Failure::Unavailable(format!("the instance pool is exhausted: {e}"))
            } else {
                Failure::Internal(log_safe(&format!("instantiating: {e:?}"), MAX_FAILURE_TEXT))
            }
        })?;
        self.stats.instance(InstanceEvent::Created);
        Ok(Instance {
            store,
            guest,
            served: 0,
        })
    }

    /// Takes an instance back after a request. Only an instance whose request `completed`
    /// cleanly is reused (one that trapped, timed out or was cut off mid-call may hold broken
    /// state), and only in a warm pool, and only up to `max-requests`.
    pub fn put(&self, lease: Lease, completed: bool) {
        let Lease {
            mut instance,
            data,
            _permit,
            ..
        } = lease;
        instance.served += 1;
        let warm = self.model == InstanceModel::Warm;
        let event = match (completed, warm) {
            (false, _) => {
                // Gone before its data directories are handed on.
                drop(instance);
                Some(InstanceEvent::Discarded)
            }
            (true, true) if instance.served >= self.route.limits.max_requests => {
                Some(InstanceEvent::Recycled)
            }
            (true, true) => {
                self.idle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Idle {
                        instance,
                        since: Instant::now(),
                    });
                None
            }
            // A fresh instance served its one request: dropping it is the plan, not an event.
            (true, false) => None,
        };
        if let Some(event) = event {
            self.stats.instance(event);
        }
        if let Some(data) = data {
            data.release(!completed);
        }
    }

    /// Instances idle right now.
    pub fn idle(&self) -> usize {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Instances serving a request right now.
    pub fn busy(&self) -> usize {
        self.route.limits.max_concurrency - self.permits.available_permits()
    }

    /// Requests waiting for an instance right now.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}
