//! Where connections come from: every bind form of routes.toml's `[server] bind` and
//! `--bind`, and the streams they accept.
//!
//! Owns the sockets: `HOST:PORT` (IPv4, IPv6; `[::]` is dual-stack, as in cheroot), `unix:PATH`
//! (a stale socket file is replaced, a live one or a non-socket is refused; the socket is
//! made and given the configured mode in a private directory, then renamed into place, so
//! it is never reachable with another mode and a symlink at the path is never followed; the
//! file is removed when the server stops), and `systemd` (every socket
//! systemd passed with LISTEN_FDS, TCP or UNIX; cheroot only takes fd 3 and assumes IPv4).
//! `reuse-port` sets SO_REUSEPORT so that several servers can share a port. It does not
//! speak HTTP or TLS ([`crate::server`]).

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use anyhow::{Context as _, bail};
use socket2::{Domain, Socket, Type};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use crate::config::{BindAddr, BindOptions};

/// Connections waiting to be accepted, per listener, before the kernel refuses more.
const BACKLOG: i32 = 1024;

/// A listening socket.
#[derive(Debug)]
pub enum Listener {
    /// TCP, IPv4 or IPv6.
    Tcp(TcpListener),
    /// A UNIX socket; `owned` is the file to remove on drop (not for inherited sockets).
    Unix {
        /// The socket.
        listener: UnixListener,
        /// Where it is, and the file's (device, inode) when this server created it.
        path: PathBuf,
        /// Set when this server created the file, which it then removes.
        owned: Option<(u64, u64)>,
    },
}

/// What an accepted connection is.
pub struct Accepted {
    /// The stream.
    pub stream: Stream,
    /// The client's address (`None` over a UNIX socket).
    pub remote: Option<SocketAddr>,
    /// The address it arrived on (`None` over a UNIX socket).
    pub local: Option<SocketAddr>,
}

impl Listener {
    /// Binds one address; `systemd` may give several listeners.
    pub async fn bind(addr: &BindAddr, options: BindOptions) -> anyhow::Result<Vec<Listener>> {
        match addr {
            BindAddr::Tcp(host_port) => Ok(vec![bind_tcp(host_port, options).await?]),
            BindAddr::Unix(path) => Ok(vec![bind_unix(path, options)?]),
            BindAddr::Systemd => systemd(),
        }
    }

    /// How to reach it, for people: `http://127.0.0.1:8080`, `unix:/run/app.sock`.
    pub fn describe(&self, scheme: &str) -> String {
        match self {
            Listener::Tcp(l) => match l.local_addr() {
                Ok(addr) => format!("{scheme}://{addr}/"),
                Err(_) => format!("{scheme}://?"),
            },
            Listener::Unix { path, .. } => format!("unix:{} ({scheme})", path.display()),
        }
    }

    /// The TCP address (with the real port when bound to port 0).
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok(),
            Listener::Unix { .. } => None,
        }
    }

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<Accepted>> {
        match self {
            Listener::Tcp(listener) => listener.poll_accept(cx).map_ok(|(stream, remote)| {
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, "TCP_NODELAY");
                }
                let local = stream.local_addr().ok();
                Accepted {
                    stream: Stream::Tcp(stream),
                    remote: Some(remote),
                    local,
                }
            }),
            Listener::Unix { listener, .. } => {
                listener.poll_accept(cx).map_ok(|(stream, _)| Accepted {
                    stream: Stream::Unix(stream),
                    remote: None,
                    local: None,
                })
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix {
            path,
            owned: Some(id),
            ..
        } = self
        {
            // Only the file this server made: a newer server may have replaced it.
            if std::fs::symlink_metadata(&*path).is_ok_and(|m| (m.dev(), m.ino()) == *id) {
                let _ = std::fs::remove_file(&*path);
            }
        }
    }
}

/// Accepts the next connection from any of `listeners`, taking turns from `next` so that
/// one busy listener cannot starve the others.
pub async fn accept(listeners: &[Listener], next: &mut usize) -> io::Result<Accepted> {
    std::future::poll_fn(|cx| {
        let n = listeners.len();
        for i in 0..n {
            let index = (*next + i) % n;
            if let Poll::Ready(result) = listeners[index].poll_accept(cx) {
                *next = (index + 1) % n;
                return Poll::Ready(result);
            }
        }
        Poll::Pending
    })
    .await
}

