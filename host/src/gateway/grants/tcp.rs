//! A guest's TCP sockets: wasmtime-wasi's, with the host's hooks around their life. Whom a
//! socket may reach is its route's grant's ([`super::outbound`]); here is how much:
//!
//! - **Counted.** A socket takes one of the route's `max-outbound-connections` from
//!   `create-tcp-socket` until the guest drops it or its instance goes; the time it was
//!   held is added to the route's `outbound_seconds`.
//! - **Bounded.** A connect that has not finished within the route's
//!   `outbound-connect-timeout` fails with `timeout` (ETIMEDOUT in the guest), instead of
//!   waiting for the kernel to give up (two minutes for an address that never answers).
//!   wasmtime-wasi keeps the connect to itself, so the host watches where the guest waits
//!   for it — `poll`, `pollable.block` on the socket's pollable — and, once the deadline
//!   passes, wakes the guest and answers its `finish-connect` with `timeout`, the socket
//!   reset underneath (the kernel's connect abandoned).
//! - **Metered.** The streams of a connected socket count the bytes they carry for the
//!   route's `outbound_bytes`.

use std::collections::HashMap;

use bytes::Bytes;
use tokio::time::Instant;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceType};
use wasmtime_wasi::p2::bindings::io::poll as io_poll;
use wasmtime_wasi::p2::bindings::sockets::network::{
    ErrorCode, IpAddressFamily, IpSocketAddress, Network,
};
use wasmtime_wasi::p2::bindings::sockets::tcp::HostTcpSocket;
use wasmtime_wasi::p2::bindings::sockets::tcp_create_socket;
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, DynPollable, InputStream, Pollable, SocketError, StreamResult,
    TcpSocket,
};
use wasmtime_wasi::sockets::WasiSocketsView;

use super::super::bindings::{HostTcpCreateSocket, View};
use super::outbound::{GrantView, OpenConnection};
use super::watched::Watched;
use crate::http::stats::RouteStats;

/// What the TCP hooks need of a store's data: the outbound hooks' (the resource table, the
/// grant), wasmtime-wasi's sockets and the instance's own.
pub trait TcpView: GrantView + WasiSocketsView {
    /// The instance's TCP sockets.
    fn tcp(&mut self) -> &mut TcpSockets;
}

/// An instance's TCP sockets, by handle.
#[derive(Default)]
pub struct TcpSockets {
    /// Every socket, with its place in the route's count.
    open: HashMap<u32, OpenConnection>,
    /// Sockets connecting, with their deadline; `true` once it passed.
    connecting: HashMap<u32, (Instant, bool)>,
    /// The pollables of connecting sockets (pollable → socket).
    pollables: HashMap<u32, u32>,
}

impl TcpSockets {
    /// Forgets a socket's connect: done, failed, or the socket gone.
    fn connected(&mut self, socket: u32) {
        if self.connecting.remove(&socket).is_some() {
            self.pollables.retain(|_, s| *s != socket);
        }
    }

    /// Of `pollables` (by their place in the guest's list), those of connecting sockets:
    /// the ones whose deadline passed, and the earliest deadline still to come.
    fn watch(&mut self, pollables: &[u32]) -> (Vec<u32>, Option<Instant>) {
        let now = Instant::now();
        let mut expired = Vec::new();
        let mut next: Option<Instant> = None;
        for (i, pollable) in pollables.iter().enumerate() {
            let Some(socket) = self.pollables.get(pollable) else {
                continue;
            };
            let Some((deadline, passed)) = self.connecting.get_mut(socket) else {
                continue;
            };
            if *passed || *deadline <= now {
                *passed = true;
                expired.push(i as u32);
            } else {
                next = Some(next.map_or(*deadline, |n| n.min(*deadline)));
            }
        }
        (expired, next)
    }
}

