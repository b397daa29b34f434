//! The close signal: a response's request that its connection close once the response is
//! complete. The gateway raises it when an application's framing cannot be trusted; the
//! connection waits on it.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// A response's request that its connection close once the response is complete: set when
/// the application's framing cannot be trusted. The connection task waits on it; a response
/// whose head has not reached hyper yet simply gets `Connection: close`.
#[derive(Debug, Default)]
pub struct CloseRequest {
    notify: Notify,
    requested: AtomicBool,
}

impl CloseRequest {
    /// Asks for the connection to close after the response in flight.
    pub fn request(&self) {
        self.requested.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    /// Whether a close was asked for.
    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::Acquire)
    }

    /// Resolves once a close is asked for.
    pub async fn requested(&self) {
        self.notify.notified().await;
    }
}
