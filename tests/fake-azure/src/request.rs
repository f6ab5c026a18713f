//! The parts of an HTTP request the fake's handlers look at, parsed once.

use axum::body::Bytes;
use axum::http::{HeaderMap, Method};
use percent_encoding::percent_decode_str;

pub struct ApiRequest {
    pub method: Method,
    /// Percent-decoded path segments, without empty ones (`/v1.0/users/` = `["v1.0", "users"]`).
    pub segments: Vec<String>,
    pub query: Query,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl ApiRequest {
    /// The base URL the client addressed: the fake's own loopback URL, or `https://<Host>` when
    /// the client reached it under a cloud's name (a test routing `graph.microsoft.us` here), so
    /// absolute links point where the client believes it is, as behind a TLS-terminating proxy.
    pub fn public_base(&self, own_url: &str) -> String {
        match self.headers.get(axum::http::header::HOST).and_then(|host| host.to_str().ok()) {
            Some(host) if own_url.split_once("://").map(|(_, own_host)| own_host) != Some(host) => {
                format!("https://{}", host.strip_suffix(":443").unwrap_or(host))
            }
            _ => own_url.to_owned(),
        }
    }

    pub fn new(method: Method, path: &str, raw_query: Option<&str>, headers: HeaderMap, body: Bytes) -> Self {
        let segments = path
            .split('/')
            .filter(|segment| !segment.is_empty())
            .map(|segment| percent_decode_str(segment).decode_utf8_lossy().into_owned())
            .collect();
        ApiRequest { method, segments, query: Query::parse(raw_query.unwrap_or("")), headers, body }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The decoded path, e.g. `/v1.0/groups/{id}/members`.
    pub fn path(&self) -> String {
        format!("/{}", self.segments.join("/"))
    }
}

/// A query string: the raw text (repeated verbatim in nextLinks) and its decoded pairs.
pub struct Query {
    raw: String,
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: &str) -> Self {
        Query { raw: raw.to_owned(), pairs: form_urlencoded::parse(raw.as_bytes()).into_owned().collect() }
    }

    /// The value of a parameter; OData system options are matched case-insensitively, as Graph does.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(name, _)| name.trim().eq_ignore_ascii_case(key)).map(|(_, value)| value.as_str())
    }

    /// The decoded parameter names, as written.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.pairs.iter().map(|(name, _)| name.trim())
    }

    /// The raw query without `key`, for building a nextLink that repeats the original query.
    pub fn raw_without(&self, key: &str) -> String {
        self.raw
            .split('&')
            .filter(|piece| !piece.is_empty())
            .filter(|piece| {
                let name = piece.split('=').next().unwrap_or_default();
                let decoded = percent_decode_str(name).decode_utf8_lossy();
                !decoded.trim().eq_ignore_ascii_case(key)
            })
            .collect::<Vec<_>>()
            .join("&")
    }
}
