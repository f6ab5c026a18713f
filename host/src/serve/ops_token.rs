//! The bearer tokens of the operations API, read from a file or the environment. There are two:
//! the operator token opens everything (status, metrics, sync triggers, grants and revokes); the
//! read token opens only what reads (metrics and status), so the one handed to Prometheus or a
//! dashboard cannot change access in Azure. A token file is read again when it changes (a
//! rotated Kubernetes Secret updates its mounted file in place), so a new token takes effect
//! without a restart.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use anyhow::{Context as _, bail};
use sha2::{Digest, Sha256};

/// Where one credential of the ops API is configured: its file flag and the environment
/// variable holding the token itself (the file is preferred: it stays out of the process
/// environment).
#[derive(Clone, Copy, Debug)]
pub struct TokenSource {
    pub flag: &'static str,
    pub variable: &'static str,
}

/// The operator token: everything, provisioning included.
pub const OPERATOR_TOKEN: TokenSource = TokenSource { flag: "--ops-token-file", variable: "CONNECTOR_HOST_OPS_TOKEN" };
/// The read token: `/metrics`, `/tenants`, `/tenants/{id}`.
pub const READ_TOKEN: TokenSource =
    TokenSource { flag: "--ops-read-token-file", variable: "CONNECTOR_HOST_OPS_READ_TOKEN" };

/// Shorter tokens are refused: the token guards grants and revokes.
const MIN_TOKEN_CHARS: usize = 16;

/// Only the token's digest is kept, and requests are compared digest to digest in constant
/// time, so neither the length nor a prefix of the token leaks through timing.
pub struct OpsToken {
    source: TokenSource,
    /// The file the token came from, watched for changes.
    file: Option<PathBuf>,
    current: Mutex<Loaded>,
}

/// The token in use, and the modification time of the file it was read from.
struct Loaded {
    digest: [u8; 32],
    modified: Option<SystemTime>,
}

/// What a request's credential allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    None,
    Read,
    Operate,
}

/// Both tokens of the ops API; either may be absent.
pub struct OpsCredentials {
    pub operator: Option<OpsToken>,
    pub reader: Option<OpsToken>,
}

impl OpsCredentials {
    /// Refuses one token configured as both: the read token would then open grants.
    pub fn new(operator: Option<OpsToken>, reader: Option<OpsToken>) -> anyhow::Result<OpsCredentials> {
        if let (Some(operator), Some(reader)) = (&operator, &reader)
            && operator.current_digest() == reader.current_digest()
        {
            bail!(
                "the read token ({}) is the operator token ({}): give the read token a value of its own",
                READ_TOKEN.flag,
                OPERATOR_TOKEN.flag
            );
        }
        Ok(OpsCredentials { operator, reader })
    }

    pub fn is_empty(&self) -> bool {
        self.operator.is_none() && self.reader.is_none()
    }

    /// What `authorization` opens: the operator token everything, the read token reading.
    pub fn access(&self, authorization: Option<&str>) -> Access {
        // Both are compared, so the answer's timing does not say which token was close.
        let operate = self.operator.as_ref().is_some_and(|token| token.admits(authorization));
        let read = self.reader.as_ref().is_some_and(|token| token.admits(authorization));
        if operate {
            Access::Operate
        } else if read {
            Access::Read
        } else {
            Access::None
        }
    }
}

impl OpsToken {
    pub fn new(source: TokenSource, token: &str) -> anyhow::Result<OpsToken> {
        let loaded = Loaded { digest: digest_of(source, token)?, modified: None };
        Ok(OpsToken { source, file: None, current: Mutex::new(loaded) })
    }

    /// From the source's file when given, else from its variable (the value of
    /// `std::env::var(source.variable)`); `None` when neither is set.
    pub fn configured(
        source: TokenSource,
        file: Option<&Path>,
        variable: Option<String>,
    ) -> anyhow::Result<Option<OpsToken>> {
        match (file, variable) {
            (Some(_), Some(_)) => bail!("both {} and {} are set: keep only one", source.flag, source.variable),
            (Some(path), None) => {
                let loaded = read_token_file(source, path)?;
                Ok(Some(OpsToken { source, file: Some(path.to_path_buf()), current: Mutex::new(loaded) }))
            }
            (None, Some(token)) => OpsToken::new(source, &token).map(Some),
            (None, None) => Ok(None),
        }
    }

