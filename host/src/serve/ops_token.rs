//! The bearer token of the operations API, read from a file or the environment. A token file is
//! read again when it changes (a rotated Kubernetes Secret updates its mounted file in place),
//! so a new token takes effect without a restart.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use anyhow::{Context as _, bail};
use sha2::{Digest, Sha256};

/// The environment variable holding the token itself (the file is preferred: it stays out of
/// the process environment).
pub const OPS_TOKEN_VARIABLE: &str = "CONNECTOR_HOST_OPS_TOKEN";

/// Shorter tokens are refused: the token guards grants and revokes.
const MIN_TOKEN_CHARS: usize = 16;

/// Only the token's digest is kept, and requests are compared digest to digest in constant
/// time, so neither the length nor a prefix of the token leaks through timing.
pub struct OpsToken {
    /// The file the token came from, watched for changes.
    file: Option<PathBuf>,
    current: Mutex<Loaded>,
}

/// The token in use, and the modification time of the file it was read from.
struct Loaded {
    digest: [u8; 32],
    modified: Option<SystemTime>,
}

impl OpsToken {
    pub fn new(token: &str) -> anyhow::Result<OpsToken> {
        Ok(OpsToken { file: None, current: Mutex::new(Loaded { digest: digest_of(token)?, modified: None }) })
    }

    /// From `--ops-token-file` when given, else from `CONNECTOR_HOST_OPS_TOKEN`; `None` when
    /// neither is set (the protected routes then refuse every request).
    pub fn configured(file: Option<&Path>, variable: Option<String>) -> anyhow::Result<Option<OpsToken>> {
        match (file, variable) {
            (Some(_), Some(_)) => {
                bail!("both --ops-token-file and {OPS_TOKEN_VARIABLE} are set: keep only one")
            }
            (Some(path), None) => {
                let loaded = read_token_file(path)?;
                Ok(Some(OpsToken { file: Some(path.to_path_buf()), current: Mutex::new(loaded) }))
            }
            (None, Some(token)) => OpsToken::new(&token).map(Some),
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
                match read_token_file(path) {
                    Ok(loaded) => {
                        tracing::info!(file = %path.display(), "the ops token file changed: its new token is in use");
                        *current = loaded;
                    }
                    Err(error) => {
                        tracing::warn!(error = %format!("{error:#}"), "the ops token file changed but cannot be used: the previous token stays in use");
                        current.modified = modified;
                    }
                }
            }
        }
        current.digest
    }
}

fn digest_of(token: &str) -> anyhow::Result<[u8; 32]> {
    let token = token.trim();
    if token.chars().count() < MIN_TOKEN_CHARS {
        bail!(
            "the ops token is shorter than {MIN_TOKEN_CHARS} characters: use a long random value, e.g. `openssl rand -hex 32`"
        );
    }
    Ok(Sha256::digest(token.as_bytes()).into())
}

fn read_token_file(path: &Path) -> anyhow::Result<Loaded> {
    let modified = std::fs::metadata(path).and_then(|meta| meta.modified()).ok();
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the ops token file {}: check --ops-token-file", path.display()))?;
    Ok(Loaded { digest: digest_of(&text)?, modified })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_is_admitted() {
        let token = OpsToken::new("0123456789abcdef0123\n").unwrap();
        assert!(token.admits(Some("Bearer 0123456789abcdef0123")));
        assert!(!token.admits(Some("Bearer 0123456789abcdef012")));
        assert!(!token.admits(Some("Basic 0123456789abcdef0123")));
        assert!(!token.admits(None));
    }

    #[test]
    fn a_short_token_is_refused() {
        assert!(OpsToken::new("secret").err().expect("refused").to_string().contains("openssl rand"));
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
        let token = OpsToken::configured(Some(&path), None).unwrap().expect("a token");
        assert!(token.admits(Some("Bearer first-token-0123456789")));

        write("second-token-0123456789", 10);
        assert!(token.admits(Some("Bearer second-token-0123456789")), "the new token works at once");
        assert!(!token.admits(Some("Bearer first-token-0123456789")), "the old one no longer does");

        write("short", 20);
        assert!(token.admits(Some("Bearer second-token-0123456789")), "a broken rotation keeps the token in use");
        assert!(!token.admits(Some("Bearer short")));
    }
}
