//! Sends one buffered HTTP request and buffers its answer, within time and size limits.
//!
//! Every byte that leaves the host goes through here: guest requests and token requests alike.
//! Names are resolved by a resolver that drops addresses a connector has no business reaching
//! (private, link-local, cloud metadata), so an allowed name that points inside the network
//! behind us is refused after DNS, not only before it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::policy::Origin;
use super::resolver::{GuardedResolver, NameLookup, ProhibitedResolution, SystemLookup, is_prohibited};

#[derive(Clone, Copy, Debug)]
pub struct TransportLimits {
    pub connect_timeout: Duration,
    /// From sending the request to the last byte of the answer.
    pub response_timeout: Duration,
    pub max_response_bytes: usize,
}

impl Default for TransportLimits {
    fn default() -> Self {
        TransportLimits {
            connect_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(120),
            max_response_bytes: 64 * 1024 * 1024,
        }
    }
}

#[derive(Clone)]
pub struct BufferedRequest {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Without the body: a token request's body is the client secret.
impl std::fmt::Debug for BufferedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferedRequest")
            .field("method", &self.method)
            .field("uri", &self.uri)
            .field("headers", &self.headers)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

#[derive(Clone, Debug)]
pub struct BufferedResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{0} resolves only to addresses a connector may not reach (private, link-local or metadata)")]
    ProhibitedAddress(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("answer larger than {0} bytes")]
    ResponseTooLarge(usize),
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("HTTP protocol error: {0}")]
    Protocol(String),
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector<GuardedResolver>>, Full<Bytes>>;

/// A pooled HTTP/1.1 client (TLS with webpki roots) shared by every sandbox of the process.
#[derive(Clone)]
pub struct HttpTransport {
    client: HttpsClient,
    limits: TransportLimits,
    connect_to: Arc<HashMap<String, SocketAddr>>,
}

/// Routes `host:port` authorities to loopback addresses, keeping the `Host` header: the way
/// tests send a national cloud's traffic (`graph.microsoft.us:443`) to the fake Azure. Set
/// by `CONNECTOR_HOST_CONNECT_TO=host:port=127.0.0.1:port,...`; only loopback targets are
/// accepted, so it cannot send traffic anywhere `--graph-url http://127.0.0.1:...` could not.
pub const CONNECT_TO_VARIABLE: &str = "CONNECTOR_HOST_CONNECT_TO";

fn parse_connect_to(text: &str) -> anyhow::Result<HashMap<String, SocketAddr>> {
    let mut routes = HashMap::new();
    for entry in text.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
        let Some((authority, target)) = entry.split_once('=') else {
            anyhow::bail!("{CONNECT_TO_VARIABLE} entry {entry:?} is not host:port=127.0.0.1:port");
        };
        let target: SocketAddr = target.parse().map_err(|_| {
            anyhow::anyhow!("{CONNECT_TO_VARIABLE} target {target:?} is not an address like 127.0.0.1:8080")
        })?;
        if !target.ip().is_loopback() {
            anyhow::bail!("{CONNECT_TO_VARIABLE} target {target} is not a loopback address: only loopback is allowed");
        }
        routes.insert(authority.to_ascii_lowercase(), target);
    }
    Ok(routes)
}

impl HttpTransport {
    pub fn new(limits: TransportLimits) -> anyhow::Result<Self> {
        HttpTransport::with_lookup(limits, Arc::new(SystemLookup))
    }

