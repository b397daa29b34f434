//! What a guest may reach outside its sandbox: its route's `outbound` grant ([`Grant`]),
//! enforced at the three places anything leaves.
//!
//! - **Names** (`wasi:sockets/ip-name-lookup`): the host answers only for the names the
//!   grant lists ([`Lookup`]); any other name is refused without a DNS query, so a guest can
//!   neither probe the network nor leak data through DNS, and a name longer than RFC 1035
//!   allows (253 bytes) is refused before anything else. The addresses it answers are those
//!   a name may lead to ([`reach`]): public ones; private ones (RFC 1918, CGNAT, ULA, ...,
//!   and this machine's own) only within the route's `outbound-private`; never loopback,
//!   link-local (cloud metadata), unspecified, multicast, reserved or documentation ones —
//!   unless the grant lists that address literally.
//! - **TCP** (`wasi:sockets/tcp`, through wasmtime-wasi's address check): `connect` only to
//!   an address a granted name resolves to (as above), a granted address literally, or, for
//!   `*`, a public address that is not this machine's, on the granted port. `bind` only as
//!   part of a connect, `listen` and UDP never: the guest gets `access-denied`, never a trap.
//! - **HTTP** (`wasi:http/outgoing-handler`, [`OutboundHttp`]): a request whose scheme,
//!   host and port the grant lists, without user-info in its authority, is sent by the host
//!   ([`super::egress`]) to an address resolved as above; any other is refused before any
//!   connection with `error-code.http-request-denied`.
//!
//! Lookups are bounded: answers are kept [`RESOLVED_FOR`], failures [`FAILED_FOR`], at most
//! [`MAX_RESOLVED_NAMES`] names a route; at most [`MAX_LOOKUPS_IN_FLIGHT`] run at once for a
//! route, each holding its place until the resolver answers (getaddrinfo cannot be
//! abandoned: a name whose DNS never answers holds a blocking thread, never more than these).
//!
//! Every refusal is counted, and logged once per route and target (its first
//! [`MAX_LOGGED_TARGET`] bytes and a digest), at most [`MAX_LOGGED_REFUSALS`] a route: what
//! is kept is a digest each, so a guest can neither flood the log nor fill memory.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use http::HeaderName;
use wasmtime_wasi_http::{
    DEFAULT_FORBIDDEN_HEADERS, Error as HttpError, ForbiddenHeaderFilter, RequestOptions, WasiBody,
    WasiHttpHooks,
};

use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::sockets::network::{self, ErrorCode, IpAddress, Network};
use wasmtime_wasi::p2::{DynPollable, Pollable, SocketError};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::sockets::WasiSocketsView;

use super::super::bindings::{HostIpNameLookup, HostResolveAddressStream, View};
use crate::config::{OutboundHost, OutboundNetwork, OutboundScheme, OutboundTarget, Route};
use crate::http::protocol::is_hop_by_hop;
use crate::http::stats::{OutboundEvent, RouteStats};

/// How long a granted name's addresses are trusted before it is resolved again.
pub const RESOLVED_FOR: Duration = Duration::from_secs(30);
/// How long a failed lookup is remembered (answered again without a query).
pub const FAILED_FOR: Duration = Duration::from_secs(5);
/// How long a name lookup may take.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Lookups a route may have in flight at once (each may hold a thread of the blocking pool
/// every route's file I/O shares, until the resolver answers).
pub const MAX_LOOKUPS_IN_FLIGHT: usize = 4;
/// Names whose answers a route keeps (an `http(s)://*` grant lets a guest name any).
pub const MAX_RESOLVED_NAMES: usize = 1024;
/// The longest name looked up (RFC 1035 §2.3.4: 255 octets on the wire, 253 as text).
pub const MAX_NAME_LEN: usize = 253;
/// Distinct refused targets logged per route; past this, refusals are only counted.
pub const MAX_LOGGED_REFUSALS: usize = 256;
/// Bytes of a refused target shown in the log (a digest tells longer ones apart).
pub const MAX_LOGGED_TARGET: usize = 128;
/// What a route keeps of its logged refusals: a digest each.
pub const MAX_REFUSALS_KEPT_BYTES: usize = MAX_LOGGED_REFUSALS * size_of::<u64>();

/// A lookup's answer: the addresses (canonical, sorted), or why there are none.
type Answer = Result<Vec<IpAddr>, ErrorCode>;

/// How the host looks names up: the system's resolver ([`SystemResolver`]), or a test's.
pub trait Resolver: Send + Sync + 'static {
    /// `name`'s addresses.
    fn lookup(
        &self,
        name: &str,
    ) -> std::pin::Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;
}

/// The system's resolver (getaddrinfo(3), on tokio's blocking pool).
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn lookup(
        &self,
        name: &str,
    ) -> std::pin::Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        let name = name.to_owned();
        Box::pin(async move {
            Ok(tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .map(|a| a.ip())
                .collect())
        })
    }
}

