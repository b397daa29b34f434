//! A route's `data` directories: the only place a guest may write, kept within its
//! `data-quota`, and used by one of the route's requests at a time.
//!
//! - **Opened once.** [`Data::open`] creates the directories if missing, at start-up (and on
//!   reload); the instances get them as read-write preopens (`gateway::state::open_dirs`).
//! - **One request at a time.** A guest's SQLite cannot lock a file against another
//!   instance: under WASI its locks (dot-files at best) are not shared with other instances,
//!   and a lock left by an instance the host killed would hold for ever. So each request of
//!   a route with data holds its directories' lock ([`DataLease`]) from before its instance
//!   starts until it is settled, like one process with one thread — which is what SQLite and
//!   most file-keeping applications assume. Routes sharing a directory (`data-shared`) share
//!   its lock, as do the old and new pools of a reload. When an instance is killed
//!   mid-request (timeout, trap), what it left locked is cleared before the next request
//!   gets the directory ([`clear_stale_locks`]); SQLite rolls back its own journal.
//! - **The quota.** What the guest keeps is counted as the apparent size of every file plus
//!   [`ENTRY_BYTES`] per file, directory or link. Writes are charged as they grow a file
//!   (writing over existing bytes is free), creations at [`ENTRY_BYTES`]; a write past the
//!   quota fails with `insufficient-space` (ENOSPC: "No space left on device" in the guest),
//!   never a trap. The charges are estimates (deletions are not credited at once), so the
//!   directories are counted again, in full, after requests (as often as that takes at most
//!   a tenth of the time) and before a write is refused (a write through a stream is
//!   refused at once).

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString};
use std::ops::ControlFlow;
use std::os::fd::BorrowedFd;
use std::os::unix::fs::{FileExt as _, MetadataExt as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use rustix::fs::{AtFlags, Mode, OFlags};
use tokio::sync::OwnedMutexGuard;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self as fs, DescriptorFlags, ErrorCode, HostDescriptor, OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::{DynOutputStream, StreamError};

use super::tree::{self, WalkError};
use super::watched::Watched;
use crate::config::Route;

/// What a file, directory or link costs besides its bytes: one block.
pub const ENTRY_BYTES: u64 = 4096;
/// Counting a route's directories may take at most one part in this of the time: after a
/// count that took 50 µs, the next may come 500 µs later, after one that took 100 ms, a
/// second later.
const COUNT_SHARE: u32 = 10;

/// What the quota's hooks need of a store's data: wasmtime-wasi's filesystem, the
/// resource table, and the route's directories.
pub trait DataView: WasiFilesystemView + 'static {
    /// The resource table.
    fn table(&mut self) -> &mut ResourceTable;
    /// The route's data directories, if it has any.
    fn data(&self) -> Option<&Arc<Data>>;
}

/// A route's data directories and what its guest keeps there.
pub struct Data {
    route: String,
    dirs: Vec<PathBuf>,
    quota: u64,
    /// Bytes kept, as last counted plus what has been charged since.
    used: AtomicU64,
    /// A write was refused since the last count.
    refused: AtomicBool,
    /// When the directories were last counted, and how long that took.
    counted: Mutex<(Instant, Duration)>,
    /// The last count could not read everything: until one can, every write is refused.
    unreadable: AtomicBool,
    /// The files the route's instances have open, to go on charging those deleted while
    /// open.
    opened: Mutex<Opened>,
    /// One lock per directory, in the order of `dirs` (sorted), so that routes sharing some
    /// of them always take them in one order.
    locks: Vec<Arc<tokio::sync::Mutex<()>>>,
}

/// The files a route's instances opened, as weak handles (an instance's file is closed when
/// the last of its handles and streams is dropped); pruned of the closed ones whenever it
/// has doubled since, so it holds at most about twice the files open.
#[derive(Default)]
struct Opened {
    files: Vec<Weak<std::fs::File>>,
    prune_at: usize,
}

/// [`Opened`] is not pruned below this many files.
const OPENED_PRUNE_MIN: usize = 64;

/// The locks of every data directory open in the process, by canonical path.
static LOCKS: LazyLock<Mutex<HashMap<PathBuf, Weak<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Mutex::default);

