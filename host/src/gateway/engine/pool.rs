//! Instances of a route's component: [`Pool`] lends them to requests. Warm ones are reused
//! request after request (WSGI's model: the application object lives on), fresh ones serve
//! one request. [`Slots`] bounds the instances alive at once across every route
//! (`max-instances`). The store each instance runs in is [`super::super::state`]'s.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use wasmtime::Store;
use wasmtime_wasi::filesystem::WasiFilesystemCtx;

use super::super::grants::data::{Data, DataLease};
use super::super::grants::outbound::Grant;
use super::super::output::{MAX_FAILURE_TEXT, log_safe};
use super::super::state::{HostState, new_store, open_dirs};
use super::guest::{Guest, GuestPre, Kind};
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
    /// Its place among the server's `max-instances`. Declared after the store, so that the
    /// store (and its slot in wasmtime's pooling allocator) is gone before the place is
    /// given to another instance.
    _slot: OwnedSemaphorePermit,
}

/// The instances alive at once across every route, busy or idle: at most `max-instances`,
/// the size of wasmtime's instance pool (so the pool is reserved by what the server may
/// really hold, not by every route's `max-concurrency` added up). A route that needs a new
/// instance when every place is taken makes room by dropping the least recently used idle
/// instance of any route; when none is idle it waits, in its queue, for one to finish: an
/// instance that finishes while others wait is dropped rather than kept idle, so its place
/// passes on.
pub struct Slots {
    places: Arc<Semaphore>,
    max: usize,
    /// Requests waiting for a place.
    waiting: AtomicUsize,
    /// Every warm pool's idle instances, to make room from.
    shelves: Mutex<Vec<Weak<Shelf>>>,
}

/// A warm pool's idle instances, most recently used last.
struct Shelf {
    idle: Mutex<Vec<Idle>>,
    stats: Arc<RouteStats>,
}

impl Shelf {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Slots {
    /// Places for `max` instances.
    pub fn new(max: usize) -> Arc<Slots> {
        Arc::new(Slots {
            places: Arc::new(Semaphore::new(max)),
            max,
            waiting: AtomicUsize::new(0),
            shelves: Mutex::default(),
        })
    }

    /// A place for a new instance: a free one, else one made by dropping the least recently
    /// used idle instance of any route, else the first to free up within `wait`.
    async fn take(&self, wait: Duration) -> Result<OwnedSemaphorePermit, Failure> {
        // Counted before looking for idle instances: a pool that shelves one after this
        // sees the count and drops it instead ([`Pool::put`]), so none is missed.
        self.waiting.fetch_add(1, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let _waiting = Waiting(&self.waiting);
        loop {
            if let Some(place) = self.try_take() {
                return Ok(place);
            }
            if !self.make_room() {
                break;
            }
        }
        match tokio::time::timeout(wait, self.places.clone().acquire_owned()).await {
            Ok(Ok(place)) => Ok(place),
            _ => Err(Failure::Unavailable(format!(
                "all {} instances of the server (max-instances) stayed busy for {wait:?}",
                self.max
            ))),
        }
    }

    /// Drops the least recently used idle instance of any route; `false` if none is idle.
    fn make_room(&self) -> bool {
        let shelves: Vec<Arc<Shelf>> = {
            let mut shelves = self.shelves.lock().unwrap_or_else(|e| e.into_inner());
            shelves.retain(|s| s.strong_count() > 0);
            shelves.iter().filter_map(Weak::upgrade).collect()
        };
        loop {
            let oldest = shelves
                .iter()
                .filter_map(|s| Some((s.lock().first()?.since, s)))
                .min_by_key(|(since, _)| *since);
            let Some((since, shelf)) = oldest else {
                return false;
            };
            let evicted = {
                let mut idle = shelf.lock();
                // Still the one found? Another request may have taken it meanwhile.
                match idle.first() {
                    Some(first) if first.since == since => Some(idle.remove(0)),
                    _ => None,
                }
            };
            if let Some(evicted) = evicted {
                drop(evicted);
                shelf.stats.instance(InstanceEvent::Evicted);
                return true;
            }
        }
    }

    /// Instances alive now, busy or idle.
    pub fn alive(&self) -> usize {
        self.max - self.places.available_permits()
    }

    /// `max-instances`.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Requests waiting for a place now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// A free place, if there is one.
    fn try_take(&self) -> Option<OwnedSemaphorePermit> {
        self.places.clone().try_acquire_owned().ok()
    }

    /// Whether requests wait for a place now.
    fn wanted(&self) -> bool {
        self.waiting.load(Ordering::SeqCst) > 0
    }

    fn shelve(&self, shelf: &Arc<Shelf>) {
        self.shelves
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::downgrade(shelf));
    }
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
    idle: Arc<Shelf>,
    slots: Arc<Slots>,
}

struct Idle {
    instance: Instance,
    since: Instant,
}

impl Pool {
    /// A pool over a prepared component, with the route's directories opened and its
    /// outbound grant (HTTPS through `outbound_tls`), its instances taking their places
    /// among `slots`. Warm pools start a task that drops instances idle for longer than
    /// the route's `idle-timeout`; it ends with the pool.
    pub fn new(
        pre: GuestPre,
        route: Arc<Route>,
        stats: Arc<RouteStats>,
        outbound_tls: Arc<rustls::ClientConfig>,
        slots: Arc<Slots>,
    ) -> anyhow::Result<Self> {
        let data = Data::open(&route)?;
        let dirs = open_dirs(&route).map_err(|e| anyhow::anyhow!(e))?;
        let model = route.limits.instances.unwrap_or(match pre.kind() {
            Kind::Wsgi => InstanceModel::Warm,
            Kind::WasiHttp => InstanceModel::Fresh,
        });
        let idle = Arc::new(Shelf {
            idle: Mutex::default(),
            stats: stats.clone(),
        });
        if model == InstanceModel::Warm {
            slots.shelve(&idle);
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
                        let mut idle = idle.lock();
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
            slots,
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
        let warm = self.idle.lock().pop();
        let instance = match warm {
            Some(idle) => idle.instance,
            None => {
                let place = match self.slots.try_take() {
                    Some(place) => place,
                    None => {
                        self.queued.fetch_add(1, Ordering::AcqRel);
                        let place = self.slots.take(self.route.limits.queue_timeout).await;
                        self.queued.fetch_sub(1, Ordering::AcqRel);
                        place?
                    }
                };
                // The store yields at every epoch tick, so a start function that spins is
                // dropped here when the time is up.
                match tokio::time::timeout_at(deadline, self.instantiate(place)).await {
                    Ok(instance) => instance?,
                    Err(_elapsed) => return Err(Failure::Timeout),
                }
            }
        };
        Ok(Lease {
            instance,
            deadline,
            data,
            _permit: permit,
        })
    }

    async fn instantiate(&self, place: OwnedSemaphorePermit) -> Result<Instance, Failure> {
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
            _slot: place,
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
            // Requests wait for a place: this instance's goes to one of them.
            (true, true) if self.slots.wanted() => {
                drop(instance);
                Some(InstanceEvent::Evicted)
            }
            (true, true) => {
                self.idle.lock().push(Idle {
                    instance,
                    since: Instant::now(),
                });
                // A request that began to wait just now may have missed it: make room.
                std::sync::atomic::fence(Ordering::SeqCst);
                if self.slots.wanted() {
                    self.slots.make_room();
                }
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
        self.idle.lock().len()
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