/// `create-tcp-socket`, within the route's `max-outbound-connections`.
impl<T: TcpView> HostTcpCreateSocket for View<'_, T> {
    fn create_tcp_socket(
        &mut self,
        family: IpAddressFamily,
    ) -> Result<Resource<TcpSocket>, SocketError> {
        let Some(open) = self.0.grant().open_connection() else {
            return Err(ErrorCode::NewSocketLimit.into());
        };
        let socket = tcp_create_socket::Host::create_tcp_socket(&mut self.0.sockets(), family)?;
        self.0.tcp().open.insert(socket.rep(), open);
        Ok(socket)
    }
}

/// The guest dropped a TCP socket: closed, and no longer counted.
fn close_tcp_socket(state: &mut impl TcpView, rep: u32) -> wasmtime::Result<()> {
    let socket = state.table().delete(Resource::<TcpSocket>::new_own(rep))?;
    drop(socket);
    state.tcp().connected(rep);
    state.tcp().open.remove(&rep);
    Ok(())
}

/// A connected socket's streams, counted for the route (children of the socket still).
fn metered(
    state: &mut impl TcpView,
    socket: u32,
    input: Resource<DynInputStream>,
    output: Resource<DynOutputStream>,
) -> wasmtime::Result<(Resource<DynInputStream>, Resource<DynOutputStream>)> {
    let stats = state.grant().stats().clone();
    let parent = Resource::<TcpSocket>::new_borrow(socket);
    let inner = state.table().delete(input)?;
    let input: DynInputStream = Box::new(Metered {
        inner,
        stats: stats.clone(),
    });
    let input = state.table().push_child(input, &parent)?;
    let inner = state.table().delete(output)?;
    let before = move |bytes: &Bytes| {
        stats.outbound_sent(bytes.len() as u64);
        Ok(())
    };
    let output: DynOutputStream = Box::new(Watched { inner, before });
    let output = state.table().push_child(output, &parent)?;
    Ok((input, output))
}

/// A socket whose connect timed out: its state replaced by a new socket's of the same
/// family, which drops (and so abandons) the connect in progress.
fn abandon_connect(state: &mut impl TcpView, rep: u32) -> wasmtime::Result<()> {
    let this = || Resource::<TcpSocket>::new_borrow(rep);
    let family = HostTcpSocket::address_family(&mut state.sockets(), this())?;
    let fresh = tcp_create_socket::Host::create_tcp_socket(&mut state.sockets(), family)
        .map_err(|e| wasmtime::format_err!("replacing a timed-out socket: {e:?}"))?;
    let fresh = state.table().delete(fresh)?;
    *state.table().get_mut(&this())? = fresh;
    Ok(())
}

/// A socket error as the guest sees it.
fn socket_error(state: &mut impl TcpView, error: SocketError) -> wasmtime::Result<ErrorCode> {
    wasmtime_wasi::p2::bindings::sockets::network::Host::convert_error_code(
        &mut state.sockets(),
        error,
    )
}

/// `list` waited on, as `poll` does: at most until the earliest connect deadline among
/// them, after which those sockets' pollables are ready.
async fn poll_watched(
    state: &mut impl TcpView,
    list: Vec<Resource<DynPollable>>,
) -> wasmtime::Result<Vec<u32>> {
    if state.tcp().pollables.is_empty() {
        return io_poll::Host::poll(state.table(), list).await;
    }
    let reps: Vec<u32> = list.iter().map(Resource::rep).collect();
    let (expired, next) = state.tcp().watch(&reps);
    if !expired.is_empty() {
        return Ok(expired);
    }
    let Some(deadline) = next else {
        return io_poll::Host::poll(state.table(), list).await;
    };
    match tokio::time::timeout_at(deadline, io_poll::Host::poll(state.table(), list)).await {
        Ok(ready) => ready,
        Err(_elapsed) => Ok(state.tcp().watch(&reps).0),
    }
}

type Store<'a, T> = StoreContextMut<'a, T>;

