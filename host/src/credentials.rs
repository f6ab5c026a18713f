//! OAuth2 client-credentials tokens, held by the host and never shown to a component.
//!
//! One token per scope (Graph, ARM), cached until five minutes before it expires. Token errors
//! are turned into messages that say what to fix, with Azure's AADSTS code, and never quote
//! what the login endpoint answered (a body that failed to parse may still hold a token).
//!
//! The client secret is posted to a URL built from the login URL and the tenant id, so the
//! tenant id is taken only as a GUID or a domain name, as one path segment, and the URL must
//! keep the login URL's origin: platforms take tenant ids from their customers.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use serde::Deserialize;
use tokio::sync::Mutex;
use url::Url;

use crate::outbound::OutboundStats;
use crate::outbound::policy::Origin;
use crate::outbound::retry::{RetryPolicy, send_with_retry};
use crate::outbound::transport::{BufferedRequest, BufferedResponse, HttpTransport};

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

/// How clap reads `--azure-client-secret`, so the parsed arguments hold no printable secret.
impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
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
    #[error(
        "the Azure login endpoint {url} answered {status} with {problem} (its text is not shown: it may hold a token); check --login-url and any proxy in between"
    )]
    Malformed { url: String, status: u16, problem: String },
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
/// Azure's tokens live about an hour; a longer `expires_in` is believed up to a day.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Checks that `tenant_id` is a directory id Azure takes in a token URL: a GUID
/// (`72f988bf-86f1-41af-91ab-2d7cd011db47`) or a domain name (`contoso.onmicrosoft.com`).
/// Anything else (`http://host`, `//host`, `\\host`, `a/b`, an IP address) is refused.
pub fn check_tenant_id(tenant_id: &str) -> anyhow::Result<()> {
    if is_guid(tenant_id) || is_domain_name(tenant_id) {
        return Ok(());
    }
    let shown: String = tenant_id.chars().take(80).collect();
    anyhow::bail!(
        "tenant id {shown:?} is neither a GUID (e.g. 72f988bf-86f1-41af-91ab-2d7cd011db47) nor a domain name (e.g. contoso.onmicrosoft.com): give the directory (tenant) id of the app registration"
    )
}

/// The 8-4-4-4-12 hexadecimal shape; only a shape is checked, so no GUID parser is needed.
fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, length)| group.len() == length && group.bytes().all(|byte| byte.is_ascii_hexdigit()))
}

/// Letters, digits and hyphens in dot-separated labels (RFC 1123), at least two labels, the
/// last one not numeric (so an IPv4 address is not a domain name).
fn is_domain_name(text: &str) -> bool {
    let labels: Vec<&str> = text.split('.').collect();
    let label_ok = |label: &&str| {
        (1..=63).contains(&label.len())
            && label.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    text.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(label_ok)
        && labels.last().is_some_and(|last| last.bytes().any(|byte| byte.is_ascii_alphabetic()))
}

/// `<login>/<tenant id>/oauth2/v2.0/token`, the tenant id one path segment, on the login
/// URL's origin.
fn token_url(login: &Url, tenant_id: &str) -> anyhow::Result<Url> {
    check_tenant_id(tenant_id)?;
    let mut url = login.clone();
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("the login URL {login} cannot take a path: give it as https://host[/path]"))?
        .pop_if_empty()
        .push(tenant_id)
        .extend(["oauth2", "v2.0", "token"]);
    if Origin::from_url(&url)? != Origin::from_url(login)? {
        anyhow::bail!(
            "the token URL for tenant {tenant_id:?} would leave the login origin {login}: refusing to send the client secret there"
        );
    }
    Ok(url)
}

impl TokenProvider {
    pub fn new(
        credentials: ClientCredentials,
        login: &Url,
        transport: HttpTransport,
        stats: std::sync::Arc<OutboundStats>,
    ) -> anyhow::Result<Self> {
        let token_url = token_url(login, &credentials.tenant_id)?;
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
            problem: "an access_token holding characters not allowed in a header".into(),
        })?;
        header.set_sensitive(true);
        let now = Instant::now();
        let refresh_at = now.checked_add(lifetime.saturating_sub(REFRESH_MARGIN)).unwrap_or(now);
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
        let request =
            BufferedRequest { method: Method::POST, uri, headers, body: Bytes::from(form), answer_budget: None };
        let response = send_with_retry(&self.transport, &request, RetryPolicy::default(), &self.stats, None)
            .await
            .map_err(|err| CredentialError::Unreachable { url: self.token_url.to_string(), reason: err.to_string() })?;
        let status = response.status.as_u16();
        if response.status.is_success() {
            let token: TokenSuccess =
                serde_json::from_slice(&response.body).map_err(|err| CredentialError::Malformed {
                    url: self.token_url.to_string(),
                    status,
                    problem: unparsed(&response, &err),
                })?;
            return Ok((token.access_token, token_lifetime(token.expires_in)));
        }
        match serde_json::from_slice::<TokenFailure>(&response.body) {
            Ok(failure) => Err(refusal(status, failure, &self.credentials)),
            Err(err) => Err(CredentialError::Malformed {
                url: self.token_url.to_string(),
                status,
                problem: unparsed(&response, &err),
            }),
        }
    }
}

