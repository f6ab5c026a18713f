//! Probes that try to make the host hold memory outside the guest's own linear memory, or copy
//! more out of it than it holds (issue 10, finding 5). Each reports how far it got; the host must
//! stop it first, with an error naming the budget.
//!
//! - `header-tables`: builds `count` header tables (`fields`) and holds them, each with `values`
//!   headers of 1 KiB.
//! - `request-bodies`: starts `count` requests to `target`, each streaming a body of `size`
//!   bytes, and holds them all before reading any answer.
//! - `held-responses`: GETs `target` `count` times and holds every answer unread.
//! - `aliased-page`: returns `count` resources whose profiles are all the same `size`-byte string
//!   in guest memory (the canonical ABI lets list elements alias).
//! - `huge-notice`, `huge-error`: a notice, or an error, of `size` bytes.

use serde_json::json;
use waki::bindings::wasi::http::outgoing_handler;
use waki::bindings::wasi::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};

use super::{ConfigValue, ConnectorError, Resource, ResourcePage, report, value};
use crate::idgov::connector::types::{Notice, NoticeKind};

fn number(config: &[ConfigValue], key: &str, default: usize) -> usize {
    value(config, key).and_then(|text| text.parse().ok()).unwrap_or(default)
}

fn target(config: &[ConfigValue]) -> Result<&str, ConnectorError> {
    value(config, "target").ok_or_else(|| ConnectorError::InvalidConfig("target is required".into()))
}

/// Runs the memory probe `name`, or `None` when there is none of that name.
pub fn attack(name: &str, config: &[ConfigValue]) -> Option<Result<ResourcePage, ConnectorError>> {
    Some(match name {
        "header-tables" => Ok(header_tables(number(config, "count", 100_000), number(config, "values", 8))),
        "request-bodies" => target(config)
            .and_then(|target| request_bodies(target, number(config, "count", 64), number(config, "size", 4 << 20))),
        "held-responses" => target(config).and_then(|target| held_responses(target, number(config, "count", 1_000))),
        "aliased-page" => Ok(aliased_page(number(config, "count", 100_000), number(config, "size", 8 << 20))),
        "huge-notice" => {
            let mut page = report("huge-notice", json!({}));
            page.notices.push(Notice {
                kind: NoticeKind::Gap,
                subject: "huge-notice".into(),
                message: "n".repeat(number(config, "size", 1 << 20)),
                missing_permission: None,
            });
            Ok(page)
        }
        "huge-error" => Err(ConnectorError::Transport("e".repeat(number(config, "size", 1 << 20)))),
        _ => return None,
    })
}

fn header_tables(count: usize, values: usize) -> ResourcePage {
    let value = vec![b'v'; 1024];
    let mut tables = Vec::new();
    let mut accepted_bytes = 0usize;
    for _ in 0..count {
        let fields = Fields::new();
        for index in 0..values {
            if fields.append(&format!("x-pad-{index}"), &value).is_err() {
                break;
            }
            accepted_bytes += value.len();
        }
        tables.push(fields);
    }
    report("header-tables", json!({"tables": tables.len(), "accepted_bytes": accepted_bytes}))
}

fn request_bodies(target: &str, count: usize, size: usize) -> Result<ResourcePage, ConnectorError> {
    let (scheme, authority, path) = split_url(target)?;
    let chunk = vec![b'b'; 4096];
    let mut in_flight = Vec::new();
    for _ in 0..count {
        let request = OutgoingRequest::new(Fields::new());
        let _ = request.set_method(&Method::Get);
        let _ = request.set_scheme(Some(&scheme));
        let _ = request.set_authority(Some(authority));
        let _ = request.set_path_with_query(Some(path));
        let body = request.body().map_err(|()| ConnectorError::Transport("no request body".into()))?;
        let response = outgoing_handler::handle(request, None)
            .map_err(|error| ConnectorError::Transport(format!("refused at once: {error:?}")))?;
        let stream = body.write().map_err(|()| ConnectorError::Transport("no body stream".into()))?;
        let mut written = 0;
        while written < size {
            let part = &chunk[..chunk.len().min(size - written)];
            if stream.blocking_write_and_flush(part).is_err() {
                break;
            }
            written += part.len();
        }
        drop(stream);
        let _ = OutgoingBody::finish(body, None);
        in_flight.push(response);
    }
    let answered = in_flight
        .iter()
        .map(|response| {
            response.subscribe().block();
            matches!(response.get(), Some(Ok(Ok(_))))
        })
        .filter(|answered| *answered)
        .count();
    Ok(report("request-bodies", json!({"sent": in_flight.len(), "answered": answered})))
}

fn split_url(url: &str) -> Result<(Scheme, &str, &str), ConnectorError> {
    let (scheme, rest) =
        url.split_once("://").ok_or_else(|| ConnectorError::InvalidConfig("target: no scheme".into()))?;
    let scheme = if scheme == "https" { Scheme::Https } else { Scheme::Http };
    let (authority, path) = rest.find('/').map_or((rest, "/"), |at| rest.split_at(at));
    Ok((scheme, authority, path))
}

fn held_responses(target: &str, count: usize) -> Result<ResourcePage, ConnectorError> {
    let mut held = Vec::new();
    for _ in 0..count {
        match waki::Client::new().get(target).send() {
            Ok(response) => held.push(response),
            Err(error) => return Err(ConnectorError::Transport(format!("after {} answers: {error:#}", held.len()))),
        }
    }
    Ok(report("held-responses", json!({"held": held.len()})))
}

fn aliased_page(count: usize, size: usize) -> ResourcePage {
    let profile = std::mem::ManuallyDrop::new(vec![b' '; size]);
    let items = (0..count)
        .map(|index| Resource {
            resource_type: "aliased-page".into(),
            id: format!("item-{index}"),
            display_name: String::new(),
            parent: None,
            // SAFETY (of the guest, not the host): every profile is the same leaked buffer of
            // spaces (valid UTF-8); it is handed to the host and never used again here.
            profile_json: unsafe { String::from_raw_parts(profile.as_ptr().cast_mut(), size, size) },
        })
        .collect();
    ResourcePage { items, next_page_token: None, notices: vec![] }
}
