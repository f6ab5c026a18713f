//! Name resolution that keeps connectors out of the network behind the host.
//!
//! Every name the transport connects to is resolved here, and addresses no connector has any
//! business reaching (private and reserved networks, link-local with the cloud metadata
//! service, Azure's host endpoint, loopback, and IPv6 forms that carry any of them) are dropped
//! after DNS: an allowed name that points inside is refused, not only a literal
//! address. The lookup itself is injectable so tests can make a name resolve anywhere.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::Name;

/// Turns a host name into addresses. Blocking: it runs on tokio's blocking pool.
pub trait NameLookup: Send + Sync {
    fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>>;
}

/// The operating system's resolver (`/etc/hosts`, DNS).
pub struct SystemLookup;

impl NameLookup for SystemLookup {
    fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        Ok((host, 0).to_socket_addrs()?.map(|address| address.ip()).collect())
    }
}

/// IPv4 networks no connector may reach, whatever the allow-list says, each with why.
const PROHIBITED_V4: [(Ipv4Addr, u8, &str); 13] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8, "\"this network\" (0/8; 0.0.0.0 reaches the host itself)"),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "private (10/8)"),
    (Ipv4Addr::new(100, 64, 0, 0), 10, "carrier-grade NAT (100.64/10), private in practice"),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback (127/8)"),
    (Ipv4Addr::new(168, 63, 129, 16), 32, "Azure's host endpoint (WireServer, 168.63.129.16)"),
    (Ipv4Addr::new(169, 254, 0, 0), 16, "link-local (169.254/16), where cloud metadata lives"),
    (Ipv4Addr::new(172, 16, 0, 0), 12, "private (172.16/12)"),
    (Ipv4Addr::new(192, 0, 0, 0), 24, "IETF protocol assignments (192.0.0/24)"),
    (Ipv4Addr::new(192, 168, 0, 0), 16, "private (192.168/16)"),
    (Ipv4Addr::new(198, 18, 0, 0), 15, "benchmarking (198.18/15)"),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast (224/4)"),
    (Ipv4Addr::new(240, 0, 0, 0), 4, "reserved (240/4, with the broadcast address)"),
    (Ipv4Addr::new(192, 88, 99, 0), 24, "6to4 relay anycast (192.88.99/24)"),
];

/// IPv6 networks refused outright (those embedding an IPv4 address are checked by it).
const PROHIBITED_V6: [(Ipv6Addr, u8, &str); 6] = [
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 96, "IPv4-compatible (::a.b.c.d, deprecated) and unspecified"),
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48, "local-use NAT64 (64:ff9b:1::/48)"),
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64, "discard-only (100::/64)"),
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32, "Teredo (2001::/32)"),
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, "unique local (fc00::/7, with AWS metadata fd00:ec2::254)"),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 9, "link-local and site-local (fe80::/10, fec0::/10)"),
];

const LOOPBACK_V4: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 0);

fn in_v4(ip: Ipv4Addr, network: Ipv4Addr, prefix: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(network) & mask
}

fn in_v6(ip: Ipv6Addr, network: Ipv6Addr, prefix: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    u128::from(ip) & mask == u128::from(network) & mask
}

/// Why `ip` is refused, or `None` when a connector may reach it. Loopback is allowed only when
/// the origin names loopback itself; an IPv6 address that carries an IPv4 one (mapped
/// `::ffff:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:AABB:CCDD::`) is judged by it, so a
/// private or metadata address cannot be reached through a translator.
pub fn prohibited_because(ip: IpAddr, origin_is_loopback: bool) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            if origin_is_loopback && in_v4(v4, LOOPBACK_V4, 8) {
                return None;
            }
            PROHIBITED_V4.iter().find(|(network, prefix, _)| in_v4(v4, *network, *prefix)).map(|(_, _, why)| *why)
        }
        IpAddr::V6(v6) => {
            if v6.is_loopback() {
                return (!origin_is_loopback).then_some("loopback (::1)");
            }
            if let Some(embedded) = embedded_v4(v6) {
                return prohibited_because(IpAddr::V4(embedded), origin_is_loopback);
            }
            if v6.is_multicast() {
                return Some("multicast (ff00::/8)");
            }
            PROHIBITED_V6.iter().find(|(network, prefix, _)| in_v6(v6, *network, *prefix)).map(|(_, _, why)| *why)
        }
    }
}

/// The IPv4 address an IPv4-mapped, NAT64 (well-known prefix) or 6to4 address stands for.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(v6);
    let low = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if let Some(mapped) = v6.to_ipv4_mapped() {
        Some(mapped)
    } else if in_v6(v6, Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96) {
        Some(low)
    } else if in_v6(v6, Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16) {
        Some(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32))
    } else {
        None
    }
}

/// True when no connector may reach `ip` (see [`prohibited_because`]).
pub fn is_prohibited(ip: IpAddr, origin_is_loopback: bool) -> bool {
    prohibited_because(ip, origin_is_loopback).is_some()
}

/// The error a refused resolution carries through hyper, so the transport can tell it apart.
#[derive(Debug)]
pub struct ProhibitedResolution(pub String);

impl std::fmt::Display for ProhibitedResolution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} resolves only to prohibited addresses", self.0)
    }
}

impl std::error::Error for ProhibitedResolution {}

/// Resolves names and keeps only addresses a connector may reach. `localhost` is the one name
/// allowed to resolve to loopback, because only a loopback origin (configured on purpose, as
/// tests do) can name it.
#[derive(Clone)]
pub struct GuardedResolver {
    lookup: Arc<dyn NameLookup>,
}

impl GuardedResolver {
    pub fn new(lookup: Arc<dyn NameLookup>) -> Self {
        GuardedResolver { lookup }
    }

