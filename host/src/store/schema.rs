//! The snapshot's tables. One file holds a complete sync (resources, entitlements, grants,
//! notices, the run), the audit trail of grants and revokes, and, while a sync runs, its
//! checkpoint (which listing reached which page).

const CORE_SCHEMA: &str = "
CREATE TABLE resource_types (
    id TEXT PRIMARY KEY, display_name TEXT NOT NULL, is_principal INTEGER NOT NULL,
    can_sync INTEGER NOT NULL, can_grant INTEGER NOT NULL, can_revoke INTEGER NOT NULL,
    listed_under TEXT, position INTEGER NOT NULL);
CREATE TABLE resources (
    resource_type TEXT NOT NULL, id TEXT NOT NULL, display_name TEXT NOT NULL,
    parent_type TEXT, parent_id TEXT, profile TEXT NOT NULL,
    PRIMARY KEY (resource_type, id));
CREATE TABLE entitlements (
    id TEXT PRIMARY KEY, resource_type TEXT NOT NULL, resource_id TEXT NOT NULL, slug TEXT NOT NULL,
    display_name TEXT NOT NULL, description TEXT NOT NULL, purpose TEXT NOT NULL, grantable_to TEXT NOT NULL);
CREATE TABLE grants (
    id TEXT PRIMARY KEY, entitlement_id TEXT NOT NULL, principal_type TEXT NOT NULL, principal_id TEXT NOT NULL);
CREATE TABLE notices (
    kind TEXT NOT NULL, subject TEXT NOT NULL, message TEXT NOT NULL, missing_permission TEXT,
    resource_type TEXT, resource_id TEXT);
CREATE TABLE sync_runs (
    id INTEGER PRIMARY KEY, connector TEXT NOT NULL, connector_version TEXT NOT NULL,
    started_at TEXT NOT NULL, finished_at TEXT, requests INTEGER, throttled INTEGER, duplicates INTEGER);
";

/// Tables a snapshot written by an older version may lack; an incremental sync adds them to
/// its copy of the previous snapshot, and every new snapshot gets them with the core tables.
pub const SCHEMA_IF_MISSING: &str = "
CREATE TABLE IF NOT EXISTS delta_tokens (resource_type TEXT PRIMARY KEY, token TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS incremental_state (
    id INTEGER PRIMARY KEY, connector TEXT NOT NULL, config_fingerprint TEXT NOT NULL,
    full_sync_started_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS provisioning_audit (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, action TEXT NOT NULL, entitlement_id TEXT NOT NULL,
    principal_type TEXT NOT NULL, principal_id TEXT NOT NULL, outcome TEXT NOT NULL, grant_id TEXT,
    request_id TEXT, error TEXT, retried INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS sync_progress (
    listing TEXT NOT NULL, scope TEXT NOT NULL, next_page_token TEXT, done INTEGER NOT NULL,
    PRIMARY KEY (listing, scope));
CREATE TABLE IF NOT EXISTS sync_checkpoint (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS incremental_changed (
    resource_type TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (resource_type, id));
CREATE TABLE IF NOT EXISTS snapshot_identity (
    id INTEGER PRIMARY KEY, tenant_id TEXT NOT NULL, client_id TEXT NOT NULL, login_url TEXT NOT NULL);
-- A grants listing is checked against the entitlements its resource listed, read back from
-- here once per call (so a resumed run checks the same): without the index, a scan of every
-- entitlement per call, quadratic in a large tenant.
CREATE INDEX IF NOT EXISTS entitlements_by_resource ON entitlements (resource_type, resource_id);
";

/// Creates every table of a new snapshot.
pub fn create_schema(connection: &rusqlite::Connection) -> rusqlite::Result<()> {
    connection.execute_batch(CORE_SCHEMA)?;
    connection.execute_batch(SCHEMA_IF_MISSING)
}
