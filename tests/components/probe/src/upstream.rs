//! `upstream`: reads the configured `target` `count` times (default 4), as a connector paging
//! through a listing would, and fails the way the Azure connector does when an answer is still
//! throttled after the host's retries. Pointed at a server that answers with hostile
//! `x-ms-resource-unit` and `Retry-After` values, it checks the host survives them and the
//! tenant gets a clear error.

use crate::idgov::connector::types::{ConfigValue, ConnectorError, ResourcePage, ThrottledError, UpstreamError};
use crate::{report, value};

pub fn read_repeatedly(config: &[ConfigValue]) -> Result<ResourcePage, ConnectorError> {
    let target = value(config, "target").ok_or_else(|| ConnectorError::InvalidConfig("target is required".into()))?;
    let count: usize = value(config, "count").and_then(|text| text.parse().ok()).unwrap_or(4);
    let mut statuses = Vec::new();
    for _ in 0..count {
        let response =
            waki::Client::new().get(target).send().map_err(|error| ConnectorError::Transport(format!("{error:#}")))?;
        let status = response.status_code();
        if status == 429 {
            return Err(ConnectorError::Throttled(ThrottledError {
                upstream: UpstreamError {
                    status,
                    code: "TooManyRequests".into(),
                    message: "the upstream kept throttling".into(),
                    request_id: None,
                },
                retry_after_ms: None,
            }));
        }
        statuses.push(status);
    }
    Ok(report("upstream", serde_json::json!({ "statuses": statuses })))
}