/// Shadows what the host hooks into: the socket's drop, `start-connect`, `finish-connect`
/// and `subscribe`, and `wasi:io/poll`'s `poll` and `pollable.block`.
pub fn add_to_linker<T: TcpView>(linker: &mut Linker<T>) -> anyhow::Result<()> {
    let mut tcp = linker.instance("wasi:sockets/tcp@0.2.12")?;
    tcp.resource(
        "tcp-socket",
        ResourceType::host::<TcpSocket>(),
        |mut store, rep| close_tcp_socket(store.data_mut(), rep),
    )?;
    tcp.func_wrap(
        "[method]tcp-socket.start-connect",
        |mut store: Store<'_, T>,
         (this, network, address): (Resource<TcpSocket>, Resource<Network>, IpSocketAddress)| {
            let state = store.data_mut();
            let rep = this.rep();
            match HostTcpSocket::start_connect(&mut state.sockets(), this, network, address) {
                Ok(()) => {
                    let deadline = Instant::now() + state.grant().connect_timeout();
                    state.tcp().connecting.insert(rep, (deadline, false));
                    Ok((Ok(()),))
                }
                Err(e) => Ok((Err(socket_error(state, e)?),)),
            }
        },
    )?;
    tcp.func_wrap(
        "[method]tcp-socket.finish-connect",
        |mut store: Store<'_, T>, (this,): (Resource<TcpSocket>,)| {
            let state = store.data_mut();
            let rep = this.rep();
            if state
                .tcp()
                .connecting
                .get(&rep)
                .is_some_and(|(_, passed)| *passed)
            {
                state.tcp().connected(rep);
                abandon_connect(state, rep)?;
                return Ok((Err(ErrorCode::Timeout),));
            }
            match HostTcpSocket::finish_connect(&mut state.sockets(), this) {
                Ok((input, output)) => {
                    state.tcp().connected(rep);
                    Ok((Ok(metered(state, rep, input, output)?),))
                }
                Err(e) => {
                    let code = socket_error(state, e)?;
                    if code != ErrorCode::WouldBlock {
                        state.tcp().connected(rep);
                    }
                    Ok((Err(code),))
                }
            }
        },
    )?;
    tcp.func_wrap(
        "[method]tcp-socket.subscribe",
        |mut store: Store<'_, T>, (this,): (Resource<TcpSocket>,)| {
            let state = store.data_mut();
            let rep = this.rep();
            let pollable = HostTcpSocket::subscribe(&mut state.sockets(), this)?;
            if state.tcp().connecting.contains_key(&rep) {
                state.tcp().pollables.insert(pollable.rep(), rep);
            }
            Ok((pollable,))
        },
    )?;
    let mut poll = linker.instance("wasi:io/poll@0.2.12")?;
    poll.func_wrap_async(
        "poll",
        |mut store: Store<'_, T>, (list,): (Vec<Resource<DynPollable>>,)| {
            Box::new(async move { Ok((poll_watched(store.data_mut(), list).await?,)) })
        },
    )?;
    poll.func_wrap_async(
        "[method]pollable.block",
        |mut store: Store<'_, T>, (this,): (Resource<DynPollable>,)| {
            Box::new(async move {
                poll_watched(store.data_mut(), vec![this]).await?;
                Ok(())
            })
        },
    )?;
    Ok(())
}

/// A socket's input stream, its bytes counted for the route.
struct Metered {
    inner: DynInputStream,
    stats: std::sync::Arc<RouteStats>,
}

#[wasmtime_wasi::async_trait]
impl Pollable for Metered {
    async fn ready(&mut self) {
        self.inner.ready().await
    }
}

#[wasmtime_wasi::async_trait]
impl InputStream for Metered {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        let bytes = self.inner.read(size)?;
        self.stats.outbound_received(bytes.len() as u64);
        Ok(bytes)
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await
    }
}
