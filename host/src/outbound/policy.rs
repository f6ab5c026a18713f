//! The allow-list of origins a sandboxed component may reach, and the methods it may use.
//!
//! Entries are parsed into typed `scheme://host:port` values at start-up, so a request is
//! matched by comparing values, never by string prefixes that `https://graph.microsoft.com.evil`
//! would pass. An empty list allows nothing. A policy only reads unless it was built for a
//! grant or revoke.

use std::fmt;

use anyhow::bail;
use http::{Method, Uri};
use url::Url;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    Http,
    Https,
}

/// `scheme://host:port`, with the host lower-cased and the port made explicit.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
}

impl Origin {
    pub fn from_url(url: &Url) -> anyhow::Result<Origin> {
        let scheme = match url.scheme() {
            "https" => Scheme::Https,
            "http" => Scheme::Http,
            other => bail!("origin {url} has scheme {other:?}: only http and https can be allowed"),
        };
        let Some(host) = url.host_str() else {
            bail!("origin {url} has no host: write it as scheme://host[:port]");
        };
        let Some(port) = url.port_or_known_default() else {
            bail!("origin {url} has no port");
        };
        Ok(Origin { scheme, host: host.to_ascii_lowercase(), port })
    }

    pub fn parse(text: &str) -> anyhow::Result<Origin> {
        if text.trim() == "*" {
            bail!("origin \"*\" would allow every host: list each origin as scheme://host[:port]");
        }
        let url = Url::parse(text)
            .map_err(|err| anyhow::anyhow!("origin {text:?} is not a URL ({err}): write it as scheme://host[:port]"))?;
        Origin::from_url(&url)
    }

    /// The origin a request is addressed to, or `None` when its URI has no scheme or host.
    pub fn of_uri(uri: &Uri) -> Option<Origin> {
        let scheme = match uri.scheme_str()? {
            "https" => Scheme::Https,
            "http" => Scheme::Http,
            _ => return None,
        };
        let host = uri.host()?.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(match scheme {
            Scheme::Https => 443,
            Scheme::Http => 80,
        });
        Some(Origin { scheme, host, port })
    }

    /// True when the origin names a loopback address literally; only those may resolve to
    /// loopback addresses (tests and the demo talk to the fake Azure that way).
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost" || self.host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// An origin the guest may reach, and the OAuth2 scope of the token the host attaches to it.
#[derive(Clone, Debug)]
pub struct AllowedOrigin {
    pub origin: Origin,
    pub token_scope: Option<String>,
}

/// Which HTTP methods a call may use: what it needs, nothing more.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Access {
    /// Syncs, `validate-config`, `tracked-types`, `metadata`: they only read.
    #[default]
    ReadOnly,
    /// `grant` and `revoke` with provisioning on: also the methods the Azure connector's
    /// changes use (POST, PUT, DELETE; none uses PATCH).
    Provisioning,
}

const READ_METHODS: [Method; 2] = [Method::GET, Method::HEAD];
const PROVISIONING_METHODS: [Method; 5] = [Method::GET, Method::HEAD, Method::POST, Method::PUT, Method::DELETE];

