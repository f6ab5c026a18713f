//! Which requests go through an HTTP proxy, and the CONNECT tunnel through it.
//!
//! Enterprise clusters reach Azure through a proxy named by `HTTPS_PROXY` / `HTTP_PROXY` (upper
//! case first, then lower case, as Go reads them), with `NO_PROXY` naming the hosts reached
//! directly. Every proxied request travels in a CONNECT tunnel, so TLS runs end to end between
//! the host and Azure and the proxy sees only the target's name and port. The proxy itself is
//! chosen by the operator: it is the one address outside the allow-list the host connects to,
//! and it may be on a private address. Loopback targets (the fake Azure of tests and the demo)
//! never go through a proxy.

use std::collections::HashMap;
use std::fmt;

use anyhow::{Context as _, bail};
use http::{HeaderValue, Uri};
use hyper_util::client::proxy::matcher::Matcher;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use url::Url;

/// The largest CONNECT answer head read from a proxy; real ones are a few hundred bytes.
const MAX_CONNECT_ANSWER_BYTES: usize = 16 * 1024;

/// The proxy variables, each in the order they are read.
const HTTPS_PROXY_VARIABLES: [&str; 2] = ["HTTPS_PROXY", "https_proxy"];
const HTTP_PROXY_VARIABLES: [&str; 2] = ["HTTP_PROXY", "http_proxy"];
const NO_PROXY_VARIABLES: [&str; 2] = ["NO_PROXY", "no_proxy"];

/// Where a proxied request's tunnel is opened: the proxy's address and its credentials.
#[derive(Clone)]
pub struct ProxyRoute {
    /// `http://host:port/` of the proxy, without credentials.
    pub proxy: Uri,
    /// `Basic ...` from the proxy URL's user and password, sent on CONNECT only (never to Azure).
    pub authorization: Option<HeaderValue>,
}

/// The proxy settings of the process, read once at start-up.
pub struct ProxyRules {
    /// Decides for targets on every port NO_PROXY does not single out.
    any_port: Matcher,
    /// For each port some NO_PROXY entry names (`host:port`), the same proxies with those
    /// entries added to the bypass list, because hyper's matcher compares host names only.
    by_port: HashMap<u16, Matcher>,
    /// What the rules are, for the start-up log line: proxy URLs without credentials.
    description: Option<String>,
}

impl ProxyRules {
    /// No proxy: every request connects directly.
    pub fn direct() -> Self {
        ProxyRules { any_port: Matcher::builder().build(), by_port: HashMap::new(), description: None }
    }

    /// Reads `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` (and their lower-case spellings) through
    /// `variable`. A proxy URL that cannot be used is an error naming the variable.
    pub fn from_variables(variable: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let first = |names: [&'static str; 2]| {
            names
                .into_iter()
                .find_map(|name| variable(name).filter(|value| !value.trim().is_empty()).map(|v| (name, v)))
        };
        let https = first(HTTPS_PROXY_VARIABLES).map(|(name, value)| proxy_url(name, &value)).transpose()?;
        let http = first(HTTP_PROXY_VARIABLES).map(|(name, value)| proxy_url(name, &value)).transpose()?;
        let no_proxy = first(NO_PROXY_VARIABLES).map(|(_, value)| value).unwrap_or_default();
        if https.is_none() && http.is_none() {
            return Ok(ProxyRules::direct());
        }
        let matcher = |bypass: &str| {
            let mut builder = Matcher::builder().no(bypass);
            if let Some(url) = &https {
                builder = builder.https(url.as_str());
            }
            if let Some(url) = &http {
                builder = builder.http(url.as_str());
            }
            builder.build()
        };
        let entries: Vec<NoProxyEntry> = no_proxy.split(',').filter_map(NoProxyEntry::parse).collect();
        let any_port_list = |extra_port: Option<u16>| {
            entries
                .iter()
                .filter(|entry| entry.port.is_none() || entry.port == extra_port)
                .map(|entry| entry.host.as_str())
                .collect::<Vec<_>>()
                .join(",")
        };
        let by_port = entries
            .iter()
            .filter_map(|entry| entry.port)
            .map(|port| (port, matcher(&any_port_list(Some(port)))))
            .collect();
        let description = [("https", &https), ("http", &http)]
            .iter()
            .filter_map(|(scheme, url)| url.as_ref().map(|url| format!("{scheme}: {}", without_credentials(url))))
            .chain((!no_proxy.trim().is_empty()).then(|| format!("NO_PROXY: {}", no_proxy.trim())))
            .collect::<Vec<_>>()
            .join("; ");
        Ok(ProxyRules { any_port: matcher(&any_port_list(None)), by_port, description: Some(description) })
    }

