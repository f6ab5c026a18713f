//! Attacks on what the host lets a connector reach and send (issue 10, findings 1 and 3).
//!
//! - `request`: sends `method` (default GET; any method, e.g. POST, TRACE, PROPFIND) to `target`,
//!   with the headers of `headers` (one `Name: value` per line) and `body`; reports the status
//!   and the length of the answer, or the error. A hostile connector would write this way
//!   during a sync, or hide a write in a GET behind `X-HTTP-Method-Override`.
//! - Built with the feature `hostile-endpoints`, `metadata` also asks for an endpoint the host
//!   does not know ("keyvault": a token for another audience than Graph).
//! - `grant` ends without an answer (finding 4, audit): entitlement `trap` traps, `spin` runs
//!   past the deadline, `add-member-then-trap:<group id>` adds the principal to that group
//!   through `graph-url` and then traps, so the change is made and the call never answers.

use serde_json::json;

use crate::idgov::connector::types::{
    ConfigValue, ConnectorError, Endpoint, ProvisionResult, ResourcePage, ResourceRef,
};
use crate::{report, value};

pub fn endpoints() -> Vec<Endpoint> {
    let mut endpoints = vec![Endpoint { name: "graph".into(), description: "the probes' fetch targets".into() }];
    if cfg!(feature = "hostile-endpoints") {
        endpoints.push(Endpoint { name: "keyvault".into(), description: "secrets of the operator's vaults".into() });
    }
    endpoints
}

pub fn request(config: &[ConfigValue]) -> Result<ResourcePage, ConnectorError> {
    let target = value(config, "target").ok_or_else(|| ConnectorError::InvalidConfig("target is required".into()))?;
    let method = match value(config, "method").unwrap_or("GET") {
        "GET" => waki::Method::Get,
        "HEAD" => waki::Method::Head,
        "POST" => waki::Method::Post,
        "PUT" => waki::Method::Put,
        "PATCH" => waki::Method::Patch,
        "DELETE" => waki::Method::Delete,
        "OPTIONS" => waki::Method::Options,
        "TRACE" => waki::Method::Trace,
        "CONNECT" => waki::Method::Connect,
        other => waki::Method::Other(other.to_owned()),
    };
    let mut request = waki::Client::new().request(method, target);
    for line in value(config, "headers").unwrap_or_default().lines().filter(|line| !line.trim().is_empty()) {
        let (name, header) = line
            .split_once(':')
            .ok_or_else(|| ConnectorError::InvalidConfig(format!("headers: {line:?} is not `Name: value`")))?;
        let name = waki::header::HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|error| ConnectorError::InvalidConfig(format!("headers: {error}")))?;
        request = request.header(name, header.trim().to_owned());
    }
    if let Some(body) = value(config, "body") {
        request = request.body(body.as_bytes().to_vec());
    }
    match request.send() {
        Ok(response) => {
            let status = response.status_code();
            let body = response.body().unwrap_or_default();
            Ok(report("request", json!({"status": status, "body_length": body.len()})))
        }
        Err(error) => Err(ConnectorError::Transport(format!("{error:#}"))),
    }
}

pub fn grant(
    config: &[ConfigValue],
    entitlement_id: &str,
    principal: &ResourceRef,
) -> Result<ProvisionResult, ConnectorError> {
    match entitlement_id.split_once(':') {
        None if entitlement_id == "trap" => panic!("the probe traps during a grant"),
        None if entitlement_id == "spin" => {
            let mut counter: u64 = 0;
            loop {
                counter = std::hint::black_box(counter.wrapping_add(1));
            }
        }
        Some(("add-member-then-trap", group)) => {
            let graph = value(config, "graph-url")
                .ok_or_else(|| ConnectorError::InvalidConfig("graph-url is required".into()))?;
            let body = json!({"@odata.id": format!("{graph}/v1.0/directoryObjects/{}", principal.id)}).to_string();
            let response = waki::Client::new()
                .post(&format!("{graph}/v1.0/groups/{group}/members/$ref"))
                .header("Content-Type", "application/json")
                .body(body.into_bytes())
                .send()
                .map_err(|error| ConnectorError::Transport(format!("{error:#}")))?;
            panic!("the probe traps after its write answered {}", response.status_code())
        }
        _ => Err(ConnectorError::Unsupported("probe grants nothing".into())),
    }
}
