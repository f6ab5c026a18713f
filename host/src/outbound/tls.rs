//! The certificate authorities the host trusts: webpki's roots (Mozilla's list, built in) plus
//! the PEM roots an operator adds for a TLS-inspecting proxy or a private CA.
//!
//! Extra roots come from `--ca-file` (`BATON_CA_FILE`), `SSL_CERT_FILE` and `SSL_CERT_DIR`, the
//! variables OpenSSL-based tools already read, so a cluster that injects its proxy's CA for
//! them works unchanged. A file that cannot be used stops the start-up naming the file: a typo
//! must not turn into "certificate not trusted" errors at the first request. What trusting an
//! extra root gives its holder is in docs/security.md ("Proxies and private CAs").

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

/// Where extra roots were configured, in the order they are read.
#[derive(Clone, Debug, Default)]
pub struct ExtraRoots {
    /// `--ca-file` / `BATON_CA_FILE`.
    pub ca_file: Option<PathBuf>,
    /// `SSL_CERT_FILE`.
    pub cert_file: Option<PathBuf>,
    /// `SSL_CERT_DIR`: directories separated by `:`, as OpenSSL reads it.
    pub cert_dirs: Vec<PathBuf>,
}

/// The names of the settings, as error messages and logs spell them.
const CA_FILE_SETTING: &str = "--ca-file (BATON_CA_FILE)";
const CERT_FILE_VARIABLE: &str = "SSL_CERT_FILE";
const CERT_DIR_VARIABLE: &str = "SSL_CERT_DIR";

impl ExtraRoots {
    /// `--ca-file` as given, and `SSL_CERT_FILE` / `SSL_CERT_DIR` read through `variable`.
    pub fn configured(ca_file: Option<&Path>, variable: impl Fn(&str) -> Option<String>) -> Self {
        let set = |name: &str| variable(name).filter(|value| !value.trim().is_empty());
        ExtraRoots {
            ca_file: ca_file.map(Path::to_path_buf),
            cert_file: set(CERT_FILE_VARIABLE).map(PathBuf::from),
            cert_dirs: set(CERT_DIR_VARIABLE)
                .map(|dirs| dirs.split(':').filter(|dir| !dir.is_empty()).map(PathBuf::from).collect())
                .unwrap_or_default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ca_file.is_none() && self.cert_file.is_none() && self.cert_dirs.is_empty()
    }

    /// webpki's roots plus every extra root; the count of extra roots for the log.
    pub fn root_store(&self) -> anyhow::Result<(RootCertStore, usize)> {
        let mut store = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let mut added = 0;
        for (setting, file) in [(CA_FILE_SETTING, &self.ca_file), (CERT_FILE_VARIABLE, &self.cert_file)] {
            if let Some(file) = file {
                added += add_file(&mut store, setting, file)?;
            }
        }
        for dir in &self.cert_dirs {
            added += add_dir(&mut store, dir)?;
        }
        Ok((store, added))
    }
}

/// Adds every certificate of a PEM file; a file without one is an error.
fn add_file(store: &mut RootCertStore, setting: &str, file: &Path) -> anyhow::Result<usize> {
    let certificates = read_certificates(file).with_context(|| format!("{setting} names {}", file.display()))?;
    if certificates.is_empty() {
        bail!(
            "{setting} names {}, which holds no PEM certificate (-----BEGIN CERTIFICATE-----): point it at the CA's certificate in PEM form",
            file.display()
        );
    }
    add_all(store, setting, file, certificates)
}

/// Adds the certificates of every file in an `SSL_CERT_DIR` directory. Such directories also
/// hold other files (OpenSSL's hash links, CRLs, READMEs), so files without a certificate are
/// skipped; a directory without any is an error.
fn add_dir(store: &mut RootCertStore, dir: &Path) -> anyhow::Result<usize> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("{CERT_DIR_VARIABLE} names {}, which cannot be read as a directory", dir.display()))?;
    let mut added = 0;
    for entry in entries {
        let path = entry.with_context(|| format!("listing {CERT_DIR_VARIABLE} directory {}", dir.display()))?.path();
        if !path.is_file() {
            continue;
        }
        match read_certificates(&path) {
            Ok(certificates) if !certificates.is_empty() => {
                added += add_all(store, CERT_DIR_VARIABLE, &path, certificates)?;
            }
            _ => tracing::debug!(file = %path.display(), "no PEM certificate in this {CERT_DIR_VARIABLE} file"),
        }
    }
    if added == 0 {
        bail!(
            "{CERT_DIR_VARIABLE} names {}, which holds no PEM certificate: point it at a directory of CA certificates in PEM form",
            dir.display()
        );
    }
    Ok(added)
}

fn read_certificates(file: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    // Reading the file first tells "missing or unreadable" from "not PEM".
    std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?;
    CertificateDer::pem_file_iter(file)
        .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
        .map_err(|error| anyhow::anyhow!("{} is not a readable PEM file ({error})", file.display()))
}

fn add_all(
    store: &mut RootCertStore,
    setting: &str,
    file: &Path,
    certificates: Vec<CertificateDer<'static>>,
) -> anyhow::Result<usize> {
    let count = certificates.len();
    for certificate in certificates {
        store.add(certificate).map_err(|error| {
            anyhow::anyhow!("{setting}: {} holds a certificate that is not a usable CA ({error})", file.display())
        })?;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_ca_pem() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().pem()
    }

    fn roots(extra: &ExtraRoots) -> anyhow::Result<usize> {
        extra.root_store().map(|(store, added)| {
            assert_eq!(store.len(), webpki_roots::TLS_SERVER_ROOTS.len() + added);
            added
        })
    }

    #[test]
    fn a_ca_file_adds_its_roots_to_webpkis() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, format!("{}{}", test_ca_pem(), test_ca_pem())).unwrap();
        assert_eq!(roots(&ExtraRoots { ca_file: Some(file), ..Default::default() }).unwrap(), 2);
    }

    #[test]
    fn a_missing_empty_or_garbled_file_is_an_error_naming_the_setting_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let garbled = dir.path().join("garbled.pem");
        std::fs::write(&garbled, "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n").unwrap();
        for file in [dir.path().join("missing.pem"), empty, garbled] {
            for extra in [
                ExtraRoots { ca_file: Some(file.clone()), ..Default::default() },
                ExtraRoots { cert_file: Some(file.clone()), ..Default::default() },
            ] {
                let text = format!("{:#}", roots(&extra).unwrap_err());
                let setting = if extra.ca_file.is_some() { "--ca-file" } else { "SSL_CERT_FILE" };
                assert!(text.contains(setting) && text.contains(&file.display().to_string()), "{text}");
            }
        }
    }

    #[test]
    fn a_cert_dir_skips_files_without_certificates_but_must_hold_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("README"), "not a certificate").unwrap();
        let extra =
            ExtraRoots::configured(None, |name| (name == "SSL_CERT_DIR").then(|| format!("{}:", dir.path().display())));
        assert!(format!("{:#}", roots(&extra).unwrap_err()).contains("SSL_CERT_DIR"));
        std::fs::write(dir.path().join("corp.pem"), test_ca_pem()).unwrap();
        assert_eq!(roots(&extra).unwrap(), 1);
    }
}
