//! One-line descriptions of the errors a connector returns, for logs and exit messages.

use crate::sandbox::{ConnectorError, UpstreamError};

fn upstream(error: &UpstreamError) -> String {
    let request = error.request_id.as_deref().map(|id| format!(", request id {id}")).unwrap_or_default();
    format!("{} {}: {}{request}", error.status, error.code, error.message)
}

pub fn describe(error: &ConnectorError) -> String {
    match error {
        ConnectorError::InvalidConfig(text) => format!("invalid configuration: {text}"),
        ConnectorError::Unauthorized(error) => {
            format!(
                "Azure did not accept the credentials ({}): check the app registration's client id, secret and tenant",
                upstream(error)
            )
        }
        ConnectorError::Forbidden(forbidden) => match &forbidden.missing_permission {
            Some(permission) => format!(
                "Azure refused the call ({}): grant the app registration {permission}",
                upstream(&forbidden.upstream)
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
        ConnectorError::Transport(text) => format!("the request did not complete: {text}"),
        ConnectorError::InvalidResponse(text) => format!("Azure's answer could not be understood: {text}"),
        ConnectorError::Unsupported(text) => format!("not supported: {text}"),
    }
}
