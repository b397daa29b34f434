//! The access log: one line per response, in Common or Combined Log Format, to standard
//! output or a file (`[server] access-log`, `--access-log`).
//!
//! A line is written when its response has ended — the body sent, cut off or abandoned —
//! so the byte count is what really went out. A request appends its line to one shared
//! buffer (a short lock, no system call, nothing woken); a thread of its own swaps the
//! buffer out and writes it every [`FLUSH_EVERY`], or as soon as it holds [`BATCH`] bytes:
//! a slow disk never stalls a request, a line is never half-written, and under load the
//! log costs a memcpy per request and a write per batch (the channel this replaced woke the
//! writer for nearly every line, which cost a quarter of a hello world's throughput). If
//! the buffer is full ([`MAX_BUFFERED`]) the line is dropped and counted (logged), rather
//! than blocking the server. Request line,
//! referer and user agent are escaped (`"`, `\` and bytes outside printable ASCII become
//! `\xHH`), so a client cannot forge log lines. Reopened on reload (SIGHUP), which is what
//! logrotate needs, even when the reload itself is refused.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::Thread;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use http::request::Parts;

use crate::config::{AccessLogFormat, AccessLogTarget};

/// How long a line may wait in the buffer.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// A buffer this full is written at once.
const BATCH: usize = 256 * 1024;
/// Bytes buffered (the writer behind) past which lines are dropped.
const MAX_BUFFERED: usize = 16 << 20;

/// An open access log.
pub struct AccessLog {
    shared: Arc<Shared>,
    format: AccessLogFormat,
    dropped: AtomicU64,
}

/// Lines not yet written, and where in them a reopen was asked for: the lines before go to
/// the file open then, the ones after to the file reopened by its name.
#[derive(Default)]
struct Pending {
    lines: Vec<u8>,
    reopen_at: Option<usize>,
}

/// What the requests and the writer thread share.
struct Shared {
    /// Lines not yet written.
    buffer: Mutex<Pending>,
    /// Batches the writer has been through (written, or found empty); a flush waits for it
    /// to grow.
    written: Mutex<u64>,
    written_changed: std::sync::Condvar,
    /// The log was dropped: the writer writes what is left and ends.
    closed: AtomicBool,
    /// The writer thread, to wake.
    writer: std::sync::OnceLock<Thread>,
}

impl Shared {
    fn wake(&self) {
        if let Some(writer) = self.writer.get() {
            writer.unpark();
        }
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.wake();
    }
}

