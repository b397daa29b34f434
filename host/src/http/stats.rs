//! What operators see of a running server: counters and histograms per route, connection
//! figures, and readiness — exported as Prometheus/OpenMetrics text (`/metrics`, encoded by
//! `prometheus-client`) and as JSON (`/stats`, in the spirit of cheroot's `server.stats`).
//!
//! Owns the metric registry and the per-route handles the request path updates (plain
//! atomics, no lock on the hot path). Instance gauges (idle, busy, queued) are read from the
//! pools at scrape time (`Admin::refresh`). It does not serve them (`server::admin`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::error::Failure;

/// The route label of requests no route served (bad requests, 404s).
pub const UNROUTED: &str = "(none)";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabel {
    route: String,
    class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    route: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

/// The server's instance places (`max-instances`), as labelled.
const PLACES: [&str; 3] = ["alive", "max", "waiting"];

/// Status classes, as labelled.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// Instance gauges, as labelled.
const GAUGES: [&str; 3] = ["idle", "busy", "queued"];
/// The limits whose hits are counted, as labelled.
const LIMITS: [&str; 5] = ["timeout", "memory", "unavailable", "trap", "body-too-large"];
/// Instance events, as labelled.
const EVENTS: [&str; 4] = ["created", "recycled", "discarded", "evicted"];
/// Outbound events, as labelled.
const OUTBOUND: [&str; 3] = ["tcp-connect", "http-request", "refused"];
/// Directions of outbound bytes, as labelled.
const DIRECTIONS: [&str; 2] = ["sent", "received"];

/// The whole server's figures.
pub struct Stats {
    started: Instant,
    registry: Registry,
    connections_open: Gauge,
    connections_accepted: Counter,
    requests: Family<ClassLabel, Counter>,
    bytes_in: Family<RouteLabel, Counter>,
    bytes_out: Family<RouteLabel, Counter>,
    duration: Family<RouteLabel, Histogram>,
    guest_seconds: Family<RouteLabel, Counter<f64, std::sync::atomic::AtomicU64>>,
    limits: Family<KindLabel, Counter>,
    instance_events: Family<KindLabel, Counter>,
    instances: Family<KindLabel, Gauge>,
    /// Instances alive, `max-instances`, and requests waiting for a place: set at scrape
    /// time.
    places: [Gauge; PLACES.len()],
    outbound: Family<KindLabel, Counter>,
    outbound_bytes: Family<KindLabel, Counter>,
    outbound_seconds: Family<RouteLabel, Counter<f64, std::sync::atomic::AtomicU64>>,
    ready: AtomicBool,
    draining: AtomicBool,
    routes: std::sync::Mutex<Vec<Arc<RouteStats>>>,
}

/// One route's handles, updated by the request path.
pub struct RouteStats {
    name: String,
    requests: [Counter; 5],
    bytes_in: Counter,
    bytes_out: Counter,
    duration: Histogram,
    guest_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    limits: [Counter; LIMITS.len()],
    events: [Counter; EVENTS.len()],
    outbound: [Counter; OUTBOUND.len()],
    /// Sent, received.
    outbound_bytes: [Counter; 2],
    outbound_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    /// Idle, busy, queued: set from the pool at scrape time.
    instances: [Gauge; 3],
}

fn duration_buckets() -> Histogram {
    // 100 µs to about 100 s.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0001, 4.0, 11,
    ))
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    /// Empty figures, registered for `/metrics`.
    pub fn new() -> Stats {
        let mut registry = Registry::with_prefix("cheroot_wasm");
        let places = Family::<StateLabel, Gauge>::default();
        let stats = Stats {
            started: Instant::now(),
            connections_open: Gauge::default(),
            connections_accepted: Counter::default(),
            requests: Family::default(),
            bytes_in: Family::default(),
            bytes_out: Family::default(),
            duration: Family::new_with_constructor(duration_buckets),
            guest_seconds: Family::default(),
            limits: Family::default(),
            instance_events: Family::default(),
            instances: Family::default(),
            places: PLACES.map(|p| {
                places.get_or_create_owned(&StateLabel {
                    state: p.to_string(),
                })
            }),
            outbound: Family::default(),
            outbound_bytes: Family::default(),
            outbound_seconds: Family::default(),
            ready: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            routes: std::sync::Mutex::default(),
            registry: Registry::default(),
        };
        registry.register(
            "connections_open",
            "Client connections open now",
            stats.connections_open.clone(),
        );
        registry.register(
            "connections_accepted",
            "Client connections accepted",
            stats.connections_accepted.clone(),
        );
        registry.register(
            "requests",
            "Requests answered, by route and status class",
            stats.requests.clone(),
        );
        registry.register(
            "request_body_bytes",
            "Request body bytes read by applications",
            stats.bytes_in.clone(),
        );
        registry.register(
            "response_body_bytes",
            "Response body bytes sent",
            stats.bytes_out.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from the request to the end of its response, by route",
            stats.duration.clone(),
        );
        registry.register(
            "guest_seconds",
            "Wall-clock time instances spent serving requests, by route",
            stats.guest_seconds.clone(),
        );
        registry.register(
            "limit_hits",
            "Requests stopped by a limit: timeout, memory, unavailable (503), trap, body-too-large",
            stats.limits.clone(),
        );
        registry.register(
            "instance_events",
            "Instances created, recycled (max-requests), discarded (failed) and evicted (to make room under max-instances)",
            stats.instance_events.clone(),
        );
        registry.register(
            "instances",
            "Instances now: idle (warm), busy, and requests queued for one",
            stats.instances.clone(),
        );
        registry.register(
            "server_instances",
            "Instances alive now across every route, max-instances, and requests waiting for a place",
            places,
        );
        registry.register(
            "outbound",
            "Outbound TCP connections and HTTP requests the route's grant allowed, and attempts it refused",
            stats.outbound.clone(),
        );
        registry.register(
            "outbound_bytes",
            "Bytes the route's outbound connections sent and received (TCP payload; HTTP bodies)",
            stats.outbound_bytes.clone(),
        );
        registry.register(
            "outbound_seconds",
            "Seconds the route's outbound connections (TCP sockets, HTTP requests) were held open",
            stats.outbound_seconds.clone(),
        );
        Stats { registry, ..stats }
    }

    /// The handles of route `name` (host and prefix), created at start-up.
    pub fn route(&self, name: &str) -> Arc<RouteStats> {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        // A reload keeps a route's figures: same name, same counters.
        if let Some(known) = routes.iter().find(|r| r.name == name) {
            return known.clone();
        }
        let class = |c: &str| {
            self.requests.get_or_create_owned(&ClassLabel {
                route: name.into(),
                class: c.into(),
            })
        };
        let label = RouteLabel { route: name.into() };
        let kind = |k: &str| KindLabel {
            route: name.into(),
            kind: k.into(),
        };
        let route = Arc::new(RouteStats {
            name: name.to_string(),
            requests: CLASSES.map(class),
            bytes_in: self.bytes_in.get_or_create_owned(&label),
            bytes_out: self.bytes_out.get_or_create_owned(&label),
            duration: self.duration.get_or_create_owned(&label),
            guest_seconds: self.guest_seconds.get_or_create_owned(&label),
            limits: LIMITS.map(|l| self.limits.get_or_create_owned(&kind(l))),
            events: EVENTS.map(|e| self.instance_events.get_or_create_owned(&kind(e))),
            instances: GAUGES.map(|g| self.instances.get_or_create_owned(&kind(g))),
            outbound: OUTBOUND.map(|o| self.outbound.get_or_create_owned(&kind(o))),
            outbound_bytes: DIRECTIONS.map(|d| self.outbound_bytes.get_or_create_owned(&kind(d))),
            outbound_seconds: self.outbound_seconds.get_or_create_owned(&label),
        });
        routes.push(route.clone());
        route
    }

    /// A connection was accepted; the guard counts it open until dropped.
    pub fn connection(self: &Arc<Self>) -> ConnectionGuard {
        self.connections_accepted.inc();
        self.connections_open.inc();
        ConnectionGuard(self.clone())
    }

    /// Every route is compiled and its pool ready.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Shutdown has begun: no longer ready.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Ready for traffic (`/readyz`).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !self.draining.load(Ordering::Acquire)
    }

    /// The OpenMetrics text of every figure.
    pub fn metrics_text(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// Sets the server's instance gauges: alive, `max-instances`, waiting for a place.
    pub fn set_places(&self, alive: usize, max: usize, waiting: usize) {
        set_gauges(&self.places, [alive, max, waiting]);
    }

    /// The same figures as JSON.
    pub fn json(&self) -> serde_json::Value {
        let routes: serde_json::Map<String, serde_json::Value> = self
            .routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|r| (r.name.clone(), r.json()))
            .collect();
        serde_json::json!({
            "uptime_seconds": self.started.elapsed().as_secs_f64(),
            "ready": self.is_ready(),
            "connections": {
                "open": self.connections_open.get(),
                "accepted": self.connections_accepted.get(),
            },
            "instances": PLACES
                .iter()
                .zip(&self.places)
                .map(|(p, g)| (p.to_string(), g.get().into()))
                .collect::<serde_json::Map<_, _>>(),
            "routes": routes,
        })
    }
}

