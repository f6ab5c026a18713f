//! `GET /subscriptions/{id}/providers/Microsoft.Insights/eventtypes/management/values`: one
//! subscription's Activity Log, newest first, in pages linked by an absolute `nextLink`.
//!
//! As Azure Monitor requires, `$filter` must bound `eventTimestamp` on both sides (`ge` and `le`,
//! quoted, at most 90 days apart); it may also narrow to one `resourceProvider` or
//! `resourceGroupName`. `$select` keeps only the named top-level properties. Anything else is
//! refused with a 400 that names it, so a client never mistakes an ignored option for an applied one.

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use super::EventFilter;
use crate::arm::error::{ArmError, check_api_version};
use crate::arm::scope::Scope;
use crate::arm::{ArmReply, check_scope_exists};
use crate::ids::parse_rfc3339;
use crate::paging::PageCursor;
use crate::request::ApiRequest;
use crate::server::Shared;

const API_VERSIONS: &[&str] = &["2015-04-01"];
const SUPPORTED_OPTIONS: &[&str] = &["$filter", "$select", "$skipToken"];
/// Azure Monitor keeps 90 days of activity and refuses to search a longer span.
const LONGEST_SPAN: Duration = Duration::from_secs(90 * 24 * 3600);
const FILTER_HELP: &str = "The fake serves \"eventTimestamp ge '<RFC 3339>' and eventTimestamp le '<RFC 3339>'\", \
                           optionally followed by \"and resourceProvider eq '<name>'\" or \
                           \"and resourceGroupName eq '<name>'\".";

pub fn management_events(shared: &Shared, request: &ApiRequest, subscription_id: &str) -> Result<ArmReply, ArmError> {
    check_api_version(request, API_VERSIONS)?;
    let query = &request.query;
    if let Some(option) = query
        .names()
        .find(|name| name.starts_with('$') && !SUPPORTED_OPTIONS.iter().any(|s| s.eq_ignore_ascii_case(name)))
    {
        return Err(bad_request(format!(
            "The query option '{option}' is not supported on the activity log by the fake; it serves $filter, \
             $select and $skipToken."
        )));
    }
    check_scope_exists(shared, &Scope::Subscription(subscription_id.to_owned()))?;
    let filter = parse_filter(query.get("$filter"), subscription_id)?;
    let selected = query.get("$select").map(parse_select);
    let collection_key = request.path();
    let cursor = query
        .get("$skipToken")
        .map(|token| {
            shared
                .page_tokens
                .decode(&collection_key, token)
                .ok_or_else(|| bad_request(format!("The skip token '{token}' is not valid.")))
        })
        .transpose()?;
    let page = shared
        .activity_log
        .page(SystemTime::now(), &filter, cursor.map(|cursor| cursor.offset), shared.arm_page_size())
        .ok_or_else(|| bad_request("The skip token is not valid: it names no event."))?;

    let events = page.events.into_iter().map(|event| match &selected {
        Some(names) => select(event, names),
        None => event,
    });
    let mut body = Map::new();
    body.insert("value".into(), Value::Array(events.collect()));
    if let Some(last) = page.continue_after {
        let page_index = cursor.map_or(0, |cursor| cursor.page_index) + 1;
        let token = shared.page_tokens.encode(&collection_key, PageCursor { page_index, offset: last });
        let next_link = format!(
            "{}{collection_key}?{}&$skipToken={}",
            request.public_base(&shared.arm_url),
            query.raw_without("$skipToken"),
            token.replace('\'', "%27")
        );
        body.insert("nextLink".into(), Value::from(next_link));
    }
    Ok(ArmReply::Json(axum::http::StatusCode::OK, Value::Object(body)))
}

/// `eventTimestamp ge '2026-11-27T03:10:00Z' and eventTimestamp le '…' [and resourceProvider eq '…']`.
fn parse_filter(text: Option<&str>, subscription_id: &str) -> Result<EventFilter, ArmError> {
    let text = text.map(str::trim).filter(|text| !text.is_empty()).ok_or_else(|| {
        bad_request(format!("The $filter query parameter is required on the activity log. {FILTER_HELP}"))
    })?;
    let words: Vec<&str> = text.split_whitespace().collect();
    let (mut from, mut to, mut resource_provider, mut resource_group) = (None, None, None, None);
    for clause in words.split(|word| word.eq_ignore_ascii_case("and")) {
        let [property, operator, literal] = clause else {
            return Err(unsupported_clause(clause));
        };
        let value = literal
            .strip_prefix('\'')
            .and_then(|rest| rest.strip_suffix('\''))
            .filter(|value| !value.is_empty())
            .ok_or_else(|| {
                bad_request(format!("The value {literal} in the $filter must be a non-empty single-quoted string."))
            })?;
        let (property, operator) = (property.to_ascii_lowercase(), operator.to_ascii_lowercase());
        let slot = match (property.as_str(), operator.as_str()) {
            ("eventtimestamp", "ge") => Slot::Time(&mut from),
            ("eventtimestamp", "le") => Slot::Time(&mut to),
            ("resourceprovider", "eq") => Slot::Name(&mut resource_provider),
            ("resourcegroupname", "eq") => Slot::Name(&mut resource_group),
            _ => return Err(unsupported_clause(clause)),
        };
        slot.fill(value).map_err(|problem| bad_request(format!("'{}': {problem}", clause.join(" "))))?;
    }
    let missing =
        |bound: &str| bad_request(format!("The $filter must bound eventTimestamp with '{bound}'. {FILTER_HELP}"));
    let from = from.ok_or_else(|| missing("eventTimestamp ge"))?;
    let to = to.ok_or_else(|| missing("eventTimestamp le"))?;
    match to.duration_since(from) {
        Err(_) => {
            Err(bad_request("The $filter's 'eventTimestamp ge' time is later than its 'eventTimestamp le' time."))
        }
        Ok(span) if span > LONGEST_SPAN => Err(bad_request(format!(
            "The $filter spans {}, more than the 90 days the activity log can be searched over at once.",
            humantime::format_duration(Duration::from_secs(span.as_secs()))
        ))),
        Ok(_) => {
            Ok(EventFilter { subscription_id: subscription_id.to_owned(), from, to, resource_provider, resource_group })
        }
    }
}