/// A route's grant, shared by all its instances.
pub struct Grant {
    route: Arc<str>,
    targets: Vec<OutboundTarget>,
    /// The private networks a granted name may resolve into.
    private: Vec<OutboundNetwork>,
    /// This machine's own addresses, private to names and out of `*`'s reach.
    own: &'static [IpAddr],
    resolver: Arc<dyn Resolver>,
    lookups: Arc<tokio::sync::Semaphore>,
    lookup_timeout: Duration,
    failed_for: Duration,
    tls: Arc<rustls::ClientConfig>,
    stats: Arc<RouteStats>,
    /// Outbound connections open now (TCP sockets, HTTP requests), and the most allowed.
    open: AtomicUsize,
    max_open: usize,
    connect_timeout: Duration,
    resolved: Mutex<HashMap<String, (Instant, Answer)>>,
    /// Digests of the refusals logged.
    logged: Mutex<HashSet<u64>>,
    digest: RandomState,
}

impl Grant {
    /// `route`'s `outbound` grant; `tls` is the client outgoing HTTPS uses, `stats` where
    /// what it allows and refuses is counted.
    pub fn new(
        route: &Route,
        tls: Arc<rustls::ClientConfig>,
        stats: Arc<RouteStats>,
    ) -> Arc<Grant> {
        Grant::with_resolver(route, tls, stats, Arc::new(SystemResolver))
    }

    /// [`Grant::new`], names looked up by `resolver`.
    pub fn with_resolver(
        route: &Route,
        tls: Arc<rustls::ClientConfig>,
        stats: Arc<RouteStats>,
        resolver: Arc<dyn Resolver>,
    ) -> Arc<Grant> {
        Arc::new(Grant {
            route: route.display_name().into(),
            targets: route.limits.outbound.clone(),
            private: route.limits.outbound_private.clone(),
            own: own_addresses(),
            resolver,
            lookups: Arc::new(tokio::sync::Semaphore::new(MAX_LOOKUPS_IN_FLIGHT)),
            lookup_timeout: LOOKUP_TIMEOUT,
            failed_for: FAILED_FOR,
            tls,
            stats,
            open: AtomicUsize::new(0),
            max_open: route.limits.max_outbound_connections,
            connect_timeout: route.limits.outbound_connect_timeout,
            resolved: Mutex::default(),
            logged: Mutex::default(),
            digest: RandomState::new(),
        })
    }

    /// Takes one of the route's `max-outbound-connections`, if one is free.
    pub fn open_connection(self: &Arc<Self>) -> Option<OpenConnection> {
        let taken = self.open.fetch_add(1, Ordering::AcqRel);
        if taken >= self.max_open {
            self.open.fetch_sub(1, Ordering::AcqRel);
            self.refused("connection", "beyond max-outbound-connections");
            return None;
        }
        Some(OpenConnection {
            grant: self.clone(),
            opened: Instant::now(),
        })
    }

    /// How long an outbound connect may take.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The route's figures.
    pub fn stats(&self) -> &Arc<RouteStats> {
        &self.stats
    }

    /// Whether `name` is granted as a host (for any scheme).
    fn grants_name(&self, name: &str) -> bool {
        self.targets
            .iter()
            .any(|t| matches!(&t.host, OutboundHost::Name(n) if n == name))
    }

    /// Whether the grant lists `ip` literally (for `scheme` and `port`, if given).
    fn lists(&self, ip: IpAddr, on: Option<(OutboundScheme, u16)>) -> bool {
        self.targets.iter().any(|t| {
            matches!(t.host, OutboundHost::Ip(listed) if listed.to_canonical() == ip)
                && on.is_none_or(|(scheme, port)| t.scheme == scheme && t.port == port)
        })
    }

    /// Whether a granted name may lead to `ip`: a public address not this machine's, or
    /// one within the route's `outbound-private`; never a [`Reach::Never`] one.
    fn name_may_reach(&self, ip: IpAddr) -> bool {
        match reach(ip) {
            Reach::Never => false,
            Reach::Public if !self.own.contains(&ip) => true,
            _ => {
                let embedded = match ip {
                    IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
                    IpAddr::V4(_) => None,
                };
                self.private
                    .iter()
                    .any(|net| net.contains(ip) || embedded.is_some_and(|v4| net.contains(v4)))
            }
        }
    }

    /// Whether `*` may lead to `ip`: a public address, not this machine's.
    fn star_may_reach(&self, ip: IpAddr) -> bool {
        reach(ip) == Reach::Public && !self.own.contains(&ip)
    }

    /// The addresses a guest may be told for `name`: a granted name's, resolved by the host,
    /// those a name may lead to and those the grant lists literally; an address written as
    /// a name is itself. A name longer than [`MAX_NAME_LEN`] is refused before anything.
    pub async fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, ErrorCode> {
        if name.strip_suffix('.').unwrap_or(name).len() > MAX_NAME_LEN {
            self.refused("name lookup of an over-long name", name);
            return Err(ErrorCode::InvalidArgument);
        }
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Ok(ip) = name.trim_matches(['[', ']']).parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        if !self.grants_name(&name) {
            self.refused("name lookup", &name);
            return Err(ErrorCode::AccessDenied);
        }
        self.addresses(&name, |ip| self.name_may_reach(ip) || self.lists(ip, None))
            .await
    }

