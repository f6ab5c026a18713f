//! Name resolution that keeps connectors out of the network behind the host.
//!
//! Every name the transport connects to is resolved here, and addresses no connector has any
//! business reaching (private networks, link-local with the cloud metadata service, loopback)
//! are dropped after DNS: an allowed name that points inside is refused, not only a literal
//! address. The lookup itself is injectable so tests can make a name resolve anywhere.

use std::future::Future;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
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

/// Addresses no connector may reach, whatever the allow-list says: private networks,
/// link-local (cloud metadata lives there), unspecified, multicast, and loopback unless the
/// origin names loopback itself.
pub fn is_prohibited(ip: IpAddr, origin_is_loopback: bool) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            (v4.is_loopback() && !origin_is_loopback)
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                // 100.64.0.0/10, carrier-grade NAT: private in practice.
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_prohibited(IpAddr::V4(v4), origin_is_loopback);
            }
            let first = v6.segments()[0];
            (v6.is_loopback() && !origin_is_loopback)
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local, includes fd00:ec2::254 (AWS metadata)
                || (first & 0xffc0) == 0xfe80 // link-local
        }
    }
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
}
