//! Reading a log as a change feed (`application_changes` reads the directory audit log): the
//! opaque tokens, and the times they carry.
//!
//! A round of changes starts at the service's clock (the `Date` header of its first answer,
//! not the component's clock, so skew between the machine and Azure cannot open a hole) and
//! reads the log from [`LOG_LOOKBACK`] before the previous round began: log entries are written
//! minutes after the change they record, and reading one twice only reads its object again.

use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::contract::{ConnectorError, UpstreamError};
use crate::http::ApiResponse;
use crate::wasi_support::rfc3339;

/// How far before the previous round's start a log is read again.
pub const LOG_LOOKBACK: Duration = Duration::from_secs(60 * 60);

/// When a round that starts with `response` began, by the service's clock (RFC 3339).
pub fn began_at(response: &ApiResponse) -> String {
    rfc3339(response.date.unwrap_or_else(SystemTime::now))
}

/// Where the log is read from: `LOG_LOOKBACK` before `previous_began`.
pub fn read_since(previous_began: SystemTime) -> SystemTime {
    previous_began.checked_sub(LOG_LOOKBACK).unwrap_or(SystemTime::UNIX_EPOCH)
}

/// True when the previous round began longer before this one than the log keeps events:
/// entries may be gone, so everything the log would tell is read again.
pub fn beyond_retention(previous_began: &str, began: &str, retention: Duration) -> Result<bool, ConnectorError> {
    let age = parse_time(began)?.duration_since(parse_time(previous_began)?).unwrap_or_default();
    Ok(age > retention)
}

/// True when the log refused the read (403); says in the log what is read instead (`instead`)
/// and what would avoid it (`remedy`). Any other answer is the caller's to handle.
pub fn log_refused(response: &ApiResponse, instead: &str, remedy: &str) -> bool {
    if response.status != 403 {
        return false;
    }
    let refused = response.upstream_error();
    eprintln!("azure-connector: {} refused ({} {}): {instead}; {remedy}", response.call, refused.code, refused.message);
    true
}

pub fn parse_time(text: &str) -> Result<SystemTime, ConnectorError> {
    humantime::parse_rfc3339(text).map_err(|error| {
        ConnectorError::InvalidConfig(format!(
            "delta-token holds an unreadable time '{text}' ({error}): pass the token of the previous sync, or none to start over"
        ))
    })
}

pub fn encode<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// A delta token this connector issued for `what`. One it cannot read (another version's) is
/// answered as an expired one (410), so the host syncs in full instead of failing.
pub fn decode_delta_token<T: DeserializeOwned>(token: &str, what: &str) -> Result<T, ConnectorError> {
    serde_json::from_str(token).map_err(|_| {
        ConnectorError::Upstream(UpstreamError {
            status: 410,
            code: "syncStateNotFound".to_owned(),
            message: format!("the delta token of {what} is not one this connector version issues: sync in full"),
            request_id: None,
        })
    })
}

pub fn decode_page_token<T: DeserializeOwned>(token: &str) -> Result<T, ConnectorError> {
    serde_json::from_str(token).map_err(|_| {
        ConnectorError::InvalidConfig(
            "page-token was not issued by this connector: pass next-page-token back verbatim, or none to start over"
                .to_owned(),
        )
    })
}