impl Data {
    /// `route`'s data directories, created if missing; `None` if it has none. Counts what
    /// they hold, and clears what a killed server left locked in them.
    pub fn open(route: &Route) -> anyhow::Result<Option<Arc<Data>>> {
        if route.data.is_empty() {
            return Ok(None);
        }
        let mut dirs = Vec::new();
        for (guest, host) in &route.data {
            std::fs::create_dir_all(host)
                .and_then(|()| host.canonicalize())
                .map(|dir| dirs.push(dir))
                .with_context(|| format!("data {guest:?}: creating {}", host.display()))?;
        }
        dirs.sort();
        let locks = {
            let mut all = LOCKS.lock().unwrap_or_else(|e| e.into_inner());
            all.retain(|_, lock| lock.strong_count() > 0);
            dirs.iter()
                .map(|dir| match all.get(dir).and_then(Weak::upgrade) {
                    Some(lock) => lock,
                    None => {
                        let lock = Arc::default();
                        all.insert(dir.clone(), Arc::downgrade(&lock));
                        lock
                    }
                })
                .collect::<Vec<_>>()
        };
        // At start-up nothing holds them; on reload the old pool may be serving from them,
        // and it clears up after its own instances.
        let idle: Vec<_> = locks.iter().filter_map(|l| l.try_lock().ok()).collect();
        let name = route.display_name();
        if idle.len() == locks.len() {
            clear_stale_locks(&name, &dirs);
        }
        drop(idle);
        let quota = route.limits.data_quota;
        // A directory the server cannot read is a mistake to fix before serving; something
        // unreadable inside one (the host's doing, or an error) fails closed, like a count.
        let (used, unreadable) = match measure(&dirs, quota) {
            Ok(used) => (used, false),
            Err(e) if e.depth == 0 => {
                return Err(e).with_context(|| format!("route {name}: reading its data"));
            }
            Err(e) => {
                tracing::warn!(
                    route = %name,
                    error = %e,
                    "the route's data could not all be counted: its writes are refused \
                     until they can be"
                );
                (u64::MAX, true)
            }
        };
        let data = Data {
            route: name,
            used: AtomicU64::new(used),
            dirs,
            quota,
            refused: AtomicBool::new(false),
            counted: Mutex::new((Instant::now(), Duration::ZERO)),
            unreadable: AtomicBool::new(unreadable),
            opened: Mutex::default(),
            locks,
        };
        Ok(Some(Arc::new(data)))
    }

    /// Waits for the route's turn at its directories.
    pub async fn lease(self: &Arc<Self>) -> DataLease {
        let mut guards = Vec::with_capacity(self.locks.len());
        for lock in &self.locks {
            guards.push(lock.clone().lock_owned().await);
        }
        DataLease {
            data: self.clone(),
            _guards: guards,
        }
    }

    /// Charges `bytes` more kept; false (and nothing charged) if that passes the quota.
    fn charge(&self, bytes: u64) -> bool {
        if bytes == 0 {
            return true;
        }
        let charged = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.quota)
            })
            .is_ok();
        if !charged && !self.refused.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                route = %self.route,
                quota = self.quota,
                "a write to the route's data was refused: it would pass data-quota"
            );
        }
        charged
    }

    /// Charges `bytes` as [`Data::charge`] does; past the quota, the directories are counted
    /// again first (what was deleted since the last count is then known), if one is due.
    async fn charge_counted(self: &Arc<Self>, bytes: u64) -> bool {
        if self.charge(bytes) {
            return true;
        }
        if !self.count_due(false) {
            return false;
        }
        let data = self.clone();
        let _ = tokio::task::spawn_blocking(move || data.count()).await;
        self.charge(bytes)
    }

    /// Whether to count the directories again (always when `needed`); if so, none other is
    /// started until this one is done.
    fn count_due(&self, needed: bool) -> bool {
        let mut counted = self.counted.lock().unwrap_or_else(|e| e.into_inner());
        let (at, took) = *counted;
        let due = needed || at.elapsed() >= took * COUNT_SHARE;
        if due {
            // Until this count has taken its time, others wait as long as the last took.
            *counted = (Instant::now(), took);
        }
        due
    }

    /// Counts the directories and the deleted files still open (blocking), and takes that as
    /// what they hold; if something could not be read, as more than the quota (logged once
    /// until a count succeeds).
    fn count(&self) {
        let started = Instant::now();
        let used = match measure(&self.dirs, self.quota) {
            Ok(used) => {
                if self.unreadable.swap(false, Ordering::AcqRel) {
                    tracing::info!(route = %self.route, "the route's data can be counted again");
                }
                used.saturating_add(self.held_open())
            }
            Err(e) => {
                if !self.unreadable.swap(true, Ordering::AcqRel) {
                    tracing::warn!(
                        route = %self.route,
                        error = %e,
                        "the route's data could not all be counted: its writes are refused \
                         until they can be"
                    );
                }
                u64::MAX
            }
        };
        self.used.store(used, Ordering::Release);
        self.refused.store(false, Ordering::Release);
        *self.counted.lock().unwrap_or_else(|e| e.into_inner()) =
            (Instant::now(), started.elapsed());
    }

    /// Notes a file an instance opened, so it is charged while open even once deleted.
    fn opened(&self, file: &Arc<std::fs::File>) {
        let mut opened = self.opened.lock().unwrap_or_else(|e| e.into_inner());
        if opened.files.len() >= opened.prune_at {
            opened.files.retain(|file| file.strong_count() > 0);
            opened.prune_at = (opened.files.len() * 2).max(OPENED_PRUNE_MIN);
        }
        opened.files.push(Arc::downgrade(file));
    }

    /// What the files that are open but deleted (no link left: no walk finds them) hold, by
    /// the measure of [`measure`]: their space is the host's until they are closed.
    fn held_open(&self) -> u64 {
        let open: Vec<Arc<std::fs::File>> = {
            let mut opened = self.opened.lock().unwrap_or_else(|e| e.into_inner());
            opened.files.retain(|file| file.strong_count() > 0);
            opened.files.iter().filter_map(Weak::upgrade).collect()
        };
        let mut seen = HashSet::new();
        open.iter()
            .filter_map(|file| file.metadata().ok())
            .filter(|meta| meta.nlink() == 0 && seen.insert((meta.dev(), meta.ino())))
            .fold(0u64, |total, meta| {
                total.saturating_add(ENTRY_BYTES).saturating_add(meta.len())
            })
    }

    /// Gives back a charge for a write that did not happen.
    fn refund(&self, bytes: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(bytes))
            });
    }
}

