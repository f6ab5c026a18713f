//! The sync output: one SQLite file per sync.
//!
//! A sync writes into a temporary file next to the output and renames it over the output only
//! when the sync completed, so readers always see the previous complete snapshot, and a failed
//! sync leaves it intact. Rows are written page by page, so memory does not grow with the tenant.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rusqlite::{Connection, OptionalExtension, params};

use crate::sandbox::{Entitlement, EntitlementPurpose, Grant, Notice, NoticeKind, Resource, ResourceType};

const SCHEMA: &str = "
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
CREATE TABLE IF NOT EXISTS provisioning_audit (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, action TEXT NOT NULL, entitlement_id TEXT NOT NULL,
    principal_type TEXT NOT NULL, principal_id TEXT NOT NULL, outcome TEXT NOT NULL, grant_id TEXT,
    request_id TEXT, error TEXT, retried INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS delta_tokens (resource_type TEXT PRIMARY KEY, token TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS incremental_state (
    id INTEGER PRIMARY KEY, connector TEXT NOT NULL, config_fingerprint TEXT NOT NULL);
CREATE TABLE sync_runs (
    id INTEGER PRIMARY KEY, connector TEXT NOT NULL, connector_version TEXT NOT NULL,
    started_at TEXT NOT NULL, finished_at TEXT, requests INTEGER, throttled INTEGER, duplicates INTEGER);
";

/// Where a sync writes while it runs, and the file it replaces when it completes.
pub struct SnapshotWriter {
    pub(crate) connection: Connection,
    temporary: PathBuf,
    output: PathBuf,
    duplicates: u64,
}

impl SnapshotWriter {
    pub fn create(output: &Path) -> anyhow::Result<Self> {
        let writer = Self::open_temporary(output, None)?;
        writer.connection.execute_batch(SCHEMA).context("cannot create the snapshot schema")?;
        Ok(writer)
    }

    /// A temporary file beside `output`: empty, or a copy of `copy_of` (an incremental sync
    /// starts from the previous snapshot).
    pub(crate) fn open_temporary(output: &Path, copy_of: Option<&Path>) -> anyhow::Result<Self> {
        let directory = output.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !directory.is_dir() {
            anyhow::bail!(
                "the output directory {} does not exist: create it or choose another --output",
                directory.display()
            );
        }
        let file_name =
            output.file_name().context("the output path has no file name: give a file, e.g. --output sync.db")?;
        let temporary = directory.join(format!(".{}.{}.partial", file_name.to_string_lossy(), std::process::id()));
        let _ = std::fs::remove_file(&temporary);
        if let Some(previous) = copy_of {
            std::fs::copy(previous, &temporary).with_context(|| {
                format!(
                    "cannot copy {} to {}: check the output directory is writable",
                    previous.display(),
                    temporary.display()
                )
            })?;
        }
        let connection = Connection::open(&temporary).with_context(|| {
            format!("cannot create {}: check the output directory is writable", temporary.display())
        })?;
        // The temporary file is thrown away if we crash, so durability is only needed at the end.
        connection.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")?;
        Ok(SnapshotWriter { connection, temporary, output: output.to_path_buf(), duplicates: 0 })
    }

    pub fn record_run_start(&self, connector: &str, version: &str, started_at: &str) -> anyhow::Result<()> {
        self.connection.execute(
            "INSERT INTO sync_runs (id, connector, connector_version, started_at) VALUES (1, ?1, ?2, ?3)",
            params![connector, version, started_at],
        )?;
        Ok(())
    }

    pub fn write_resource_types(&self, types: &[ResourceType]) -> anyhow::Result<()> {
        let mut insert = self.connection.prepare(
            "INSERT INTO resource_types (id, display_name, is_principal, can_sync, can_grant, can_revoke, listed_under, position)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for (position, kind) in types.iter().enumerate() {
            use crate::sandbox::Capabilities;
            insert.execute(params![
                kind.id,
                kind.display_name,
                kind.is_principal,
                kind.capabilities.contains(Capabilities::SYNC),
                kind.capabilities.contains(Capabilities::GRANT),
                kind.capabilities.contains(Capabilities::REVOKE),
                kind.listed_under,
                position as i64
            ])?;
        }
        Ok(())
    }

    /// Writes one page in one transaction. Rows already present (an object listed twice, as
    /// eventually consistent listings can) are counted, not duplicated.
    pub fn write_page(
        &mut self,
        resources: &[Resource],
        entitlements: &[Entitlement],
        grants: &[Grant],
        notices: &[(Notice, Option<(&str, &str)>)],
    ) -> anyhow::Result<()> {
        let transaction = self.connection.transaction()?;
        let mut duplicates = 0;
        {
            let mut insert = transaction.prepare_cached(
                "INSERT OR IGNORE INTO resources (resource_type, id, display_name, parent_type, parent_id, profile)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for resource in resources {
                let parent = resource.parent.as_ref();
                let written = insert.execute(params![
                    resource.resource_type,
                    resource.id,
                    resource.display_name,
                    parent.map(|p| &p.resource_type),
                    parent.map(|p| &p.id),
                    resource.profile_json
                ])?;
                duplicates += 1 - written as u64;
            }
            let mut insert = transaction.prepare_cached(
                "INSERT OR IGNORE INTO entitlements (id, resource_type, resource_id, slug, display_name, description, purpose, grantable_to)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for entitlement in entitlements {
                let written = insert.execute(params![
                    entitlement.id,
                    entitlement.resource.resource_type,
                    entitlement.resource.id,
                    entitlement.slug,
                    entitlement.display_name,
                    entitlement.description,
                    purpose_name(entitlement.purpose),
                    entitlement.grantable_to.join(",")
                ])?;
                duplicates += 1 - written as u64;
            }
            let mut insert = transaction.prepare_cached(
                "INSERT OR IGNORE INTO grants (id, entitlement_id, principal_type, principal_id) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for grant in grants {
                let written = insert.execute(params![
                    grant.id,
                    grant.entitlement_id,
                    grant.principal.resource_type,
                    grant.principal.id
                ])?;
                duplicates += 1 - written as u64;
            }
            let mut insert = transaction.prepare_cached(
                "INSERT INTO notices (kind, subject, message, missing_permission, resource_type, resource_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (notice, about) in notices {
                insert.execute(params![
                    notice_kind_name(notice.kind),
                    notice.subject,
                    notice.message,
                    notice.missing_permission,
                    about.map(|(kind, _)| kind),
                    about.map(|(_, id)| id)
                ])?;
            }
        }
        transaction.commit()?;
        self.duplicates += duplicates;
        Ok(())
    }

    /// Up to `limit` resources of a type after `after_rowid`, in listing order, with their rowid.
    pub fn resources_after(
        &self,
        resource_type: &str,
        after_rowid: i64,
        limit: usize,
    ) -> anyhow::Result<Vec<(i64, Resource)>> {
        let mut select = self.connection.prepare_cached(
            "SELECT rowid, resource_type, id, display_name, parent_type, parent_id, profile FROM resources
             WHERE resource_type = ?1 AND rowid > ?2 ORDER BY rowid LIMIT ?3",
        )?;
        let rows = select.query_map(params![resource_type, after_rowid, limit as i64], |row| {
            let parent_type: Option<String> = row.get(4)?;
            let parent_id: Option<String> = row.get(5)?;
            Ok((
                row.get(0)?,
                Resource {
                    resource_type: row.get(1)?,
                    id: row.get(2)?,
                    display_name: row.get(3)?,
                    parent: parent_type
                        .zip(parent_id)
                        .map(|(resource_type, id)| crate::sandbox::ResourceRef { resource_type, id }),
                    profile_json: row.get(6)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Records the end of the run, makes the file durable and puts it in place of the output.
    pub fn complete(mut self, finished_at: &str, requests: u64, throttled: u64) -> anyhow::Result<()> {
        self.connection.execute(
            "UPDATE sync_runs SET finished_at = ?1, requests = ?2, throttled = ?3, duplicates = ?4 WHERE id = 1",
            params![finished_at, requests as i64, throttled as i64, self.duplicates as i64],
        )?;
        self.connection.execute_batch(
            "CREATE INDEX IF NOT EXISTS grants_by_entitlement ON grants (entitlement_id);
             CREATE INDEX IF NOT EXISTS grants_by_principal ON grants (principal_type, principal_id);
             CREATE INDEX IF NOT EXISTS entitlements_by_resource ON entitlements (resource_type, resource_id);
             PRAGMA journal_mode = DELETE;",
        )?;
        // The audit trail of grants and revokes lives in the snapshot file but outlives each
        // snapshot: copy it from the file we replace, holding the lock that audit writers take.
        let _lock = lock_output(&self.output)?;
        if self.output.is_file() {
            self.connection.execute("ATTACH DATABASE ?1 AS previous", params![self.output.to_string_lossy()])?;
            let has_audit: bool = self.connection.query_row(
                "SELECT count(*) FROM previous.sqlite_master WHERE name = 'provisioning_audit'",
                [],
                |row| row.get::<_, i64>(0).map(|count| count > 0),
            )?;
            if has_audit {
                self.connection
                    .execute_batch("INSERT INTO provisioning_audit SELECT * FROM previous.provisioning_audit")?;
            }
            self.connection.execute_batch("DETACH DATABASE previous")?;
        }
        let connection = std::mem::replace(&mut self.connection, Connection::open_in_memory()?);
        connection.close().map_err(|(_, err)| err).context("cannot close the snapshot")?;
        std::fs::File::open(&self.temporary)
            .and_then(|file| file.sync_all())
            .with_context(|| format!("cannot flush {}", self.temporary.display()))?;
        std::fs::rename(&self.temporary, &self.output)
            .with_context(|| format!("cannot move the finished snapshot to {}", self.output.display()))?;
        Ok(())
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        // After `complete` the file was renamed and this finds nothing; otherwise the sync
        // failed and the partial file is worthless.
        let _ = std::fs::remove_file(&self.temporary);
    }
}

pub fn purpose_name(purpose: EntitlementPurpose) -> &'static str {
    match purpose {
        EntitlementPurpose::Assignment => "assignment",
        EntitlementPurpose::Ownership => "ownership",
        EntitlementPurpose::Permission => "permission",
    }
}

pub fn notice_kind_name(kind: NoticeKind) -> &'static str {
    match kind {
        NoticeKind::Gap => "gap",
        NoticeKind::UnsupportedPrincipal => "unsupported_principal",
    }
}

/// An exclusive lock on `<output>.lock`, held while the snapshot file is replaced or an audit
/// row is written, so neither loses the other's work.
pub fn lock_output(output: &Path) -> anyhow::Result<std::fs::File> {
    let mut name = output.as_os_str().to_owned();
    name.push(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&name)
        .with_context(|| format!("cannot open the lock file {}", Path::new(&name).display()))?;
    file.lock().with_context(|| format!("cannot lock {}", Path::new(&name).display()))?;
    Ok(file)
}

/// One grant or revoke, as the audit trail keeps it.
pub struct AuditRecord<'a> {
    pub at: &'a str,
    pub action: &'a str,
    pub entitlement_id: &'a str,
    pub principal_type: &'a str,
    pub principal_id: &'a str,
    pub outcome: &'a str,
    pub grant_id: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub error: Option<&'a str>,
    pub retried: bool,
}

/// Appends to the audit trail in `output`, creating the file (schema only, no snapshot) if
/// no sync has written it yet.
pub fn append_audit(output: &Path, record: &AuditRecord<'_>) -> anyhow::Result<()> {
    let _lock = lock_output(output)?;
    let connection = Connection::open(output)
        .with_context(|| format!("cannot open {} to record the audit trail", output.display()))?;
    let has_schema: bool =
        connection.query_row("SELECT count(*) FROM sqlite_master WHERE name = 'sync_runs'", [], |row| {
            row.get::<_, i64>(0).map(|count| count > 0)
        })?;
    if !has_schema {
        connection.execute_batch(SCHEMA).context("cannot create the snapshot schema")?;
    }
    connection.execute(
        "INSERT INTO provisioning_audit (at, action, entitlement_id, principal_type, principal_id, outcome, grant_id, request_id, error, retried)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            record.at,
            record.action,
            record.entitlement_id,
            record.principal_type,
            record.principal_id,
            record.outcome,
            record.grant_id,
            record.request_id,
            record.error,
            record.retried
        ],
    )?;
    Ok(())
}

/// Opens a finished snapshot for reading.
pub fn open_snapshot(path: &Path) -> anyhow::Result<Connection> {
    if !path.is_file() {
        anyhow::bail!("{} does not exist: run `connector-host sync --output {}` first", path.display(), path.display());
    }
    let connection = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let finished: Option<Option<String>> = connection
        .query_row("SELECT finished_at FROM sync_runs WHERE id = 1", [], |row| row.get(0))
        .optional()
        .with_context(|| format!("{} is not a sync snapshot of connector-host", path.display()))?;
    match finished {
        Some(Some(_)) => Ok(connection),
        _ => anyhow::bail!("{} holds no completed sync: run the sync again", path.display()),
    }
}
