//! The one `bindgen!` of the host: Rust types for wit/wsgi.wit.
//!
//! `input` and `start-response` map to the host's own types ([`crate::input::Input`],
//! [`crate::start_response::StartResponse`]), so the resource table holds those directly.
//! Every import is `async` (reading the request body and writing the response wait on the
//! network, and must not block a tokio worker) and `trappable`: a host function returns a
//! trap only when the guest broke the component model's contract in a way that makes going on
//! unsafe (a handle that is not in the table); everything a guest can recover from is a WIT
//! `error` value (habit 4 in STYLE.md).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "app",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "cheroot:wsgi/types.input": crate::input::Input,
        "cheroot:wsgi/types.start-response": crate::start_response::StartResponse,
    },
});

pub use cheroot::wsgi::types::{Environ, Error as WsgiError, Host, HostInput, HostStartResponse};
pub use exports::cheroot::wsgi::application::Guest as Application;
