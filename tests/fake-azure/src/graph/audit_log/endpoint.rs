//! `GET /auditLogs/directoryAudits`: the directory audit log, newest first, in pages linked by
//! `@odata.nextLink`.
//!
//! Only what a change feed needs is served: `$filter` on `activityDateTime` (`ge`, `le`, joined
//! by `and`), `$top` and `$skiptoken`. Any other query option or filter is refused with a 400
//! that names it, so a client never mistakes an ignored option for an applied one.

use std::time::SystemTime;

use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::TimeRange;
use crate::graph::collection::page_size;
use crate::graph::error::GraphError;
use crate::graph::{GraphCall, GraphReply};
use crate::ids::parse_rfc3339;
use crate::paging::PageCursor;

const SUPPORTED_OPTIONS: &[&str] = &["$filter", "$top", "$skiptoken"];
const FILTER_HELP: &str = "The fake filters directoryAudits only with 'activityDateTime ge <DateTimeOffset>' and \
                           'activityDateTime le <DateTimeOffset>', joined by 'and'.";

pub fn directory_audits(call: &GraphCall) -> Result<GraphReply, GraphError> {
    let query = &call.request.query;
    if let Some(option) = query
        .names()
        .find(|name| name.starts_with('$') && !SUPPORTED_OPTIONS.iter().any(|s| s.eq_ignore_ascii_case(name)))
    {
        return Err(GraphError::bad_request(format!(
            "Query option '{option}' is not supported on directoryAudits by the fake; it serves $filter, $top and $skiptoken."
        )));
    }
    let range = query.get("$filter").map(parse_filter).transpose()?.unwrap_or_default();
    let top = page_size(call)?;
    let collection_key = call.request.path();
    let cursor = query
        .get("$skiptoken")
        .map(|token| {
            call.shared
                .page_tokens
                .decode(&collection_key, token)
                .ok_or_else(|| GraphError::bad_request(format!("Invalid skip token '{token}'.")))
        })
        .transpose()?;
    let invalid_token = || GraphError::bad_request("Invalid skip token: it names no audit event.");
    let page = call
        .shared
        .audit_log
        .page(SystemTime::now(), range, cursor.map(|cursor| cursor.offset), top)
        .ok_or_else(invalid_token)?;

    let mut body = Map::new();
    body.insert("@odata.context".into(), Value::from(format!("{}#auditLogs/directoryAudits", call.metadata_url())));
    if let Some(last) = page.continue_after {
        let page_index = cursor.map_or(0, |cursor| cursor.page_index) + 1;
        body.insert("@odata.nextLink".into(), Value::from(call.next_link(PageCursor { page_index, offset: last })));
    }
    body.insert("value".into(), Value::Array(page.events));
    Ok(GraphReply::ok(Value::Object(body)))
}

/// `activityDateTime ge 2026-11-27T03:10:00Z and activityDateTime le ...`: unquoted OData
/// `DateTimeOffset` literals. Repeated bounds narrow the range.
pub fn parse_filter(text: &str) -> Result<TimeRange, GraphError> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() {
        return Err(invalid_filter(format!("the filter is empty. {FILTER_HELP}")));
    }
    let mut range = TimeRange::default();
    for clause in words.split(|word| word.eq_ignore_ascii_case("and")) {
        let [property, operator, literal] = clause else {
            return Err(unsupported_clause(clause));
        };
        if !property.eq_ignore_ascii_case("activityDateTime") {
            return Err(unsupported_clause(clause));
        }
        let bound = parse_rfc3339(literal).ok_or_else(|| {
            invalid_filter(format!(
                "'{literal}' is not a DateTimeOffset literal; write an unquoted RFC 3339 timestamp such as \
                 2026-11-27T03:10:00Z."
            ))
        })?;
        match operator.to_ascii_lowercase().as_str() {
            "ge" => range.from = Some(range.from.map_or(bound, |from| from.max(bound))),
            "le" => range.to = Some(range.to.map_or(bound, |to| to.min(bound))),
            _ => return Err(unsupported_clause(clause)),
        }
    }
    Ok(range)
}

fn unsupported_clause(clause: &[&str]) -> GraphError {
    invalid_filter(format!("'{}' is not supported. {FILTER_HELP}", clause.join(" ")))
}

fn invalid_filter(reason: String) -> GraphError {
    GraphError::new(StatusCode::BAD_REQUEST, "BadRequest", format!("Invalid filter clause: {reason}"))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn filter_takes_both_bounds_in_any_case() {
        let range =
            parse_filter("activityDateTime ge 2026-11-27T03:10:00Z AND ActivityDateTime le 2026-11-27T03:10:01.5Z")
                .expect("a supported filter");
        let start = UNIX_EPOCH + Duration::from_secs(1_795_749_000);
        assert_eq!(range, TimeRange { from: Some(start), to: Some(start + Duration::from_millis(1500)) });
    }

    #[test]
    fn filter_names_what_it_does_not_support() {
        for (filter, named) in [
            ("activityDisplayName eq 'Add owner to service principal'", "activityDisplayName eq"),
            ("activityDateTime gt 2026-11-27T03:10:00Z", "activityDateTime gt"),
            ("activityDateTime ge 2026-11-27T03:10:00Z or activityDateTime le 2026-11-28T00:00:00Z", "or"),
            ("activityDateTime ge '2026-11-27T03:10:00Z'", "'2026-11-27T03:10:00Z'"),
        ] {
            let error = parse_filter(filter).expect_err(filter);
            assert_eq!(error.status, StatusCode::BAD_REQUEST);
            assert!(error.message.contains(named), "{filter}: {}", error.message);
        }
    }
}