    /// `name`'s addresses that `keep` keeps; none is a refusal.
    async fn addresses(
        &self,
        name: &str,
        keep: impl Fn(IpAddr) -> bool,
    ) -> Result<Vec<IpAddr>, ErrorCode> {
        let ips: Vec<IpAddr> = self
            .lookup(name)
            .await?
            .into_iter()
            .filter(|ip| keep(*ip))
            .collect();
        if ips.is_empty() {
            self.refused(
                "a name resolving only to addresses the grant does not open",
                name,
            );
            return Err(ErrorCode::NameUnresolvable);
        }
        Ok(ips)
    }

    /// `name`'s addresses (canonical, sorted), or why there are none: kept
    /// [`RESOLVED_FOR`], a failure [`FAILED_FOR`].
    async fn lookup(&self, name: &str) -> Answer {
        let fresh = |(at, answer): &(Instant, Answer)| {
            at.elapsed()
                < if answer.is_ok() {
                    RESOLVED_FOR
                } else {
                    self.failed_for
                }
        };
        if let Some(known) = self
            .resolved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            && fresh(known)
        {
            return known.1.clone();
        }
        let answer = self.query(name).await;
        let mut resolved = self.resolved.lock().unwrap_or_else(|e| e.into_inner());
        if resolved.len() >= MAX_RESOLVED_NAMES && !resolved.contains_key(name) {
            resolved.retain(|_, known| fresh(known));
        }
        if resolved.len() < MAX_RESOLVED_NAMES || resolved.contains_key(name) {
            resolved.insert(name.to_owned(), (Instant::now(), answer.clone()));
        }
        answer
    }

    /// Asks the resolver, within [`LOOKUP_TIMEOUT`] and one of the route's
    /// [`MAX_LOOKUPS_IN_FLIGHT`] places, held until the resolver answers.
    async fn query(&self, name: &str) -> Answer {
        let deadline = tokio::time::Instant::now() + self.lookup_timeout;
        let places = self.lookups.clone();
        let resolver = self.resolver.clone();
        let name = name.to_owned();
        // A task of its own, so that the place is given back when the resolver answers,
        // not when the caller stops waiting.
        let task = tokio::spawn(async move {
            let place = tokio::time::timeout_at(deadline, places.acquire_owned())
                .await
                .ok()?
                .ok()?;
            let found = resolver.lookup(&name).await;
            drop(place);
            Some(found)
        });
        let found = tokio::time::timeout_at(deadline, task)
            .await
            .ok()
            .and_then(Result::ok)
            .flatten()
            .ok_or(ErrorCode::TemporaryResolverFailure)?
            .map_err(|_| ErrorCode::NameUnresolvable)?;
        let mut ips: Vec<IpAddr> = found.into_iter().map(|ip| ip.to_canonical()).collect();
        ips.sort();
        ips.dedup();
        Ok(ips)
    }

    /// Where an outgoing HTTP request may go: the addresses of its authority, if the grant
    /// lists its scheme, host and port, and the TLS server name for `https`.
    pub async fn http(
        self: &Arc<Self>,
        uri: &http::Uri,
    ) -> Result<(Vec<SocketAddr>, Option<String>, OpenConnection), HttpError> {
        let (scheme, default_port) = match uri.scheme_str() {
            Some("https") => (OutboundScheme::Https, 443),
            Some("http") => (OutboundScheme::Http, 80),
            _ => return Err(HttpError::HttpRequestUriInvalid),
        };
        // User-info (RFC 9110 §4.2.4: not to be sent in http(s) URIs) would reach the
        // upstream in Host, naming someone the grant did not.
        if let Some(authority) = uri.authority().filter(|a| a.as_str().contains('@')) {
            self.refused("http request with user-info", authority.as_str());
            return Err(HttpError::HttpRequestDenied);
        }
        let host = uri
            .host()
            .ok_or(HttpError::HttpRequestUriInvalid)?
            .trim_matches(['[', ']'])
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(default_port);
        let refused = || {
            self.refused(
                "http request",
                &format!("{}://{host}:{port}", uri.scheme_str().unwrap_or("http")),
            );
            HttpError::HttpRequestDenied
        };
        if host.len() > MAX_NAME_LEN {
            return Err(refused());
        }
        let literal = host.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
        let on = |t: &&OutboundTarget| t.scheme == scheme && t.port == port;
        // A name or address the grant lists before `*`.
        let granted = self
            .targets
            .iter()
            .filter(on)
            .find(|t| match &t.host {
                OutboundHost::Name(name) => *name == host,
                OutboundHost::Ip(ip) => Some(ip.to_canonical()) == literal,
                OutboundHost::Any => false,
            })
            .or_else(|| {
                self.targets
                    .iter()
                    .filter(on)
                    .find(|t| t.host == OutboundHost::Any)
            });
        let Some(target) = granted else {
            return Err(refused());
        };
        let ips = match (literal, &target.host) {
            (Some(ip), OutboundHost::Ip(_)) => vec![ip],
            (Some(ip), _) if self.star_may_reach(ip) => vec![ip],
            (Some(_), _) => return Err(refused()),
            (None, OutboundHost::Name(_)) => self
                .addresses(&host, |ip| {
                    self.name_may_reach(ip) || self.lists(ip, Some((scheme, port)))
                })
                .await
                .map_err(|_| refused())?,
            (None, _) => self
                .addresses(&host, |ip| self.star_may_reach(ip))
                .await
                .map_err(|_| refused())?,
        };
        let addrs: Vec<SocketAddr> = ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .filter(|addr| self.lists(addr.ip(), Some((scheme, port))) || !is_own_listener(*addr))
            .collect();
        if addrs.is_empty() {
            return Err(refused());
        }
        let open = self
            .open_connection()
            .ok_or(HttpError::ConnectionLimitReached)?;
        self.stats.outbound(OutboundEvent::HttpRequest);
        Ok((
            addrs,
            (scheme == OutboundScheme::Https).then_some(host),
            open,
        ))
    }

