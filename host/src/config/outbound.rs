//! `route.outbound`: what a route's guest may connect to outside its sandbox. Empty (the
//! default) denies everything; each entry grants one scheme, host and port. Enforcing it is
//! `gateway::outbound`'s.
//!
//! ```toml
//! outbound = ["tcp://db.internal:5432", "postgres://db.internal", "redis://cache:6379",
//!             "https://api.example.com", "http://127.0.0.1:9000", "tcp://*:443"]
//! ```
//!
//! Schemes: `tcp` (a port is required), `http` (port 80 unless given) and `https` (443), and
//! the aliases `postgres`/`postgresql` (tcp, 5432), `mysql` (tcp, 3306) and `redis` (tcp,
//! 6379). The host is a DNS name, an IPv4 address or a bracketed IPv6 address; `*` (any
//! host, on that port) must be written out and `check` warns about it.
//!
//! `route.outbound-private` ([`OutboundNetwork`]): the private networks (RFC 1918, CGNAT,
//! ULA, ...) a granted *name* may resolve into. Without it a name leads to public addresses
//! only; `*` never leads to a private one, and an address listed literally always works.
//!
//! ```toml
//! outbound-private = ["10.0.0.0/8", "fd00::/8", "192.168.1.20"]
//! ```

use std::fmt;
use std::net::IpAddr;

/// How the guest reaches the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboundScheme {
    /// A TCP connection through wasi:sockets.
    Tcp,
    /// Plain HTTP through wasi:http's outgoing handler.
    Http,
    /// HTTPS through wasi:http's outgoing handler (TLS done by the host).
    Https,
}

/// A granted host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OutboundHost {
    /// A DNS name, lower-case, resolved by the host.
    Name(String),
    /// An address, taken literally (loopback and link-local included: the operator wrote it).
    Ip(IpAddr),
    /// Any host: `tcp://*:443`.
    Any,
}

/// One `outbound` entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OutboundTarget {
    /// How.
    pub scheme: OutboundScheme,
    /// Where.
    pub host: OutboundHost,
    /// On which port.
    pub port: u16,
}

impl OutboundTarget {
    /// Parses `scheme://host[:port]`; nothing may follow (no path, no user).
    pub fn parse(text: &str) -> Result<OutboundTarget, String> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or("write it as scheme://host:port, e.g. \"tcp://db.internal:5432\"")?;
        let (scheme, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "tcp" => (OutboundScheme::Tcp, None),
            "http" => (OutboundScheme::Http, Some(80)),
            "https" => (OutboundScheme::Https, Some(443)),
            "postgres" | "postgresql" => (OutboundScheme::Tcp, Some(5432)),
            "mysql" => (OutboundScheme::Tcp, Some(3306)),
            "redis" => (OutboundScheme::Tcp, Some(6379)),
            other => {
                return Err(format!(
                    "unknown scheme {other:?}: use tcp, http, https, postgres, mysql or redis"
                ));
            }
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
            return Err("only a host and a port may follow the scheme (no path, no user)".into());
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (addr, after) = v6.split_once(']').ok_or("an IPv6 address needs its `]`")?;
            let ip: IpAddr = addr
                .parse()
                .map_err(|_| format!("{addr:?} is not an IPv6 address"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or("a `:` must come before the port")?,
                ),
            };
            (OutboundHost::Ip(ip), port)
        } else {
            let (host, port) = match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            };
            let host = host.trim_end_matches('.').to_ascii_lowercase();
            let host = if host == "*" {
                OutboundHost::Any
            } else if let Ok(ip) = host.parse::<IpAddr>() {
                OutboundHost::Ip(ip)
            } else {
                let label_ok = |l: &str| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                };
                if host.len() > 253 || !host.split('.').all(label_ok) {
                    return Err(format!("{host:?} is not a host name or an IP address"));
                }
                OutboundHost::Name(host)
            };
            (host, port)
        };
        let port = match (port, default_port) {
            (Some(p), _) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| format!("{p:?} is not a port from 1 to 65535"))?,
            (None, Some(p)) => p,
            (None, None) => {
                return Err("tcp:// needs a port, e.g. \"tcp://db.internal:5432\"".into());
            }
        };
        Ok(OutboundTarget { scheme, host, port })
    }
}

/// A network a granted name may resolve into (`outbound-private`): an address and the
/// length of its prefix, host bits zero. IPv4-mapped IPv6 networks (`::ffff:10.0.0.0/104`)
/// are kept as the IPv4 network they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OutboundNetwork {
    addr: IpAddr,
    prefix: u8,
}

