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

impl AzureEndpoints {
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
    fn plain_http_is_refused_off_loopback() {
        let err = parse_base_url("--graph-url", "http://graph.example.com").unwrap_err();
        assert!(err.to_string().contains("use https"), "{err}");
        assert!(parse_base_url("--graph-url", "http://localhost:9").is_ok());
        assert!(parse_base_url("--graph-url", "http://[::1]:9").is_ok());
    }
}