    /// wasmtime-wasi's address check: whether the guest may use `addr` so.
    pub async fn allows(&self, addr: SocketAddr, use_: SocketAddrUse) -> bool {
        let ip = addr.ip().to_canonical();
        let allowed = match use_ {
            // The implicit bind of a connect (the wildcard address, any port).
            SocketAddrUse::TcpBind => ip.is_unspecified() && addr.port() == 0,
            SocketAddrUse::TcpConnect => {
                let mut allowed = false;
                for target in self
                    .targets
                    .iter()
                    .filter(|t| t.scheme == OutboundScheme::Tcp && t.port == addr.port())
                {
                    allowed = match &target.host {
                        OutboundHost::Ip(granted) => granted.to_canonical() == ip,
                        OutboundHost::Any => self.star_may_reach(ip) && !is_own_listener(addr),
                        OutboundHost::Name(name) => {
                            self.name_may_reach(ip)
                                && !is_own_listener(addr)
                                && self.lookup(name).await.is_ok_and(|ips| ips.contains(&ip))
                        }
                    };
                    if allowed {
                        break;
                    }
                }
                allowed
            }
            _ => false,
        };
        if allowed && matches!(use_, SocketAddrUse::TcpConnect) {
            self.stats.outbound(OutboundEvent::TcpConnect);
        }
        if !allowed {
            let what = match use_ {
                SocketAddrUse::TcpBind => "tcp bind",
                SocketAddrUse::TcpListen => "tcp listen",
                SocketAddrUse::TcpConnect => "tcp connect",
                _ => "udp",
            };
            self.refused(what, &addr.to_string());
        }
        allowed
    }

    /// What the route keeps of the refusals it logged, in bytes.
    #[cfg(test)]
    fn refusals_kept_bytes(&self) -> usize {
        let logged = self.logged.lock().unwrap_or_else(|e| e.into_inner());
        logged.len() * size_of::<u64>()
    }

    /// Counts a refusal (`what`, of `target`, as the guest gave it), and logs it once per
    /// route and target: the target's first [`MAX_LOGGED_TARGET`] bytes, escaped, and a
    /// digest of all of it; only the digest is kept.
    fn refused(&self, what: &str, target: &str) {
        self.stats.outbound(OutboundEvent::Refused);
        let mut hasher = self.digest.build_hasher();
        what.hash(&mut hasher);
        target.hash(&mut hasher);
        let digest = hasher.finish();
        let mut logged = self.logged.lock().unwrap_or_else(|e| e.into_inner());
        let room = (logged.len() + 1) * size_of::<u64>() <= MAX_REFUSALS_KEPT_BYTES;
        if room && logged.insert(digest) {
            drop(logged);
            tracing::warn!(
                route = %self.route,
                what,
                target = %super::super::output::log_safe(target, MAX_LOGGED_TARGET),
                target_bytes = target.len(),
                digest = %format_args!("{digest:016x}"),
                "outbound refused: not in the route's outbound grant"
            );
        }
    }
}

/// This server's own listeners, as `(address, port)` pairs with every local address an
/// unspecified (`0.0.0.0`, `[::]`) listener stands for: set once the server has bound them.
static OWN_LISTENERS: std::sync::RwLock<Vec<SocketAddr>> = std::sync::RwLock::new(Vec::new());

/// Records the server's listeners (TCP, admin included), so no grant through a name or `*`
/// leads a guest back into the server itself. Adds to what earlier servers of the process
/// recorded (tests run several).
pub fn set_own_listeners(listeners: &[SocketAddr]) {
    let local = local_addresses();
    let mut own = Vec::new();
    for listener in listeners {
        let ip = listener.ip().to_canonical();
        if ip.is_unspecified() {
            own.extend(local.iter().map(|l| SocketAddr::new(*l, listener.port())));
        } else {
            own.push(SocketAddr::new(ip, listener.port()));
        }
    }
    let mut recorded = OWN_LISTENERS.write().unwrap_or_else(|e| e.into_inner());
    for addr in own {
        if !recorded.contains(&addr) {
            recorded.push(addr);
        }
    }
}

/// Whether `addr` is one of this server's own listeners.
fn is_own_listener(addr: SocketAddr) -> bool {
    let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
    OWN_LISTENERS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&addr)
}