impl AccessLog {
    /// Opens `target` (appending to a file); `None` when it is off.
    pub fn open(
        target: &AccessLogTarget,
        format: AccessLogFormat,
    ) -> anyhow::Result<Option<Arc<AccessLog>>> {
        let (out, file): (Box<dyn std::io::Write + Send>, _) = match target {
            AccessLogTarget::Off => return Ok(None),
            AccessLogTarget::Stdout => (Box::new(std::io::stdout()), None),
            AccessLogTarget::File(path) => (Box::new(open_file(path)?), Some(path.clone())),
        };
        let shared = Arc::new(Shared {
            buffer: Mutex::new(Pending {
                lines: Vec::with_capacity(BATCH),
                reopen_at: None,
            }),
            written: Mutex::new(0),
            written_changed: std::sync::Condvar::new(),
            closed: AtomicBool::new(false),
            writer: std::sync::OnceLock::new(),
        });
        let writer = shared.clone();
        let thread = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_lines(&writer, out, file))
            .context("cannot start the access log thread")?;
        let _ = shared.writer.set(thread.thread().clone());
        Ok(Some(Arc::new(AccessLog {
            shared,
            format,
            dropped: AtomicU64::new(0),
        })))
    }

    /// Reopens the file by its name once the lines before are written (logrotate moved
    /// it); nothing for standard output.
    pub fn reopen(&self) {
        {
            let mut pending = self.shared.buffer.lock().unwrap_or_else(|e| e.into_inner());
            let at = pending.lines.len();
            pending.reopen_at.get_or_insert(at);
        }
        self.shared.wake();
    }

    /// Starts the line of a request from `client`, received at `received`.
    pub fn entry(
        self: &Arc<Self>,
        parts: &Parts,
        client: Option<IpAddr>,
        received: SystemTime,
    ) -> Entry {
        let mut line = start(client, received);
        line.push('"');
        escape(parts.method.as_str().as_bytes(), &mut line);
        line.push(' ');
        escape(
            crate::http::environ::request_uri(parts).as_bytes(),
            &mut line,
        );
        line.push(' ');
        line.push_str(crate::http::environ::protocol(parts.version));
        line.push('"');
        let tail = match self.format {
            AccessLogFormat::Common => String::new(),
            AccessLogFormat::Combined => {
                let mut tail = String::with_capacity(80);
                for name in [http::header::REFERER, http::header::USER_AGENT] {
                    tail.push_str(" \"");
                    match parts.headers.get(&name) {
                        Some(value) => escape(value.as_bytes(), &mut tail),
                        None => tail.push('-'),
                    }
                    tail.push('"');
                }
                tail
            }
        };
        Entry {
            log: self.clone(),
            line,
            tail,
        }
    }

    /// The line of a request refused before it was parsed (a slow head's 408, a bare LF's
    /// 400, plain HTTP on the TLS port): no request line, as nginx writes it.
    pub fn refused(self: &Arc<Self>, client: Option<IpAddr>, status: u16) {
        let mut line = start(client, SystemTime::now());
        line.push_str("\"-\"");
        let tail = match self.format {
            AccessLogFormat::Common => String::new(),
            AccessLogFormat::Combined => " \"-\" \"-\"".to_string(),
        };
        Entry {
            log: self.clone(),
            line,
            tail,
        }
        .finish(status, 0);
    }

    /// Waits (up to `timeout`) until every line sent so far is written: at shutdown.
    pub fn flush(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let shared = &self.shared;
        // Two more batches: the one being written may have been taken before our last line.
        let mut written = shared.written.lock().unwrap_or_else(|e| e.into_inner());
        let target = *written + 2;
        while *written < target {
            shared.wake();
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            let wait = left.min(Duration::from_millis(10));
            written = shared
                .written_changed
                .wait_timeout(written, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Appends a whole line to the buffer, or drops it when the writer is too far behind.
    fn write(&self, line: &str) {
        let full = {
            let mut pending = self.shared.buffer.lock().unwrap_or_else(|e| e.into_inner());
            let lines = &mut pending.lines;
            if lines.len() + line.len() > MAX_BUFFERED {
                None
            } else {
                lines.extend_from_slice(line.as_bytes());
                Some(lines.len() >= BATCH)
            }
        };
        match full {
            Some(true) => self.shared.wake(),
            Some(false) => {}
            None => {
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if dropped.is_power_of_two() {
                    tracing::warn!(dropped, "access log cannot keep up: lines dropped");
                }
            }
        }
    }
}

/// The line of one request, written when its response ends.
pub struct Entry {
    log: Arc<AccessLog>,
    /// Everything up to and including the quoted request line.
    line: String,
    /// Referer and user agent (Combined), or nothing.
    tail: String,
}

impl Entry {
    /// Writes the line: `status` and the body bytes that went out.
    pub fn finish(self, status: u16, bytes: u64) {
        let Entry {
            log,
            mut line,
            tail,
        } = self;
        let _ = write!(line, " {status} ");
        if bytes == 0 {
            line.push('-');
        } else {
            let _ = write!(line, "{bytes}");
        }
        line.push_str(&tail);
        line.push('\n');
        log.write(&line);
    }
}

/// `client - - [time] `: how every line begins.
fn start(client: Option<IpAddr>, time: SystemTime) -> String {
    let mut line = String::with_capacity(160);
    match client {
        Some(ip) => {
            let _ = write!(line, "{}", ip.to_canonical());
        }
        None => line.push('-'),
    }
    line.push_str(" - - [");
    clf_time(time, &mut line);
    line.push_str("] ");
    line
}

fn open_file(path: &std::path::Path) -> anyhow::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open the access log {}", path.display()))
}

/// The writer thread: `out` is `file`, if the log is one. Every [`FLUSH_EVERY`] (sooner
/// when woken: a full batch, a flush, a reopen, the log closed), takes what is buffered and
/// writes it.
fn write_lines(
    shared: &Shared,
    mut out: Box<dyn std::io::Write + Send>,
    file: Option<std::path::PathBuf>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let write = |out: &mut Box<dyn std::io::Write + Send>, lines: &[u8]| {
        if !lines.is_empty() && out.write_all(lines).and_then(|()| out.flush()).is_err() {
            // Nowhere to say it but the server log; keep going, the disk may come back.
            tracing::warn!("cannot write the access log");
        }
    };
    loop {
        std::thread::park_timeout(FLUSH_EVERY);
        // Ends when the log was dropped: the server stopped or a reload replaced it.
        let closed = shared.closed.load(Ordering::Acquire);
        let reopen_at = {
            let mut pending = shared.buffer.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::swap(&mut batch, &mut pending.lines);
            pending.reopen_at.take()
        };
        let (before, after) = batch.split_at(reopen_at.unwrap_or(batch.len()));
        write(&mut out, before);
        if let (Some(_), Some(path)) = (reopen_at, &file) {
            match open_file(path) {
                Ok(reopened) => out = Box::new(reopened),
                Err(e) => tracing::error!("{e:#}; still writing to the file opened before"),
            }
        }
        write(&mut out, after);
        // What grew past a batch once goes back to a batch's size.
        batch.clear();
        batch.shrink_to(BATCH);
        *shared.written.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        shared.written_changed.notify_all();
        if closed {
            return;
        }
    }
}

/// The most of one field (request line, referer, user agent) a line holds; longer ones end
/// in `...`, so a queue of lines stays small whatever clients send.
const FIELD_MAX: usize = 2048;

/// `\xHH` for `"`, `\` and anything outside printable ASCII; at most [`FIELD_MAX`] bytes.
fn escape(bytes: &[u8], out: &mut String) {
    let (bytes, cut) = match bytes.get(..FIELD_MAX) {
        Some(head) if bytes.len() > FIELD_MAX => (head, true),
        _ => (bytes, false),
    };
    for &b in bytes {
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "\\x{b:02X}");
        }
    }
    if cut {
        out.push_str("...");
    }
}

