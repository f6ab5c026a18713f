//! The tables of the SQLite database inside a c1z, as ConductorOne/baton-sdk's `pkg/dotc1z`
//! declares them (its newest columns included, so that readers of every version find what they
//! query and run no migration on our rows). Each object row is one sync's copy of a protobuf
//! message (`data`), with the columns readers filter on; `external_id` is unique per sync.

pub const TABLES: &str = "
CREATE TABLE v1_resource_types (
    id INTEGER PRIMARY KEY, external_id TEXT NOT NULL, data BLOB NOT NULL, sync_id TEXT NOT NULL,
    discovered_at DATETIME NOT NULL);
CREATE UNIQUE INDEX idx_resource_types_external_sync_v1 ON v1_resource_types (external_id, sync_id);

CREATE TABLE v1_resources (
    id INTEGER PRIMARY KEY, resource_type_id TEXT NOT NULL, external_id TEXT NOT NULL,
    parent_resource_type_id TEXT, parent_resource_id TEXT, data BLOB NOT NULL, sync_id TEXT NOT NULL,
    discovered_at DATETIME NOT NULL);
CREATE INDEX idx_resources_resource_type_id_v1 ON v1_resources (resource_type_id);
CREATE INDEX idx_resources_parent_resource_id_v1 ON v1_resources (parent_resource_type_id, parent_resource_id);
CREATE UNIQUE INDEX idx_resources_external_sync_v1 ON v1_resources (external_id, sync_id);

CREATE TABLE v1_entitlements (
    id INTEGER PRIMARY KEY, resource_type_id TEXT NOT NULL, resource_id TEXT NOT NULL,
    external_id TEXT NOT NULL, data BLOB NOT NULL, sync_id TEXT NOT NULL, discovered_at DATETIME NOT NULL);
CREATE INDEX idx_entitlements_resource_id_v1 ON v1_entitlements (resource_type_id, resource_id);
CREATE UNIQUE INDEX idx_entitlements_external_sync_v1 ON v1_entitlements (external_id, sync_id);

CREATE TABLE v1_sync_runs (
    id INTEGER PRIMARY KEY, sync_id TEXT NOT NULL, started_at DATETIME NOT NULL, ended_at DATETIME,
    sync_token TEXT NOT NULL, sync_type TEXT NOT NULL DEFAULT 'full', parent_sync_id TEXT NOT NULL DEFAULT '',
    linked_sync_id TEXT NOT NULL DEFAULT '', supports_diff INTEGER NOT NULL DEFAULT 0,
    grants_backfilled INTEGER NOT NULL DEFAULT 0, stats TEXT,
    ingest_invariant_generation TEXT NOT NULL DEFAULT '', ingest_invariant_coverage TEXT NOT NULL DEFAULT '',
    ingest_invariant_mode TEXT NOT NULL DEFAULT '');
CREATE UNIQUE INDEX idx_sync_runs_sync_id_v1 ON v1_sync_runs (sync_id);

CREATE TABLE v1_grants (
    id INTEGER PRIMARY KEY, resource_type_id TEXT NOT NULL, resource_id TEXT NOT NULL,
    entitlement_id TEXT NOT NULL, principal_resource_type_id TEXT NOT NULL, principal_resource_id TEXT NOT NULL,
    external_id TEXT NOT NULL, expansion BLOB, needs_expansion INTEGER NOT NULL DEFAULT 0, data BLOB NOT NULL,
    sync_id TEXT NOT NULL, discovered_at DATETIME NOT NULL);
CREATE INDEX idx_grants_resource_type_id_resource_id_v1 ON v1_grants (resource_type_id, resource_id);
CREATE INDEX idx_grants_principal_id_v1 ON v1_grants (principal_resource_type_id, principal_resource_id);
CREATE INDEX idx_grants_entitlement_id_principal_id_v1
    ON v1_grants (entitlement_id, principal_resource_type_id, principal_resource_id);
CREATE UNIQUE INDEX idx_grants_external_sync_v1 ON v1_grants (external_id, sync_id);
CREATE INDEX idx_grants_entitlement_sync_grant_v1 ON v1_grants (entitlement_id, sync_id, id);
CREATE INDEX idx_grants_sync_expansion_v1 ON v1_grants (sync_id) WHERE expansion IS NOT NULL;
CREATE INDEX idx_grants_sync_needs_expansion_v1 ON v1_grants (sync_id) WHERE needs_expansion = 1;

CREATE TABLE v1_assets (
    id INTEGER PRIMARY KEY, external_id TEXT NOT NULL, content_type TEXT NOT NULL, data BLOB NOT NULL,
    sync_id TEXT NOT NULL, discovered_at DATETIME NOT NULL);
CREATE UNIQUE INDEX idx_assets_external_sync_v1 ON v1_assets (external_id, sync_id);
";

/// The object tables, in the order rows are written and carried over.
pub const OBJECT_TABLES: [&str; 5] = ["v1_resource_types", "v1_resources", "v1_entitlements", "v1_grants", "v1_assets"];

/// How baton-sdk writes times: the wall clock without a zone (Go layout
/// `2006-01-02 15:04:05.999999999`). Ours are UTC.
pub fn sqlite_time(rfc3339: &str) -> anyhow::Result<String> {
    let instant = humantime::parse_rfc3339_weak(rfc3339)
        .map_err(|error| anyhow::anyhow!("the snapshot's sync time {rfc3339:?} is not an RFC 3339 time ({error})"))?;
    let utc = humantime::format_rfc3339_seconds(instant).to_string();
    Ok(utc.trim_end_matches('Z').replacen('T', " ", 1))
}
