//! Where webhooks may go: only to public addresses. An endpoint URL names a host that anyone who
//! may set an endpoint chooses, and the hub POSTs from inside its own network; without this a URL
//! could reach the cloud metadata service (169.254.169.254), the hub's own NATS or database on
//! loopback, or any private or unique-local address behind the firewall.
//!
//! [`is_public`] classifies one address. [`Destinations`] is the rule in force: public addresses,
//! plus the ranges an operator allowed explicitly (`--webhook-allow-net`), e.g. a partner inside
//! the same private network, or loopback for tests. A host is acceptable only if **every**
//! address it resolves to is; the worker resolves again at every delivery and connects only to
//! the addresses it checked (see `delivery.rs`), so a DNS answer that changes between the check
//! and the connection cannot slip through.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// A range of addresses in CIDR notation (`10.20.0.0/16`, `fd00::/8`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

/// Why a text is not a CIDR range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an address range (expected CIDR such as 10.20.0.0/16 or fd00::/8): {0:?}")]
pub struct InvalidNet(pub String);

impl IpNet {
    /// Every IPv4 loopback address, `127.0.0.0/8`.
    pub const LOOPBACK_V4: Self = Self {
        addr: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)),
        prefix: 8,
    };
    /// The IPv6 loopback address, `::1/128`.
    pub const LOOPBACK_V6: Self = Self {
        addr: IpAddr::V6(Ipv6Addr::LOCALHOST),
        prefix: 128,
    };

    /// Whether `ip` lies in the range (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_match(u128::from(net.to_bits()), u128::from(ip.to_bits()), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_match(net.to_bits(), ip.to_bits(), self.prefix, 128),
            _ => false,
        }
    }
}

fn prefix_match(net: u128, ip: u128, prefix: u8, bits: u8) -> bool {
    let shift = bits - prefix;
    // A zero-length prefix holds every address (and a shift by the full width would overflow).
    prefix == 0 || (net >> shift) == (ip >> shift)
}

impl FromStr for IpNet {
    type Err = InvalidNet;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidNet(text.to_owned());
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| invalid())?;
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.parse::<u8>().ok().filter(|p| *p <= bits).ok_or_else(invalid)?,
            None => bits,
        };
        // Host bits set (10.1.2.3/8) are a typo more often than not: refused rather than guessed.
        let net = Self { addr, prefix };
        let host_bits_clear = match addr {
            IpAddr::V4(v4) => prefix == 32 || u32::from(v4) << prefix == 0,
            IpAddr::V6(v6) => prefix == 128 || u128::from(v6) << prefix == 0,
        };
        if !host_bits_clear {
            return Err(invalid());
        }
        Ok(net)
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Whether `ip` is a public unicast address: not loopback, unspecified, link-local (the cloud
/// metadata service 169.254.169.254 among them), private (RFC 1918), shared (CGNAT
/// 100.64.0.0/10), unique-local, multicast, broadcast, reserved, documentation or benchmarking,
/// nor an IPv4-mapped, NAT64 or 6to4 form of one of those. IPv6 must be global unicast
/// (`2000::/3`) outside the special-purpose blocks.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => public_v6(v6),
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0 // "this network", 0.0.0.0 among them
        || a == 10 // private
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || a == 127 // loopback
        || (a == 169 && b == 254) // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation (TEST-NET-1)
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast (deprecated)
        || (a == 192 && b == 168) // private
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // documentation (TEST-NET-2)
        || (a == 203 && b == 0 && c == 113) // documentation (TEST-NET-3)
        || a >= 224) // multicast, reserved, broadcast
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let bits = ip.to_bits();
    let segments = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return public_v4(v4);
    }
    // NAT64 (64:ff9b::/96): the IPv4 address the translator will reach.
    if bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        return public_v4(Ipv4Addr::from_bits(bits as u32));
    }
    // 6to4 (2002::/16): the IPv4 address of the relay it tunnels to.
    if segments[0] == 0x2002 {
        return public_v4(Ipv4Addr::new(
            (segments[1] >> 8) as u8,
            segments[1] as u8,
            (segments[2] >> 8) as u8,
            segments[2] as u8,
        ));
    }
    // Only global unicast; this leaves out ::, ::1, IPv4-compatible ::/96, discard-only 100::/64,
    // unique-local fc00::/7, link-local fe80::/10, site-local fec0::/10, multicast ff00::/8.
    let global_unicast = segments[0] & 0xe000 == 0x2000;
    global_unicast
        && !(segments[0] == 0x2001 && segments[1] < 0x0200) // 2001::/23 IETF protocol assignments (Teredo, ORCHID, …)
        && !(segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
        && segments[0] & 0xfff0 != 0x3ff0 // 3fff::/20 documentation
}

