//! A connector component for tests of the sandbox, not of Azure. Each resource type is one
//! probe; `list-resources` runs it and reports what the sandbox allowed, as a resource whose
//! profile is JSON. A hostile component would do the same things without reporting them.
//!
//! - `fetch`: GET the configured `target` URL, optionally with header `header-name: header-value`;
//!   reports the status, the response headers and the body length, or the error.
//! - `environment`: reports environment variables, arguments and what reading files gives.
//! - `spin`: loops forever (the host's deadline must stop it).
//! - `allocate`: grows memory until it fails (the host's memory limit must stop it).
//! - `huge-page`: returns a page with `count` resources (the host must bound what it accepts).
//! - `upstream` (attack only): reads `target` repeatedly, failing when still throttled (`upstream.rs`).
//! - `request` (no resource type of its own: call it by name or through `attack`) and the
//!   endpoints asked for: see `trust`.
//!
//! With the configuration key `attack` set to a probe's name, every `list-resources` call runs
//! that probe whatever type it asks for: a hostile connector for a whole sync (`serve` tests).

wit_bindgen::generate!({ path: "../../../wit", world: "connector-component" });

mod listing;
mod memory;
mod upstream;

use exports::idgov::connector::connector::Guest;
use idgov::connector::types::{
    Capabilities, ConfigValue, ConnectorError, ConnectorMetadata, EntitlementPage, GrantPage, ProvisionResult,
    Resource, ResourcePage, ResourceRef, ResourceType,
};
use serde_json::json;

mod trust;

struct Probe;

const PROBES: [&str; 5] = ["fetch", "environment", "spin", "allocate", "huge-page"];

fn value<'a>(config: &'a [ConfigValue], key: &str) -> Option<&'a str> {
    config.iter().find(|entry| entry.key == key).map(|entry| entry.value.as_str())
}

fn report(kind: &str, profile: serde_json::Value) -> ResourcePage {
    ResourcePage {
        items: vec![Resource {
            resource_type: kind.to_owned(),
            id: kind.to_owned(),
            display_name: kind.to_owned(),
            parent: None,
            profile_json: profile.to_string(),
        }],
        next_page_token: None,
        notices: vec![],
    }
}

fn fetch(config: &[ConfigValue]) -> Result<ResourcePage, ConnectorError> {
    let target = value(config, "target").ok_or_else(|| ConnectorError::InvalidConfig("target is required".into()))?;
    let mut request = waki::Client::new().get(target);
    if let (Some(name), Some(header)) = (value(config, "header-name"), value(config, "header-value")) {
        let name = waki::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|error| ConnectorError::InvalidConfig(format!("header-name: {error}")))?;
        request = request.header(name, header.to_owned());
    }
    match request.send() {
        Ok(response) => {
            let status = response.status_code();
            let headers: Vec<String> = response
                .headers()
                .iter()
                .map(|(name, value)| format!("{}: {}", name, value.to_str().unwrap_or("<binary>")))
                .collect();
            let body = response.body().unwrap_or_default();
            Ok(report("fetch", json!({"status": status, "headers": headers, "body_length": body.len()})))
        }
        Err(error) => Err(ConnectorError::Transport(format!("{error:#}"))),
    }
}

fn environment() -> ResourcePage {
    let variables: Vec<String> = std::env::vars().map(|(key, value)| format!("{key}={value}")).collect();
    let arguments: Vec<String> = std::env::args().collect();
    let files: Vec<String> = ["/", ".", "/etc/passwd", "/proc/self/environ"]
        .iter()
        .map(|path| match std::fs::read_dir(path).map(|_| ()).or_else(|_| std::fs::read(path).map(|_| ())) {
            Ok(()) => format!("{path}: readable"),
            Err(error) => format!("{path}: {error}"),
        })
        .collect();
    report("environment", json!({"variables": variables, "arguments": arguments, "files": files}))
}

fn allocate() -> ResourcePage {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = Vec::new();
        if block.try_reserve_exact(16 * 1024 * 1024).is_err() {
            return report("allocate", json!({"allocated_mib": hoard.len() * 16}));
        }
        block.resize(16 * 1024 * 1024, 1);
        hoard.push(block);
    }
}

fn huge_page(config: &[ConfigValue]) -> ResourcePage {
    let count: usize = value(config, "count").and_then(|text| text.parse().ok()).unwrap_or(1_000_000);
    let items = (0..count)
        .map(|index| Resource {
            resource_type: "huge-page".into(),
            id: format!("item-{index}"),
            display_name: "x".repeat(100),
            parent: None,
            profile_json: "{}".into(),
        })
        .collect();
    ResourcePage { items, next_page_token: None, notices: vec![] }
}

impl Guest for Probe {
    fn metadata() -> ConnectorMetadata {
        ConnectorMetadata {
            name: "probe".into(),
            version: "0.1.0".into(),
            description: "sandbox probes for tests".into(),
            resource_types: PROBES
                .iter()
                .map(|id| ResourceType {
                    id: id.to_string(),
                    display_name: id.to_string(),
                    capabilities: Capabilities::SYNC,
                    is_principal: false,
                    listed_under: None,
                })
                .collect(),
            config_fields: vec![],
            endpoints: trust::endpoints(),
        }
    }

    fn validate_config(_config: Vec<ConfigValue>) -> Result<(), ConnectorError> {
        Ok(())
    }

    fn list_resources(
        config: Vec<ConfigValue>,
        resource_type: String,
        _parent: Option<ResourceRef>,
        page_token: Option<String>,
    ) -> Result<ResourcePage, ConnectorError> {
        if let Some(page) = listing::resources(&config, &resource_type, page_token.as_deref()) {
            return Ok(page);
        }
        let probe = value(&config, "attack").unwrap_or(&resource_type).to_owned();
        match probe.as_str() {
            "fetch" => fetch(&config),
            "environment" => Ok(environment()),
            "spin" => {
                let mut counter: u64 = 0;
                loop {
                    counter = std::hint::black_box(counter.wrapping_add(1));
                }
            }
            "allocate" => Ok(allocate()),
            "huge-page" => Ok(huge_page(&config)),
            "upstream" => upstream::read_repeatedly(&config),
            "request" => trust::request(&config),
            other => memory::attack(other, &config)
                .unwrap_or_else(|| Err(ConnectorError::Unsupported(format!("no probe {other}")))),
        }
    }

    fn list_entitlements(
        config: Vec<ConfigValue>,
        of: Resource,
        _: Option<String>,
    ) -> Result<EntitlementPage, ConnectorError> {
        Ok(listing::entitlements(&config, &of).unwrap_or(EntitlementPage {
            items: vec![],
            next_page_token: None,
            notices: vec![],
        }))
    }

    fn list_grants(config: Vec<ConfigValue>, of: Resource, _: Option<String>) -> Result<GrantPage, ConnectorError> {
        Ok(listing::grants(&config, &of).unwrap_or(GrantPage { items: vec![], next_page_token: None, notices: vec![] }))
    }

    fn grant(
        config: Vec<ConfigValue>,
        entitlement: String,
        principal: ResourceRef,
    ) -> Result<ProvisionResult, ConnectorError> {
        trust::grant(&config, &entitlement, &principal)
    }

    fn revoke(_: Vec<ConfigValue>, _: String, _: ResourceRef) -> Result<ProvisionResult, ConnectorError> {
        Err(ConnectorError::Unsupported("probe revokes nothing".into()))
    }
}

export!(Probe);