    /// The proxy to tunnel through to `target`, or `None` to connect directly.
    pub fn route(&self, target: &Uri) -> Option<ProxyRoute> {
        let host = target.host()?.trim_start_matches('[').trim_end_matches(']');
        if is_loopback_name(host) {
            return None;
        }
        let port = target.port_u16().unwrap_or(if target.scheme_str() == Some("http") { 80 } else { 443 });
        let matcher = self.by_port.get(&port).unwrap_or(&self.any_port);
        let intercept = matcher.intercept(target)?;
        Some(ProxyRoute { proxy: intercept.uri().clone(), authorization: intercept.basic_auth().cloned() })
    }

    /// The proxies and bypass list, without credentials; `None` when no proxy is configured.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
}

/// `localhost` and loopback literals: reached directly whatever the proxy settings say, as Go's
/// `ProxyFromEnvironment` does, so a proxy never sees the demo's or the tests' loopback traffic.
fn is_loopback_name(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A NO_PROXY entry: a host name, domain suffix, IP, network or `*`, optionally with a port.
struct NoProxyEntry {
    host: String,
    port: Option<u16>,
}

impl NoProxyEntry {
    fn parse(text: &str) -> Option<NoProxyEntry> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        if let Some(rest) = text.strip_prefix('[')
            && let Some((ip, after)) = rest.split_once(']')
        {
            let port = after.strip_prefix(':').and_then(|port| port.parse().ok());
            return Some(NoProxyEntry { host: ip.to_owned(), port });
        }
        // One colon separates a port; more than one is an IPv6 address without brackets.
        match text.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => match port.parse() {
                Ok(port) => Some(NoProxyEntry { host: host.to_owned(), port: Some(port) }),
                Err(_) => Some(NoProxyEntry { host: text.to_owned(), port: None }),
            },
            _ => Some(NoProxyEntry { host: text.to_owned(), port: None }),
        }
    }
}

/// Parses and checks a proxy URL: `http://[user:password@]host[:port]`, the scheme optional.
fn proxy_url(variable: &str, value: &str) -> anyhow::Result<Url> {
    let value = value.trim();
    let with_scheme = if value.contains("://") { value.to_owned() } else { format!("http://{value}") };
    // The value is not echoed: it may carry the proxy password.
    let url = Url::parse(&with_scheme)
        .ok()
        .with_context(|| format!("{variable} is not a proxy URL: write it as http://[user:password@]host:port"))?;
    match url.scheme() {
        "http" => {}
        "https" => bail!(
            "{variable} names an https:// proxy, which is not supported: use http://host:port (the CONNECT tunnel still carries TLS from the host to Azure)"
        ),
        other => bail!("{variable} uses the {other}:// scheme; only http:// proxies are supported"),
    }
    if url.host_str().is_none_or(str::is_empty) {
        bail!("{variable} has no host: write it as http://[user:password@]host:port");
    }
    Ok(url)
}

/// `http://host:port` of a proxy URL, for logs and error messages.
fn without_credentials(url: &Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(host), Some(port)) => format!("http://{host}:{port}"),
        _ => "the proxy".to_owned(),
    }
}

/// Why a tunnel through the proxy could not be opened. Never shows the proxy's credentials.
#[derive(Debug)]
pub enum TunnelError {
    Io {
        proxy: String,
        source: std::io::Error,
    },
    /// The proxy answered 407.
    AuthenticationRequired {
        proxy: String,
        credentials_sent: bool,
    },
    /// The proxy answered anything else than 2xx.
    Refused {
        proxy: String,
        target: String,
        status: u16,
        reason: String,
    },
    /// The answer was not HTTP, too long, or followed by data before the tunnel was used.
    Malformed {
        proxy: String,
        problem: &'static str,
    },
}

impl fmt::Display for TunnelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TunnelError::Io { proxy, source } => write!(f, "the proxy {proxy} failed during CONNECT: {source}"),
            TunnelError::AuthenticationRequired { proxy, credentials_sent: true } => write!(
                f,
                "the proxy {proxy} refused the credentials in the proxy URL (407): check the user and password in HTTPS_PROXY"
            ),
            TunnelError::AuthenticationRequired { proxy, credentials_sent: false } => write!(
                f,
                "the proxy {proxy} requires authentication (407): put the credentials in the proxy URL, http://user:password@host:port"
            ),
            TunnelError::Refused { proxy, target, status, reason } => write!(
                f,
                "the proxy {proxy} refused to open a tunnel to {target} ({status} {reason}): allow CONNECT to it in the proxy, or list it in NO_PROXY"
            ),
            TunnelError::Malformed { proxy, problem } => write!(f, "the proxy {proxy} answered CONNECT with {problem}"),
        }
    }
}

