//! An application that keeps files the way a file-keeping app does, through Rust's
//! `std::fs` (wasi:filesystem underneath), so the tests (and operators) can see a route's
//! `data` directories and `data-quota` at work. `GET <prefix>/<case>/<path>[?n=N]`:
//!
//! | case | what it does |
//! |---|---|
//! | `append/<path>?n=N` | appends `N` bytes to the file (created if missing) |
//! | `write-at/<path>?n=N` | writes one byte at offset `N` |
//! | `set-len/<path>?n=N` | sets the file's length to `N` |
//! | `read/<path>` | the file's length |
//! | `remove/<path>` | removes the file |
//! | `create/<path>?n=N` | creates `N` empty files `<path>/0`, `<path>/1`, ... (and `<path>`) |
//! | `count/<path>` | adds one to the number in the file and returns it |
//! | `unlink-write/<path>?n=N` | attack: opens the file, removes it, writes `N` bytes through the handle (a `mkdir` after each refusal, until 100 in a row), and keeps the handle open in the instance |
//! | `deep/<path>?depth=D&n=N` | attack: nests `D` directories of 250-byte names in `<path>`'s directory, each opened relative to the one above, and appends `N` bytes to `<path>`'s name at the bottom |
//! | `fifo-lock/<path>` | attack: makes `<path>` a symbolic link to `../fifo` and `<path>.lock` a directory (a SQLite dot-file lock), then spins until its `timeout` kills it |
//!
//! Each answers `200` with `ok: ...` or `failed: <error kind>: <error>`. Written with the
//! Rust SDK.

use std::ffi::{CString, c_char, c_int};
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::sync::Mutex;

use cheroot_wsgi::{Request, Response};

fn report<T>(result: std::io::Result<T>, ok: impl FnOnce(T) -> String) -> String {
    match result {
        Ok(value) => format!("ok: {}\n", ok(value)),
        Err(e) => format!("failed: {:?}: {e}\n", e.kind()),
    }
}

fn append(path: &str, n: u64) -> std::io::Result<u64> {
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    let chunk = [b'x'; 8192];
    let mut left = n;
    while left > 0 {
        let take = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..take])?;
        left -= take as u64;
    }
    file.flush()?;
    Ok(file.metadata()?.len())
}

fn write_at(path: &str, offset: u64) -> std::io::Result<u64> {
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(b"y")?;
    Ok(file.metadata()?.len())
}

fn create(path: &str, n: u64) -> std::io::Result<u64> {
    std::fs::create_dir_all(path)?;
    for i in 0..n {
        File::create(format!("{path}/{i}"))?;
    }
    Ok(n)
}

fn count(path: &str) -> std::io::Result<u64> {
    let mut text = String::new();
    if let Ok(mut file) = File::open(path) {
        file.read_to_string(&mut text)?;
    }
    let next = text.trim().parse::<u64>().unwrap_or(0) + 1;
    std::fs::write(path, next.to_string())?;
    Ok(next)
}

/// Files `unlink-write` keeps open for the life of the instance.
static KEPT: Mutex<Vec<File>> = Mutex::new(Vec::new());

fn unlink_write(path: &str, n: u64) -> std::io::Result<u64> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)?;
    std::fs::remove_file(path)?;
    let chunk = vec![b'u'; 64 << 10];
    let (mut written, mut refused) = (0u64, 0u32);
    while written < n && refused < 100 {
        let take = (n - written).min(chunk.len() as u64) as usize;
        match file.write(&chunk[..take]) {
            Ok(wrote) => {
                written += wrote as u64;
                refused = 0;
            }
            Err(_) => {
                refused += 1;
                let _ = std::fs::create_dir(format!("{path}.{written}.{refused}"));
            }
        }
    }
    KEPT.lock().unwrap_or_else(|e| e.into_inner()).push(file);
    Ok(written)
}