/// Every address of this machine's interfaces (getifaddrs(3)).
fn local_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list that freeifaddrs releases; each
    // entry's `ifa_addr` is null or points at a sockaddr of the family it names.
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            return out;
        }
        let mut entry = list;
        while !entry.is_null() {
            let addr = (*entry).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let v4 = &*(addr as *const libc::sockaddr_in);
                        out.push(IpAddr::from(u32::from_be(v4.sin_addr.s_addr).to_be_bytes()));
                    }
                    libc::AF_INET6 => {
                        let v6 = &*(addr as *const libc::sockaddr_in6);
                        out.push(IpAddr::from(v6.sin6_addr.s6_addr));
                    }
                    _ => {}
                }
            }
            entry = (*entry).ifa_next;
        }
        libc::freeifaddrs(list);
    }
    out
}

/// One of a route's outbound connections: given back, and the time it was held counted,
/// when dropped.
pub struct OpenConnection {
    grant: Arc<Grant>,
    opened: Instant,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.grant.open.fetch_sub(1, Ordering::AcqRel);
        self.grant.stats.outbound_held(self.opened.elapsed());
    }
}

/// This machine's own addresses (its interfaces', read once), canonical.
fn own_addresses() -> &'static [IpAddr] {
    static OWN: OnceLock<Vec<IpAddr>> = OnceLock::new();
    OWN.get_or_init(|| {
        local_addresses()
            .into_iter()
            .map(|ip| ip.to_canonical())
            .collect()
    })
}

/// Where an address stands for a grant that reaches it through a name or `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// On the internet: a granted name or `*` may lead there.
    Public,
    /// A private or special-purpose network: a granted name may lead there within the
    /// route's `outbound-private`; `*` never.
    Private,
    /// Never through a name or `*`, only written literally: loopback, link-local (cloud
    /// metadata), unspecified, multicast, broadcast, reserved, documentation.
    Never,
}

/// Where `ip` stands. IPv6 addresses that carry an IPv4 one to the IPv4 network (mapped,
/// SIIT, NAT64's well-known prefix, 6to4) stand where that one does.
pub fn reach(ip: IpAddr) -> Reach {
    match ip.to_canonical() {
        IpAddr::V4(v4) => reach_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => reach_v4(v4),
            None => reach_v6(v6),
        },
    }
}

/// RFC 6890's special-purpose IPv4 registry, by what a name may make of it.
fn reach_v4(ip: Ipv4Addr) -> Reach {
    match ip.octets() {
        // "This network", loopback, link-local (169.254.169.254: cloud metadata), multicast,
        // reserved (240/4) and broadcast, documentation (RFC 5737).
        [0 | 127, ..] | [169, 254, ..] | [224..=255, ..] => Reach::Never,
        [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => Reach::Never,
        // RFC 1918, CGNAT (RFC 6598: 100.100.100.200 is a cloud's metadata), IETF protocol
        // assignments (192.0.0.0/24), benchmarking (RFC 2544), the 6to4 relay (RFC 7526).
        [10, ..] | [172, 16..=31, ..] | [192, 168, ..] | [100, 64..=127, ..] => Reach::Private,
        [192, 0, 0, _] | [198, 18..=19, ..] | [192, 88, 99, _] => Reach::Private,
        _ => Reach::Public,
    }
}

/// The IPv6 registry (RFC 6890 and later), for addresses that carry no IPv4 one.
fn reach_v6(ip: Ipv6Addr) -> Reach {
    let s = ip.segments();
    if u128::from(ip) >> 32 == 0 {
        // Unspecified, loopback, IPv4-compatible (deprecated, RFC 4291 §2.5.5.1).
        return Reach::Never;
    }
    match s {
        // Discard-only (RFC 6666), documentation (RFC 3849, RFC 9637), link-local, multicast.
        [0x100, 0, 0, 0, ..] | [0x2001, 0xdb8, ..] | [0x3fff, 0..=0x0fff, ..] => Reach::Never,
        [0xfe80..=0xfebf, ..] | [0xff00..=0xffff, ..] => Reach::Never,
        // ULA (RFC 4193: fd00:ec2::254 is a cloud's metadata), site-local (RFC 3879),
        // local-use NAT64 (RFC 8215), Teredo (RFC 4380), benchmarking (RFC 5180).
        [0xfc00..=0xfdff, ..] | [0xfec0..=0xfeff, ..] | [0x64, 0xff9b, 1, ..] => Reach::Private,
        [0x2001, 0, ..] | [0x2001, 2, 0, ..] => Reach::Private,
        _ => Reach::Public,
    }
}

/// The IPv4 address an IPv6 one carries to the IPv4 network: mapped (`::ffff:0:0/96`),
/// SIIT (`::ffff:0:0:0/96`, RFC 6052), NAT64's well-known prefix (`64:ff9b::/96`), 6to4
/// (`2002::/16`, RFC 3056).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let o = ip.octets();
    let tail = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match ip.segments() {
        [0, 0, 0, 0, 0, 0xffff, ..] | [0, 0, 0, 0, 0xffff, 0, ..] => Some(tail),
        [0x64, 0xff9b, 0, 0, 0, 0, ..] => Some(tail),
        [0x2002, ..] => Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])),
        _ => None,
    }
}

/// The host side of `resolve-address-stream`: the addresses, found before it was made.
pub struct Lookup(std::vec::IntoIter<IpAddr>);

#[wasmtime_wasi::async_trait]
impl Pollable for Lookup {
    async fn ready(&mut self) {}
}

