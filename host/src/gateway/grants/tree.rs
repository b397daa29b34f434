//! Walking a data directory's tree the way its guest reaches it: by directory descriptors,
//! one name at a time, never by a path built from the top ([`walk`]).
//!
//! A guest opens each directory relative to the one above, so its tree may be deeper than
//! any path the host could name (`PATH_MAX`), and every name in it is the guest's: a link,
//! a FIFO or a directory swapped for a link must not lead the host anywhere. So each
//! directory is opened relative to its parent's descriptor with `O_NOFOLLOW`, each entry is
//! looked at with `fstatat(AT_SYMLINK_NOFOLLOW)`, and nothing is followed. The walk keeps
//! its own stack (not the host thread's), holds at most [`MAX_OPEN_DIRS`] descriptors
//! however deep the tree, and reports what it could not read instead of skipping it.

use std::ffi::CStr;
use std::fmt;
use std::ops::ControlFlow;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, Dir, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

/// At most this many directories are open at once in one walk. Deeper, the shallowest open
/// one is closed (its place in its listing remembered) and opened again through `..` from
/// its child once the walk climbs back to it.
pub const MAX_OPEN_DIRS: usize = 32;

/// What a walk could not read: the tree is then not fully known.
#[derive(Debug)]
pub struct WalkError {
    /// The top directory of the walk it happened in.
    pub root: PathBuf,
    /// How far below it: 0 is the top directory itself.
    pub depth: usize,
    /// What failed.
    pub error: std::io::Error,
}

impl fmt::Display for WalkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.depth {
            0 => write!(f, "{}: {}", self.root.display(), self.error),
            depth => write!(
                f,
                "{}: {} directories down: {}",
                self.root.display(),
                depth,
                self.error
            ),
        }
    }
}

impl std::error::Error for WalkError {}

/// A directory of the walk's stack.
struct Frame {
    /// Its listing, while open.
    dir: Option<Dir>,
    /// Who it is, to know it again when opened through `..`.
    id: (u64, u64),
    /// Where its listing goes on: the cookie after the last entry taken (`telldir`).
    resume: i64,
}

/// Opens the directory `name` in `parent`, never through a link, and says who it is.
fn open_dir(parent: BorrowedFd<'_>, name: &CStr) -> Result<(OwnedFd, (u64, u64)), Errno> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(parent, name, flags, Mode::empty())?;
    let stat = rustix::fs::fstat(&fd)?;
    Ok((fd, id(&stat)))
}

/// `path` as the kernel takes it.
fn path_name(path: &Path) -> Result<std::ffi::CString, Errno> {
    std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Errno::INVAL)
}

/// A file's identity: its device and inode.
pub fn id(stat: &Stat) -> (u64, u64) {
    (stat.st_dev, stat.st_ino)
}

/// Whether `stat` is a directory's.
pub fn is_dir(stat: &Stat) -> bool {
    FileType::from_raw_mode(stat.st_mode) == FileType::Directory
}

/// Whether `stat` is a regular file's.
pub fn is_file(stat: &Stat) -> bool {
    FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile
}