// wasi-libc's calls taking a directory descriptor, which `std::fs` does not offer on
// wasip2 (values from its <fcntl.h>).
unsafe extern "C" {
    fn open(path: *const c_char, flags: c_int, ...) -> c_int;
    fn openat(dir: c_int, path: *const c_char, flags: c_int, ...) -> c_int;
    fn mkdirat(dir: c_int, path: *const c_char, mode: u32) -> c_int;
    fn symlink(target: *const c_char, link: *const c_char) -> c_int;
    fn write(fd: c_int, buf: *const u8, len: usize) -> isize;
    fn close(fd: c_int) -> c_int;
}
const O_APPEND: c_int = 0x0001;
const O_CREAT: c_int = 0x0001 << 12;
const O_DIRECTORY: c_int = 0x0002 << 12;
const O_RDONLY: c_int = 0x0400_0000;
const O_WRONLY: c_int = 0x1000_0000;

fn cstr(s: &str) -> std::io::Result<CString> {
    CString::new(s).map_err(std::io::Error::other)
}

/// `result` of a libc call, as an error if it is -1 (with `errno`).
fn check<T: PartialEq + From<i8>>(result: T) -> std::io::Result<T> {
    if result == T::from(-1) {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

fn deep(path: &str, depth: u64, n: u64) -> std::io::Result<u64> {
    let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
    let parent = cstr(if parent.is_empty() { "/" } else { parent })?;
    let long = cstr(&"d".repeat(250))?;
    // SAFETY: every pointer is a live NUL-terminated string or buffer, every descriptor
    // one this function opened.
    unsafe {
        let mut dir = check(open(parent.as_ptr(), O_RDONLY | O_DIRECTORY))?;
        for _ in 0..depth {
            let _ = mkdirat(dir, long.as_ptr(), 0o755);
            let below = check(openat(dir, long.as_ptr(), O_RDONLY | O_DIRECTORY));
            close(dir);
            dir = below?;
        }
        let file = openat(
            dir,
            cstr(name)?.as_ptr(),
            O_WRONLY | O_CREAT | O_APPEND,
            0o644,
        );
        close(dir);
        let file = check(file)?;
        let chunk = [b'x'; 8192];
        let mut written = 0u64;
        while written < n {
            let take = (n - written).min(chunk.len() as u64) as usize;
            match check(write(file, chunk.as_ptr(), take)) {
                Ok(wrote) => written += wrote as u64,
                Err(e) => {
                    close(file);
                    return Err(e);
                }
            }
        }
        close(file);
        Ok(written)
    }
}

fn fifo_lock(path: &str) -> std::io::Result<u64> {
    // SAFETY: both are live NUL-terminated strings.
    check(unsafe { symlink(cstr("../fifo")?.as_ptr(), cstr(path)?.as_ptr()) })?;
    std::fs::create_dir(format!("{path}.lock"))?;
    let mut spins = 0u64;
    loop {
        spins = std::hint::black_box(spins.wrapping_add(1));
    }
}

fn files(request: Request) -> Result<Response, String> {
    let path = request.path().trim_start_matches('/');
    let (case, arg) = path.split_once('/').unwrap_or((path, ""));
    let file = format!("/{arg}");
    let n = request
        .query_param("n")
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    let body = match case {
        "append" => report(append(&file, n), |len| format!("{len} bytes")),
        "write-at" => report(write_at(&file, n), |len| format!("{len} bytes")),
        "set-len" => report(
            OpenOptions::new()
                .write(true)
                .open(&file)
                .and_then(|f| f.set_len(n)),
            |()| format!("{n} bytes"),
        ),
        "read" => report(std::fs::metadata(&file), |m| format!("{} bytes", m.len())),
        "remove" => report(std::fs::remove_file(&file), |()| "removed".into()),
        "create" => report(create(&file, n), |n| format!("{n} files")),
        "count" => report(count(&file), |n| n.to_string()),
        "unlink-write" => report(unlink_write(&file, n), |n| format!("{n} bytes written")),
        "deep" => {
            let depth = request
                .query_param("depth")
                .and_then(|d| d.parse::<u64>().ok())
                .unwrap_or(0);
            report(deep(&file, depth, n), |n| format!("{n} bytes written"))
        }
        "fifo-lock" => report(fifo_lock(&file), |_| "spun".into()),
        _ => return Err(format!("no such case: {path:?}")),
    };
    Ok(Response::new("200 OK", body).header("Content-Type", "text/plain"))
}

cheroot_wsgi::export!(files);
