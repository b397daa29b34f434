//! Each component compiled once: its bytes read and digested, its native code looked up in
//! (or stored into) the compile cache.
//!
//! The cache holds native code: anyone who can write to it can run code in this process, so
//! it lives in the user's cache directory (or `--cache-dir`), never in a tenant's, and is
//! used only when this user owns it and nobody else may write it (the directory is made
//! 0700, its files 0600); otherwise the server warns and compiles instead.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The default compile cache: `$XDG_CACHE_HOME/cheroot-wasm` or `~/.cache/cheroot-wasm`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("cheroot-wasm"))
}

/// Where a component's native code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compiled {
    /// The compile cache had it.
    FromCache,
    /// Compiled now (and stored in the cache, if there is one).
    Now,
}

/// Components larger than this get a log line before they compile (which can take seconds).
const ANNOUNCE_COMPILE_BYTES: usize = 4 << 20;

/// A component's identity: the SHA-256 of its bytes.
pub type Digest = [u8; 32];

/// Reads a component file and names its content.
pub fn read_component(file: &Path) -> anyhow::Result<(Vec<u8>, Digest)> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    check_is_component(&bytes)?;
    let digest = Sha256::digest(&bytes).into();
    Ok((bytes, digest))
}

/// Compiles a component, or loads its native code from `cache` when this exact component
/// was compiled before by an engine with the same settings. Code compiled now is stored in
/// the cache and loaded back from it, so that, like cached code, it is a mapping of a file
/// (see [`Loaded::release_code`]).
pub fn compile(
    engine: &Engine,
    file: &Path,
    (bytes, digest): (&[u8], &Digest),
    cache: Option<&Path>,
) -> anyhow::Result<Loaded> {
    let cached = cache.map(|dir| {
        (
            dir,
            dir.join(format!("{}.cwasm", cache_key(engine, digest))),
        )
    });
    // A cache directory someone else could write is not used at all: not read, not written
    // (one that does not exist yet is made private by `store_in_cache`).
    let cached = cached.filter(|(dir, _)| match untrusted_cache(dir).filter(|_| dir.exists()) {
        Some(why) => {
            tracing::warn!(dir = %dir.display(), "not using the compile cache: {why}; compiling instead");
            false
        }
        None => true,
    });
    if let Some((_, path)) = &cached
        && path.is_file()
    {
        if let Some(why) = untrusted_cache(path) {
            tracing::warn!(file = %path.display(), "not loading the compile cache entry: {why}; compiling instead (the entry is replaced)");
        } else {
            match load_cached(engine, path) {
                Ok(component) => return Ok(Loaded::mapped(component, Compiled::FromCache)),
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "ignoring unusable cache entry")
                }
            }
        }
    }
    if bytes.len() >= ANNOUNCE_COMPILE_BYTES {
        tracing::info!(
            "compiling {} ({} MiB); {}",
            file.display(),
            bytes.len() >> 20,
            if cached.is_some() {
                "cached for the next start"
            } else {
                "no cache: every start compiles again"
            }
        );
    }
    let component = Component::new(engine, bytes).map_err(|e| anyhow!(e))?;
    if let Some((dir, path)) = &cached {
        match store_in_cache(&component, dir, path).and_then(|()| load_cached(engine, path)) {
            Ok(mapped) => return Ok(Loaded::mapped(mapped, Compiled::Now)),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot write the compile cache; continuing without it")
            }
        }
    }
    Ok(Loaded {
        component,
        compiled: Compiled::Now,
        mapped: false,
    })
}

/// A compiled component.
pub struct Loaded {
    /// The component.
    pub component: Component,
    /// Where its code came from.
    pub compiled: Compiled,
    /// Whether its code is a mapping of a cache file, rather than memory it was compiled in.
    mapped: bool,
}

impl Loaded {
    fn mapped(component: Component, compiled: Compiled) -> Self {
        Loaded {
            component,
            compiled,
            mapped: true,
        }
    }

    /// Lets go of the pages of the component's native code that loading it touched:
    /// wasmtime reads the whole image to load it (headers, function tables, unwind
    /// information), which would keep every route's code resident from the start, used or
    /// not (a thousand small tenants: 190 KiB each, 190 MiB). The pages stay in the
    /// kernel's page cache; a route's first request maps back those it runs, with minor
    /// faults.
    ///
    /// Only for code mapped from a cache file ([`compile`] maps all it can): dropping the
    /// pages of a private file mapping gives back the file's content, which is the code,
    /// because wasmtime never writes to a loaded image (it refuses images that need
    /// relocations, and makes them read-only as it loads them). Code compiled in memory is
    /// left alone: there, dropping the pages would zero it.
    pub fn release_code(&self) {
        if !self.mapped {
            return;
        }
        let image = self.component.image_range();
        let len = image.end as usize - image.start as usize;
        if len == 0 {
            return;
        }
        // SAFETY: the range is the component's own mapping of its cache file (page-aligned,
        // as mmap returns it), which nothing writes (above); MADV_DONTNEED on a private file
        // mapping only drops page-table entries, which the next access refills from the file.
        let rc =
            unsafe { libc::madvise(image.start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
        if rc != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "madvise(MADV_DONTNEED) of a component's code");
        }
    }
}

