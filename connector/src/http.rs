//! One HTTP exchange through `wasi:http/outgoing-handler` (via waki), and the translation of
//! Azure's answers into the contract's `connector-error`.
//!
//! The host authenticates every request (the component never sets `Authorization`), enforces
//! the allowed origins and retries 429/503, so nothing here retries. Errors are logged to
//! stderr in one line, without headers.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::contract::{ConnectorError, ForbiddenError, ThrottledError, UpstreamError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Put,
    Delete,
}

impl Verb {
    fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Put => "PUT",
            Verb::Delete => "DELETE",
        }
    }

    fn method(self) -> waki::Method {
        match self {
            Verb::Get => waki::Method::Get,
            Verb::Post => waki::Method::Post,
            Verb::Put => waki::Method::Put,
            Verb::Delete => waki::Method::Delete,
        }
    }
}

pub struct ApiRequest {
    verb: Verb,
    url: String,
    json_body: Option<Vec<u8>>,
    eventual_consistency: bool,
}

impl ApiRequest {
    pub fn get(url: String) -> Self {
        Self { verb: Verb::Get, url, json_body: None, eventual_consistency: false }
    }

    pub fn delete(url: String) -> Self {
        Self { verb: Verb::Delete, ..Self::get(url) }
    }

    pub fn with_json(verb: Verb, url: String, body: &serde_json::Value) -> Self {
        Self { verb, url, json_body: Some(body.to_string().into_bytes()), eventual_consistency: false }
    }

    /// Graph advanced queries need `ConsistencyLevel: eventual` on every page: Graph does not
    /// carry it over to the nextLink.
    pub fn with_eventual_consistency(mut self) -> Self {
        self.eventual_consistency = true;
        self
    }

    /// `GET /v1.0/groups/<id>/members`: the method and path, without origin and query. Used
    /// in error messages and as the subject of gap notices.
    pub fn call(&self) -> String {
        call_label(self.verb, &self.url)
    }

    pub fn send(self) -> Result<ApiResponse, ConnectorError> {
        let call = self.call();
        let mut builder =
            waki::Client::new().request(self.verb.method(), &self.url).header("Accept", "application/json");
        if self.eventual_consistency {
            builder = builder.header("ConsistencyLevel", "eventual");
        }
        if let Some(body) = self.json_body {
            builder = builder.header("Content-Type", "application/json").body(body);
        }
        let response = builder.send().map_err(|error| {
            eprintln!("azure-connector: {call}: transport error: {error:#}");
            ConnectorError::Transport(format!("{call}: {error:#}"))
        })?;
        let status = response.status_code();
        let header_text = |name: &str| response.header(name).and_then(|value| value.to_str().ok()).map(str::to_owned);
        let request_id = header_text("request-id").or_else(|| header_text("x-ms-request-id"));
        let retry_after_ms = header_text("retry-after").and_then(|value| parse_retry_after(&value));
        let date = header_text("date").and_then(|value| httpdate::parse_http_date(&value).ok());
        let body = response.body().map_err(|error| {
            eprintln!("azure-connector: {call}: reading the body failed: {error:#}");
            ConnectorError::Transport(format!("{call}: reading the response body failed: {error:#}"))
        })?;
        Ok(ApiResponse { status, request_id, retry_after_ms, date, body, call })
    }
}

pub struct ApiResponse {
    pub status: u16,
    request_id: Option<String>,
    retry_after_ms: Option<u64>,
    /// The server's clock when it answered (the `Date` header), if it sent a readable one.
    pub date: Option<std::time::SystemTime>,
    body: Vec<u8>,
    pub call: String,
}