async fn bind_tcp(host_port: &str, options: BindOptions) -> anyhow::Result<Listener> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(host_port)
        .await
        .with_context(|| {
            format!(
                "cannot resolve bind address {host_port:?} (expected HOST:PORT, e.g. \
                 127.0.0.1:8080 or [::1]:8080)"
            )
        })?
        .collect();
    let mut last = None;
    for addr in &addrs {
        match tcp_socket(*addr, options) {
            Ok(listener) => return Ok(Listener::Tcp(listener)),
            Err(e) => {
                last = Some(anyhow::Error::new(e).context(format!("cannot listen on {addr}")))
            }
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("bind address {host_port:?} resolved to nothing")))
}

fn tcp_socket(addr: SocketAddr, options: BindOptions) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if options.reuse_port {
        socket.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        // `[::]` also takes IPv4 clients (as cheroot does); a specific address only itself.
        socket.set_only_v6(!addr.ip().is_unspecified())?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

fn bind_unix(path: &Path, options: BindOptions) -> anyhow::Result<Listener> {
    bind_unix_with(path, options, |_| {})
}

/// [`bind_unix`]; `meanwhile` runs while the new socket waits in its private directory, where
/// a test plays someone who puts a symlink at the socket path in that window.
fn bind_unix_with(
    path: &Path,
    options: BindOptions,
    meanwhile: impl FnOnce(&Path),
) -> anyhow::Result<Listener> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            // Someone answering means a live server; only a refusal means a stale file (not
            // being allowed to connect says nothing about whether a server is there).
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => bail!(
                    "cannot listen on unix:{}: another server is listening there",
                    path.display()
                ),
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    std::fs::remove_file(path).with_context(|| {
                        format!("cannot replace the stale socket {}", path.display())
                    })?
                }
                Err(e) => bail!(
                    "cannot listen on unix:{}: a socket file is there and probing it failed \
                     ({e}); remove it if no server uses it",
                    path.display()
                ),
            }
        }
        Ok(_) => bail!(
            "cannot listen on unix:{}: the file exists and is not a socket",
            path.display()
        ),
        Err(_) => {}
    }
    // The socket is made, and given its mode, where nobody else can reach it: a fresh
    // directory of mode 0700 beside the path (so on the same filesystem), removed on return.
    // Then rename(2) puts it in place at once: no moment with the umask's mode, and a
    // symlink someone put at the path meanwhile is replaced, never followed (a chmod of the
    // path would change whatever file it points to).
    let parent = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let private = tempfile::Builder::new()
        .prefix(".cw")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(parent)
        .with_context(|| {
            format!(
                "cannot listen on unix:{}: cannot create a private directory in {} (the \
                 server needs write access to the socket's directory)",
                path.display(),
                parent.display()
            )
        })?;
    let staged = private.path().join("s");
    let listener = UnixListener::bind(&staged).with_context(|| {
        format!(
            "cannot listen on unix:{} (the socket is made at {} first: a path that long \
             may exceed the 107-byte limit of socket paths; choose a shorter one)",
            path.display(),
            staged.display()
        )
    })?;
    if let Some(mode) = options.socket_mode {
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set the mode of unix:{}", path.display()))?;
    }
    let meta = std::fs::symlink_metadata(&staged)
        .with_context(|| format!("cannot read back unix:{}", path.display()))?;
    meanwhile(path);
    std::fs::rename(&staged, path).with_context(|| {
        format!(
            "cannot listen on unix:{}: cannot move the socket into place",
            path.display()
        )
    })?;
    Ok(Listener::Unix {
        listener,
        path: path.to_path_buf(),
        owned: Some((meta.dev(), meta.ino())),
    })
}

