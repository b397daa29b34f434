//! `[server] trusted-proxies`: the peers whose forwarding headers are believed, and
//! `[server] forwarded-header`: which family of headers they speak. What they say is read
//! by `http::proxy`.

use std::net::IpAddr;

/// The one family of forwarding headers a trusted proxy's word is taken from. Never both:
/// a proxy appends to (or replaces) the headers of its own family only, so the other
/// family's headers on the same request are whatever the client sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For`, `-Proto` and `-Host`: what nginx, ingress-nginx, HAProxy and most
    /// cloud load balancers send (the default).
    #[default]
    XForwarded,
    /// `Forwarded` (RFC 7239): Envoy, Traefik or nginx configured to send it.
    Forwarded,
}

impl ForwardedHeader {
    /// `"x-forwarded"` or `"forwarded"`, as routes.toml spells them.
    pub fn parse(value: &str) -> Result<ForwardedHeader, String> {
        match value.trim() {
            "x-forwarded" => Ok(ForwardedHeader::XForwarded),
            "forwarded" => Ok(ForwardedHeader::Forwarded),
            other => Err(format!(
                "{other:?} is not a forwarding header family: write \"x-forwarded\" \
                 (X-Forwarded-For/-Proto/-Host, sent by nginx and most load balancers) or \
                 \"forwarded\" (RFC 7239 `Forwarded`), whichever the proxy in front sends"
            )),
        }
    }
}

/// Networks whose peers may speak for their clients, and whether peers on UNIX sockets may.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<(IpAddr, u8)>,
    unix: bool,
}

impl TrustedProxies {
    /// `"10.0.0.0/8"`, `"127.0.0.1"`, `"::1"`, `"fd00::/8"`, and `"unix"` for whoever
    /// connects over a UNIX socket (a local reverse proxy).
    pub fn parse(list: &[String]) -> Result<TrustedProxies, String> {
        let mut nets = Vec::with_capacity(list.len());
        let mut unix = false;
        for item in list {
            if item.trim() == "unix" {
                unix = true;
                continue;
            }
            let (addr, bits) = item.split_once('/').unwrap_or((item, ""));
            let addr: IpAddr = addr.trim().parse().map_err(|_| {
                format!(
                    "{item:?} is not an IP address or network (e.g. \"10.0.0.0/8\", \"127.0.0.1\")"
                )
            })?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits = if bits.is_empty() {
                max
            } else {
                bits.trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("{item:?}: the prefix length must be 0 to {max}"))?
            };
            nets.push((addr, bits));
        }
        Ok(TrustedProxies { nets, unix })
    }

    /// Whether the peer that connected is trusted: `None` is a UNIX-socket peer.
    pub fn trusts_peer(&self, peer: Option<IpAddr>) -> bool {
        match peer {
            Some(ip) => self.contains(ip),
            None => self.unix,
        }
    }

    /// Whether `ip` is in one of the networks (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|&(net, bits)| match (net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        })
    }

    /// No proxy is trusted (the default).
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty() && !self.unix
    }
}