impl ApiResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The request id of the response, from the `request-id`/`x-ms-request-id` header or, for
    /// error bodies, Graph's `innerError`.
    pub fn request_id(&self) -> Option<String> {
        self.request_id.clone().or_else(|| self.error_body().and_then(|body| body.request_id()))
    }

    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ConnectorError> {
        serde_json::from_slice(&self.body).map_err(|error| {
            eprintln!("azure-connector: {}: unreadable answer: {error}", self.call);
            ConnectorError::InvalidResponse(format!(
                "{} answered {} with a body this connector cannot read: {error}",
                self.call, self.status
            ))
        })
    }

    /// The error as Azure described it: `{"error":{"code","message","innerError"}}` (Graph),
    /// `{"error":{"code","message"}}` (ARM) or `{"error","error_description"}` (token errors).
    pub fn upstream_error(&self) -> UpstreamError {
        let parsed = self.error_body();
        let code = parsed.as_ref().and_then(ErrorEnvelope::code).unwrap_or_default();
        let message = parsed.as_ref().and_then(ErrorEnvelope::message).unwrap_or_else(|| self.body_excerpt());
        UpstreamError { status: self.status, code, message, request_id: self.request_id() }
    }

    /// The error for an unsuccessful answer. `missing_permission` is what the app registration
    /// needs for this call, reported when the answer is 403.
    pub fn into_error(self, missing_permission: Option<String>) -> ConnectorError {
        let upstream = self.upstream_error();
        eprintln!("azure-connector: {} failed: {} {} {}", self.call, upstream.status, upstream.code, upstream.message);
        match self.status {
            401 => ConnectorError::Unauthorized(upstream),
            403 => ConnectorError::Forbidden(ForbiddenError { upstream, missing_permission }),
            404 => ConnectorError::NotFound(upstream),
            429 => ConnectorError::Throttled(ThrottledError { upstream, retry_after_ms: self.retry_after_ms }),
            _ => ConnectorError::Upstream(upstream),
        }
    }

    fn error_body(&self) -> Option<ErrorEnvelope> {
        serde_json::from_slice(&self.body).ok()
    }

    fn body_excerpt(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        if text.is_empty() { format!("HTTP {} without a body", self.status) } else { text.chars().take(300).collect() }
    }
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: Option<ErrorField>,
    error_description: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorField {
    Detail(ErrorDetail),
    Code(String),
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: Option<String>,
    message: Option<String>,
    #[serde(rename = "innerError", alias = "innererror")]
    inner_error: Option<InnerError>,
}

#[derive(Deserialize)]
struct InnerError {
    #[serde(rename = "request-id", alias = "requestId")]
    request_id: Option<String>,
}

impl ErrorEnvelope {
    fn code(&self) -> Option<String> {
        match self.error.as_ref()? {
            ErrorField::Detail(detail) => detail.code.clone(),
            ErrorField::Code(code) => Some(code.clone()),
        }
    }

    fn message(&self) -> Option<String> {
        match self.error.as_ref()? {
            ErrorField::Detail(detail) => detail.message.clone(),
            ErrorField::Code(_) => self.error_description.clone(),
        }
    }

    fn request_id(&self) -> Option<String> {
        match self.error.as_ref()? {
            ErrorField::Detail(detail) => detail.inner_error.as_ref()?.request_id.clone(),
            ErrorField::Code(_) => None,
        }
    }
}

/// `Retry-After` in (possibly fractional) seconds, e.g. `2.128`, as milliseconds.
fn parse_retry_after(value: &str) -> Option<u64> {
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| (seconds * 1000.0).ceil() as u64)
}

pub fn call_label(verb: Verb, url: &str) -> String {
    let without_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path_and_query = without_scheme.find('/').map_or("/", |start| &without_scheme[start..]);
    let path = path_and_query.split_once('?').map_or(path_and_query, |(path, _)| path);
    format!("{} {path}", verb.as_str())
}

/// `?k=v&...` with the values percent-encoded (OData filters hold spaces and quotes). Keys are
/// OData system options (`$filter`, `$top`, `api-version`), which need no encoding.
pub fn encode_query(pairs: &[(&str, &str)]) -> String {
    let encoded: Vec<String> =
        pairs.iter().map(|(key, value)| format!("{key}={}", percent_encode(value, b",()/:@$"))).collect();
    if encoded.is_empty() { String::new() } else { format!("?{}", encoded.join("&")) }
}

/// One path segment (a resource group name, an id), percent-encoded so it stays one segment.
pub fn encode_path_segment(segment: &str) -> String {
    percent_encode(segment, b"()")
}

fn percent_encode(value: &str, also_literal: &[u8]) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) || also_literal.contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_are_percent_encoded() {
        assert_eq!(
            encode_query(&[("$filter", "roleDefinitionId eq 'a-b'"), ("$top", "999")]),
            "?$filter=roleDefinitionId%20eq%20%27a-b%27&$top=999"
        );
    }

    #[test]
    fn call_label_keeps_method_and_path_only() {
        assert_eq!(
            call_label(Verb::Get, "https://graph.microsoft.com/v1.0/groups/g/owners?$top=5"),
            "GET /v1.0/groups/g/owners"
        );
    }

    #[test]
    fn fractional_retry_after_becomes_milliseconds() {
        assert_eq!(parse_retry_after("2.128"), Some(2128));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
