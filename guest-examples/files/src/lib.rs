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
//!
//! Each answers `200` with `ok: ...` or `failed: <error kind>: <error>`. Written with the
//! Rust SDK.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};

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
        _ => return Err(format!("no such case: {path:?}")),
    };
    Ok(Response::new("200 OK", body).header("Content-Type", "text/plain"))
}

cheroot_wsgi::export!(files);
