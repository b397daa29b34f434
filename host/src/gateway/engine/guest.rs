//! The two kinds of guest a route may hold, told apart by what the component exports: a
//! WSGI application (world `app` of wit/wsgi.wit, exporting `cheroot:wsgi/application`) or
//! a standard `wasi:http/proxy` component (exporting `wasi:http/incoming-handler` 0.2.x, as
//! componentize-js, the `wasi` Rust crate, Spin and `wasmtime serve` users build them).
//! Both link against the same host: WASI p2 and wasi:http's types and outgoing handler.

use std::fmt;

use wasmtime::Store;

use super::super::bindings::{App, AppPre, Proxy, ProxyPre};
use super::super::state::HostState;

/// What kind of guest a component is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A WSGI application: `handle(environ, start-response)`.
    Wsgi,
    /// A wasi:http proxy: `incoming-handler.handle(request, response-out)`.
    WasiHttp,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so the route lists can align it (`{:<9}`).
        f.pad(match self {
            Kind::Wsgi => "wsgi",
            Kind::WasiHttp => "wasi:http",
        })
    }
}

/// A component with every import resolved, ready to instantiate.
#[derive(Clone)]
pub enum GuestPre {
    /// A WSGI application.
    Wsgi(AppPre<HostState>),
    /// A wasi:http proxy.
    WasiHttp(ProxyPre<HostState>),
}

/// The exports of one instance.
pub enum Guest {
    /// A WSGI application's.
    Wsgi(App),
    /// A wasi:http proxy's.
    WasiHttp(Proxy),
}

impl GuestPre {
    /// Which kind it is.
    pub fn kind(&self) -> Kind {
        match self {
            GuestPre::Wsgi(_) => Kind::Wsgi,
            GuestPre::WasiHttp(_) => Kind::WasiHttp,
        }
    }

    /// The engine it was compiled for.
    pub fn engine(&self) -> &wasmtime::Engine {
        match self {
            GuestPre::Wsgi(pre) => pre.engine(),
            GuestPre::WasiHttp(pre) => pre.engine(),
        }
    }

    /// A new instance in `store`.
    pub async fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Guest> {
        Ok(match self {
            GuestPre::Wsgi(pre) => Guest::Wsgi(pre.instantiate_async(store).await?),
            GuestPre::WasiHttp(pre) => Guest::WasiHttp(pre.instantiate_async(store).await?),
        })
    }
}
