//! The record of every request the fake received, for tests that assert on traffic.

use std::net::SocketAddr;
use std::sync::Mutex;

use axum::http::{HeaderMap, Version};

use crate::server::lock;

/// Which of the three listeners received a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Login,
    Graph,
    Arm,
}

#[derive(Clone, Debug)]
pub struct LoggedRequest {
    pub service: Service,
    pub method: String,
    /// Exactly as received on the request line (still percent-encoded).
    pub path_and_query: String,
    pub authorization: Option<String>,
    pub headers: Vec<(String, String)>,
    pub status: u16,
    /// The HTTP version the request arrived in (HTTP/2 only over TLS, where ALPN offers it).
    pub version: Version,
    /// The address the request's connection came from.
    pub peer: Option<SocketAddr>,
}

/// How a request arrived, as the listener saw its connection.
#[derive(Clone, Copy, Debug)]
pub struct Arrival {
    pub version: Version,
    pub peer: Option<SocketAddr>,
}

impl LoggedRequest {
    pub fn new(
        service: Service,
        method: &str,
        path_and_query: &str,
        headers: &HeaderMap,
        status: u16,
        arrival: Arrival,
    ) -> Self {
        let text = |value: &axum::http::HeaderValue| String::from_utf8_lossy(value.as_bytes()).into_owned();
        LoggedRequest {
            service,
            method: method.to_owned(),
            path_and_query: path_and_query.to_owned(),
            authorization: headers.get("authorization").map(text),
            headers: headers.iter().map(|(name, value)| (name.as_str().to_owned(), text(value))).collect(),
            status,
            version: arrival.version,
            peer: arrival.peer,
        }
    }
}

#[derive(Default)]
pub struct RequestLog {
    entries: Mutex<Vec<LoggedRequest>>,
}

impl RequestLog {
    pub fn record(&self, request: LoggedRequest) {
        lock(&self.entries).push(request);
    }

    pub fn snapshot(&self) -> Vec<LoggedRequest> {
        lock(&self.entries).clone()
    }
}
