//! Sends one buffered HTTP request and buffers its answer, within time and size limits.
//!
//! Every byte that leaves the host goes through here: guest requests and token requests alike.
//! Names are resolved by a resolver that drops addresses a connector has no business reaching
//! (private, link-local, cloud metadata), so an allowed name that points inside the network
//! behind us is refused after DNS, not only before it. Through a proxy (`proxy.rs`) the proxy
//! resolves the name instead; IP-literal targets are checked here either way. TLS trusts the
//! roots of `tls.rs`, and HTTP/2 is used wherever the server offers it.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Method, StatusCode, Uri};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::RootCertStore;
use tokio::net::TcpStream;

use super::policy::Origin;
use super::proxy::{ProxyRules, TunnelError, open_tunnel};
use super::resolver::{GuardedResolver, NameLookup, ProhibitedResolution, SystemLookup, is_prohibited};
use super::tls::ExtraRoots;
use crate::memory_budget::{BudgetExceeded, CallBudget, CollectError, collect_charged};

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
    /// The sandboxed call the answer is for: its body is charged to it chunk by chunk as it
    /// arrives, and stays charged while the answer is held. `None` for the host's own
    /// requests (tokens), which are small and not a guest's to make.
    pub answer_budget: Option<Arc<CallBudget>>,
}

/// Without the body: a token request's body is the client secret.
impl std::fmt::Debug for BufferedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferedRequest")
            .field("method", &self.method)
            .field("uri", &self.uri)
            .field("headers", &self.headers)
            .field("body_bytes", &self.body.len())
            .field("answer_budget", &self.answer_budget.is_some())
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
    #[error(
        "the TLS certificate of {0} is not signed by a trusted certificate authority: if a TLS-inspecting proxy or a private CA signs it, add that CA's certificate with --ca-file (BATON_CA_FILE) or SSL_CERT_FILE"
    )]
    UntrustedCertificate(String),
    #[error("the TLS certificate of {host} was rejected ({reason})")]
    CertificateRejected { host: String, reason: String },
    #[error("{0}")]
    Proxy(String),
    #[error("{0}")]
    Budget(BudgetExceeded),
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<OutboundConnector>, Full<Bytes>>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A pooled client shared by every sandbox of the process: TLS with webpki's roots plus the
/// operator's extra roots, HTTP/2 where the server offers it (ALPN), HTTP/1.1 otherwise, and
/// the proxy settings of the environment.
#[derive(Clone)]
pub struct HttpTransport {
    client: HttpsClient,
    limits: TransportLimits,
}

/// Routes `host:port` authorities to loopback addresses: the connection goes to the loopback
/// address while TLS, SNI and `Host` keep the real name, the way tests send a cloud's traffic
/// (`graph.microsoft.us:443`) to the fake Azure. Read from
/// `CONNECTOR_HOST_CONNECT_TO=host:port=127.0.0.1:port,...` only when the command line says
/// `--insecure-test-routing`, so no variable alone can reroute a production process; only
/// loopback targets are accepted.
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

/// The network settings of the command line; the rest comes from the environment.
#[derive(Clone, Debug, Default)]
pub struct NetworkOptions {
    /// `--ca-file`: extra PEM roots.
    pub ca_file: Option<PathBuf>,
    /// `--insecure-test-routing`: honour [`CONNECT_TO_VARIABLE`].
    pub insecure_test_routing: bool,
}

/// Everything a transport is built from.
struct TransportParts {
    limits: TransportLimits,
    lookup: Arc<dyn NameLookup>,
    roots: RootCertStore,
    proxies: ProxyRules,
    connect_to: HashMap<String, SocketAddr>,
}

impl HttpTransport {
    /// A direct transport trusting webpki's roots only.
    pub fn new(limits: TransportLimits) -> anyhow::Result<Self> {
        HttpTransport::with_lookup(limits, Arc::new(SystemLookup))
    }

    /// A direct transport that resolves names with `lookup` (still refusing prohibited addresses).
    pub fn with_lookup(limits: TransportLimits, lookup: Arc<dyn NameLookup>) -> anyhow::Result<Self> {
        let (roots, _) = ExtraRoots::default().root_store()?;
        HttpTransport::build(TransportParts {
            limits,
            lookup,
            roots,
            proxies: ProxyRules::direct(),
            connect_to: HashMap::new(),
        })
    }

    /// The transport of the command line and its environment: the proxy variables
    /// (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`), the extra roots (`--ca-file`, `SSL_CERT_FILE`,
    /// `SSL_CERT_DIR`) and, with `--insecure-test-routing` only, [`CONNECT_TO_VARIABLE`].
    pub fn from_environment(limits: TransportLimits, options: &NetworkOptions) -> anyhow::Result<Self> {
        HttpTransport::configured(limits, options, |name| std::env::var(name).ok())
    }

