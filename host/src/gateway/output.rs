//! `wsgi.errors` (the guest's stderr) and the guest's stdout: into the server log, line by
//! line, tagged with the route, and bounded.
//!
//! A guest can print without limit; the server's memory and log cannot grow without limit.
//! Lines are cut at [`MAX_LINE`] bytes, and once an instance has printed [`DEFAULT_BUDGET`]
//! bytes during one request the rest of that request's output is dropped, with one warning
//! (the budget is renewed for each request, so a warm instance that logs a line per request
//! keeps logging). Invalid UTF-8 is shown lossily.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// The longest line logged; the rest of a longer line is dropped.
pub const MAX_LINE: usize = 4096;
/// Bytes of output one instance may log per request.
pub const DEFAULT_BUDGET: u64 = 1 << 20;

/// The output budget that an instance's stdout and stderr share.
#[derive(Clone, Default)]
pub struct OutputBudget(Arc<AtomicU64>);

impl OutputBudget {
    /// A full budget again, for the next request.
    pub fn renew(&self) {
        self.0.store(DEFAULT_BUDGET, Ordering::Relaxed);
    }
}

/// One of a guest's output streams.
#[derive(Clone)]
pub struct GuestOutput {
    route: Arc<str>,
    stream: &'static str,
    budget: OutputBudget,
}

impl GuestOutput {
    /// stdout and stderr of one instance of `route`, sharing `budget`.
    pub fn pair(route: &str, budget: &OutputBudget) -> (GuestOutput, GuestOutput) {
        let route: Arc<str> = Arc::from(route);
        budget.renew();
        let budget = budget.clone();
        let out = GuestOutput {
            route: route.clone(),
            stream: "stdout",
            budget: budget.clone(),
        };
        (
            out,
            GuestOutput {
                route,
                stream: "stderr",
                budget,
            },
        )
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            output: self.clone(),
            line: Vec::new(),
            cut: false,
        })
    }
}

struct LineWriter {
    output: GuestOutput,
    line: Vec<u8>,
    /// The current line was cut at MAX_LINE; drop until its newline.
    cut: bool,
}

impl LineWriter {
    fn emit(&mut self) {
        if self.line.is_empty() && !self.cut {
            return;
        }
        let text = String::from_utf8_lossy(&self.line);
        let marker = if self.cut { " [line cut]" } else { "" };
        tracing::info!(target: "guest", route = %self.output.route, stream = self.output.stream, "{text}{marker}");
        self.line.clear();
        self.cut = false;
    }

    fn take_budget(&self, n: usize) -> usize {
        let budget = &self.output.budget.0;
        let mut left = budget.load(Ordering::Relaxed);
        loop {
            let take = left.min(n as u64);
            match budget.compare_exchange_weak(
                left,
                left - take,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    if take < n as u64 && left > 0 {
                        tracing::warn!(route = %self.output.route, "guest output exceeds {DEFAULT_BUDGET} bytes in one request; dropping the rest");
                    }
                    return take as usize;
                }
                Err(now) => left = now,
            }
        }
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let allowed = self.take_budget(buf.len());
        for &b in &buf[..allowed] {
            if b == b'\n' {
                self.emit();
            } else if self.line.len() < MAX_LINE {
                self.line.push(b);
            } else {
                self.cut = true;
            }
        }
        // Report everything as written: output past the budget is dropped, not an error
        // the guest could turn into a crash.
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.emit();
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.emit();
    }
}