/// A request's hold on its route's data directories; released when dropped.
pub struct DataLease {
    data: Arc<Data>,
    _guards: Vec<OwnedMutexGuard<()>>,
}

impl DataLease {
    /// Ends the request's hold, once its instance is gone (`instance_killed`) or back in
    /// the pool. Whatever needs the disk — clearing what a killed instance left locked,
    /// counting the directories again — is done first, off the async threads, and before
    /// the next request may begin.
    pub fn release(self, instance_killed: bool) {
        let data = &self.data;
        if !data.count_due(instance_killed || data.refused.load(Ordering::Acquire)) {
            return;
        }
        tokio::task::spawn_blocking(move || {
            if instance_killed {
                clear_stale_locks(&self.data.route, &self.data.dirs);
            }
            self.data.count();
            drop(self);
        });
    }
}

/// What `dirs` hold, by [`Data`]'s measure; stops counting once past `stop_at` (beyond the
/// quota, the exact figure changes nothing). An error if any of it could not be read.
fn measure(dirs: &[PathBuf], stop_at: u64) -> Result<u64, WalkError> {
    let mut total = 0u64;
    tree::walk(dirs, |_, _, stat| {
        total = total.saturating_add(ENTRY_BYTES);
        if tree::is_file(stat) {
            total = total.saturating_add(u64::try_from(stat.st_size).unwrap_or(0));
        }
        if total > stop_at {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(true)
        }
    })?;
    Ok(total)
}

/// Clears SQLite's dot-file locks (an empty directory `NAME.lock` beside a database `NAME`)
/// left by an instance that can no longer release them: only called when no instance is
/// using `dirs`. Every name is the guest's, so nothing is followed: a `NAME` that is a link,
/// a FIFO or anything but a regular file is no database, and its lock stays.
fn clear_stale_locks(route: &str, dirs: &[PathBuf]) {
    let cleared = tree::walk(dirs, |dir, name, stat| {
        let database = name
            .to_bytes()
            .strip_suffix(b".lock")
            .and_then(|name| CString::new(name).ok());
        match database {
            Some(database) if tree::is_dir(stat) && is_sqlite_database(dir, &database) => {
                if rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR).is_ok() {
                    tracing::info!(
                        route,
                        lock = %name.to_string_lossy(),
                        "cleared a stale SQLite lock"
                    );
                }
                ControlFlow::Continue(false)
            }
            _ => ControlFlow::Continue(true),
        }
    });
    if let Err(e) = cleared {
        tracing::warn!(route, error = %e, "stale SQLite locks could not all be looked for");
    }
}