/// Visits every entry under each of `roots`, depth first, links not followed: `visit` gets
/// the descriptor of the entry's directory, its name and its `lstat`, and says whether to go
/// on (`Break` stops the walk), and if so whether to go into the entry (a directory).
///
/// An entry that vanishes while the walk looks at it is passed over (it holds nothing);
/// anything else that cannot be read stops the walk with an error, so a caller never takes
/// a partial walk for the whole tree.
pub fn walk(
    roots: &[PathBuf],
    mut visit: impl FnMut(BorrowedFd<'_>, &CStr, &Stat) -> ControlFlow<(), bool>,
) -> Result<(), WalkError> {
    for root in roots {
        let mut depth = 0;
        let failed = |depth, error: Errno| WalkError {
            root: root.clone(),
            depth,
            error: error.into(),
        };
        if walk_one(root, &mut visit, &mut depth).map_err(|e| failed(depth, e))? {
            break;
        }
    }
    Ok(())
}

/// [`walk`] under `root`: true if `visit` stopped it. `depth` tells where it failed.
fn walk_one(
    root: &Path,
    visit: &mut impl FnMut(BorrowedFd<'_>, &CStr, &Stat) -> ControlFlow<(), bool>,
    depth: &mut usize,
) -> Result<bool, Errno> {
    let (fd, id) = open_dir(CWD, &path_name(root)?)?;
    let mut stack = vec![Frame {
        dir: Some(Dir::new(fd)?),
        id,
        resume: 0,
    }];
    // The open frames are the top `open` of the stack.
    let mut open = 1;
    loop {
        *depth = stack.len().saturating_sub(1);
        let Some(top) = stack.last_mut() else {
            return Ok(false);
        };
        let dir = top.dir.as_mut().expect("the top frame is open");
        let entry = match dir.read() {
            Some(entry) => entry?,
            None => {
                let done = stack.pop().expect("the stack has a top");
                open -= 1;
                if let Some(parent) = stack.last_mut()
                    && parent.dir.is_none()
                {
                    let child = done.dir.expect("the top frame was open");
                    let (fd, id) = open_dir(child.fd()?, c"..")?;
                    if id != parent.id {
                        // Moved while the walk was below it.
                        return Err(Errno::STALE);
                    }
                    let mut dir = Dir::new(fd)?;
                    dir.seek(parent.resume)?;
                    parent.dir = Some(dir);
                    open += 1;
                }
                continue;
            }
        };
        top.resume = entry.offset();
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let parent = dir.fd()?;
        let stat = match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(e),
        };
        match visit(parent, name, &stat) {
            ControlFlow::Break(()) => return Ok(true),
            ControlFlow::Continue(true) if is_dir(&stat) => {}
            ControlFlow::Continue(_) => continue,
        }
        let (fd, id) = match open_dir(parent, name) {
            Ok(opened) => opened,
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(e),
        };
        if id != self::id(&stat) {
            // Swapped since it was looked at: count what is there now, once.
            *depth += 1;
            return Err(Errno::STALE);
        }
        stack.push(Frame {
            dir: Some(Dir::new(fd)?),
            id,
            resume: 0,
        });
        open += 1;
        if open > MAX_OPEN_DIRS {
            let shallowest = stack.len() - open;
            stack[shallowest].dir = None;
            open -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CString;

    use std::os::fd::AsFd;

    use super::*;

    /// Makes `depth` directories named `name` one inside the other under `root`, each made
    /// relative to the one above, and a file of `bytes` at the bottom; returns nothing.
    fn nest(root: &Path, name: &str, depth: usize, bytes: usize) {
        let name = CString::new(name).unwrap();
        let mut dir = open_dir(CWD, &path_name(root).unwrap()).unwrap().0;
        for _ in 0..depth {
            rustix::fs::mkdirat(&dir, &name, Mode::from_raw_mode(0o755)).unwrap();
            dir = open_dir(dir.as_fd(), &name).unwrap().0;
        }
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC;
        let file = rustix::fs::openat(&dir, c"file", flags, Mode::from_raw_mode(0o644)).unwrap();
        rustix::io::write(&file, &vec![b'x'; bytes]).unwrap();
    }

    /// Every entry's name and size, as the walk sees them.
    fn listing(roots: &[PathBuf]) -> Vec<(Vec<u8>, u64)> {
        let mut seen = Vec::new();
        walk(roots, |_, name, stat| {
            seen.push((name.to_bytes().to_vec(), stat.st_size as u64));
            ControlFlow::Continue(true)
        })
        .unwrap();
        seen
    }

    #[test]
    fn a_tree_deeper_than_path_max_and_than_the_open_directories_is_walked_whole() {
        let root = tempfile::tempdir().unwrap();
        // 40 × 251 bytes: past PATH_MAX, and past MAX_OPEN_DIRS; and beside it a second,
        // shallow branch, listed after the deep one is climbed out of.
        let long = "d".repeat(250);
        nest(root.path(), &long, 40, 1000);
        nest(root.path(), "e", 3, 7);
        let seen = listing(&[root.path().to_owned()]);
        let dirs = seen.iter().filter(|(n, _)| n == long.as_bytes()).count();
        let files: Vec<_> = seen.iter().filter(|(n, _)| n == b"file").collect();
        assert_eq!(dirs, 40);
        assert_eq!(seen.iter().filter(|(n, _)| n == b"e").count(), 3);
        assert_eq!(files.len(), 2);
        assert_eq!(files.iter().map(|(_, size)| size).sum::<u64>(), 1007);
    }

    #[test]
    fn many_deep_branches_are_each_walked_once() {
        let root = tempfile::tempdir().unwrap();
        for branch in 0..5 {
            let top = root.path().join(format!("b{branch}"));
            std::fs::create_dir(&top).unwrap();
            nest(&top, "n", MAX_OPEN_DIRS * 2 + branch, 1);
        }
        let seen = listing(&[root.path().to_owned()]);
        let files = seen.iter().filter(|(n, _)| n == b"file").count();
        let dirs = seen.iter().filter(|(n, _)| n == b"n").count();
        assert_eq!(files, 5);
        assert_eq!(dirs, 5 * MAX_OPEN_DIRS * 2 + 10);
    }

    #[test]
    fn links_are_listed_not_followed() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("out")).unwrap();
        let seen = listing(&[root.path().to_owned()]);
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].0, b"out");
    }

    #[test]
    fn a_top_directory_that_cannot_be_read_is_an_error_not_an_empty_tree() {
        let root = tempfile::tempdir().unwrap();
        let missing = root.path().join("missing");
        let err = walk(std::slice::from_ref(&missing), |_, _, _| {
            ControlFlow::Continue(true)
        })
        .unwrap_err();
        assert_eq!((err.root, err.depth), (missing, 0));
        assert_eq!(err.error.kind(), std::io::ErrorKind::NotFound);
    }
}