/// `expires_in` as a lifetime, at most [`MAX_TOKEN_LIFETIME`] so no arithmetic on it overflows.
fn token_lifetime(expires_in: u64) -> Duration {
    Duration::from_secs(expires_in).min(MAX_TOKEN_LIFETIME)
}

/// What was wrong with an answer, without a word of its text: serde's messages quote the
/// values they met, and the value could be the token.
fn unparsed(response: &BufferedResponse, error: &serde_json::Error) -> String {
    let what = match error.classify() {
        serde_json::error::Category::Data => "JSON that is not an OAuth2 token answer",
        _ => "a body that is not JSON",
    };
    let content_type = response
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.chars().take(60).collect::<String>())
        .unwrap_or_else(|| "no content type".into());
    format!("{what} ({} bytes, {content_type})", response.body.len())
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

    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("s3cr3t-value");
        assert!(!format!("{secret:?}").contains("s3cr3t"));
        let credentials = ClientCredentials { tenant_id: TENANT.into(), client_id: "c".into(), client_secret: secret };
        assert!(!format!("{credentials:?}").contains("s3cr3t"));
    }

    #[test]
    fn a_token_request_prints_without_its_secret_or_token() {
        let mut headers = HeaderMap::new();
        let mut bearer = HeaderValue::from_static("Bearer eyJ0-token");
        bearer.set_sensitive(true);
        headers.insert(http::header::AUTHORIZATION, bearer);
        let request = BufferedRequest {
            method: Method::POST,
            uri: "https://login.microsoftonline.com/x/oauth2/v2.0/token".parse().unwrap(),
            headers,
            body: Bytes::from_static(b"grant_type=client_credentials&client_secret=s3cr3t-value"),
            answer_budget: None,
        };
        let printed = format!("{request:?}");
        assert!(!printed.contains("s3cr3t") && !printed.contains("eyJ0"), "{printed}");
    }

    #[test]
    fn a_tenant_id_is_a_guid_or_a_domain_name() {
        for good in [TENANT, "72F988BF-86F1-41AF-91AB-2D7CD011DB47", "contoso.onmicrosoft.com", "login-test.example"] {
            assert!(check_tenant_id(good).is_ok(), "{good} is a tenant id");
        }
        let bad = [
            "http://127.0.0.1:9999",
            "//127.0.0.1:9999",
            "\\\\evil.example",
            "evil.example/x",
            "evil.example?x",
            "evil.example#x",
            "user@evil.example",
            "evil.example:443",
            "..",
            "%2e%2e",
            "127.0.0.1",
            "contoso",
            "",
            "72f988bf86f141af91ab2d7cd011db47",
            "{72f988bf-86f1-41af-91ab-2d7cd011db47}",
            "-bad.example",
            "a..example",
        ];
        for text in bad {
            let error = check_tenant_id(text).expect_err(text).to_string();
            assert!(error.contains("neither a GUID") && error.contains("contoso.onmicrosoft.com"), "{text}: {error}");
        }
    }

    #[test]
    fn the_token_url_keeps_the_login_origin_and_takes_the_tenant_as_one_segment() {
        let login = Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            token_url(&login, TENANT).unwrap().as_str(),
            format!("http://127.0.0.1:8080/{TENANT}/oauth2/v2.0/token")
        );
        let behind_a_path = Url::parse("https://proxy.example/login/").unwrap();
        assert_eq!(
            token_url(&behind_a_path, "contoso.onmicrosoft.com").unwrap().as_str(),
            "https://proxy.example/login/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert!(token_url(&login, "http://127.0.0.1:9999").is_err());
        assert!(token_url(&login, "//127.0.0.1:9999").is_err());
    }

    #[test]
    fn a_huge_expires_in_is_clamped() {
        assert_eq!(token_lifetime(u64::MAX), MAX_TOKEN_LIFETIME);
        assert_eq!(token_lifetime(3599), Duration::from_secs(3599));
        let now = Instant::now();
        assert!(now.checked_add(token_lifetime(u64::MAX).saturating_sub(REFRESH_MARGIN)).is_some());
    }

    #[test]
    fn an_answer_that_does_not_parse_is_described_without_its_text() {
        let body = br#"{"access_token":"eyJ0eXAiOiJKV1Qi.secret-token","expires_in":"3599"}"#;
        let response = BufferedResponse {
            status: http::StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::from_static(body),
        };
        let error = serde_json::from_slice::<TokenSuccess>(body).err().expect("a string expires_in does not parse");
        let problem = unparsed(&response, &error);
        let message = CredentialError::Malformed { url: "u".into(), status: 200, problem }.to_string();
        assert!(!message.contains("secret-token") && !message.contains("eyJ0"), "{message}");
        assert!(message.contains(&format!("{} bytes", body.len())), "{message}");
    }

    #[test]
    fn wrong_secret_is_explained_with_its_aadsts_code() {
        let failure = TokenFailure {
            error: "invalid_client".into(),
            error_description: "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x".into(),
        };
        let credentials =
            ClientCredentials { tenant_id: TENANT.into(), client_id: "c".into(), client_secret: Secret::new("x") };
        let message = refusal(401, failure, &credentials).to_string();
        assert!(message.contains("client secret is wrong"), "{message}");
        assert!(message.contains("AADSTS7000215"), "{message}");
    }
}
