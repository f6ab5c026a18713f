//! Text a component hands back that the host keeps verbatim: notices (stored in the snapshot,
//! shown by the summary and `export`) and error messages (logged, shown in `serve`'s status).
//! Each is cut to `TEXT_LIMIT` bytes with a marker saying how long it was, so a component cannot
//! fill the operator's logs or a tenant's status with megabytes of text it chose.

use super::{
    ChangePage, ConnectorError, ConnectorMetadata, EntitlementPage, GrantPage, Notice, ProvisionResult, ResourcePage,
    TrackedType, UpstreamError,
};

/// The longest notice or error text the host keeps.
pub const TEXT_LIMIT: usize = 4096;

/// `text` cut to `TEXT_LIMIT` bytes (at a character boundary), with a marker when it was cut.
pub fn capped(mut text: String) -> String {
    if text.len() <= TEXT_LIMIT {
        return text;
    }
    let length = text.len();
    let mut end = TEXT_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(&format!("… [cut by the host: {length} bytes in all]"));
    text
}

/// A result with its kept text cut.
pub trait Capped {
    fn capped(self) -> Self;
}

impl<T: Capped, E: Capped> Capped for Result<T, E> {
    fn capped(self) -> Self {
        self.map(Capped::capped).map_err(Capped::capped)
    }
}

impl Capped for Notice {
    fn capped(self) -> Self {
        Notice {
            subject: capped(self.subject),
            message: capped(self.message),
            missing_permission: self.missing_permission.map(capped),
            ..self
        }
    }
}

fn capped_notices(notices: Vec<Notice>) -> Vec<Notice> {
    notices.into_iter().map(Capped::capped).collect()
}

impl Capped for UpstreamError {
    fn capped(self) -> Self {
        UpstreamError {
            code: capped(self.code),
            message: capped(self.message),
            request_id: self.request_id.map(capped),
            ..self
        }
    }
}

impl Capped for ConnectorError {
    fn capped(self) -> Self {
        match self {
            ConnectorError::InvalidConfig(text) => ConnectorError::InvalidConfig(capped(text)),
            ConnectorError::Unauthorized(upstream) => ConnectorError::Unauthorized(upstream.capped()),
            ConnectorError::Forbidden(mut forbidden) => {
                forbidden.upstream = forbidden.upstream.capped();
                forbidden.missing_permission = forbidden.missing_permission.map(capped);
                ConnectorError::Forbidden(forbidden)
            }
            ConnectorError::NotFound(upstream) => ConnectorError::NotFound(upstream.capped()),
            ConnectorError::Throttled(mut throttled) => {
                throttled.upstream = throttled.upstream.capped();
                ConnectorError::Throttled(throttled)
            }
            ConnectorError::Upstream(upstream) => ConnectorError::Upstream(upstream.capped()),
            ConnectorError::Transport(text) => ConnectorError::Transport(capped(text)),
            ConnectorError::InvalidResponse(text) => ConnectorError::InvalidResponse(capped(text)),
            ConnectorError::Unsupported(text) => ConnectorError::Unsupported(capped(text)),
        }
    }
}

/// Pages: their notices are cut; their items are data, bounded by `PageBudget` instead.
macro_rules! capped_page {
    ($($page:ty),*) => {$(
        impl Capped for $page {
            fn capped(self) -> Self {
                Self { notices: capped_notices(self.notices), ..self }
            }
        }
    )*};
}

capped_page!(ResourcePage, EntitlementPage, GrantPage, ChangePage);

/// Results with no free text the host keeps verbatim.
macro_rules! nothing_to_cap {
    ($($value:ty),*) => {$(
        impl Capped for $value {
            fn capped(self) -> Self {
                self
            }
        }
    )*};
}

nothing_to_cap!((), ConnectorMetadata, ProvisionResult, Vec<TrackedType>);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::NoticeKind;

    #[test]
    fn long_text_is_cut_at_a_character_boundary_with_a_marker() {
        let text = "é".repeat(TEXT_LIMIT);
        let cut = capped(text.clone());
        assert!(cut.len() < TEXT_LIMIT + 64, "{}", cut.len());
        assert!(cut.ends_with(&format!("[cut by the host: {} bytes in all]", text.len())), "{cut}");
        assert!(cut.starts_with(&"é".repeat(TEXT_LIMIT / 2)));
    }

    #[test]
    fn short_text_is_kept_as_it_is() {
        assert_eq!(capped("forbidden".into()), "forbidden");
    }

    #[test]
    fn a_pages_notices_and_an_errors_text_are_cut() {
        let notice = Notice {
            kind: NoticeKind::Gap,
            subject: "s".repeat(TEXT_LIMIT * 2),
            message: "m".repeat(TEXT_LIMIT * 2),
            missing_permission: None,
        };
        let page = ResourcePage { items: vec![], next_page_token: None, notices: vec![notice] }.capped();
        assert!(page.notices[0].subject.len() < TEXT_LIMIT + 64 && page.notices[0].message.len() < TEXT_LIMIT + 64);
        let error = ConnectorError::Transport("t".repeat(TEXT_LIMIT * 100)).capped();
        assert!(matches!(error, ConnectorError::Transport(text) if text.contains("cut by the host")));
    }
}