    /// True when `authorization` is `Bearer <the token>`.
    pub fn admits(&self, authorization: Option<&str>) -> bool {
        let Some(given) = authorization.and_then(|value| value.strip_prefix("Bearer ")) else { return false };
        let given: [u8; 32] = Sha256::digest(given.trim().as_bytes()).into();
        let expected = self.current_digest();
        let difference = expected.iter().zip(given.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(difference) == 0
    }

    /// The token in use, after reading the file again if it changed. A changed file that is
    /// unreadable or holds a too-short token is logged and the previous token stays in use:
    /// a half-written rotation must not lock operators out, nor let anyone in.
    fn current_digest(&self) -> [u8; 32] {
        let mut current = self.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(path) = &self.file {
            let modified = std::fs::metadata(path).and_then(|meta| meta.modified()).ok();
            if modified.is_some() && modified != current.modified {
                match read_token_file(self.source, path) {
                    Ok(loaded) => {
                        tracing::info!(file = %path.display(), "an ops token file changed: its new token is in use");
                        *current = loaded;
                    }
                    Err(error) => {
                        tracing::warn!(error = %format!("{error:#}"), "an ops token file changed but cannot be used: the previous token stays in use");
                        current.modified = modified;
                    }
                }
            }
        }
        current.digest
    }
}

fn digest_of(source: TokenSource, token: &str) -> anyhow::Result<[u8; 32]> {
    let token = token.trim();
    if token.chars().count() < MIN_TOKEN_CHARS {
        bail!(
            "the ops token of {} is shorter than {MIN_TOKEN_CHARS} characters: use a long random value, e.g. `openssl rand -hex 32`",
            source.flag
        );
    }
    Ok(Sha256::digest(token.as_bytes()).into())
}

fn read_token_file(source: TokenSource, path: &Path) -> anyhow::Result<Loaded> {
    let modified = std::fs::metadata(path).and_then(|meta| meta.modified()).ok();
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the ops token file {}: check {}", path.display(), source.flag))?;
    Ok(Loaded { digest: digest_of(source, &text)?, modified })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_is_admitted() {
        let token = OpsToken::new(OPERATOR_TOKEN, "0123456789abcdef0123\n").unwrap();
        assert!(token.admits(Some("Bearer 0123456789abcdef0123")));
        assert!(!token.admits(Some("Bearer 0123456789abcdef012")));
        assert!(!token.admits(Some("Basic 0123456789abcdef0123")));
        assert!(!token.admits(None));
    }

    #[test]
    fn a_short_token_is_refused() {
        assert!(OpsToken::new(OPERATOR_TOKEN, "secret").err().expect("refused").to_string().contains("openssl rand"));
    }

    #[test]
    fn a_rotated_token_file_takes_effect_and_a_broken_rotation_keeps_the_token_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let write = |text: &str, seconds_later: u64| {
            std::fs::write(&path, text).unwrap();
            let file = std::fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(SystemTime::now() + std::time::Duration::from_secs(seconds_later)).unwrap();
        };
        write("first-token-0123456789", 0);
        let token = OpsToken::configured(READ_TOKEN, Some(&path), None).unwrap().expect("a token");
        assert!(token.admits(Some("Bearer first-token-0123456789")));

        write("second-token-0123456789", 10);
        assert!(token.admits(Some("Bearer second-token-0123456789")), "the new token works at once");
        assert!(!token.admits(Some("Bearer first-token-0123456789")), "the old one no longer does");

        write("short", 20);
        assert!(token.admits(Some("Bearer second-token-0123456789")), "a broken rotation keeps the token in use");
        assert!(!token.admits(Some("Bearer short")));
    }

    fn credentials(operator: &str, reader: &str) -> anyhow::Result<OpsCredentials> {
        OpsCredentials::new(
            Some(OpsToken::new(OPERATOR_TOKEN, operator).unwrap()),
            Some(OpsToken::new(READ_TOKEN, reader).unwrap()),
        )
    }

    #[test]
    fn the_operator_token_operates_and_the_read_token_only_reads() {
        let credentials = credentials("operator-token-0123456789", "reader-token-0123456789").unwrap();
        assert_eq!(credentials.access(Some("Bearer operator-token-0123456789")), Access::Operate);
        assert_eq!(credentials.access(Some("Bearer reader-token-0123456789")), Access::Read);
        assert_eq!(credentials.access(Some("Bearer someone-else-0123456789")), Access::None);
        assert_eq!(credentials.access(None), Access::None);
    }

    #[test]
    fn one_token_for_both_roles_is_refused() {
        let error = credentials("same-token-0123456789", "same-token-0123456789").err().expect("refused");
        assert!(error.to_string().contains("a value of its own"), "{error}");
    }
}