impl std::error::Error for TunnelError {}

/// Asks the proxy on `stream` for a tunnel to `host:port` and returns the stream once it is
/// open. The target is named, not resolved here: the proxy resolves it (see docs/security.md).
pub async fn open_tunnel(
    mut stream: TcpStream,
    route: &ProxyRoute,
    host: &str,
    port: u16,
) -> Result<TcpStream, TunnelError> {
    let proxy = route.proxy.authority().map_or_else(|| "(proxy)".to_owned(), ToString::to_string);
    let target = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    let mut head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n").into_bytes();
    if let Some(authorization) = &route.authorization {
        head.extend_from_slice(b"Proxy-Authorization: ");
        head.extend_from_slice(authorization.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let io_error = |source| TunnelError::Io { proxy: proxy.clone(), source };
    stream.write_all(&head).await.map_err(io_error)?;

    let mut answer = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let read = stream.read(&mut chunk).await.map_err(io_error)?;
        if read == 0 {
            return Err(TunnelError::Malformed { proxy, problem: "a closed connection" });
        }
        answer.extend_from_slice(&chunk[..read]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&answer) {
            Ok(httparse::Status::Complete(length)) => {
                let status = response.code.unwrap_or(0);
                if length != answer.len() {
                    return Err(TunnelError::Malformed { proxy, problem: "data before the tunnel was used" });
                }
                return match status {
                    200..=299 => Ok(stream),
                    407 => Err(TunnelError::AuthenticationRequired {
                        proxy,
                        credentials_sent: route.authorization.is_some(),
                    }),
                    _ => Err(TunnelError::Refused {
                        proxy,
                        target,
                        status,
                        reason: response.reason.unwrap_or_default().to_owned(),
                    }),
                };
            }
            Ok(httparse::Status::Partial) if answer.len() < MAX_CONNECT_ANSWER_BYTES => {}
            Ok(httparse::Status::Partial) => {
                return Err(TunnelError::Malformed { proxy, problem: "an answer head longer than 16 KiB" });
            }
            Err(_) => return Err(TunnelError::Malformed { proxy, problem: "something that is not HTTP" }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(variables: &[(&str, &str)]) -> anyhow::Result<ProxyRules> {
        let variables: HashMap<String, String> =
            variables.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect();
        ProxyRules::from_variables(|name| variables.get(name).cloned())
    }

    fn proxied(rules: &ProxyRules, target: &str) -> Option<String> {
        rules.route(&target.parse().unwrap()).map(|route| route.proxy.to_string())
    }

    #[test]
    fn https_targets_use_https_proxy_and_http_targets_http_proxy() {
        let rules = rules(&[("HTTPS_PROXY", "http://secure-proxy:3128"), ("http_proxy", "plain-proxy:8080")]).unwrap();
        assert_eq!(proxied(&rules, "https://graph.microsoft.com/v1.0").as_deref(), Some("http://secure-proxy:3128/"));
        assert_eq!(proxied(&rules, "http://example.com/").as_deref(), Some("http://plain-proxy:8080/"));
    }

    #[test]
    fn upper_case_variables_win_over_lower_case() {
        let rules = rules(&[("HTTPS_PROXY", "http://upper:1"), ("https_proxy", "http://lower:2")]).unwrap();
        assert_eq!(proxied(&rules, "https://graph.microsoft.com/").as_deref(), Some("http://upper:1/"));
        let rules = self::rules(&[("https_proxy", "http://lower:2")]).unwrap();
        assert_eq!(proxied(&rules, "https://graph.microsoft.com/").as_deref(), Some("http://lower:2/"));
    }

    #[test]
    fn no_proxy_matches_hosts_suffixes_ips_networks_and_star() {
        let rules = rules(&[
            ("HTTPS_PROXY", "http://proxy:3128"),
            ("NO_PROXY", "login.microsoftonline.com, .azure.com,20.1.2.3,10.0.0.0/8"),
        ])
        .unwrap();
        for direct in [
            "https://login.microsoftonline.com/",
            "https://management.azure.com/",
            "https://azure.com/",
            "https://20.1.2.3/",
            "https://10.9.8.7/",
        ] {
            assert_eq!(proxied(&rules, direct), None, "{direct} bypasses the proxy");
        }
        for through in ["https://graph.microsoft.com/", "https://notazure.com/", "https://20.1.2.4/"] {
            assert!(proxied(&rules, through).is_some(), "{through} goes through the proxy");
        }
        let everything = self::rules(&[("HTTPS_PROXY", "http://proxy:3128"), ("no_proxy", "*")]).unwrap();
        assert_eq!(proxied(&everything, "https://graph.microsoft.com/"), None);
    }

    #[test]
    fn a_no_proxy_entry_with_a_port_bypasses_only_that_port() {
        let rules =
            rules(&[("HTTPS_PROXY", "http://proxy:3128"), ("NO_PROXY", "graph.microsoft.com:8443,[2001:db8::1]:443")])
                .unwrap();
        assert_eq!(proxied(&rules, "https://graph.microsoft.com:8443/"), None);
        assert!(proxied(&rules, "https://graph.microsoft.com/").is_some());
        assert_eq!(proxied(&rules, "https://[2001:db8::1]/"), None);
        assert!(proxied(&rules, "https://[2001:db8::1]:8443/").is_some());
    }

    #[test]
    fn loopback_targets_never_use_the_proxy() {
        let rules = rules(&[("HTTPS_PROXY", "http://proxy:3128"), ("HTTP_PROXY", "http://proxy:3128")]).unwrap();
        for target in ["http://127.0.0.1:8080/", "https://localhost/", "http://[::1]:9000/"] {
            assert_eq!(proxied(&rules, target), None, "{target}");
        }
    }

    #[test]
    fn credentials_in_the_proxy_url_become_proxy_authorization_and_are_not_described() {
        let rules = rules(&[("HTTPS_PROXY", "http://svc%40corp:s3cret@proxy:3128")]).unwrap();
        let route = rules.route(&"https://graph.microsoft.com/".parse().unwrap()).unwrap();
        // base64("svc@corp:s3cret")
        assert_eq!(route.authorization.unwrap(), "Basic c3ZjQGNvcnA6czNjcmV0");
        assert_eq!(route.proxy.to_string(), "http://proxy:3128/");
        assert!(!rules.description().unwrap().contains("s3cret"), "{:?}", rules.description());
    }

    #[test]
    fn unusable_proxy_urls_are_refused_naming_the_variable_not_the_password() {
        for (value, expected) in [
            ("https://proxy:3128", "https:// proxy"),
            ("socks5://proxy:1080", "socks5"),
            ("http://:pw@:3128", "HTTPS_PROXY"),
        ] {
            let error = rules(&[("HTTPS_PROXY", value)]).err().unwrap_or_else(|| panic!("{value} is refused"));
            let text = format!("{error:#}");
            assert!(text.contains("HTTPS_PROXY") && text.contains(expected), "{value}: {text}");
            assert!(!text.contains("pw"), "{text}");
        }
    }

    #[test]
    fn no_variables_mean_no_proxy() {
        let rules = rules(&[("NO_PROXY", "example.com")]).unwrap();
        assert!(rules.description().is_none());
        assert_eq!(proxied(&rules, "https://graph.microsoft.com/"), None);
    }

    async fn tunnel_answered_with(answer: &'static [u8], authorization: Option<&str>) -> (Result<(), String>, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let proxy = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; 4096];
            let read = socket.read(&mut request).await.unwrap();
            socket.write_all(answer).await.unwrap();
            String::from_utf8_lossy(&request[..read]).into_owned()
        });
        let route = ProxyRoute {
            proxy: format!("http://{address}/").parse().unwrap(),
            authorization: authorization.map(|value| HeaderValue::from_str(value).unwrap()),
        };
        let stream = TcpStream::connect(address).await.unwrap();
        let result = open_tunnel(stream, &route, "graph.microsoft.com", 443)
            .await
            .map(|_| ())
            .map_err(|error| error.to_string());
        (result, proxy.await.unwrap())
    }

    #[tokio::test]
    async fn connect_names_the_target_and_sends_proxy_authorization() {
        let (result, request) =
            tunnel_answered_with(b"HTTP/1.1 200 Connection established\r\n\r\n", Some("Basic dTpw")).await;
        assert_eq!(result, Ok(()));
        assert!(request.starts_with("CONNECT graph.microsoft.com:443 HTTP/1.1\r\n"), "{request}");
        assert!(request.contains("\r\nProxy-Authorization: Basic dTpw\r\n"), "{request}");
    }

    #[tokio::test]
    async fn a_refused_tunnel_says_what_the_proxy_answered_and_what_to_do() {
        let (result, _) = tunnel_answered_with(b"HTTP/1.1 403 Forbidden\r\n\r\n", None).await;
        let error = result.unwrap_err();
        assert!(error.contains("graph.microsoft.com:443") && error.contains("403 Forbidden"), "{error}");
        assert!(error.contains("NO_PROXY"), "{error}");
        let (result, _) = tunnel_answered_with(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", None).await;
        assert!(result.unwrap_err().contains("http://user:password@host:port"));
    }
}