    /// A transport that resolves names with `lookup` (still refusing prohibited addresses).
    pub fn with_lookup(limits: TransportLimits, lookup: Arc<dyn NameLookup>) -> anyhow::Result<Self> {
        let mut http = HttpConnector::new_with_resolver(GuardedResolver::new(lookup));
        http.enforce_http(false);
        http.set_connect_timeout(Some(limits.connect_timeout));
        http.set_nodelay(true);
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let tls_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() })
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .build(connector);
        Ok(HttpTransport { client, limits, connect_to: Arc::new(HashMap::new()) })
    }

    /// A transport that also honours `CONNECTOR_HOST_CONNECT_TO` (see [`CONNECT_TO_VARIABLE`]).
    pub fn from_environment(limits: TransportLimits) -> anyhow::Result<Self> {
        let mut transport = HttpTransport::new(limits)?;
        if let Ok(text) = std::env::var(CONNECT_TO_VARIABLE) {
            transport.connect_to = Arc::new(parse_connect_to(&text)?);
        }
        Ok(transport)
    }

    /// The URI to connect to and the `Host` to present: unchanged, unless a connect-to route
    /// sends this authority to loopback.
    fn route(&self, uri: &Uri) -> (Uri, Option<String>) {
        let Some(origin) = Origin::of_uri(uri) else { return (uri.clone(), None) };
        let authority = format!("{}:{}", origin.host, origin.port);
        match self.connect_to.get(&authority) {
            Some(target) => {
                let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
                let host = uri.authority().map(|a| a.as_str().to_owned()).unwrap_or(authority);
                match format!("http://{target}{path}").parse() {
                    Ok(routed) => (routed, Some(host)),
                    Err(_) => (uri.clone(), None),
                }
            }
            None => (uri.clone(), None),
        }
    }

    pub fn limits(&self) -> TransportLimits {
        self.limits
    }

    /// The same transport (sharing its connection pool) with another cap on answer size, so
    /// each tenant can have its own.
    pub fn with_max_response_bytes(&self, max_response_bytes: usize) -> Self {
        let mut capped = self.clone();
        capped.limits.max_response_bytes = max_response_bytes;
        capped
    }

    pub async fn send(&self, request: &BufferedRequest) -> Result<BufferedResponse, TransportError> {
        if let Some(origin) = Origin::of_uri(&request.uri) {
            refuse_prohibited_literal(&origin)?;
        }
        let (uri, host) = self.route(&request.uri);
        let mut builder = http::Request::builder().method(request.method.clone()).uri(uri);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if let Some(host) = host {
            builder = builder.header(http::header::HOST, host);
        }
        let outgoing =
            builder.body(Full::new(request.body.clone())).map_err(|err| TransportError::Protocol(err.to_string()))?;
        let timeout = self.limits.response_timeout;
        let max = self.limits.max_response_bytes;
        let exchange = async {
            let response = self.client.request(outgoing).await.map_err(classify_client_error)?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, max).collect().await.map_err(|err| {
                if err.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                    TransportError::ResponseTooLarge(max)
                } else {
                    TransportError::Protocol(err.to_string())
                }
            })?;
            Ok(BufferedResponse { status: parts.status, headers: parts.headers, body: body.to_bytes() })
        };
        tokio::time::timeout(timeout, exchange).await.map_err(|_| TransportError::Timeout(timeout))?
    }
}

fn classify_client_error(err: hyper_util::client::legacy::Error) -> TransportError {
    let text = format!("{err:#}");
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&err);
    while let Some(cause) = source {
        // The resolver's refusal arrives wrapped in an `io::Error`, whose `source()` skips the
        // error it wraps, so look inside it explicitly.
        let wrapped = cause.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref());
        let prohibited = cause
            .downcast_ref::<ProhibitedResolution>()
            .or_else(|| wrapped.and_then(|inner| inner.downcast_ref::<ProhibitedResolution>()));
        if let Some(prohibited) = prohibited {
            return TransportError::ProhibitedAddress(prohibited.0.clone());
        }
        source = cause.source();
    }
    if err.is_connect() { TransportError::Connect(text) } else { TransportError::Protocol(text) }
}

fn refuse_prohibited_literal(origin: &Origin) -> Result<(), TransportError> {
    match origin.host.parse::<IpAddr>() {
        Ok(ip) if is_prohibited(ip, origin.is_loopback()) => {
            Err(TransportError::ProhibitedAddress(origin.host.clone()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_to_accepts_only_loopback_targets() {
        let routes = parse_connect_to("graph.microsoft.us:443=127.0.0.1:8080").unwrap();
        assert_eq!(routes["graph.microsoft.us:443"], "127.0.0.1:8080".parse().unwrap());
        assert!(parse_connect_to("graph.microsoft.us:443=10.0.0.1:443").is_err());
        assert!(parse_connect_to("nonsense").is_err());
    }
}