    /// [`HttpTransport::from_environment`] with the environment read through `variable`.
    fn configured(
        limits: TransportLimits,
        options: &NetworkOptions,
        variable: impl Fn(&str) -> Option<String> + Copy,
    ) -> anyhow::Result<Self> {
        let connect_to = match (variable(CONNECT_TO_VARIABLE), options.insecure_test_routing) {
            (Some(text), true) => parse_connect_to(&text)?,
            (Some(_), false) => anyhow::bail!(
                "{CONNECT_TO_VARIABLE} is set, but rerouting connections is for tests only: unset it, or pass --insecure-test-routing on the command line to honour it"
            ),
            (None, _) => HashMap::new(),
        };
        let extra_roots = ExtraRoots::configured(options.ca_file.as_deref(), variable);
        let (roots, added) = extra_roots.root_store()?;
        if !extra_roots.is_empty() {
            tracing::info!(extra_roots = added, sources = ?extra_roots, "trusting extra certificate authorities");
        }
        let proxies = ProxyRules::from_variables(variable)?;
        if let Some(description) = proxies.description() {
            tracing::info!(proxy = description, "outbound connections go through a proxy");
        }
        if !connect_to.is_empty() {
            tracing::warn!(
                routes = connect_to.len(),
                "--insecure-test-routing: {CONNECT_TO_VARIABLE} reroutes connections"
            );
        }
        HttpTransport::build(TransportParts { limits, lookup: Arc::new(SystemLookup), roots, proxies, connect_to })
    }

    fn build(parts: TransportParts) -> anyhow::Result<Self> {
        let limits = parts.limits;
        let mut direct = HttpConnector::new_with_resolver(GuardedResolver::new(parts.lookup));
        direct.enforce_http(false);
        direct.set_connect_timeout(Some(limits.connect_timeout));
        direct.set_nodelay(true);
        // The proxy is the operator's own choice and may sit on a private address, so its name
        // is resolved without the guard.
        let mut to_proxy = HttpConnector::new();
        to_proxy.set_connect_timeout(Some(limits.connect_timeout));
        to_proxy.set_nodelay(true);
        let connector = OutboundConnector {
            direct,
            to_proxy,
            proxies: Arc::new(parts.proxies),
            connect_to: Arc::new(parts.connect_to),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(parts.roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config)
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .build(connector);
        Ok(HttpTransport { client, limits })
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
        let mut builder = http::Request::builder().method(request.method.clone()).uri(request.uri.clone());
        for (name, value) in request.headers.iter().filter(|(name, _)| !is_connection_specific(name)) {
            builder = builder.header(name, value);
        }
        let outgoing =
            builder.body(Full::new(request.body.clone())).map_err(|err| TransportError::Protocol(err.to_string()))?;
        let timeout = self.limits.response_timeout;
        let max = self.limits.max_response_bytes;
        let host = request.uri.host().unwrap_or_default();
        let exchange = async {
            let response = self.client.request(outgoing).await.map_err(|error| classify_client_error(error, host))?;
            let (parts, body) = response.into_parts();
            let body = receive_body(body, max, request.answer_budget.as_ref()).await?;
            Ok(BufferedResponse { status: parts.status, headers: parts.headers, body })
        };
        tokio::time::timeout(timeout, exchange).await.map_err(|_| TransportError::Timeout(timeout))?
    }
}

/// Reads an answer's body, at most `max` bytes, charging each chunk to `budget` before it is
/// kept: a connector cannot make the host hold an answer its budget has no room for, not even
/// for the moment between receiving it and handing it over.
async fn receive_body(
    body: hyper::body::Incoming,
    max: usize,
    budget: Option<&Arc<CallBudget>>,
) -> Result<Bytes, TransportError> {
    let mut charge = budget.map(CallBudget::empty_charge);
    let received =
        collect_charged(body, max, charge.as_mut(), "an answer being received").await.map_err(|error| match error {
            CollectError::TooLarge => TransportError::ResponseTooLarge(max),
            CollectError::Refused(refusal) => TransportError::Budget(refusal),
            CollectError::Body(error) => TransportError::Protocol(error.to_string()),
        })?;
    Ok(match charge {
        Some(charge) => charge.hold(received),
        None => received,
    })
}

/// Headers that describe one HTTP/1.1 connection rather than the request: illegal in HTTP/2
/// and meaningless for a pooled connection the host manages, so no caller's copy is sent.
/// `Host` goes too: the URI's authority, which the allow-list checked, is the name sent
/// (`Host` in HTTP/1.1, `:authority` in HTTP/2).
fn is_connection_specific(name: &HeaderName) -> bool {
    name == http::header::CONNECTION
        || name == http::header::HOST
        || name == http::header::TE
        || name == http::header::TRANSFER_ENCODING
        || name == http::header::UPGRADE
        || matches!(name.as_str(), "keep-alive" | "proxy-connection" | "http2-settings")
}

/// Opens the TCP stream under each connection: through a CONNECT tunnel when the proxy rules
/// say so, to a loopback test route, or directly to the guarded resolver's addresses.
#[derive(Clone)]
struct OutboundConnector {
    direct: HttpConnector<GuardedResolver>,
    to_proxy: HttpConnector,
    proxies: Arc<ProxyRules>,
    connect_to: Arc<HashMap<String, SocketAddr>>,
}

impl tower_service::Service<Uri> for OutboundConnector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Both inner connectors are always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, target: Uri) -> Self::Future {
        let mut connector = self.clone();
        Box::pin(async move {
            let Some(origin) = Origin::of_uri(&target) else {
                return Err(format!("cannot connect to {target}: the URI has no scheme or host").into());
            };
            if let Some(route) = connector.proxies.route(&target) {
                let proxy = route.proxy.authority().map_or_else(String::new, ToString::to_string);
                let stream = connector
                    .to_proxy
                    .call(route.proxy.clone())
                    .await
                    .map_err(|error| ProxyUnreachable { proxy, reason: error_chain(&error) })?;
                let tunnel = open_tunnel(stream.into_inner(), &route, &origin.host, origin.port).await?;
                return Ok(TokioIo::new(tunnel));
            }
            let authority = format!("{}:{}", origin.host, origin.port);
            let dial = match connector.connect_to.get(&authority) {
                Some(address) => format!("http://{address}").parse()?,
                None => target,
            };
            Ok(connector.direct.call(dial).await?)
        })
    }
}

