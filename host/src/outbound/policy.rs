//! The allow-list of origins a sandboxed component may reach.
//!
//! Entries are parsed into typed `scheme://host:port` values at start-up, so a request is
//! matched by comparing values, never by string prefixes that `https://graph.microsoft.com.evil`
//! would pass. An empty list allows nothing.

use std::fmt;

use anyhow::bail;
use http::Uri;
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

#[derive(Clone, Debug, Default)]
pub struct OutboundPolicy {
    allowed: Vec<AllowedOrigin>,
}

impl OutboundPolicy {
    pub fn new(allowed: Vec<AllowedOrigin>) -> Self {
        OutboundPolicy { allowed }
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
    fn wildcard_is_refused_with_the_right_spelling() {
        let err = Origin::parse("*").unwrap_err().to_string();
        assert!(err.contains("scheme://host[:port]"), "{err}");
    }
}