/// Where one `$filter` clause's value goes; each may be given once.
enum Slot<'a> {
    Time(&'a mut Option<SystemTime>),
    Name(&'a mut Option<String>),
}

impl Slot<'_> {
    fn fill(self, value: &str) -> Result<(), String> {
        let repeated = "it is given twice; give each condition once.".to_owned();
        match self {
            Slot::Time(slot) => {
                let time = parse_rfc3339(value).ok_or_else(|| {
                    format!("'{value}' is not an RFC 3339 time such as 2026-11-27T03:10:00Z or 2026-11-27T03:10:00.1234567Z.")
                })?;
                slot.replace(time).map_or(Ok(()), |_| Err(repeated))
            }
            Slot::Name(slot) => slot.replace(value.to_owned()).map_or(Ok(()), |_| Err(repeated)),
        }
    }
}

fn unsupported_clause(clause: &[&str]) -> ArmError {
    bad_request(format!("The $filter clause '{}' is not supported. {FILTER_HELP}", clause.join(" ")))
}

fn bad_request(message: impl Into<String>) -> ArmError {
    ArmError::bad_request("BadRequest", message)
}

/// `eventName,operationName, status`: the property names, without blanks.
fn parse_select(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|name| !name.is_empty()).map(str::to_owned).collect()
}

/// The event with only the `names` properties (matched in any case, as Azure Monitor does).
fn select(event: Value, names: &[String]) -> Value {
    let Value::Object(properties) = event else {
        return event;
    };
    let kept = properties.into_iter().filter(|(key, _)| names.iter().any(|name| name.eq_ignore_ascii_case(key)));
    Value::Object(kept.collect())
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    const BOTH_BOUNDS: &str = "eventTimestamp ge '2026-11-27T03:10:00Z' and eventTimestamp le '2026-11-28T03:10:00.5Z'";

    #[test]
    fn filter_takes_both_bounds_and_optional_narrowing_in_any_case() {
        let text = format!("{BOTH_BOUNDS} AND ResourceProvider EQ 'Microsoft.Authorization'");
        let filter = parse_filter(Some(&text), "s").expect("a supported filter");
        let start = UNIX_EPOCH + Duration::from_secs(1_795_749_000);
        assert_eq!((filter.from, filter.to), (start, start + Duration::from_millis(86_400_500)));
        assert_eq!(filter.resource_provider.as_deref(), Some("Microsoft.Authorization"));
        assert_eq!(filter.resource_group, None);
    }

    #[test]
    fn filter_names_what_is_wrong() {
        for (filter, named) in [
            ("eventTimestamp ge '2026-11-27T03:10:00Z'", "'eventTimestamp le'"),
            ("eventTimestamp le '2026-11-27T03:10:00Z'", "'eventTimestamp ge'"),
            ("eventTimestamp ge 2026-11-27T03:10:00Z and eventTimestamp le '2026-11-28T00:00:00Z'", "single-quoted"),
            ("eventTimestamp ge '2026-11-27' and eventTimestamp le '2026-11-28T00:00:00Z'", "'2026-11-27'"),
            ("eventTimestamp ge '2026-01-01T00:00:00Z' and eventTimestamp le '2026-06-01T00:00:00Z'", "90 days"),
            ("eventTimestamp ge '2026-11-28T00:00:00Z' and eventTimestamp le '2026-11-27T00:00:00Z'", "later"),
            (&format!("{BOTH_BOUNDS} and status eq 'Succeeded'"), "status eq 'Succeeded'"),
            (&format!("{BOTH_BOUNDS} or resourceProvider eq 'x'"), "or"),
            (&format!("{BOTH_BOUNDS} and eventTimestamp le '2026-11-28T00:00:00Z'"), "twice"),
        ] {
            let error = parse_filter(Some(filter), "s").err().unwrap_or_else(|| panic!("{filter} was accepted"));
            assert_eq!((error.status.as_u16(), error.code), (400, "BadRequest"));
            assert!(error.message.contains(named), "{filter}: {}", error.message);
        }
        assert!(parse_filter(None, "s").is_err_and(|error| error.message.contains("required")));
    }
}
