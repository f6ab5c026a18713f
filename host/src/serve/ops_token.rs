//! The bearer token of the operations API, read from a file or the environment at start-up.

use std::path::Path;

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
    digest: [u8; 32],
}

impl OpsToken {
    pub fn new(token: &str) -> anyhow::Result<OpsToken> {
        let token = token.trim();
        if token.chars().count() < MIN_TOKEN_CHARS {
            bail!(
                "the ops token is shorter than {MIN_TOKEN_CHARS} characters: use a long random value, e.g. `openssl rand -hex 32`"
            );
        }
        Ok(OpsToken { digest: Sha256::digest(token.as_bytes()).into() })
    }

    /// From `--ops-token-file` when given, else from `CONNECTOR_HOST_OPS_TOKEN`; `None` when
    /// neither is set (the protected routes then refuse every request).
    pub fn configured(file: Option<&Path>, variable: Option<String>) -> anyhow::Result<Option<OpsToken>> {
        match (file, variable) {
            (Some(_), Some(_)) => {
                bail!("both --ops-token-file and {OPS_TOKEN_VARIABLE} are set: keep only one")
            }
            (Some(path), None) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read the ops token file {}: check --ops-token-file", path.display())
                })?;
                OpsToken::new(&text).map(Some)
            }
            (None, Some(token)) => OpsToken::new(&token).map(Some),
            (None, None) => Ok(None),
        }
    }

    /// True when `authorization` is `Bearer <the token>`.
    pub fn admits(&self, authorization: Option<&str>) -> bool {
        let Some(given) = authorization.and_then(|value| value.strip_prefix("Bearer ")) else { return false };
        let given: [u8; 32] = Sha256::digest(given.trim().as_bytes()).into();
        let difference = self.digest.iter().zip(given.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(difference) == 0
    }
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
}
