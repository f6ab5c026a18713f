//! Sends one buffered HTTP request and buffers its answer, within time and size limits.
//!
//! Every byte that leaves the host goes through here: guest requests and token requests alike.
//! Names are resolved by a resolver that drops addresses a connector has no business reaching
//! (private, link-local, cloud metadata), so an allowed name that points inside the network
//! behind us is refused after DNS, not only before it.

use std::future::Future;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;

use super::policy::Origin;

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

#[derive(Clone, Debug)]
pub struct BufferedRequest {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
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
}

impl HttpTransport {
    pub fn new(limits: TransportLimits) -> anyhow::Result<Self> {
        let mut http = HttpConnector::new_with_resolver(GuardedResolver);
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
        Ok(HttpTransport { client, limits })
    }

    pub fn limits(&self) -> TransportLimits {
        self.limits
    }

    pub async fn send(&self, request: &BufferedRequest) -> Result<BufferedResponse, TransportError> {
        if let Some(origin) = Origin::of_uri(&request.uri) {
            refuse_prohibited_literal(&origin)?;
        }
        let mut builder = http::Request::builder().method(request.method.clone()).uri(request.uri.clone());
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
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
        if let Some(prohibited) = cause.downcast_ref::<ProhibitedResolution>() {
            return TransportError::ProhibitedAddress(prohibited.0.clone());
        }
        source = cause.source();
    }
    if err.is_connect() { TransportError::Connect(text) } else { TransportError::Protocol(text) }
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

fn refuse_prohibited_literal(origin: &Origin) -> Result<(), TransportError> {
    match origin.host.parse::<IpAddr>() {
        Ok(ip) if is_prohibited(ip, origin.is_loopback()) => {
            Err(TransportError::ProhibitedAddress(origin.host.clone()))
        }
        _ => Ok(()),
    }
}

#[derive(Debug)]
struct ProhibitedResolution(String);

impl std::fmt::Display for ProhibitedResolution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} resolves only to prohibited addresses", self.0)
    }
}

impl std::error::Error for ProhibitedResolution {}

/// Resolves names with the system resolver and keeps only addresses a connector may reach.
/// `localhost` is the one name allowed to resolve to loopback, because only a loopback origin
/// (configured on purpose, as tests do) can name it.
#[derive(Clone, Copy)]
struct GuardedResolver;

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let lookup_host = host.clone();
            let addresses = tokio::task::spawn_blocking(move || (lookup_host.as_str(), 0).to_socket_addrs())
                .await
                .map_err(std::io::Error::other)??;
            let loopback_name = host.eq_ignore_ascii_case("localhost");
            let allowed: Vec<SocketAddr> =
                addresses.filter(|address| !is_prohibited(address.ip(), loopback_name)).collect();
            if allowed.is_empty() {
                return Err(std::io::Error::other(ProhibitedResolution(host)));
            }
            Ok(allowed.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
