//! One-line descriptions of the errors a connector returns, for logs and exit messages. Every
//! text in them comes from the component (or from Azure through it) and is escaped, so it
//! stays one line and cannot drive a terminal.

use crate::log_text::escaped;
use crate::sandbox::{ConnectorError, UpstreamError};

fn upstream(error: &UpstreamError) -> String {
    let request = error.request_id.as_deref().map(|id| format!(", request id {}", escaped(id))).unwrap_or_default();
    format!("{} {}: {}{request}", error.status, escaped(&error.code), escaped(&error.message))
}

pub fn describe(error: &ConnectorError) -> String {
    match error {
        ConnectorError::InvalidConfig(text) => format!("invalid configuration: {}", escaped(text)),
        ConnectorError::Unauthorized(error) => {
            format!(
                "Azure did not accept the credentials ({}): check the app registration's client id, secret and tenant",
                upstream(error)
            )
        }
        ConnectorError::Forbidden(forbidden) => match &forbidden.missing_permission {
            Some(permission) => format!(
                "Azure refused the call ({}): grant the app registration {}",
                upstream(&forbidden.upstream),
                escaped(permission)
            ),
            None => format!("Azure refused the call ({})", upstream(&forbidden.upstream)),
        },
        ConnectorError::NotFound(error) => format!("not found ({})", upstream(error)),
        ConnectorError::Throttled(throttled) => {
            format!(
                "still throttled by Azure after retries ({}): lower the request rate or retry later",
                upstream(&throttled.upstream)
            )
        }
        ConnectorError::Upstream(error) => format!("Azure answered an error ({})", upstream(error)),
        ConnectorError::Transport(text) => format!("the request did not complete: {}", escaped(text)),
        ConnectorError::InvalidResponse(text) => format!("Azure's answer could not be understood: {}", escaped(text)),
        ConnectorError::Unsupported(text) => format!("not supported: {}", escaped(text)),
    }
}