    /// The addresses of `host` a connector may reach, or why there are none.
    fn resolve(&self, host: &str) -> std::io::Result<Vec<SocketAddr>> {
        let loopback_name = host.eq_ignore_ascii_case("localhost");
        let allowed: Vec<SocketAddr> = self
            .lookup
            .lookup(host)?
            .into_iter()
            .filter(|ip| !is_prohibited(*ip, loopback_name))
            .map(|ip| SocketAddr::new(ip, 0))
            .collect();
        if allowed.is_empty() {
            return Err(std::io::Error::other(ProhibitedResolution(host.to_owned())));
        }
        Ok(allowed)
    }
}

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let resolver = self.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses =
                tokio::task::spawn_blocking(move || resolver.resolve(&host)).await.map_err(std::io::Error::other)??;
            Ok(addresses.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct FixedLookup(Vec<IpAddr>);

    impl NameLookup for FixedLookup {
        fn lookup(&self, _host: &str) -> std::io::Result<Vec<IpAddr>> {
            Ok(self.0.clone())
        }
    }

    fn resolver(addresses: &[&str]) -> GuardedResolver {
        GuardedResolver::new(Arc::new(FixedLookup(addresses.iter().map(|a| a.parse().unwrap()).collect())))
    }

    #[test]
    fn a_name_resolving_only_to_private_or_metadata_addresses_is_refused() {
        for address in ["10.1.2.3", "169.254.169.254", "fd00:ec2::254", "127.0.0.1"] {
            let error = resolver(&[address]).resolve("inside.example.com").unwrap_err();
            let refused = error.get_ref().and_then(|inner| inner.downcast_ref::<ProhibitedResolution>());
            assert!(refused.is_some(), "{address}: {error}");
        }
    }

    #[test]
    fn only_public_addresses_of_a_mixed_answer_are_used() {
        let allowed = resolver(&["10.0.0.7", "20.190.128.1", "169.254.169.254"]).resolve("mixed.example.com").unwrap();
        assert_eq!(allowed, vec!["20.190.128.1:0".parse::<SocketAddr>().unwrap()]);
    }

    #[test]
    fn localhost_may_resolve_to_loopback() {
        let allowed = resolver(&["127.0.0.1"]).resolve("localhost").unwrap();
        assert_eq!(allowed.len(), 1);
    }

    #[test]
    fn metadata_private_and_link_local_addresses_are_prohibited() {
        for address in [
            "169.254.169.254",
            "10.0.0.1",
            "192.168.1.1",
            "172.16.0.1",
            "fd00:ec2::254",
            "fe80::1",
            "100.64.0.1",
            "0.0.0.0",
        ] {
            let ip: IpAddr = address.parse().unwrap();
            assert!(is_prohibited(ip, false), "{address} must be prohibited");
        }
        assert!(!is_prohibited("20.190.128.1".parse().unwrap(), false));
    }

    #[test]
    fn loopback_is_reachable_only_from_a_loopback_origin() {
        assert!(is_prohibited("127.0.0.1".parse().unwrap(), false));
        assert!(!is_prohibited("127.0.0.1".parse().unwrap(), true));
        assert!(is_prohibited("::ffff:169.254.169.254".parse().unwrap(), true));
    }

    #[test]
    fn every_named_ipv4_range_is_prohibited_at_its_edges() {
        for (network, prefix, why) in PROHIBITED_V4 {
            let first = u32::from(network);
            let last = first | u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
            for ip in [first, last] {
                let ip = IpAddr::V4(Ipv4Addr::from(ip));
                assert_eq!(prohibited_because(ip, false), Some(why), "{ip}");
            }
        }
        for address in ["168.63.129.16", "192.0.0.8", "0.1.2.3", "240.0.0.1", "255.255.255.255", "198.19.0.1"] {
            assert!(is_prohibited(address.parse().unwrap(), false), "{address}");
        }
        for public in ["168.63.129.17", "192.0.1.1", "1.0.0.1", "223.255.255.255", "20.190.128.1"] {
            assert!(!is_prohibited(public.parse().unwrap(), false), "{public} is public");
        }
    }

    #[test]
    fn ipv6_forms_carrying_a_prohibited_ipv4_address_are_prohibited() {
        for address in [
            "64:ff9b::a9fe:a9fe",   // NAT64 of 169.254.169.254
            "64:ff9b::10.0.0.1",    // NAT64 of 10.0.0.1
            "::ffff:10.0.0.1",      // IPv4-mapped
            "::ffff:168.63.129.16", // IPv4-mapped WireServer
            "::10.0.0.1",           // IPv4-compatible
            "::20.190.128.1",       // IPv4-compatible, even of a public address (deprecated form)
            "2002:a9fe:a9fe::1",    // 6to4 of 169.254.169.254
            "64:ff9b:1::1",         // local-use NAT64
            "2001:0:4136:e378::1",  // Teredo
            "fec0::1",              // site-local
            "ff02::1",
            "::",
        ] {
            assert!(is_prohibited(address.parse().unwrap(), true), "{address} must be prohibited");
        }
        for public in ["64:ff9b::14be:8001", "2002:14be:8001::1", "2603:1030::1", "::ffff:20.190.128.1"] {
            assert!(!is_prohibited(public.parse().unwrap(), false), "{public} embeds or is a public address");
        }
        assert!(is_prohibited("::1".parse().unwrap(), false));
        assert!(!is_prohibited("::1".parse().unwrap(), true));
        assert!(is_prohibited("64:ff9b::7f00:1".parse().unwrap(), false), "NAT64 of loopback");
    }
}