/// Sets `gauges` to `values`, in order.
fn set_gauges(gauges: &[Gauge], values: [usize; 3]) {
    for (gauge, n) in gauges.iter().zip(values) {
        gauge.set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}

/// Counts a connection as open while it lives.
pub struct ConnectionGuard(Arc<Stats>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections_open.dec();
    }
}

/// What happened to an outbound attempt, in [`OUTBOUND`]'s order.
#[derive(Debug, Clone, Copy)]
pub enum OutboundEvent {
    /// A TCP connection the grant allowed.
    TcpConnect,
    /// An HTTP request the grant allowed.
    HttpRequest,
    /// An attempt the grant refused (a name, a connection, a request, a listen, UDP).
    Refused,
}

/// An instance event, counted per route.
#[derive(Debug, Clone, Copy)]
pub enum InstanceEvent {
    /// A new instance.
    Created = 0,
    /// Replaced after `max-requests`.
    Recycled = 1,
    /// Dropped after a failure (trap, timeout, cut-off call).
    Discarded = 2,
    /// Dropped, idle or just done, to make room for another (`max-instances`).
    Evicted = 3,
}

impl RouteStats {
    /// Sets the instance gauges from the pool: idle, busy, queued.
    pub fn set_instances(&self, idle: usize, busy: usize, queued: usize) {
        set_gauges(&self.instances, [idle, busy, queued]);
    }

