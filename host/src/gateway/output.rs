//! What a guest writes that reaches the server log — `wsgi.errors` (its stderr), its stdout,
//! the `exc_info` it passes to `start_response`, the text of its exceptions and traps — made
//! safe and bounded.
//!
//! Safe: every guest text goes through [`log_safe`], which escapes CR, LF and every other
//! control character (and `\`), so a guest cannot write a line that looks like the server's
//! own (`ERROR route=/bank ...`), in text or JSON logs alike, and cuts it at a size.
//! Bounded: per request, an instance may log [`MAX_LINES`] lines and [`MAX_BYTES`] bytes of
//! output; what is past either is counted, not logged, and the request ends with one line
//! saying how much was dropped ([`OutputBudget::settle`]). A guest that prints a million
//! short lines costs the server a million counter increments, not a million log events.
//! Lines are cut at [`MAX_LINE`] bytes. Invalid UTF-8 is shown lossily.

use std::fmt::Write as _;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use crate::config::Route;

/// The longest line logged; the rest of a longer line is dropped.
pub const MAX_LINE: usize = 4096;
/// Lines of output one instance may log per request.
pub const MAX_LINES: u64 = 200;
/// Bytes of output one instance may log per request.
pub const MAX_BYTES: u64 = 256 << 10;
/// The most of an exception's or trap's text that is logged.
pub const MAX_FAILURE_TEXT: usize = 16 << 10;
/// The most of an `exc_info` that is logged.
pub const MAX_EXC_INFO: usize = 4096;

/// `text` as one log-safe line of at most about `max` bytes: `\` and control characters
/// (C0, DEL, C1) escaped (`\n`, `\r`, `\t`, `\x1b`, `\u{85}`), the rest cut with a note of
/// how much.
pub fn log_safe(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max) + 16);
    for (at, c) in text.char_indices() {
        if out.len() >= max {
            let _ = write!(out, "... [{} more bytes]", text.len() - at);
            break;
        }
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if ('\u{80}'..='\u{9f}').contains(&c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// What one instance may still log in the current request, shared by its stdout and stderr
/// (and by the gateway, for `exc_info`).
#[derive(Clone, Default)]
pub struct OutputBudget(Arc<Counters>);

#[derive(Default)]
struct Counters {
    lines: AtomicU64,
    bytes: AtomicU64,
    dropped_lines: AtomicU64,
    dropped_bytes: AtomicU64,
}

impl OutputBudget {
    /// A full budget again, for the next request.
    pub fn renew(&self) {
        let c = &self.0;
        c.lines.store(MAX_LINES, Ordering::Relaxed);
        c.bytes.store(MAX_BYTES, Ordering::Relaxed);
        c.dropped_lines.store(0, Ordering::Relaxed);
        c.dropped_bytes.store(0, Ordering::Relaxed);
    }

    /// Takes one line of `len` bytes from the budget; `false` (and counted as dropped) if
    /// the request has logged all it may.
    pub fn take_line(&self, len: usize) -> bool {
        let c = &self.0;
        let len = len as u64;
        let took = c
            .lines
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
            && c.bytes
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(len))
                .is_ok();
        if !took {
            c.dropped_lines.fetch_add(1, Ordering::Relaxed);
            c.dropped_bytes.fetch_add(len, Ordering::Relaxed);
        }
        took
    }

    /// The request is over: one line for what it could not log, if anything (the route's
    /// name is only formatted then: this runs after every request).
    pub fn settle(&self, route: &Route) {
        let lines = self.0.dropped_lines.swap(0, Ordering::Relaxed);
        if lines > 0 {
            let bytes = self.0.dropped_bytes.swap(0, Ordering::Relaxed);
            tracing::warn!(
                route = %route.display_name(),
                dropped_lines = lines,
                dropped_bytes = bytes,
                "guest output past {MAX_LINES} lines or {MAX_BYTES} bytes in one request was not logged"
            );
        }
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
                budget: budget.clone(),
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
        if self.output.budget.take_line(self.line.len()) {
            let text = log_safe(&String::from_utf8_lossy(&self.line), 2 * MAX_LINE);
            let marker = if self.cut { " [line cut]" } else { "" };
            tracing::info!(target: "guest", route = %self.output.route, stream = self.output.stream, "{text}{marker}");
        }
        self.line.clear();
        self.cut = false;
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        for &b in buf {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_text_cannot_forge_a_log_line() {
        let forged = "ok\nERROR route=\"/bank\" forged\r\n\x1b[2K\u{85}\\n";
        let safe = log_safe(forged, 1024);
        assert!(!safe.contains(['\n', '\r', '\x1b', '\u{85}']), "{safe}");
        assert_eq!(
            safe,
            "ok\\nERROR route=\"/bank\" forged\\r\\n\\x1b[2K\\u{85}\\\\n"
        );
        let long = log_safe(&"x".repeat(1 << 20), 100);
        assert!(long.len() < 150 && long.ends_with("more bytes]"), "{long}");
    }

    #[test]
    fn lines_past_the_budget_are_counted_not_logged() {
        let budget = OutputBudget::default();
        budget.renew();
        let logged = (0..1000).filter(|_| budget.take_line(2)).count();
        assert_eq!(logged as u64, MAX_LINES);
        assert_eq!(
            budget.0.dropped_lines.load(Ordering::Relaxed),
            1000 - MAX_LINES
        );
        budget.renew();
        assert!(budget.take_line(10));
        assert!(
            !budget.take_line(MAX_BYTES as usize),
            "one line may not take it all"
        );
    }
}
