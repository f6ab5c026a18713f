//! Requests grouped the way a reader asks "what is left?": by service, method and path, with
//! object ids and resource-group names replaced by placeholders and the query dropped.

use std::collections::HashMap;

use fake_azure::{LoggedRequest, Service};

/// `Graph GET /v1.0/groups/{id}/members`, `ARM GET /subscriptions/{id}/resourceGroups`, ...
pub fn route_of(request: &LoggedRequest) -> String {
    let service = match request.service {
        Service::Login => "login",
        Service::Graph => "Graph",
        Service::Arm => "ARM",
    };
    let path = request.path_and_query.split('?').next().unwrap_or_default();
    let mut segments = Vec::new();
    let mut previous = "";
    for segment in path.split('/') {
        let placeholder = if is_guid(segment) {
            "{id}"
        } else if ["resourcegroups", "managementgroups"].contains(&previous.to_ascii_lowercase().as_str()) {
            "{name}"
        } else {
            segment
        };
        segments.push(placeholder);
        previous = segment;
    }
    format!("{service} {} {}", request.method, segments.join("/"))
}

fn is_guid(segment: &str) -> bool {
    segment.len() == 36
        && segment.char_indices().all(|(index, c)| match index {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Requests per route, most requested first.
pub fn breakdown(requests: &[LoggedRequest]) -> Vec<(String, usize)> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for request in requests {
        *counts.entry(route_of(request)).or_default() += 1;
    }
    let mut sorted: Vec<(String, usize)> = counts.into_iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    sorted
}

/// The exact request: method and path with query. The fake's page tokens depend only on the
/// server and the position, so a page asked for twice has the same URL twice.
pub fn url_of(request: &LoggedRequest) -> String {
    format!("{} {}", request.method, request.path_and_query)
}

/// How often each exact request was made.
pub fn url_counts<'a>(requests: impl IntoIterator<Item = &'a LoggedRequest>) -> HashMap<String, i64> {
    let mut counts: HashMap<String, i64> = HashMap::new();
    for request in requests {
        *counts.entry(url_of(request)).or_default() += 1;
    }
    counts
}
