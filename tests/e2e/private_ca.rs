//! A private certificate authority for tests: the fake Azure serves HTTPS under the real Azure
//! host names with a certificate it signed, and the host trusts it only when told to.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use fake_azure::{FakeAzure, Tenant, TlsIdentity};

/// A CA and a server certificate it signed for `names`.
pub struct PrivateCa {
    pub ca_pem: String,
    pub server: TlsIdentity,
}

impl PrivateCa {
    pub fn for_names(names: &[&str]) -> PrivateCa {
        let ca_key = rcgen::KeyPair::generate().expect("a CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "connector-host test CA");
        ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("a self-signed CA");
        let server_key = rcgen::KeyPair::generate().expect("a server key");
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        let server_params = rcgen::CertificateParams::new(names).expect("server certificate parameters");
        let server = server_params.signed_by(&server_key, &ca).expect("a server certificate signed by the CA");
        PrivateCa {
            ca_pem: ca.pem(),
            server: TlsIdentity { certificate_chain_pem: server.pem(), private_key_pem: server_key.serialize_pem() },
        }
    }

    /// Writes the CA certificate where `--ca-file` can read it.
    pub fn write_ca(&self, dir: &Path) -> PathBuf {
        let path = dir.join("private-ca.pem");
        std::fs::write(&path, &self.ca_pem).expect("the CA file is written");
        path
    }
}

/// A fake Azure over HTTPS with a certificate of a new private CA for `names`.
pub async fn start_tls_fake(tenant: Tenant, names: &[&str]) -> (FakeAzure, PrivateCa) {
    let ca = PrivateCa::for_names(names);
    let fake = FakeAzure::start_tls(tenant, &ca.server).await.expect("the fake Azure starts over TLS");
    (fake, ca)
}

/// The loopback address of one of the fake's listeners, from its URL.
pub fn listener_address(url: &str) -> SocketAddr {
    url.split_once("://").map_or(url, |(_, address)| address).parse().expect("the fake listens on an address")
}
