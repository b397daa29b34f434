//! A guest's failures as the gateway reports them: a trap (with its wasm backtrace), an
//! exception it raised, or a host error, each made safe for the log.

use super::super::output::{MAX_FAILURE_TEXT, log_safe};
use crate::http::error::Failure;

/// A trap from wasmtime: the trap itself first, then the wasm backtrace when there is one
/// (whose function names are the guest's to choose), made safe for the log.
pub(super) fn trap(error: wasmtime::Error) -> Failure {
    let root = error.root_cause().to_string();
    let backtrace = error
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .map(|b| format!("\n{b}"))
        .unwrap_or_default();
    Failure::Trap(log_safe(&format!("{root}{backtrace}"), MAX_FAILURE_TEXT))
}

/// An exception the guest raised, its text made safe for the log.
pub(super) fn raised_failure(text: &str) -> Failure {
    Failure::Raised(log_safe(text, MAX_FAILURE_TEXT))
}

pub(super) fn internal(e: impl std::fmt::Display) -> Failure {
    Failure::Internal(e.to_string())
}