/// What the outbound hooks need of a store's data: the resource table and the route's
/// grant.
pub trait GrantView: Send + 'static {
    /// The resource table.
    fn table(&mut self) -> &mut ResourceTable;
    /// The route's outbound grant.
    fn grant(&self) -> &Arc<Grant>;
}

impl<T: GrantView> HostIpNameLookup for View<'_, T> {
    async fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> Result<Resource<Lookup>, SocketError> {
        self.0.table().get(&network)?;
        let grant = self.0.grant().clone();
        let ips = grant.resolve(&name).await?;
        Ok(self.0.table().push(Lookup(ips.into_iter()))?)
    }
}

impl<T: GrantView> HostResolveAddressStream for View<'_, T> {
    fn resolve_next_address(
        &mut self,
        this: Resource<Lookup>,
    ) -> Result<Option<IpAddress>, SocketError> {
        Ok(self.0.table().get_mut(&this)?.0.next().map(IpAddress::from))
    }

    fn subscribe(&mut self, this: Resource<Lookup>) -> wasmtime::Result<Resource<DynPollable>> {
        wasmtime_wasi::p2::subscribe(self.0.table(), this)
    }

    fn drop(&mut self, this: Resource<Lookup>) -> wasmtime::Result<()> {
        self.0.table().delete(this)?;
        Ok(())
    }
}

/// A store's side of wasi:http: its route's grant decides its outgoing requests.
pub struct OutboundHttp {
    grant: Arc<Grant>,
}

impl OutboundHttp {
    /// The policy of a route with `grant`.
    pub fn new(grant: Arc<Grant>) -> Self {
        OutboundHttp { grant }
    }

    /// The route's grant.
    pub fn grant(&self) -> &Arc<Grant> {
        &self.grant
    }
}

type SendResult = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ),
    HttpError,
>;

impl WasiHttpHooks for OutboundHttp {
    /// wasmtime-wasi-http's list (connection, keep-alive, host, proxy-*, transfer-encoding,
    /// upgrade, http2-settings) and every other hop-by-hop field (`te`, `proxy-*`): a guest
    /// can neither set them on a response nor see them on its request. `trailer` stays
    /// allowed: a wasi:http guest can send trailers, and HTTP/1.1 needs them declared.
    fn forbidden_header_filter(&mut self) -> ForbiddenHeaderFilter {
        Arc::new(|name: &HeaderName| {
            DEFAULT_FORBIDDEN_HEADERS.contains(name)
                || (is_hop_by_hop(name.as_str()) && name != http::header::TRAILER)
        })
    }

    /// Smaller than wasmtime's 1 MiB: an outgoing body holds its chunks until it is sent
    /// ([`super::limits::MAX_HELD_HTTP_BYTES`]).
    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        super::limits::OUTGOING_BODY_CHUNK_BYTES
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _body_sent: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let grant = self.grant.clone();
        Box::new(async move {
            let (addrs, tls_name, open) = grant.http(request.uri()).await?;
            let tls = tls_name.map(|name| (grant.tls.clone(), name));
            let cap = grant.connect_timeout;
            super::egress::send(request, addrs, tls, options, cap, grant.stats.clone(), open).await
        })
    }
}

/// What the host's `ip-name-lookup` needs of `wasi:sockets/network` (its error conversion),
/// answered as wasmtime-wasi answers it; the linker keeps wasmtime-wasi's own network
/// functions.
impl<T: GrantView + WasiSocketsView> network::Host for View<'_, T> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        self.0.sockets().convert_error_code(error)
    }

    fn network_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        self.0.sockets().network_error_code(err)
    }
}