impl OutboundNetwork {
    /// Parses `ADDRESS/PREFIX`, or an address alone (a network of one).
    pub fn parse(text: &str) -> Result<OutboundNetwork, String> {
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(addr_text)
            .parse()
            .map_err(|_| {
                format!(
                    "{addr_text:?} is not an IP address: write a network as \"10.0.0.0/8\" or \"fd00::/8\""
                )
            })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|&p| p <= max).ok_or_else(|| {
                let version = if max == 32 { 4 } else { 6 };
                format!("/{p}: the prefix of an IPv{version} network is 0 to {max}")
            })?,
        };
        let net = match addr {
            IpAddr::V6(v6) if prefix >= 96 && v6.to_ipv4_mapped().is_some() => OutboundNetwork {
                addr: IpAddr::V4(
                    v6.to_ipv4_mapped()
                        .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
                ),
                prefix: prefix - 96,
            },
            _ => OutboundNetwork { addr, prefix },
        };
        let first = net.first();
        if first != net.addr {
            return Err(format!(
                "{text:?} has bits set past its prefix: the network is {}",
                OutboundNetwork { addr: first, ..net }
            ));
        }
        Ok(net)
    }

    /// The network's first address (its address with the host bits cleared).
    fn first(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(v4) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(v4) & mask).into())
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        }
    }

    /// Whether `ip` (IPv4-mapped IPv6 taken as the IPv4 address it is) is in the network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let probe = OutboundNetwork {
            addr: ip.to_canonical(),
            prefix: self.prefix,
        };
        probe.addr.is_ipv4() == self.addr.is_ipv4() && probe.first() == self.addr
    }
}

impl fmt::Display for OutboundNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl fmt::Display for OutboundTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            OutboundScheme::Tcp => "tcp",
            OutboundScheme::Http => "http",
            OutboundScheme::Https => "https",
        };
        match &self.host {
            OutboundHost::Name(name) => write!(f, "{scheme}://{name}:{}", self.port),
            OutboundHost::Ip(IpAddr::V6(ip)) => write!(f, "{scheme}://[{ip}]:{}", self.port),
            OutboundHost::Ip(ip) => write!(f, "{scheme}://{ip}:{}", self.port),
            OutboundHost::Any => write!(f, "{scheme}://*:{}", self.port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_with_their_default_ports() {
        for (text, shown) in [
            ("tcp://db.internal:5432", "tcp://db.internal:5432"),
            ("postgres://DB.internal", "tcp://db.internal:5432"),
            ("redis://cache", "tcp://cache:6379"),
            ("mysql://10.0.0.5", "tcp://10.0.0.5:3306"),
            ("https://api.example.com", "https://api.example.com:443"),
            ("http://127.0.0.1:9000/", "http://127.0.0.1:9000"),
            ("tcp://[::1]:8080", "tcp://[::1]:8080"),
            ("tcp://*:443", "tcp://*:443"),
        ] {
            assert_eq!(
                OutboundTarget::parse(text).unwrap().to_string(),
                shown,
                "{text}"
            );
        }
    }

    #[test]
    fn bad_entries_say_why() {
        for (text, why) in [
            ("db.internal:5432", "scheme://"),
            ("ftp://x:21", "unknown scheme"),
            ("tcp://db.internal", "needs a port"),
            ("tcp://db:0", "not a port"),
            ("tcp://db:99999", "not a port"),
            ("https://user@api.example.com", "no user"),
            ("https://api.example.com/v1", "no path"),
            ("tcp://bad host:1", "not a host name"),
            ("tcp://[::1:80", "`]`"),
        ] {
            let error = OutboundTarget::parse(text).unwrap_err();
            assert!(error.contains(why), "{text}: {error}");
        }
    }

    #[test]
    fn private_networks_parse_contain_and_say_why_not() {
        let net = |t: &str| OutboundNetwork::parse(t).unwrap();
        assert_eq!(net("10.0.0.0/8").to_string(), "10.0.0.0/8");
        assert_eq!(net("192.168.1.20").to_string(), "192.168.1.20/32");
        assert_eq!(net("[fd00::]/8").to_string(), "fd00::/8");
        assert_eq!(net("::ffff:10.0.0.0/104").to_string(), "10.0.0.0/8");
        assert_eq!(net("0.0.0.0/0").to_string(), "0.0.0.0/0");
        let ten = net("10.0.0.0/8");
        for (ip, inside) in [
            ("10.1.2.3", true),
            ("::ffff:10.1.2.3", true),
            ("11.0.0.1", false),
            ("fd00::1", false),
        ] {
            assert_eq!(ten.contains(ip.parse().unwrap()), inside, "{ip}");
        }
        assert!(net("fd00::/8").contains("fd00:ec2::254".parse().unwrap()));
        assert!(!net("fd00::/8").contains("fc00::1".parse().unwrap()));
        assert!(net("0.0.0.0/0").contains("100.100.100.200".parse().unwrap()));
        for (text, why) in [
            ("10.0.0.1/8", "the network is 10.0.0.0/8"),
            ("10.0.0.0/33", "0 to 32"),
            ("fd00::/129", "0 to 128"),
            ("db.internal", "not an IP address"),
            ("10.0.0.0/x", "0 to 32"),
        ] {
            let error = OutboundNetwork::parse(text).unwrap_err();
            assert!(error.contains(why), "{text}: {error}");
        }
    }
}
