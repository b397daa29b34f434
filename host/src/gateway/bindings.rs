//! The one `bindgen!` of the host: Rust types for wit/wsgi.wit, generated into a private
//! module and re-exported by name (as wasmtime's wasi-http does), so the rest of the crate
//! names only what it uses.
//!
//! `input` and `start-response` map to the host's own types ([`super::input::Input`],
//! [`super::start_response::StartResponse`]), so the resource table holds those directly.
//! Every import is `async` (reading the request body and writing the response wait on the
//! network, and must not block a tokio worker) and `trappable`: a host function returns a
//! trap only when the guest broke the component model's contract in a way that makes going on
//! unsafe (a handle that is not in the table); everything a guest can recover from is a WIT
//! `error` value.

mod generated {
    wasmtime::component::bindgen!({
        path: "embed/wsgi.wit",
        world: "app",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "cheroot:wsgi/types.input": crate::gateway::input::Input,
            "cheroot:wsgi/types.start-response": crate::gateway::start_response::StartResponse,
        },
    });
}

pub use generated::cheroot::wsgi::types::{
    Environ, Error as WsgiError, Host, HostInput, HostStartResponse,
};
pub use generated::{App, AppPre};