/// The proxy itself could not be reached: a connection failure like any other (retried).
#[derive(Debug, thiserror::Error)]
#[error("could not connect to the proxy {proxy}: {reason}")]
struct ProxyUnreachable {
    proxy: String,
    reason: String,
}

/// An error and its causes, looking inside `io::Error`s, whose `source()` skips the error they wrap.
fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |cause| match cause.downcast_ref::<std::io::Error>() {
        Some(io) => io.get_ref().map(|inner| inner as &(dyn std::error::Error + 'static)),
        None => cause.source(),
    })
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    causes(error).map(ToString::to_string).collect::<Vec<_>>().join(": ")
}

fn classify_client_error(err: hyper_util::client::legacy::Error, host: &str) -> TransportError {
    let text = error_chain(&err);
    for cause in causes(&err) {
        if let Some(prohibited) = cause.downcast_ref::<ProhibitedResolution>() {
            return TransportError::ProhibitedAddress(prohibited.0.clone());
        }
        if cause.downcast_ref::<ProxyUnreachable>().is_some() {
            return TransportError::Connect(cause.to_string());
        }
        if let Some(tunnel) = cause.downcast_ref::<TunnelError>() {
            return TransportError::Proxy(tunnel.to_string());
        }
        if let Some(rustls::Error::InvalidCertificate(problem)) = cause.downcast_ref::<rustls::Error>() {
            return match problem {
                rustls::CertificateError::UnknownIssuer => TransportError::UntrustedCertificate(host.to_owned()),
                other => TransportError::CertificateRejected { host: host.to_owned(), reason: format!("{other:?}") },
            };
        }
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

    #[test]
    fn connect_to_is_refused_without_insecure_test_routing() {
        let variable =
            |name: &str| (name == CONNECT_TO_VARIABLE).then(|| "graph.microsoft.com:443=127.0.0.1:8080".into());
        let refused = HttpTransport::configured(TransportLimits::default(), &NetworkOptions::default(), variable);
        let text = format!("{:#}", refused.err().expect("refused without the flag"));
        assert!(text.contains(CONNECT_TO_VARIABLE) && text.contains("--insecure-test-routing"), "{text}");
        let options = NetworkOptions { insecure_test_routing: true, ..NetworkOptions::default() };
        assert!(HttpTransport::configured(TransportLimits::default(), &options, variable).is_ok());
    }

    #[test]
    fn connection_specific_headers_are_not_forwarded() {
        for name in ["connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade", "host"] {
            assert!(is_connection_specific(&HeaderName::from_static(name)), "{name}");
        }
        for name in ["accept", "consistencylevel", "content-type", "authorization"] {
            assert!(!is_connection_specific(&HeaderName::from_static(name)), "{name}");
        }
    }
}
