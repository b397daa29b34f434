//! Where the server listens, as routes.toml's `[server] bind` and `--bind` spell it:
//! `HOST:PORT`, `unix:PATH` or `systemd`, and the socket options every listener gets.
//! Parsing only; the sockets are `server::listener`'s.

use std::path::PathBuf;

/// One `bind` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindAddr {
    /// `HOST:PORT`, e.g. `127.0.0.1:8080`, `[::]:8080`, `localhost:0`.
    Tcp(String),
    /// `unix:PATH`.
    Unix(PathBuf),
    /// `systemd`: the sockets passed by socket activation.
    Systemd,
}

impl BindAddr {
    /// Parses one bind value; the error says which forms there are.
    pub fn parse(value: &str) -> Result<BindAddr, String> {
        let value = value.trim();
        if value == "systemd" {
            return Ok(BindAddr::Systemd);
        }
        if let Some(path) = value.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("`unix:` needs a path, e.g. \"unix:/run/app.sock\"".into());
            }
            return Ok(BindAddr::Unix(PathBuf::from(path)));
        }
        match value.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(BindAddr::Tcp(value.to_string()))
            }
            _ => Err(format!(
                "{value:?} is not a bind address: use HOST:PORT (\"127.0.0.1:8080\", \
                 \"[::]:8080\"), \"unix:/path/app.sock\" or \"systemd\""
            )),
        }
    }
}

/// Socket options for every listener.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BindOptions {
    /// SO_REUSEPORT on TCP listeners.
    pub reuse_port: bool,
    /// The permission bits of UNIX socket files (default: as the umask leaves them).
    pub socket_mode: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_forms_parse() {
        assert_eq!(
            BindAddr::parse("127.0.0.1:8080"),
            Ok(BindAddr::Tcp("127.0.0.1:8080".into()))
        );
        assert_eq!(
            BindAddr::parse("[::]:0"),
            Ok(BindAddr::Tcp("[::]:0".into()))
        );
        assert_eq!(
            BindAddr::parse("unix:/run/a.sock"),
            Ok(BindAddr::Unix("/run/a.sock".into()))
        );
        assert_eq!(BindAddr::parse("systemd"), Ok(BindAddr::Systemd));
        for bad in ["8080", "localhost", "unix:", ":80", "host:99999"] {
            assert!(BindAddr::parse(bad).is_err(), "{bad}");
        }
    }
}
