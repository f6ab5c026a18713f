//! Azure clouds: which login, Graph and ARM hosts and token scopes belong together.
//!
//! A national cloud changes every host at once; overriding one URL (to point at a proxy or the
//! fake Azure in tests) keeps the cloud's token scopes, because tokens are still minted for the
//! cloud's audiences.

use anyhow::{Context, bail};
use url::Url;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AzureCloud {
    Public,
    Usgov,
    China,
}

impl AzureCloud {
    fn defaults(self) -> CloudDefaults {
        match self {
            AzureCloud::Public => CloudDefaults {
                login: "https://login.microsoftonline.com",
                graph: "https://graph.microsoft.com",
                arm: "https://management.azure.com",
            },
            AzureCloud::Usgov => CloudDefaults {
                login: "https://login.microsoftonline.us",
                graph: "https://graph.microsoft.us",
                arm: "https://management.usgovcloudapi.net",
            },
            AzureCloud::China => CloudDefaults {
                login: "https://login.chinacloudapi.cn",
                graph: "https://microsoftgraph.chinacloudapi.cn",
                arm: "https://management.chinacloudapi.cn",
            },
        }
    }
}

struct CloudDefaults {
    login: &'static str,
    graph: &'static str,
    arm: &'static str,
}

/// Where requests go and which token scopes they need, resolved once at start-up.
#[derive(Clone, Debug)]
pub struct AzureEndpoints {
    pub login: Url,
    pub graph: Url,
    pub arm: Url,
    pub graph_scope: String,
    pub arm_scope: String,
}

/// URLs that replace a cloud's defaults, one each.
#[derive(Clone, Debug, Default)]
pub struct EndpointOverrides {
    pub login: Option<String>,
    pub graph: Option<String>,
    pub arm: Option<String>,
}

/// A service a connector asked for by name, bound to where the operator says it is and to the
/// token audience of the operator's cloud. Nothing in it comes from the component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundEndpoint {
    pub name: &'static str,
    pub base_url: Url,
    pub token_scope: String,
}

/// The endpoint names this host knows, with what they are, for messages.
pub const KNOWN_ENDPOINTS: [(&str, &str); 2] = [("graph", "Microsoft Graph"), ("arm", "Azure Resource Manager")];

impl AzureEndpoints {
    /// The endpoint `name` as the operator configured it, or `None` for a name this host does
    /// not know: a connector cannot invent a service, only ask for one of these.
    pub fn bind(&self, name: &str) -> Option<BoundEndpoint> {
        let (name, base_url, token_scope) = match name {
            "graph" => ("graph", &self.graph, &self.graph_scope),
            "arm" => ("arm", &self.arm, &self.arm_scope),
            _ => return None,
        };
        Some(BoundEndpoint { name, base_url: base_url.clone(), token_scope: token_scope.clone() })
    }

    /// Every endpoint this host knows, bound.
    pub fn bound(&self) -> impl Iterator<Item = BoundEndpoint> + '_ {
        KNOWN_ENDPOINTS.iter().filter_map(|(name, _)| self.bind(name))
    }

    pub fn resolve(cloud: AzureCloud, overrides: &EndpointOverrides) -> anyhow::Result<Self> {
        let defaults = cloud.defaults();
        let pick = |flag: &str, given: &Option<String>, default: &str| -> anyhow::Result<Url> {
            parse_base_url(flag, given.as_deref().unwrap_or(default))
        };
        Ok(AzureEndpoints {
            login: pick("--login-url", &overrides.login, defaults.login)?,
            graph: pick("--graph-url", &overrides.graph, defaults.graph)?,
            arm: pick("--arm-url", &overrides.arm, defaults.arm)?,
            graph_scope: format!("{}/.default", defaults.graph),
            arm_scope: format!("{}/.default", defaults.arm),
        })
    }
}

/// Parses a base URL given on the command line: https anywhere, plain http on loopback only
/// (a token must never cross a network in clear text).
pub fn parse_base_url(flag: &str, text: &str) -> anyhow::Result<Url> {
    let url = Url::parse(text).with_context(|| {
        format!("{flag} {text:?} is not a URL: give scheme and host, e.g. https://graph.microsoft.com")
    })?;
    if url.host_str().is_none() {
        bail!("{flag} {text:?} has no host: give scheme and host, e.g. https://graph.microsoft.com");
    }
    if url.query().is_some() || url.fragment().is_some() {
        bail!("{flag} {text:?} must not carry a query or fragment: give only scheme, host, port and path");
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback_host(&url) => Ok(url),
        "http" => bail!(
            "{flag} {text:?} uses plain http to a non-loopback host: use https (http is accepted for 127.0.0.1, [::1] and localhost only)"
        ),
        other => bail!("{flag} {text:?} has scheme {other:?}: use https"),
    }
}

pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_cloud_switches_every_host_and_scope_together() {
        let endpoints = AzureEndpoints::resolve(AzureCloud::Usgov, &EndpointOverrides::default()).unwrap();
        assert_eq!(endpoints.login.as_str(), "https://login.microsoftonline.us/");
        assert_eq!(endpoints.graph.as_str(), "https://graph.microsoft.us/");
        assert_eq!(endpoints.arm.as_str(), "https://management.usgovcloudapi.net/");
        assert_eq!(endpoints.graph_scope, "https://graph.microsoft.us/.default");
        assert_eq!(endpoints.arm_scope, "https://management.usgovcloudapi.net/.default");
    }

    #[test]
    fn overriding_one_url_keeps_the_clouds_scopes() {
        let overrides = EndpointOverrides { graph: Some("http://127.0.0.1:8080".into()), ..Default::default() };
        let endpoints = AzureEndpoints::resolve(AzureCloud::China, &overrides).unwrap();
        assert_eq!(endpoints.graph.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(endpoints.graph_scope, "https://microsoftgraph.chinacloudapi.cn/.default");
        assert_eq!(endpoints.arm.as_str(), "https://management.chinacloudapi.cn/");
    }

    #[test]
    fn known_endpoints_are_bound_to_the_operators_urls_and_the_clouds_scopes() {
        let overrides = EndpointOverrides { arm: Some("http://127.0.0.1:9443/arm".into()), ..Default::default() };
        let endpoints = AzureEndpoints::resolve(AzureCloud::Public, &overrides).unwrap();
        let arm = endpoints.bind("arm").unwrap();
        assert_eq!(arm.base_url.as_str(), "http://127.0.0.1:9443/arm");
        assert_eq!(arm.token_scope, "https://management.azure.com/.default");
        let graph = endpoints.bind("graph").unwrap();
        assert_eq!(graph.base_url.as_str(), "https://graph.microsoft.com/");
        assert_eq!(graph.token_scope, "https://graph.microsoft.com/.default");
        assert_eq!(endpoints.bound().count(), KNOWN_ENDPOINTS.len());
    }

    #[test]
    fn an_unknown_endpoint_name_is_bound_to_nothing() {
        let endpoints = AzureEndpoints::resolve(AzureCloud::Public, &EndpointOverrides::default()).unwrap();
        for name in ["keyvault", "Graph", "graph ", "storage", ""] {
            assert!(endpoints.bind(name).is_none(), "{name:?} must not be bound");
        }
    }

    #[test]
    fn plain_http_is_refused_off_loopback() {
        let err = parse_base_url("--graph-url", "http://graph.example.com").unwrap_err();
        assert!(err.to_string().contains("use https"), "{err}");
        assert!(parse_base_url("--graph-url", "http://localhost:9").is_ok());
        assert!(parse_base_url("--graph-url", "http://[::1]:9").is_ok());
    }
}