/// Maps a cache entry's native code.
fn load_cached(engine: &Engine, path: &Path) -> anyhow::Result<Component> {
    // SAFETY: the file was written by `Component::serialize` of an engine with the same
    // compatibility hash (it is part of the key), into a directory this user owns and
    // nobody else may write, and the file is this user's and nobody else's to write either
    // ([`untrusted_cache`]; only the owner can change that). Entries are replaced by
    // rename, never written in place, so a mapped entry does not change under the server.
    unsafe { Component::deserialize_file(engine, path) }.map_err(|e| anyhow!(e))
}

/// A clear word for the two common mistakes, before wasmtime's parser gets to them.
fn check_is_component(bytes: &[u8]) -> anyhow::Result<()> {
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', 0x0d, 0, 1, 0]) => Ok(()),
        Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => Err(anyhow!(
            "this is a core WebAssembly module, not a component: build it with `--target wasm32-wasip2` (or wrap it with `wasm-tools component new`)"
        )),
        _ => Err(anyhow!(
            "this is not a WebAssembly component (no `\\0asm` header)"
        )),
    }
}

fn cache_key(engine: &Engine, digest: &Digest) -> String {
    use std::hash::{Hash, Hasher};
    struct ShaHasher(Sha256);
    impl Hasher for ShaHasher {
        fn finish(&self) -> u64 {
            unreachable!("only write() is used")
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut hasher = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.update(env!("CARGO_PKG_VERSION").as_bytes());
    hasher.0.update(digest);
    hasher
        .0
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Why the compile cache directory or entry at `path` must not be used, if it must not. Its
/// native code runs in this process, so only what this user (the effective uid) owns and
/// nobody else may write is trusted; only the owner (or root) can change either.
fn untrusted_cache(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) => return Some(format!("cannot inspect it ({e})")),
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if meta.uid() != euid {
        return Some(format!(
            "it belongs to uid {}, not to this user (uid {euid}): remove it, or point \
             --cache-dir at a directory of this user's",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Some(format!(
            "its mode {mode:04o} lets others write it: `chmod go-w {}`",
            path.display()
        ));
    }
    None
}

/// Writes `component`'s native code to `path` in `dir`: the directory made with mode 0700
/// if it is new, the file with 0600, never through a file someone else put there.
fn store_in_cache(component: &Component, dir: &Path, path: &Path) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    if let Some(why) = untrusted_cache(dir) {
        anyhow::bail!("{why}");
    }
    let code = component.serialize().map_err(|e| anyhow!(e))?;
    // Write then rename, so a concurrent reader never sees half a file.
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        std::process::id(),
        path.file_name().and_then(|n| n.to_str()).unwrap_or("entry")
    ));
    let _ = std::fs::remove_file(&tmp);
    // `create_new`: O_EXCL, which also refuses to follow a symlink at `tmp`.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(&code)?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    /// The smallest component there is: the header alone.
    const EMPTY_COMPONENT: &[u8] = &[0, b'a', b's', b'm', 0x0d, 0, 1, 0];

    #[test]
    fn a_cache_others_may_write_is_never_loaded() {
        let engine = Engine::default();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("app.wasm");
        std::fs::write(&file, EMPTY_COMPONENT).unwrap();
        let cache = dir.path().join("cache");
        let component = read_component(&file).unwrap();
        let compiled = |cache: &Path| {
            compile(&engine, &file, (&component.0, &component.1), Some(cache))
                .unwrap()
                .compiled
        };
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let chmod = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };

        assert_eq!(compiled(&cache), Compiled::Now);
        assert_eq!(mode(&cache), 0o700, "the cache directory is private");
        let entries: Vec<PathBuf> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        let [entry] = entries.as_slice() else {
            panic!("one cache entry expected: {entries:?}");
        };
        assert_eq!(mode(entry), 0o600, "a cache entry is private");
        assert_eq!(compiled(&cache), Compiled::FromCache);

        // A directory anyone may write: not trusted, whatever is in it.
        chmod(&cache, 0o777);
        assert_eq!(compiled(&cache), Compiled::Now);
        chmod(&cache, 0o770);
        assert_eq!(compiled(&cache), Compiled::Now);
        chmod(&cache, 0o700);
        assert_eq!(compiled(&cache), Compiled::FromCache);

        // An entry others may write: compiled instead, and replaced by a private one.
        chmod(entry, 0o666);
        assert_eq!(compiled(&cache), Compiled::Now);
        assert_eq!(mode(entry), 0o600);
        assert_eq!(compiled(&cache), Compiled::FromCache);
        assert!(untrusted_cache(&cache).is_none());
    }
}
