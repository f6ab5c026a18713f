//! The tenants file (`tenants.toml`): which tenants one `serve` process runs, and how.
//!
//! Parsed strictly: an unknown key is an error naming the tenant and the key, because a
//! misspelt `provisioning` silently left at its default is exactly the mistake an operator
//! cannot see. Secrets are refused: the file says where to read them, never what they are.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use serde::Deserialize;

use super::secrets::{CredentialSources, ValueSource};
use crate::cloud::{AzureCloud, AzureEndpoints, EndpointOverrides, parse_base_url};
use crate::memory_budget::{DEFAULT_TENANT_BUDGET_BYTES, MIB};
use crate::outbound::gateway::OutboundCaps;
use crate::sandbox::{ConfigValue, TenantCallLimits};

/// Keys of the connector configuration the host sets itself from the tenant's settings.
const HOST_SET_OPTIONS: [&str; 5] = ["graph-url", "arm-url", "mailbox-settings", "skip-ad-groups", "page-size"];

/// Keys that once named token scopes: a scope comes only from the tenant's `azure_cloud`,
/// never from a connector option, so the host refuses them rather than ignore them.
const SCOPE_OPTIONS: [&str; 2] = ["graph-scope", "arm-scope"];

/// Tenant ids that would collide with the host's own entries in the data directory.
const RESERVED_IDS: [&str; 1] = ["cache"];

/// One tenant, validated and with every default applied.
#[derive(Clone, Debug)]
pub struct TenantConfig {
    pub id: String,
    pub sync_interval: Duration,
    pub provisioning: bool,
    pub mailbox_settings: bool,
    pub skip_ad_groups: bool,
    pub strict: Option<bool>,
    pub page_size: u16,
    pub endpoints: AzureEndpoints,
    pub credentials: CredentialSources,
    /// Another connector component for this tenant; `None` runs the host's default one.
    pub component: Option<PathBuf>,
    /// Extra connector configuration (e.g. `rbac-role-catalogue = "all"`).
    pub connector_options: Vec<ConfigValue>,
    pub caps: OutboundCaps,
    pub sandbox: TenantSandbox,
}