/// Whether `name` in `dir` is a regular file that starts with SQLite's header. It is opened
/// without following a link and without blocking (a FIFO would wait for a writer), and read
/// only if it is still a regular file once open.
fn is_sqlite_database(dir: BorrowedFd<'_>, name: &CStr) -> bool {
    let regular = |stat: &rustix::fs::Stat| tree::is_file(stat) && stat.st_size >= 16;
    if !rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|s| regular(&s)) {
        return false;
    }
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY;
    let Ok(fd) = rustix::fs::openat(dir, name, flags | OFlags::CLOEXEC, Mode::empty()) else {
        return false;
    };
    if !rustix::fs::fstat(&fd).is_ok_and(|s| regular(&s)) {
        return false;
    }
    let mut header = [0u8; 16];
    std::fs::File::from(fd)
        .read_exact_at(&mut header, 0)
        .is_ok_and(|()| &header == b"SQLite format 3\0")
}

/// The size of the file behind `fd`, if it is one.
fn file_size(
    state: &mut impl DataView,
    fd: &Resource<Descriptor>,
) -> wasmtime::Result<Option<u64>> {
    Ok(match state.table().get(fd)? {
        Descriptor::File(f) => f.file.metadata().ok().map(|m| m.len()),
        Descriptor::Dir(_) => None,
    })
}

/// The answer to a write past the quota, as the guest's libc sees it: ENOSPC.
fn no_space() -> std::io::Error {
    std::io::Error::from_raw_os_error(libc::ENOSPC)
}

type Store<'a, T> = StoreContextMut<'a, T>;

/// Runs `$call` if `$bytes` more fit the route's quota, and answers the guest as [`finish`].
macro_rules! charged {
    ($state:ident, $bytes:expr, $call:expr) => {
        match charge($state.data().cloned(), $bytes).await {
            Ok(charged) => {
                let result = $call;
                finish($state, result, charged)
            }
            Err(refused) => finish($state, Err(refused), None),
        }
    };
}
type FsOutcome<T> = wasmtime::Result<(Result<T, ErrorCode>,)>;

/// Shadows the `wasi:filesystem/types` methods that take space (writes, `set-size`, and
/// what creates an entry), so they are charged to the route's quota; every other method,
/// and these once charged, are wasmtime-wasi's.
pub fn add_to_linker<T: DataView>(linker: &mut Linker<T>) -> anyhow::Result<()> {
    let mut types = linker.instance("wasi:filesystem/types@0.2.12")?;
    types.func_wrap_async(
        "[method]descriptor.write",
        |mut store: Store<'_, T>, (fd, buf, offset): (Resource<Descriptor>, Vec<u8>, u64)| {
            Box::new(async move {
                let state = store.data_mut();
                let growth = match file_size(state, &fd)? {
                    Some(size) => offset.saturating_add(buf.len() as u64).saturating_sub(size),
                    None => 0,
                };
                charged!(state, growth, {
                    HostDescriptor::write(&mut state.filesystem(), fd, buf, offset).await
                })
            })
        },
    )?;
    types.func_wrap_async(
        "[method]descriptor.set-size",
        |mut store: Store<'_, T>, (fd, size): (Resource<Descriptor>, u64)| {
            Box::new(async move {
                let state = store.data_mut();
                let growth = file_size(state, &fd)?.map_or(0, |now| size.saturating_sub(now));
                charged!(state, growth, {
                    HostDescriptor::set_size(&mut state.filesystem(), fd, size).await
                })
            })
        },
    )?;
    types.func_wrap_async(
        "[method]descriptor.open-at",
        |mut store: Store<'_, T>,
         (fd, path_flags, path, open, flags): (
            Resource<Descriptor>,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )| {
            Box::new(async move {
                let state = store.data_mut();
                // What exists is not charged again; asked as the guest could ask, so the
                // answer tells it nothing more.
                let creates = state.data().is_some()
                    && open.contains(OpenFlags::CREATE)
                    && HostDescriptor::stat_at(
                        &mut state.filesystem(),
                        Resource::new_borrow(fd.rep()),
                        PathFlags::empty(),
                        path.clone(),
                    )
                    .await
                    .is_err();
                let outcome = charged!(state, if creates { ENTRY_BYTES } else { 0 }, {
                    let mut fs = state.filesystem();
                    HostDescriptor::open_at(&mut fs, fd, path_flags, path, open, flags).await
                });
                // Every file opened is noted (whether to read or write: what it holds stays
                // on the disk while it is open, deleted or not).
                if let Ok((Ok(opened),)) = &outcome
                    && let Some(data) = state.data().cloned()
                    && let Descriptor::File(file) = state.table().get(opened)?
                {
                    data.opened(&file.file);
                }
                outcome
            })
        },
    )?;
    types.func_wrap_async(
        "[method]descriptor.create-directory-at",
        |mut store: Store<'_, T>, (fd, path): (Resource<Descriptor>, String)| {
            Box::new(async move {
                let state = store.data_mut();
                charged!(state, ENTRY_BYTES, {
                    HostDescriptor::create_directory_at(&mut state.filesystem(), fd, path).await
                })
            })
        },
    )?;
    types.func_wrap_async(
        "[method]descriptor.symlink-at",
        |mut store: Store<'_, T>, (fd, old, new): (Resource<Descriptor>, String, String)| {
            Box::new(async move {
                let state = store.data_mut();
                charged!(state, ENTRY_BYTES, {
                    HostDescriptor::symlink_at(&mut state.filesystem(), fd, old, new).await
                })
            })
        },
    )?;
    types.func_wrap_async(
        "[method]descriptor.link-at",
        |mut store: Store<'_, T>,
         (fd, flags, old, to, new): (
            Resource<Descriptor>,
            PathFlags,
            String,
            Resource<Descriptor>,
            String,
        )| {
            Box::new(async move {
                let state = store.data_mut();
                charged!(state, ENTRY_BYTES, {
                    let mut fs = state.filesystem();
                    HostDescriptor::link_at(&mut fs, fd, flags, old, to, new).await
                })
            })
        },
    )?;
    types.func_wrap(
        "[method]descriptor.write-via-stream",
        |mut store: Store<'_, T>, (fd, offset): (Resource<Descriptor>, u64)| {
            let state = store.data_mut();
            let file = Resource::new_borrow(fd.rep());
            let stream = HostDescriptor::write_via_stream(&mut state.filesystem(), fd, offset);
            let stream = match stream {
                Ok(stream) => Ok(quota_stream(state, &file, stream, Some(offset))?),
                Err(e) => Err(e),
            };
            finish(state, stream, None)
        },
    )?;
    types.func_wrap(
        "[method]descriptor.append-via-stream",
        |mut store: Store<'_, T>, (fd,): (Resource<Descriptor>,)| {
            let state = store.data_mut();
            let file = Resource::new_borrow(fd.rep());
            let stream = HostDescriptor::append_via_stream(&mut state.filesystem(), fd);
            let stream = match stream {
                Ok(stream) => Ok(quota_stream(state, &file, stream, None)?),
                Err(e) => Err(e),
            };
            finish(state, stream, None)
        },
    )?;
    Ok(())
}