/// `10/Oct/2000:13:55:36 +0000` (always UTC).
fn clf_time(time: SystemTime, out: &mut String) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(
        out,
        "{day:02}/{}/{year}:{:02}:{:02}:{:02} +0000",
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_are_clf() {
        let at = |secs| {
            let mut s = String::new();
            clf_time(SystemTime::UNIX_EPOCH + Duration::from_secs(secs), &mut s);
            s
        };
        assert_eq!(at(0), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(at(971_185_336), "10/Oct/2000:13:42:16 +0000");
        assert_eq!(at(951_782_400), "29/Feb/2000:00:00:00 +0000");
        assert_eq!(at(1_795_608_000), "25/Nov/2026:12:00:00 +0000");
    }

    #[test]
    fn a_reopen_splits_the_lines_between_the_old_file_and_the_new() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let target = AccessLogTarget::File(path.clone());
        let log = AccessLog::open(&target, AccessLogFormat::Common)
            .unwrap()
            .unwrap();
        for round in 0..20 {
            log.write(&format!("before {round}\n"));
            let rotated = dir.path().join(format!("access.log.{round}"));
            log.flush(Duration::from_secs(5));
            std::fs::rename(&path, &rotated).unwrap();
            log.reopen();
            // At once, before the writer has run: this line is the new file's.
            log.write(&format!("after {round}\n"));
            log.flush(Duration::from_secs(5));
            let old = std::fs::read_to_string(&rotated).unwrap();
            assert!(old.ends_with(&format!("before {round}\n")), "{old:?}");
            assert!(!old.contains(&format!("after {round}")), "{old:?}");
            let new = std::fs::read_to_string(&path).unwrap();
            assert_eq!(new, format!("after {round}\n"));
        }
    }

    #[test]
    fn hostile_bytes_are_escaped() {
        let mut s = String::new();
        escape(b"/a\"b\\c\n\xff ok", &mut s);
        assert_eq!(s, "/a\\x22b\\x5Cc\\x0A\\xFF ok");
    }
}