impl<T: GrantView> network::HostNetwork for View<'_, T> {
    fn drop(&mut self, this: Resource<Network>) -> wasmtime::Result<()> {
        self.0.table().delete(this)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resolver that answers from a table (a name not in it fails), or never answers;
    /// it counts the lookups it was asked for.
    struct Fake {
        answers: Vec<(&'static str, Vec<IpAddr>)>,
        hang: bool,
        asked: AtomicUsize,
    }

    impl Fake {
        fn new(answers: &[(&'static str, &[&str])]) -> Arc<Fake> {
            Arc::new(Fake {
                answers: answers
                    .iter()
                    .map(|(n, ips)| (*n, ips.iter().map(|ip| ip.parse().unwrap()).collect()))
                    .collect(),
                hang: false,
                asked: AtomicUsize::new(0),
            })
        }

        fn hanging() -> Arc<Fake> {
            Arc::new(Fake {
                answers: Vec::new(),
                hang: true,
                asked: AtomicUsize::new(0),
            })
        }

        fn asked(&self) -> usize {
            self.asked.load(Ordering::SeqCst)
        }
    }

    impl Resolver for Fake {
        fn lookup(
            &self,
            name: &str,
        ) -> std::pin::Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            if self.hang {
                return Box::pin(std::future::pending());
            }
            let found = self.answers.iter().find(|(n, _)| *n == name);
            let answer = found
                .map(|(_, ips)| ips.clone())
                .ok_or_else(|| std::io::Error::other("no such name"));
            Box::pin(async move { answer })
        }
    }

    /// A grant of one route with these routes.toml keys, names looked up by `resolver`.
    fn grant(keys: &str, resolver: Arc<Fake>) -> Arc<Grant> {
        let text = format!("[[route]]\npath = \"/\"\ncomponent = \"x.wasm\"\n{keys}\n");
        let config = crate::config::Config::parse(std::path::Path::new("routes.toml"), &text)
            .unwrap_or_else(|e| panic!("{e}"));
        let tls = super::super::egress::tls_client(None).unwrap();
        let stats = crate::http::stats::Stats::new().route("/");
        Grant::with_resolver(&config.routes[0], tls, stats, resolver)
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|ip| ip.parse().unwrap()).collect()
    }

    #[tokio::test]
    async fn refused_eight_mib_names_keep_a_bounded_number_of_bytes() {
        let fake = Fake::new(&[]);
        let grant = grant("", fake.clone());
        let mut answers = Vec::new();
        for i in 0..16 {
            let name = format!("{i}{}", "\x01".repeat(8 << 20));
            answers.push(grant.resolve(&name).await);
        }
        let kept = grant.refusals_kept_bytes();
        assert!(kept <= MAX_REFUSALS_KEPT_BYTES, "{kept} bytes kept");
        assert!(
            answers
                .iter()
                .all(|a| *a == Err(ErrorCode::InvalidArgument))
        );
        assert_eq!(fake.asked(), 0);
    }

    #[tokio::test]
    async fn over_long_names_are_refused_before_anything_else() {
        let long = format!("{}{}", format!("{}.", "a".repeat(62)).repeat(4), "ab");
        let fake = Fake::new(&[]);
        let grant = grant(
            &format!("outbound = [\"tcp://{}:443\", \"https://*\"]", &long[..253]),
            fake.clone(),
        );
        // 253 bytes is a name (RFC 1035: 255 on the wire); 254 without a final dot is not.
        assert_eq!(
            grant.resolve(&long[..253]).await,
            Err(ErrorCode::NameUnresolvable)
        );
        assert_eq!(fake.asked(), 1);
        assert_eq!(
            grant.resolve(&long[..254]).await,
            Err(ErrorCode::InvalidArgument)
        );
        let uri: http::Uri = format!("https://{}x/", &long[..253]).parse().unwrap();
        assert!(matches!(
            grant.http(&uri).await,
            Err(HttpError::HttpRequestDenied)
        ));
        assert_eq!(fake.asked(), 1);
    }

    /// Addresses a name or `*` must never reach unless the operator says so.
    const PRIVATE: &[&str] = &[
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "100.100.100.200",
        "100.64.0.1",
        "192.0.0.1",
        "198.18.0.1",
        "fd00:ec2::254",
        "fc00::1",
        "::ffff:10.0.0.1",
        "64:ff9b::a00:1",
        "64:ff9b:1::1",
        "2002:a00:1::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    ];
    /// Addresses neither a name nor `*` may reach at all.
    const NEVER: &[&str] = &[
        "127.0.0.1",
        "0.0.0.0",
        "0.1.2.3",
        "169.254.169.254",
        "224.0.0.1",
        "239.255.255.250",
        "255.255.255.255",
        "240.0.0.1",
        "192.0.2.1",
        "198.51.100.1",
        "203.0.113.1",
        "::1",
        "::",
        "::127.0.0.1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::7f00:1",
        "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::1",
        "fe80::1",
        "ff02::1",
        "2001:db8::1",
        "100::1",
    ];
    const PUBLIC: &[&str] = &["93.184.216.34", "2606:2800:220:1::1", "64:ff9b::5db8:d822"];

    #[tokio::test]
    async fn star_never_reaches_private_or_special_networks() {
        let grant = grant(
            "outbound = [\"tcp://*:443\"]\noutbound-private = [\"0.0.0.0/0\", \"::/0\"]",
            Fake::new(&[]),
        );
        for ip in PRIVATE.iter().chain(NEVER) {
            let addr = SocketAddr::new(ip.parse().unwrap(), 443);
            assert!(!grant.allows(addr, SocketAddrUse::TcpConnect).await, "{ip}");
        }
        for ip in PUBLIC {
            let addr = SocketAddr::new(ip.parse().unwrap(), 443);
            assert!(grant.allows(addr, SocketAddrUse::TcpConnect).await, "{ip}");
        }
    }

    #[tokio::test]
    async fn a_name_reaches_private_networks_only_where_the_operator_says_so() {
        let everything: Vec<&str> = PRIVATE.iter().chain(NEVER).chain(PUBLIC).copied().collect();
        let fake = Fake::new(&[("api.tenant.example", &everything)]);
        let public = grant(
            "outbound = [\"tcp://api.tenant.example:443\"]",
            fake.clone(),
        );
        let mut found = public.resolve("api.tenant.example").await.unwrap();
        found.sort();
        let mut want = ips(PUBLIC);
        want.sort();
        assert_eq!(found, want);
        for ip in PRIVATE.iter().chain(NEVER) {
            let addr = SocketAddr::new(ip.parse().unwrap(), 443);
            assert!(
                !public.allows(addr, SocketAddrUse::TcpConnect).await,
                "{ip}"
            );
        }
        let listed = grant(
            "outbound = [\"tcp://api.tenant.example:443\"]\noutbound-private = [\"10.0.0.0/8\", \"fd00::/8\"]",
            fake.clone(),
        );
        let mut found = listed.resolve("api.tenant.example").await.unwrap();
        found.sort();
        let mut want = ips(&[
            "10.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
            "fd00:ec2::254",
            "93.184.216.34",
            "2606:2800:220:1::1",
            "64:ff9b::5db8:d822",
        ]);
        want.sort();
        assert_eq!(found, want);
        // Loopback, link-local and the like stay out whatever the list says.
        let all = grant(
            "outbound = [\"tcp://api.tenant.example:443\"]\noutbound-private = [\"0.0.0.0/0\", \"::/0\"]",
            fake,
        );
        let found = all.resolve("api.tenant.example").await.unwrap();
        for ip in NEVER {
            assert!(
                !found.contains(&ip.parse::<IpAddr>().unwrap().to_canonical()),
                "{ip}"
            );
        }
    }

    #[tokio::test]
    async fn the_machines_own_addresses_are_private_to_names_and_out_of_reach_of_star() {
        let own: &'static [IpAddr] =
            Box::leak(ips(&["93.184.216.34", "10.1.1.1"]).into_boxed_slice());
        let fake = Fake::new(&[("api.tenant.example", &["93.184.216.34", "8.8.8.8"])]);
        let mut star = grant(
            "outbound = [\"tcp://*:443\", \"tcp://api.tenant.example:443\"]",
            fake,
        );
        Arc::get_mut(&mut star).unwrap().own = own;
        let own_addr = SocketAddr::new(own[0], 443);
        assert!(!star.allows(own_addr, SocketAddrUse::TcpConnect).await);
        assert_eq!(
            star.resolve("api.tenant.example").await,
            Ok(ips(&["8.8.8.8"]))
        );
    }

    #[tokio::test]
    async fn a_name_leads_to_a_loopback_address_listed_literally() {
        let fake = Fake::new(&[("localhost", &["127.0.0.1", "::1"])]);
        let grant = grant(
            "outbound = [\"tcp://localhost:5432\", \"tcp://127.0.0.1:5432\", \"http://localhost:9000\"]",
            fake,
        );
        assert_eq!(grant.resolve("localhost").await, Ok(ips(&["127.0.0.1"])));
        let db = SocketAddr::new(ips(&["127.0.0.1"])[0], 5432);
        assert!(grant.allows(db, SocketAddrUse::TcpConnect).await);
        // Listed for tcp on 5432, not for HTTP on 9000.
        let uri: http::Uri = "http://localhost:9000/".parse().unwrap();
        assert!(grant.http(&uri).await.is_err());
        let loopback6 = SocketAddr::new(ips(&["::1"])[0], 5432);
        assert!(!grant.allows(loopback6, SocketAddrUse::TcpConnect).await);
    }

    #[tokio::test]
    async fn failed_lookups_are_remembered_briefly() {
        let fake = Fake::new(&[]);
        let mut grant = grant("outbound = [\"tcp://gone.example:443\"]", fake.clone());
        Arc::get_mut(&mut grant).unwrap().failed_for = Duration::from_millis(200);
        for _ in 0..5 {
            assert_eq!(
                grant.resolve("gone.example").await,
                Err(ErrorCode::NameUnresolvable)
            );
            let addr = SocketAddr::new(ips(&["93.184.216.34"])[0], 443);
            assert!(!grant.allows(addr, SocketAddrUse::TcpConnect).await);
        }
        assert_eq!(fake.asked(), 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = grant.resolve("gone.example").await;
        assert_eq!(fake.asked(), 2);
    }

    #[tokio::test]
    async fn lookups_in_flight_are_bounded_per_route() {
        let names: Vec<String> = (0..3 * MAX_LOOKUPS_IN_FLIGHT)
            .map(|i| format!("n{i}.example"))
            .collect();
        let keys: Vec<String> = names.iter().map(|n| format!("\"tcp://{n}:443\"")).collect();
        let fake = Fake::hanging();
        let mut grant = grant(&format!("outbound = [{}]", keys.join(", ")), fake.clone());
        Arc::get_mut(&mut grant).unwrap().lookup_timeout = Duration::from_millis(200);
        let started = Instant::now();
        let lookups = names.iter().map(|name| {
            let grant = grant.clone();
            let name = name.clone();
            tokio::spawn(async move { grant.resolve(&name).await })
        });
        for lookup in lookups.collect::<Vec<_>>() {
            assert_eq!(
                lookup.await.unwrap(),
                Err(ErrorCode::TemporaryResolverFailure)
            );
        }
        assert!(started.elapsed() < Duration::from_secs(2));
        // The lookups that never answered still hold their places: no more start.
        assert_eq!(fake.asked(), MAX_LOOKUPS_IN_FLIGHT);
    }

    #[tokio::test]
    async fn userinfo_in_an_outgoing_authority_is_refused() {
        let grant = grant("outbound = [\"http://93.184.216.34\"]", Fake::new(&[]));
        let uri: http::Uri = "http://evil@93.184.216.34/".parse().unwrap();
        assert!(matches!(
            grant.http(&uri).await,
            Err(HttpError::HttpRequestDenied)
        ));
        let uri: http::Uri = "http://93.184.216.34/".parse().unwrap();
        assert!(grant.http(&uri).await.is_ok());
    }
}
