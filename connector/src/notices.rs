//! Notices: what a page reports because it is not in its results (a listing that was
//! refused, an object that is not a principal), so nothing goes missing silently.

use crate::contract::{ConnectorError, Notice, NoticeKind};

pub fn gap(subject: String, message: String, missing_permission: Option<String>) -> Notice {
    Notice { kind: NoticeKind::Gap, subject, message, missing_permission }
}

/// Turns a 403 on a sub-listing (grants or entitlements of one resource) into a gap notice;
/// any other error still fails the call. `subject` is the call, e.g. "GET /v1.0/groups/x/owners".
pub fn gap_if_forbidden(error: ConnectorError, subject: String) -> Result<Notice, ConnectorError> {
    match error {
        ConnectorError::Forbidden(forbidden) => Ok(gap(
            subject,
            format!(
                "listing refused ({} {}): its results are missing",
                forbidden.upstream.code, forbidden.upstream.message
            ),
            forbidden.missing_permission,
        )),
        other => Err(other),
    }
}

pub fn unsupported_principal(subject: String, message: String) -> Notice {
    Notice { kind: NoticeKind::UnsupportedPrincipal, subject, message, missing_permission: None }
}