/// What the tenant's sandboxed calls may use.
#[derive(Clone, Copy, Debug)]
pub struct TenantSandbox {
    /// Per call; unset parts are `serve`'s flags (`--call-memory-mib`, `--call-timeout`).
    pub call_limits: TenantCallLimits,
    /// Everything all the tenant's calls hold at once.
    pub memory_budget_bytes: usize,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Defaults {
    sync_interval: Option<String>,
    azure_cloud: Option<AzureCloud>,
    provisioning: Option<bool>,
    mailbox_settings: Option<bool>,
    skip_ad_groups: Option<bool>,
    strict: Option<bool>,
    page_size: Option<u16>,
    max_concurrent_requests: Option<usize>,
    max_response_mib: Option<usize>,
    call_memory_mib: Option<usize>,
    call_deadline: Option<String>,
    memory_budget_mib: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantEntry {
    id: String,
    sync_interval: Option<String>,
    azure_cloud: Option<AzureCloud>,
    login_url: Option<String>,
    graph_url: Option<String>,
    arm_url: Option<String>,
    provisioning: Option<bool>,
    mailbox_settings: Option<bool>,
    skip_ad_groups: Option<bool>,
    strict: Option<bool>,
    page_size: Option<u16>,
    max_concurrent_requests: Option<usize>,
    max_response_mib: Option<usize>,
    call_memory_mib: Option<usize>,
    call_deadline: Option<String>,
    memory_budget_mib: Option<usize>,
    component: Option<PathBuf>,
    #[serde(default)]
    connector_options: BTreeMap<String, String>,
    credentials: CredentialEntry,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialEntry {
    client_id: Option<String>,
    client_id_env: Option<String>,
    client_id_file: Option<PathBuf>,
    tenant_id: Option<String>,
    tenant_id_env: Option<String>,
    tenant_id_file: Option<PathBuf>,
    client_secret_env: Option<String>,
    client_secret_file: Option<PathBuf>,
}

const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(6 * 3600);
const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 16;
const DEFAULT_MAX_RESPONSE_MIB: usize = 64;
/// A 32-bit guest cannot address more than 4 GiB, and the pooling allocator reserves address
/// space for the largest limit in every slot.
const MAX_CALL_MEMORY_MIB: usize = 4096;

/// Reads and validates the tenants file. Relative paths in it (components, secret files) are
/// taken from the file's directory.
pub fn load(path: &Path) -> anyhow::Result<Vec<TenantConfig>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the tenants file {}: check --config", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, base).map_err(|error| anyhow!("{}: {error:#}", path.display()))
}

pub fn parse(text: &str, base: &Path) -> anyhow::Result<Vec<TenantConfig>> {
    let mut document: toml::Table = text.parse().map_err(|error| anyhow!("not valid TOML: {error}"))?;
    let defaults: Defaults = match document.remove("defaults") {
        Some(value) => value.try_into().map_err(|error| anyhow!("[defaults]: {error}"))?,
        None => Defaults::default(),
    };
    let entries = match document.remove("tenant") {
        Some(toml::Value::Array(entries)) => entries,
        Some(_) => bail!("`tenant` must be an array of tables: write each tenant as [[tenant]]"),
        None => bail!("no tenant: add at least one [[tenant]] table"),
    };
    if let Some(key) = document.keys().next() {
        bail!("unknown top-level key `{key}`: the file has [defaults] and [[tenant]] tables only");
    }
    let mut seen = BTreeSet::new();
    let mut tenants = Vec::with_capacity(entries.len());
    for (position, entry) in entries.into_iter().enumerate() {
        let label = tenant_label(&entry, position);
        let tenant = tenant_config(entry, &defaults, base).map_err(|error| anyhow!("{label}: {error:#}"))?;
        if !seen.insert(tenant.id.clone()) {
            bail!("{label}: the id {:?} is used twice: tenant ids must be unique", tenant.id);
        }
        tenants.push(tenant);
    }
    Ok(tenants)
}

/// How an error names a tenant: by id when it has one, else by position.
fn tenant_label(entry: &toml::Value, position: usize) -> String {
    match entry.get("id").and_then(toml::Value::as_str) {
        Some(id) => format!("tenant {id}"),
        None => format!("[[tenant]] number {}", position + 1),
    }
}

fn tenant_config(entry: toml::Value, defaults: &Defaults, base: &Path) -> anyhow::Result<TenantConfig> {
    if entry.get("credentials").and_then(|credentials| credentials.get("client_secret")).is_some() {
        bail!(
            "credentials.client_secret holds the secret itself, and the tenants file must not contain secrets: use client_secret_env = \"VARIABLE\" or client_secret_file = \"/var/run/secrets/<tenant>/client-secret\" (a mounted Kubernetes Secret)"
        );
    }
    let entry: TenantEntry = entry.try_into().map_err(|error| anyhow!("{error}"))?;
    validate_id(&entry.id)?;
    let sandbox = tenant_sandbox(&entry, defaults)?;
    let interval_text = entry.sync_interval.as_deref().or(defaults.sync_interval.as_deref());
    let sync_interval = match interval_text {
        Some(text) => parse_interval(text)?,
        None => DEFAULT_SYNC_INTERVAL,
    };
    let cloud = entry.azure_cloud.or(defaults.azure_cloud).unwrap_or(AzureCloud::Public);
    // Checked here first so an error names the key of this file, not the command-line flag.
    for (key, url) in [("login_url", &entry.login_url), ("graph_url", &entry.graph_url), ("arm_url", &entry.arm_url)] {
        if let Some(url) = url {
            parse_base_url(key, url)?;
        }
    }
    let overrides = EndpointOverrides { login: entry.login_url, graph: entry.graph_url, arm: entry.arm_url };
    let endpoints = AzureEndpoints::resolve(cloud, &overrides)?;
    let page_size = entry.page_size.or(defaults.page_size).unwrap_or(999);
    if !(1..=999).contains(&page_size) {
        bail!("page_size {page_size} is out of range: use 1 to 999");
    }
    let caps = OutboundCaps {
        max_concurrent_requests: positive(
            "max_concurrent_requests",
            entry.max_concurrent_requests.or(defaults.max_concurrent_requests),
            DEFAULT_MAX_CONCURRENT_REQUESTS,
        )?,
        max_response_bytes: positive(
            "max_response_mib",
            entry.max_response_mib.or(defaults.max_response_mib),
            DEFAULT_MAX_RESPONSE_MIB,
        )? * 1024
            * 1024,
    };
    Ok(TenantConfig {
        sandbox,
        sync_interval,
        provisioning: entry.provisioning.or(defaults.provisioning).unwrap_or(false),
        mailbox_settings: entry.mailbox_settings.or(defaults.mailbox_settings).unwrap_or(false),
        skip_ad_groups: entry.skip_ad_groups.or(defaults.skip_ad_groups).unwrap_or(false),
        strict: entry.strict.or(defaults.strict),
        page_size,
        endpoints,
        credentials: credential_sources(entry.credentials, base)?,
        component: entry.component.map(|path| base.join(path)),
        connector_options: connector_options(entry.connector_options)?,
        caps,
        id: entry.id,
    })
}

fn tenant_sandbox(entry: &TenantEntry, defaults: &Defaults) -> anyhow::Result<TenantSandbox> {
    let call_memory_mib = entry.call_memory_mib.or(defaults.call_memory_mib);
    match call_memory_mib {
        Some(0) => bail!("call_memory_mib must be at least 1"),
        Some(mib) if mib > MAX_CALL_MEMORY_MIB => {
            bail!("call_memory_mib {mib} is more than a call can address: use at most {MAX_CALL_MEMORY_MIB}")
        }
        _ => {}
    }
    let call_deadline = match entry.call_deadline.as_deref().or(defaults.call_deadline.as_deref()) {
        Some(text) => Some(humantime::parse_duration(text).map_err(|error| {
            anyhow!("call_deadline {text:?} is not a duration ({error}): write it like \"5m\" or \"90s\"")
        })?),
        None => None,
    };
    if call_deadline.is_some_and(|deadline| deadline.is_zero()) {
        bail!("call_deadline must be longer than zero: write it like \"5m\" or \"90s\"");
    }
    let memory_budget_mib = positive(
        "memory_budget_mib",
        entry.memory_budget_mib.or(defaults.memory_budget_mib),
        DEFAULT_TENANT_BUDGET_BYTES / MIB,
    )?;
    Ok(TenantSandbox {
        call_limits: TenantCallLimits {
            memory_bytes: call_memory_mib.map(|mib| mib * MIB),
            call_timeout: call_deadline,
        },
        memory_budget_bytes: memory_budget_mib.saturating_mul(MIB),
    })
}

fn validate_id(id: &str) -> anyhow::Result<()> {
    let well_formed = !id.is_empty()
        && id.len() <= 63
        && id.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
    if !well_formed {
        bail!(
            "id {id:?} is not valid: use 1 to 63 characters from a-z, 0-9 and '-' (it names the tenant's data directory)"
        );
    }
    if RESERVED_IDS.contains(&id) {
        bail!("id {id:?} is reserved for the host's own files in the data directory: choose another");
    }
    Ok(())
}

fn parse_interval(text: &str) -> anyhow::Result<Duration> {
    let interval = humantime::parse_duration(text).map_err(|error| {
        anyhow!("sync_interval {text:?} is not a duration ({error}): write it like \"6h\" or \"30m\"")
    })?;
    if interval < Duration::from_secs(1) {
        bail!("sync_interval {text:?} is shorter than a second: write it like \"6h\" or \"30m\"");
    }
    Ok(interval)
}

fn positive(key: &str, value: Option<usize>, default: usize) -> anyhow::Result<usize> {
    match value {
        Some(0) => bail!("{key} must be at least 1"),
        Some(value) => Ok(value),
        None => Ok(default),
    }
}

/// Exactly one source per credential part; the error says which keys clash or are missing.
fn one_source(
    part: &str,
    inline: Option<String>,
    env: Option<String>,
    file: Option<PathBuf>,
    base: &Path,
) -> anyhow::Result<ValueSource> {
    let mut sources = Vec::new();
    if let Some(value) = inline {
        sources.push(ValueSource::Inline(value));
    }
    if let Some(variable) = env {
        sources.push(ValueSource::Env(variable));
    }
    if let Some(path) = file {
        sources.push(ValueSource::File(base.join(path)));
    }
    let keys = if part == "client_secret" {
        format!("credentials.{part}_env or credentials.{part}_file")
    } else {
        format!("credentials.{part}, credentials.{part}_env or credentials.{part}_file")
    };
    match sources.len() {
        1 => Ok(sources.remove(0)),
        0 => bail!("no {part}: set one of {keys}"),
        _ => bail!("{part} is given more than once: keep only one of {keys}"),
    }
}

fn credential_sources(entry: CredentialEntry, base: &Path) -> anyhow::Result<CredentialSources> {
    Ok(CredentialSources {
        client_id: one_source("client_id", entry.client_id, entry.client_id_env, entry.client_id_file, base)?,
        tenant_id: one_source("tenant_id", entry.tenant_id, entry.tenant_id_env, entry.tenant_id_file, base)?,
        client_secret: one_source("client_secret", None, entry.client_secret_env, entry.client_secret_file, base)?,
    })
}

fn connector_options(options: BTreeMap<String, String>) -> anyhow::Result<Vec<ConfigValue>> {
    options
        .into_iter()
        .map(|(key, value)| {
            if SCOPE_OPTIONS.contains(&key.as_str()) {
                bail!(
                    "connector_options.{key}: token scopes are not options; the host takes them from the tenant's azure_cloud (public, usgov or china): remove the key"
                );
            }
            if HOST_SET_OPTIONS.contains(&key.as_str()) {
                bail!(
                    "connector_options.{key} is set by the host from the tenant's own keys: use login_url/graph_url/arm_url, azure_cloud, mailbox_settings, skip_ad_groups or page_size instead"
                );
            }
            Ok(ConfigValue { key, value })
        })
        .collect()
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