/// The sockets systemd passed: fds 3 .. 3+LISTEN_FDS, when LISTEN_PID is this process.
fn systemd() -> anyhow::Result<Vec<Listener>> {
    use std::os::fd::{FromRawFd as _, OwnedFd};
    use std::sync::atomic::{AtomicBool, Ordering};
    static TAKEN: AtomicBool = AtomicBool::new(false);

    let pid = std::env::var("LISTEN_PID").ok();
    let count = std::env::var("LISTEN_FDS").ok();
    let (Some(pid), Some(count)) = (pid, count) else {
        bail!("bind \"systemd\": LISTEN_PID and LISTEN_FDS are not set (not socket-activated)");
    };
    if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
        bail!(
            "bind \"systemd\": LISTEN_PID is {pid}, not this process ({})",
            std::process::id()
        );
    }
    let count: i32 = count
        .trim()
        .parse()
        .ok()
        .filter(|n| (1..=1024).contains(n))
        .with_context(|| {
            format!("bind \"systemd\": LISTEN_FDS={count:?}; systemd passed no usable sockets (1 to 1024 expected)")
        })?;
    if TAKEN.swap(true, Ordering::SeqCst) {
        bail!("bind \"systemd\" is given more than once");
    }
    let mut listeners = Vec::new();
    for fd in 3..3 + count {
        // SAFETY: systemd's protocol hands this process fds 3..3+LISTEN_FDS, open and
        // owned by nobody else in it; TAKEN makes sure they are taken once.
        let socket = Socket::from(unsafe { OwnedFd::from_raw_fd(fd) });
        if !socket.is_listener().unwrap_or(false) {
            bail!("bind \"systemd\": fd {fd} is not a listening socket");
        }
        socket.set_nonblocking(true)?;
        socket.set_cloexec(true)?;
        let domain = socket.domain()?;
        if domain == Domain::UNIX {
            let std: std::os::unix::net::UnixListener = OwnedFd::from(socket).into();
            let path = std
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(Path::to_path_buf))
                .unwrap_or_default();
            listeners.push(Listener::Unix {
                listener: UnixListener::from_std(std)?,
                path,
                owned: None,
            });
        } else if domain == Domain::IPV4 || domain == Domain::IPV6 {
            listeners.push(Listener::Tcp(TcpListener::from_std(socket.into())?));
        } else {
            bail!("bind \"systemd\": fd {fd} is neither a TCP nor a UNIX socket");
        }
    }
    Ok(listeners)
}

/// An accepted connection's byte stream.
pub enum Stream {
    /// TCP.
    Tcp(TcpStream),
    /// A UNIX socket.
    Unix(UnixStream),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stale_unix_socket_is_replaced_a_live_one_or_a_file_refused() {
        let dir =
            std::env::temp_dir().join(format!("cheroot-wasm-listener-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let options = BindOptions {
            socket_mode: Some(0o600),
            ..BindOptions::default()
        };
        // Stale: a socket file nobody listens on.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let live = bind_unix(&path, options).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let error = bind_unix(&path, options).unwrap_err().to_string();
        assert!(error.contains("another server is listening"), "{error}");
        drop(live);
        assert!(
            !path.exists(),
            "the socket file is removed with its listener"
        );
        std::fs::write(&path, "not a socket").unwrap();
        let error = bind_unix(&path, options).unwrap_err().to_string();
        assert!(error.contains("not a socket"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_symlink_put_at_the_socket_path_is_replaced_not_followed() {
        let dir = std::env::temp_dir().join(format!(
            "cheroot-wasm-listener-symlink-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, "someone else's file").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        let path = dir.join("s.sock");
        let options = BindOptions {
            socket_mode: Some(0o600),
            ..BindOptions::default()
        };
        // Between the checks and the socket being in place, someone puts a symlink there.
        let listener = bind_unix_with(&path, options, |path| {
            let _ = std::fs::remove_file(path);
            std::os::unix::fs::symlink(&victim, path).unwrap();
        })
        .unwrap();
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&victim), 0o644, "the symlink's target was changed");
        assert!(
            std::fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_socket()
        );
        assert_eq!(mode(&path), 0o600);
        std::os::unix::net::UnixStream::connect(&path).expect("the socket answers at its path");
        // Nothing is left behind but the socket (the private directory is gone).
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["s.sock", "victim"]);
        drop(listener);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
