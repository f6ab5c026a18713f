//! OAuth2 client-credentials tokens, held by the host and never shown to a component.
//!
//! One token per scope (Graph, ARM), cached until five minutes before it expires. Token errors
//! are turned into messages that say what to fix, with Azure's AADSTS code.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use serde::Deserialize;
use tokio::sync::Mutex;
use url::Url;

use crate::outbound::OutboundStats;
use crate::outbound::retry::{RetryPolicy, send_with_retry};
use crate::outbound::transport::{BufferedRequest, HttpTransport};

/// A string that must never be printed: `Debug` and `Display` show a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// An Azure app registration's client credentials.
#[derive(Clone, Debug)]
pub struct ClientCredentials {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: Secret,
}

/// Why Azure refused to issue a token, in words an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("{advice} (Azure answered {status} {error}: {summary})")]
    Refused { status: u16, error: String, aadsts: Option<String>, summary: String, advice: String },
    #[error("could not reach the Azure login endpoint {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the Azure login endpoint {url} answered {status} with a body that is not a token: {body}")]
    Malformed { url: String, status: u16, body: String },
}

#[derive(Deserialize)]
struct TokenSuccess {
    access_token: String,
    expires_in: u64,
}

#[derive(Deserialize)]
struct TokenFailure {
    error: String,
    #[serde(default)]
    error_description: String,
}

struct CachedToken {
    header: HeaderValue,
    refresh_at: Instant,
}

/// Issues and caches bearer tokens for one app registration.
pub struct TokenProvider {
    credentials: ClientCredentials,
    token_url: Url,
    transport: HttpTransport,
    stats: std::sync::Arc<OutboundStats>,
    cache: Mutex<HashMap<String, CachedToken>>,
}

const REFRESH_MARGIN: Duration = Duration::from_secs(300);

impl TokenProvider {
    pub fn new(
        credentials: ClientCredentials,
        login: &Url,
        transport: HttpTransport,
        stats: std::sync::Arc<OutboundStats>,
    ) -> anyhow::Result<Self> {
        let path = format!("{}/oauth2/v2.0/token", credentials.tenant_id);
        let token_url = login.join(&path).map_err(|err| {
            anyhow::anyhow!("cannot build the token URL from {login} and tenant {:?}: {err}", credentials.tenant_id)
        })?;
        Ok(TokenProvider { credentials, token_url, transport, stats, cache: Mutex::new(HashMap::new()) })
    }

    /// An `Authorization` header value for `scope`, from the cache when still fresh.
    /// The lock is held while fetching so concurrent callers wait for one request.
    pub async fn authorization(&self, scope: &str) -> Result<HeaderValue, CredentialError> {
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.get(scope)
            && Instant::now() < cached.refresh_at
        {
            return Ok(cached.header.clone());
        }
        let (token, lifetime) = self.fetch(scope).await?;
        let mut header = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| CredentialError::Malformed {
            url: self.token_url.to_string(),
            status: 200,
            body: "access_token contains characters not allowed in a header".into(),
        })?;
        header.set_sensitive(true);
        let refresh_at = Instant::now() + lifetime.saturating_sub(REFRESH_MARGIN);
        cache.insert(scope.to_owned(), CachedToken { header: header.clone(), refresh_at });
        Ok(header)
    }

    async fn fetch(&self, scope: &str) -> Result<(String, Duration), CredentialError> {
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.credentials.client_id)
            .append_pair("client_secret", self.credentials.client_secret.expose())
            .append_pair("scope", scope)
            .finish();
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
        let uri = self.token_url.as_str().parse().map_err(|err| CredentialError::Unreachable {
            url: self.token_url.to_string(),
            reason: format!("invalid URL: {err}"),
        })?;
        let request = BufferedRequest { method: Method::POST, uri, headers, body: Bytes::from(form) };
        let response = send_with_retry(&self.transport, &request, RetryPolicy::default(), &self.stats, None)
            .await
            .map_err(|err| CredentialError::Unreachable { url: self.token_url.to_string(), reason: err.to_string() })?;
        let status = response.status.as_u16();
        if response.status.is_success() {
            let token: TokenSuccess = serde_json::from_slice(&response.body).map_err(|_| {
                CredentialError::Malformed { url: self.token_url.to_string(), status, body: truncated(&response.body) }
            })?;
            return Ok((token.access_token, Duration::from_secs(token.expires_in)));
        }
        match serde_json::from_slice::<TokenFailure>(&response.body) {
            Ok(failure) => Err(refusal(status, failure, &self.credentials)),
            Err(_) => Err(CredentialError::Malformed {
                url: self.token_url.to_string(),
                status,
                body: truncated(&response.body),
            }),
        }
    }
}

fn truncated(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned()
}

fn refusal(status: u16, failure: TokenFailure, credentials: &ClientCredentials) -> CredentialError {
    // The description is "AADSTS7000215: Invalid client secret provided. ...\r\nTrace ID: ...".
    let summary = failure.error_description.lines().next().unwrap_or_default().trim().to_owned();
    let aadsts = summary.split(':').next().filter(|code| code.starts_with("AADSTS")).map(str::to_owned);
    let advice = match aadsts.as_deref() {
        Some("AADSTS7000215") => "the client secret is wrong: set --azure-client-secret (BATON_AZURE_CLIENT_SECRET) to the secret's value, not its id".to_owned(),
        Some("AADSTS7000222") => "the client secret has expired: create a new one for the app registration and set --azure-client-secret".to_owned(),
        Some("AADSTS700016") => format!(
            "no app registration with client id {:?} in tenant {:?}: check --azure-client-id (BATON_AZURE_CLIENT_ID) and that the app is consented in this tenant",
            credentials.client_id, credentials.tenant_id
        ),
        Some("AADSTS90002") | Some("AADSTS900023") => format!(
            "tenant {:?} was not found: check --azure-tenant-id (BATON_AZURE_TENANT_ID) and --azure-cloud",
            credentials.tenant_id
        ),
        Some("AADSTS70011") => "the token scope is not valid for this cloud: check --azure-cloud".to_owned(),
        _ => "Azure refused the app registration's credentials: check --azure-client-id, --azure-client-secret and --azure-tenant-id".to_owned(),
    };
    CredentialError::Refused { status, error: failure.error, aadsts, summary, advice }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("s3cr3t-value");
        assert!(!format!("{secret:?}").contains("s3cr3t"));
        let credentials = ClientCredentials { tenant_id: "t".into(), client_id: "c".into(), client_secret: secret };
        assert!(!format!("{credentials:?}").contains("s3cr3t"));
    }

    #[test]
    fn wrong_secret_is_explained_with_its_aadsts_code() {
        let failure = TokenFailure {
            error: "invalid_client".into(),
            error_description: "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x".into(),
        };
        let credentials =
            ClientCredentials { tenant_id: "t".into(), client_id: "c".into(), client_secret: Secret::new("x") };
        let message = refusal(401, failure, &credentials).to_string();
        assert!(message.contains("client secret is wrong"), "{message}");
        assert!(message.contains("AADSTS7000215"), "{message}");
    }
}