    /// This route's figures as JSON.
    fn json(&self) -> serde_json::Value {
        use serde_json::{Map, Value, json};
        let labelled = |names: &[&str], values: Vec<Value>| -> Map<String, Value> {
            names.iter().map(|n| n.to_string()).zip(values).collect()
        };
        let counts = |counters: &[Counter]| counters.iter().map(|c| json!(c.get())).collect();
        let mut instances = labelled(
            &GAUGES,
            self.instances.iter().map(|g| json!(g.get())).collect(),
        );
        instances.extend(labelled(&EVENTS, counts(&self.events)));
        json!({
            "requests": self.requests.iter().map(Counter::get).sum::<u64>(),
            "status": labelled(&CLASSES, counts(&self.requests)),
            "bytes_in": self.bytes_in.get(),
            "bytes_out": self.bytes_out.get(),
            "guest_seconds": self.guest_seconds.get(),
            "instances": instances,
            "limit_hits": labelled(&LIMITS, counts(&self.limits)),
            "outbound": labelled(&OUTBOUND, counts(&self.outbound)),
            "outbound_bytes": labelled(&DIRECTIONS, counts(&self.outbound_bytes)),
            "outbound_seconds": self.outbound_seconds.get(),
        })
    }

    /// A response with this status went out.
    pub fn answered(&self, status: http::StatusCode) {
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        self.requests[class].inc();
    }

    /// One exchange ended: its body bytes both ways, its duration and its guest time.
    pub fn exchanged(&self, bytes_in: u64, bytes_out: u64, took: Duration, guest: Duration) {
        self.bytes_in.inc_by(bytes_in);
        self.bytes_out.inc_by(bytes_out);
        self.duration.observe(took.as_secs_f64());
        self.guest_seconds.inc_by(guest.as_secs_f64());
    }

    /// A request ended in `failure`: count the limit it hit, if any.
    pub fn failed(&self, failure: &Failure) {
        let limit = match failure {
            Failure::Timeout | Failure::ClientTimeout => "timeout",
            Failure::Unavailable(_) => "unavailable",
            Failure::Trap(_) => "trap",
            Failure::BodyTooLarge => "body-too-large",
            _ => return,
        };
        self.hit(limit);
    }

    /// A growth of memory past the route's `memory` was refused.
    pub fn memory_refused(&self) {
        self.hit("memory");
    }

    fn hit(&self, limit: &str) {
        if let Some(i) = LIMITS.iter().position(|l| *l == limit) {
            self.limits[i].inc();
        }
    }

    /// The route's grant allowed a TCP connection or an HTTP request, or refused an attempt.
    pub fn outbound(&self, event: OutboundEvent) {
        self.outbound[event as usize].inc();
    }

    /// Bytes an outbound connection sent.
    pub fn outbound_sent(&self, n: u64) {
        self.outbound_bytes[0].inc_by(n);
    }

    /// Bytes an outbound connection received.
    pub fn outbound_received(&self, n: u64) {
        self.outbound_bytes[1].inc_by(n);
    }

    /// An outbound connection was held open this long.
    pub fn outbound_held(&self, held: Duration) {
        self.outbound_seconds.inc_by(held.as_secs_f64());
    }

    /// An instance was created, recycled or discarded.
    pub fn instance(&self, event: InstanceEvent) {
        self.events[event as usize].inc();
    }
}