impl Access {
    pub fn methods(self) -> &'static [Method] {
        match self {
            Access::ReadOnly => &READ_METHODS,
            Access::Provisioning => &PROVISIONING_METHODS,
        }
    }

    pub fn allows(self, method: &Method) -> bool {
        self.methods().contains(method)
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let methods: Vec<&str> = self.methods().iter().map(Method::as_str).collect();
        match self {
            Access::ReadOnly => write!(
                f,
                "this call may only read ({}): only grant and revoke change anything, with provisioning on (--provisioning or BATON_PROVISIONING=true)",
                methods.join(", ")
            ),
            Access::Provisioning => write!(f, "grant and revoke may only use {}", methods.join(", ")),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct OutboundPolicy {
    allowed: Vec<AllowedOrigin>,
    access: Access,
}

impl OutboundPolicy {
    /// A read-only policy for `allowed`.
    pub fn new(allowed: Vec<AllowedOrigin>) -> Self {
        OutboundPolicy { allowed, access: Access::ReadOnly }
    }

    pub fn with_access(self, access: Access) -> Self {
        OutboundPolicy { access, ..self }
    }

    pub fn access(&self) -> Access {
        self.access
    }

    /// The token scopes of the allow-list, each once.
    pub fn token_scopes(&self) -> Vec<&str> {
        let mut scopes: Vec<&str> = Vec::new();
        for scope in self.allowed.iter().filter_map(|allowed| allowed.token_scope.as_deref()) {
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        scopes
    }

    /// The allow-list entry matching the request's origin, if any.
    pub fn check(&self, uri: &Uri) -> Option<&AllowedOrigin> {
        let origin = Origin::of_uri(uri)?;
        self.allowed.iter().find(|allowed| allowed.origin == origin)
    }

    pub fn origins(&self) -> impl Iterator<Item = &Origin> {
        self.allowed.iter().map(|allowed| &allowed.origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(origins: &[&str]) -> OutboundPolicy {
        OutboundPolicy::new(
            origins
                .iter()
                .map(|text| AllowedOrigin { origin: Origin::parse(text).unwrap(), token_scope: None })
                .collect(),
        )
    }

    #[test]
    fn empty_list_allows_nothing() {
        let uri: Uri = "https://graph.microsoft.com/v1.0/users".parse().unwrap();
        assert!(policy(&[]).check(&uri).is_none());
    }

    #[test]
    fn origin_matches_scheme_host_and_port_exactly() {
        let policy = policy(&["https://graph.microsoft.com"]);
        let allowed: Uri = "https://GRAPH.microsoft.com:443/v1.0/users".parse().unwrap();
        assert!(policy.check(&allowed).is_some());
        for denied in [
            "http://graph.microsoft.com/v1.0/users",
            "https://graph.microsoft.com:8443/v1.0/users",
            "https://graph.microsoft.com.evil.example/v1.0/users",
            "https://evil.example/graph.microsoft.com",
        ] {
            let uri: Uri = denied.parse().unwrap();
            assert!(policy.check(&uri).is_none(), "{denied} must be refused");
        }
    }

    #[test]
    fn a_policy_only_reads_unless_built_for_provisioning() {
        let read_only = policy(&["https://graph.microsoft.com"]);
        let provisioning = policy(&["https://graph.microsoft.com"]).with_access(Access::Provisioning);
        for method in [Method::GET, Method::HEAD] {
            assert!(read_only.access().allows(&method) && provisioning.access().allows(&method), "{method}");
        }
        for method in [Method::POST, Method::PUT, Method::DELETE] {
            assert!(!read_only.access().allows(&method), "a read-only policy refuses {method}");
            assert!(provisioning.access().allows(&method), "provisioning allows {method}");
        }
        let exotic = ["PATCH", "OPTIONS", "TRACE", "CONNECT", "PROPFIND", "MKCOL", "get"];
        for name in exotic {
            let method = Method::from_bytes(name.as_bytes()).unwrap();
            assert!(!read_only.access().allows(&method), "read-only refuses {name}");
            assert!(!provisioning.access().allows(&method), "provisioning refuses {name}");
        }
    }

    #[test]
    fn token_scopes_are_listed_once_each() {
        let origin = |text: &str, scope: &str| AllowedOrigin {
            origin: Origin::parse(text).unwrap(),
            token_scope: Some(scope.to_owned()),
        };
        let policy = OutboundPolicy::new(vec![
            origin("https://graph.microsoft.com", "https://graph.microsoft.com/.default"),
            origin("https://management.azure.com", "https://management.azure.com/.default"),
            origin("https://graph.microsoft.com:8443", "https://graph.microsoft.com/.default"),
        ]);
        assert_eq!(
            policy.token_scopes(),
            ["https://graph.microsoft.com/.default", "https://management.azure.com/.default"]
        );
    }

    #[test]
    fn wildcard_is_refused_with_the_right_spelling() {
        let err = Origin::parse("*").unwrap_err().to_string();
        assert!(err.contains("scheme://host[:port]"), "{err}");
    }
}