/// A shadowed method's result as the guest gets it; a charge for what failed is given back.
fn finish<T>(
    state: &mut impl DataView,
    result: Result<T, wasmtime_wasi::p2::FsError>,
    charged: Option<u64>,
) -> FsOutcome<T> {
    match result {
        Ok(value) => Ok((Ok(value),)),
        Err(e) => {
            if let (Some(bytes), Some(data)) = (charged, state.data()) {
                data.refund(bytes);
            }
            Ok((Err(fs::Host::convert_error_code(
                &mut state.filesystem(),
                e,
            )?),))
        }
    }
}

/// Charges `bytes` to the route's quota, if it has data: `Some(bytes)` when charged, an
/// `insufficient-space` error past the quota.
async fn charge(
    data: Option<Arc<Data>>,
    bytes: u64,
) -> Result<Option<u64>, wasmtime_wasi::p2::FsError> {
    match data {
        Some(data) if !data.charge_counted(bytes).await => Err(ErrorCode::InsufficientSpace.into()),
        Some(_) => Ok(Some(bytes)),
        None => Ok(None),
    }
}

/// Puts `stream` (writing `fd`'s file, from `at`, or appending) behind the route's
/// quota: each write is charged what it grows the file by.
fn quota_stream(
    state: &mut impl DataView,
    fd: &Resource<Descriptor>,
    stream: Resource<DynOutputStream>,
    mut at: Option<u64>,
) -> wasmtime::Result<Resource<DynOutputStream>> {
    let (Some(data), Descriptor::File(file)) = (state.data().cloned(), state.table().get(fd)?)
    else {
        return Ok(stream);
    };
    let file = file.file.clone();
    let before = move |bytes: &Bytes| {
        // The stream takes a write only when the last one is done (`check-write`), so
        // the file's size now is what this write extends.
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let end = at.unwrap_or(size).saturating_add(bytes.len() as u64);
        if !data.charge(end.saturating_sub(size)) {
            return Err(StreamError::LastOperationFailed(no_space().into()));
        }
        if let Some(at) = &mut at {
            *at = end;
        }
        Ok(())
    };
    let inner = state.table().delete(stream)?;
    let stream: DynOutputStream = Box::new(Watched { inner, before });
    Ok(state.table().push(stream)?)
}