/// Where webhooks may be delivered: public addresses, and the ranges an operator allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Destinations {
    allowed: Vec<IpNet>,
}

impl Destinations {
    /// Public addresses and `allowed`.
    pub fn new(allowed: impl IntoIterator<Item = IpNet>) -> Self {
        Self {
            allowed: allowed.into_iter().collect(),
        }
    }

    /// Public addresses and loopback: what tests and a developer's machine use.
    pub fn with_loopback() -> Self {
        Self::new([IpNet::LOOPBACK_V4, IpNet::LOOPBACK_V6])
    }

    /// The ranges allowed beside public addresses.
    pub fn allowed(&self) -> &[IpNet] {
        &self.allowed
    }

    /// Whether `ip` may be delivered to.
    pub fn permits(&self, ip: IpAddr) -> bool {
        is_public(ip.to_canonical()) || self.allowed.iter().any(|net| net.contains(ip))
    }

    /// Resolves `host` (a name, or an address with or without brackets) and returns its
    /// addresses (with `port`) if every one is permitted. A name that resolves to nothing is
    /// [`Refused::Unresolved`].
    pub(crate) async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refused> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port))
                .await
                .map_err(|_| Refused::Unresolved)?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(Refused::Unresolved);
        }
        if addrs.iter().all(|addr| self.permits(addr.ip())) {
            Ok(addrs)
        } else {
            Err(Refused::NotPublic)
        }
    }
}

/// Why a host is not delivered to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// It resolves to at least one address that is not public and not allowed.
    #[error("the host resolves to an address that is not public")]
    NotPublic,
    /// It does not resolve (now).
    #[error("the host does not resolve")]
    Unresolved,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_public_unicast_addresses_are_public() {
        let not_public = [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "198.19.255.255",
            "192.88.99.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "::8.8.8.8",
            "64:ff9b::a00:1",
            "64:ff9b::7f00:1",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::1",
            "100::1",
            "fc00::1",
            "fd00::1",
            "fdff:ffff::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1",
            "2001:db8::1",
            "2001::1",
            "2001:1ff::1",
            "3fff::1",
            "5f00::1",
        ];
        for text in not_public {
            assert!(!is_public(ip(text)), "{text} counted as public");
        }
        let public = [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "169.253.0.1",
            "192.0.1.1",
            "192.169.0.1",
            "198.17.0.1",
            "198.20.0.1",
            "223.255.255.254",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:4860:4860::8888",
            "2a00:1450:4001::1",
            "2600::1",
        ];
        for text in public {
            assert!(is_public(ip(text)), "{text} counted as not public");
        }
    }

    #[test]
    fn ranges_parse_and_contain() {
        let net: IpNet = "10.20.0.0/16".parse().unwrap();
        assert!(net.contains(ip("10.20.3.4")));
        assert!(net.contains(ip("::ffff:10.20.3.4")), "IPv4-mapped counts as IPv4");
        assert!(!net.contains(ip("10.21.0.1")));
        assert!(!net.contains(ip("fd00::1")));
        let v6: IpNet = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")));
        assert!(!v6.contains(ip("fe80::1")));
        let one: IpNet = "192.168.1.10".parse().unwrap();
        assert_eq!(one.to_string(), "192.168.1.10/32");
        assert!(one.contains(ip("192.168.1.10")) && !one.contains(ip("192.168.1.11")));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("127.0.0.1")));
        for bad in ["10.0.0.1/8", "10.0.0.0/33", "fd00::/129", "10.0.0.0/x", "example", ""] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn allowed_ranges_open_only_themselves() {
        let strict = Destinations::default();
        assert!(strict.permits(ip("8.8.8.8")));
        assert!(!strict.permits(ip("127.0.0.1")));
        let loopback = Destinations::with_loopback();
        assert!(loopback.permits(ip("127.0.0.1")) && loopback.permits(ip("::1")));
        assert!(loopback.permits(ip("::ffff:127.0.0.1")));
        assert!(!loopback.permits(ip("169.254.169.254")));
        assert!(!loopback.permits(ip("10.0.0.1")));
    }

    #[tokio::test]
    async fn a_name_is_refused_if_any_address_is_not_permitted() {
        let strict = Destinations::default();
        assert_eq!(strict.resolve("localhost", 80).await, Err(Refused::NotPublic));
        assert_eq!(strict.resolve("[::1]", 80).await, Err(Refused::NotPublic));
        assert_eq!(strict.resolve("169.254.169.254", 80).await, Err(Refused::NotPublic));
        let addrs = Destinations::with_loopback().resolve("127.0.0.1", 8080).await.unwrap();
        assert_eq!(addrs, [SocketAddr::from(([127, 0, 0, 1], 8080))]);
    }
}
