//! What a guest may reach outside its sandbox: its route's `outbound` grant ([`Grant`]),
//! enforced at the three places anything leaves.
//!
//! - **Names** (`wasi:sockets/ip-name-lookup`): the host answers only for the names the
//!   grant lists ([`Lookup`]); any other name is refused without a DNS query, so a guest can
//!   neither probe the network nor leak data through DNS. The addresses it answers leave
//!   out loopback, link-local (169.254.0.0/16, cloud metadata), unspecified and multicast
//!   ones: a granted name that resolves there is not followed.
//! - **TCP** (`wasi:sockets/tcp`, through wasmtime-wasi's address check): `connect` only to
//!   an address a granted name resolves to (as above) or a granted address literally, on
//!   the granted port. `bind` only as part of a connect, `listen` and UDP never: the guest
//!   gets `access-denied`, never a trap.
//! - **HTTP** (`wasi:http/outgoing-handler`, [`OutboundHttp`]): a request whose scheme,
//!   host and port the grant lists is sent by the host ([`super::egress`]) to an address
//!   resolved as above; any other is refused before any connection with
//!   `error-code.http-request-denied`.
//!
//! Every refusal is logged once per route and target, so an operator sees what an
//! application tried without a guest being able to flood the log.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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
use crate::config::{OutboundHost, OutboundScheme, OutboundTarget, Route};
use crate::http::protocol::is_hop_by_hop;
use crate::http::stats::{OutboundEvent, RouteStats};

/// How long a granted name's addresses are trusted before it is resolved again.
const RESOLVED_FOR: Duration = Duration::from_secs(30);
/// How long a name lookup may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Distinct refused targets logged per route; past this, refusals are only counted.
const MAX_LOGGED_REFUSALS: usize = 256;

/// A route's grant, shared by all its instances.
pub struct Grant {
    route: Arc<str>,
    targets: Vec<OutboundTarget>,
    tls: Arc<rustls::ClientConfig>,
    stats: Arc<RouteStats>,
    /// Outbound connections open now (TCP sockets, HTTP requests), and the most allowed.
    open: AtomicUsize,
    max_open: usize,
    connect_timeout: Duration,
    resolved: Mutex<HashMap<String, (Instant, Vec<IpAddr>)>>,
    logged: Mutex<HashSet<String>>,
}

impl Grant {
    /// `route`'s `outbound` grant; `tls` is the client outgoing HTTPS uses, `stats` where
    /// what it allows and refuses is counted.
    pub fn new(
        route: &Route,
        tls: Arc<rustls::ClientConfig>,
        stats: Arc<RouteStats>,
    ) -> Arc<Grant> {
        Arc::new(Grant {
            route: route.display_name().into(),
            targets: route.limits.outbound.clone(),
            tls,
            stats,
            open: AtomicUsize::new(0),
            max_open: route.limits.max_outbound_connections,
            connect_timeout: route.limits.outbound_connect_timeout,
            resolved: Mutex::default(),
            logged: Mutex::default(),
        })
    }

    /// Takes one of the route's `max-outbound-connections`, if one is free.
    pub fn open_connection(self: &Arc<Self>) -> Option<OpenConnection> {
        let taken = self.open.fetch_add(1, Ordering::AcqRel);
        if taken >= self.max_open {
            self.open.fetch_sub(1, Ordering::AcqRel);
            self.refused("a connection beyond max-outbound-connections");
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

    /// The addresses a guest may be told for `name`: a granted name's, resolved by the host,
    /// without the ones no name may lead to ([`is_reachable`]); an address written as a name
    /// is itself.
    pub async fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, ErrorCode> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Ok(ip) = name.trim_matches(['[', ']']).parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        if !self.grants_name(&name) {
            self.refused(&format!("name lookup of {name:?}"));
            return Err(ErrorCode::AccessDenied);
        }
        self.lookup(name).await
    }

    /// `name`'s addresses, without those no name may lead to; cached for [`RESOLVED_FOR`].
    async fn lookup(&self, name: String) -> Result<Vec<IpAddr>, ErrorCode> {
        if let Some((at, ips)) = self
            .resolved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&name)
            && at.elapsed() < RESOLVED_FOR
        {
            return Ok(ips.clone());
        }
        let found =
            tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((name.as_str(), 0)))
                .await
                .map_err(|_| ErrorCode::TemporaryResolverFailure)?
                .map_err(|_| ErrorCode::NameUnresolvable)?;
        let mut ips: Vec<IpAddr> = found
            .map(|a| a.ip().to_canonical())
            .filter(|ip| is_reachable(*ip))
            .collect();
        ips.sort();
        ips.dedup();
        if ips.is_empty() {
            self.refused(&format!(
                "{name}: it resolves only to loopback, link-local or other addresses no name may lead to"
            ));
            return Err(ErrorCode::NameUnresolvable);
        }
        self.resolved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, (Instant::now(), ips.clone()));
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
        let host = uri
            .host()
            .ok_or(HttpError::HttpRequestUriInvalid)?
            .trim_matches(['[', ']'])
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(default_port);
        let literal = host.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
        let granted = self.targets.iter().find(|t| {
            t.scheme == scheme
                && t.port == port
                && match &t.host {
                    OutboundHost::Name(name) => *name == host,
                    OutboundHost::Ip(ip) => Some(ip.to_canonical()) == literal,
                    OutboundHost::Any => true,
                }
        });
        let refused = || {
            self.refused(&format!(
                "{} request to {host}:{port}",
                uri.scheme_str().unwrap_or("http")
            ));
            HttpError::HttpRequestDenied
        };
        let Some(target) = granted else {
            return Err(refused());
        };
        let ips = match (literal, &target.host) {
            (Some(ip), OutboundHost::Ip(_)) => vec![ip],
            (Some(ip), _) if is_reachable(ip) => vec![ip],
            (Some(_), _) => return Err(refused()),
            (None, _) => self.lookup(host.clone()).await.map_err(|_| refused())?,
        };
        let literal_grant = matches!(target.host, OutboundHost::Ip(_));
        let addrs: Vec<SocketAddr> = ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .filter(|addr| literal_grant || !is_own_listener(*addr))
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
                        OutboundHost::Any => is_reachable(ip) && !is_own_listener(addr),
                        OutboundHost::Name(name) => {
                            !is_own_listener(addr)
                                && self.resolve(name).await.is_ok_and(|ips| ips.contains(&ip))
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
            self.refused(&format!("{what} {addr}"));
        }
        allowed
    }

    /// Counts a refusal, and logs it once per route and target.
    fn refused(&self, target: &str) {
        self.stats.outbound(OutboundEvent::Refused);
        let mut logged = self.logged.lock().unwrap_or_else(|e| e.into_inner());
        if logged.len() < MAX_LOGGED_REFUSALS && logged.insert(target.to_owned()) {
            tracing::warn!(
                route = %self.route,
                target = %super::super::output::log_safe(target, 256),
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

/// Whether a name (or `*`) may lead to `ip`: not loopback, link-local (cloud metadata at
/// 169.254.169.254 included), unspecified, multicast or broadcast. An operator who means
/// such an address writes it literally.
fn is_reachable(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast())
        }
        IpAddr::V6(v6) => {
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unicast_link_local())
        }
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
