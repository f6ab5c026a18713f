//! The snapshot being written by a sync, and the checkpoint that lets a killed sync resume.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use rusqlite::{Connection, OptionalExtension, params};

use super::audit::{lock_output, open_lock_file};
use super::files::{open_private_file, rename_durably};
use super::identity::{SnapshotIdentity, record_identity};
use super::schema::create_schema;
use super::untrusted::{distrust, open_untrusted, refuse_code};
use super::{notice_kind_name, purpose_name};
use crate::sandbox::{Entitlement, Grant, Notice, NoticeKind, Resource, ResourceRef, ResourceType};

/// A partial sync older than this is not resumed: Azure's page tokens do not live forever,
/// and a snapshot stitched from reads hours apart would not describe one moment.
const RESUMABLE_FOR: Duration = Duration::from_secs(60 * 60);

/// Where one listing (e.g. `grants` of `group:<id>`) stands in the partial snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListingProgress {
    NotStarted,
    /// The pages before this token are written; this one comes next.
    Next(String),
    Done,
}

/// The checkpoint written in the same transaction as a page: after this page, the listing
/// continues with `next_page_token`, or is done.
pub struct PageProgress<'a> {
    pub listing: &'a str,
    pub scope: &'a str,
    pub next_page_token: Option<&'a str>,
}

/// An object listed twice with different content: the listing contradicts itself, so none
/// of it can be trusted. The sync fails; its partial file is thrown away (see
/// `SnapshotWriter::discard`), because resuming would only meet the same contradiction.
#[derive(Debug, thiserror::Error)]
#[error(
    "the connector listed {kind} {id} twice with different content: refusing to pick one (the listing \
     contradicts itself); the next sync reads everything again"
)]
pub struct ConflictingDuplicate {
    pub kind: &'static str,
    pub id: String,
}

/// What a finished sync holds, counted from the snapshot itself (so a resumed sync counts the
/// pages written before the interruption too).
#[derive(Debug, Default)]
pub struct SyncCounts {
    pub resources: BTreeMap<String, u64>,
    pub entitlements: u64,
    pub grants: u64,
    pub gaps: Vec<Notice>,
    pub unsupported_principals: u64,
}

/// Where a sync writes while it runs, and the file it replaces when it completes.
pub struct SnapshotWriter {
    pub(super) connection: Connection,
    partial: PathBuf,
    output: PathBuf,
    duplicates: u64,
    resumed: bool,
    /// Held for the whole sync: two syncs into one output would share the partial file.
    _sync_lock: File,
}

impl SnapshotWriter {
    /// Opens the partial snapshot for `output`: the one a killed sync with the same
    /// `fingerprint` (connector, version, configuration) left less than an hour ago, or a new one.
    pub fn open(output: &Path, fingerprint: &str) -> anyhow::Result<Self> {
        let partial = partial_path(output)?;
        let sync_lock = lock_sync(&partial)?;
        let resumed = is_resumable(&partial, fingerprint);
        if !resumed {
            for leftover in sqlite_files(&partial) {
                let _ = std::fs::remove_file(leftover);
            }
        }
        // Created (or narrowed to) 0600 before SQLite opens it: its WAL files take its mode.
        open_private_file(&partial)
            .with_context(|| format!("cannot create {}: check the output directory is writable", partial.display()))?;
        let connection = Connection::open(&partial)
            .with_context(|| format!("cannot create {}: check the output directory is writable", partial.display()))?;
        // A resumed partial was written by an earlier run: its schema is not taken on trust.
        distrust(&connection).context("cannot open the partial snapshot safely")?;
        if resumed {
            refuse_code(&connection, "main", &partial)?;
        }
        // WAL keeps each page's transaction atomic if the process is killed; the partial file
        // needs no durability against power loss (the previous snapshot is still in place).
        connection.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;")?;
        if !resumed {
            create_schema(&connection).context("cannot create the snapshot schema")?;
            connection
                .execute("INSERT INTO sync_checkpoint (key, value) VALUES ('fingerprint', ?1)", params![fingerprint])?;
        }
        Ok(SnapshotWriter {
            connection,
            partial,
            output: output.to_path_buf(),
            duplicates: 0,
            resumed,
            _sync_lock: sync_lock,
        })
    }

    /// Opens a partial snapshot for `output` that starts as a copy of `output` (an incremental
    /// sync applies changes to the previous snapshot). The caller resets and fingerprints it
    /// (see `continue_from`).
    pub fn open_copy(output: &Path) -> anyhow::Result<Self> {
        let partial = partial_path(output)?;
        let sync_lock = lock_sync(&partial)?;
        for leftover in sqlite_files(&partial) {
            let _ = std::fs::remove_file(leftover);
        }
        {
            // Audit writers change the output in place: copy it between their writes, not during one.
            let _lock = lock_output(output)?;
            // Not `fs::copy`: it would give the copy the output's mode, which may be wider.
            open_private_file(&partial)
                .and_then(|mut copy| std::io::copy(&mut File::open(output)?, &mut copy))
                .with_context(|| {
                    format!(
                        "cannot copy {} to {}: check the output directory is writable",
                        output.display(),
                        partial.display()
                    )
                })?;
        }
        let connection = open_untrusted(&partial, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        connection.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;")?;
        Ok(SnapshotWriter {
            connection,
            partial,
            output: output.to_path_buf(),
            duplicates: 0,
            resumed: false,
            _sync_lock: sync_lock,
        })
    }

    /// True when `output` has a partial snapshot that `open` with this fingerprint would resume
    /// (an interrupted full sync, which is finished before any incremental one).
    pub fn resumable(output: &Path, fingerprint: &str) -> bool {
        partial_path(output).is_ok_and(|partial| is_resumable(&partial, fingerprint))
    }

    /// Refuses to start a sync into `output` when the output or the partial file beside it
    /// holds code (a trigger, a view: see `untrusted`). Both were written by earlier runs, or
    /// by whoever else can write the directory.
    pub fn check_inputs(output: &Path) -> anyhow::Result<()> {
        for file in [output.to_path_buf(), partial_path(output)?] {
            if file.is_file() {
                open_untrusted(&file, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)?;
            }
        }
        Ok(())
    }

    /// The partial file a sync into `output` works in.
    pub fn partial_file(output: &Path) -> anyhow::Result<PathBuf> {
        partial_path(output)
    }

    /// True when this sync continues one that was interrupted.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    pub fn record_run_start(&self, connector: &str, version: &str, started_at: &str) -> anyhow::Result<()> {
        self.connection.execute(
            "INSERT OR IGNORE INTO sync_runs (id, connector, connector_version, started_at) VALUES (1, ?1, ?2, ?3)",
            params![connector, version, started_at],
        )?;
        Ok(())
    }

    /// Records whose data this snapshot holds (see `identity`).
    pub fn record_identity(&self, identity: &SnapshotIdentity) -> anyhow::Result<()> {
        record_identity(&self.connection, identity).context("cannot record the tenant of the snapshot")
    }

    pub fn write_resource_types(&self, types: &[ResourceType]) -> anyhow::Result<()> {
        let mut insert = self.connection.prepare(
            "INSERT OR REPLACE INTO resource_types (id, display_name, is_principal, can_sync, can_grant, can_revoke, listed_under, position)
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

    /// Where a listing stands: not started, continuing at a page token, or done.
    pub fn progress(&self, listing: &str, scope: &str) -> anyhow::Result<ListingProgress> {
        let row: Option<(Option<String>, bool)> = self
            .connection
            .prepare_cached("SELECT next_page_token, done FROM sync_progress WHERE listing = ?1 AND scope = ?2")?
            .query_row(params![listing, scope], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        Ok(match row {
            None => ListingProgress::NotStarted,
            Some((_, true)) => ListingProgress::Done,
            Some((Some(token), false)) => ListingProgress::Next(token),
            Some((None, false)) => ListingProgress::NotStarted,
        })
    }

    /// Writes one page and its checkpoint in one transaction. Rows already present (an object
    /// listed twice, as eventually consistent listings can) are counted, not duplicated, when
    /// they are the same; a row listed again with other content is a [`ConflictingDuplicate`].
    pub fn write_page(
        &mut self,
        resources: &[Resource],
        entitlements: &[Entitlement],
        grants: &[Grant],
        notices: &[(Notice, Option<(&str, &str)>)],
        progress: &PageProgress<'_>,
    ) -> anyhow::Result<()> {
        let transaction = self.connection.transaction()?;
        let mut duplicates = 0;
        {
            let mut insert = transaction.prepare_cached(&format!("INSERT OR IGNORE {INSERT_RESOURCE}"))?;
            let mut same_resource = transaction.prepare_cached(
                "SELECT count(*) FROM resources WHERE resource_type = ?1 AND id = ?2 AND display_name = ?3
                 AND parent_type IS ?4 AND parent_id IS ?5 AND profile = ?6",
            )?;
            for resource in resources {
                if write_resource(&mut insert, resource)? == 0 {
                    let same: i64 =
                        with_resource_columns(resource, |columns| same_resource.query_row(columns, |row| row.get(0)))?;
                    refuse_conflict(same, "resource", || format!("{}:{}", resource.resource_type, resource.id))?;
                    duplicates += 1;
                }
            }
            let mut insert = transaction.prepare_cached(
                "INSERT OR IGNORE INTO entitlements (id, resource_type, resource_id, slug, display_name, description, purpose, grantable_to)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            let mut same_entitlement = transaction.prepare_cached(
                "SELECT count(*) FROM entitlements WHERE id = ?1 AND resource_type = ?2 AND resource_id = ?3
                 AND slug = ?4 AND display_name = ?5 AND description = ?6 AND purpose = ?7 AND grantable_to = ?8",
            )?;
            for entitlement in entitlements {
                let row = params![
                    entitlement.id,
                    entitlement.resource.resource_type,
                    entitlement.resource.id,
                    entitlement.slug,
                    entitlement.display_name,
                    entitlement.description,
                    purpose_name(entitlement.purpose),
                    entitlement.grantable_to.join(",")
                ];
                if insert.execute(row)? == 0 {
                    let same: i64 = same_entitlement.query_row(row, |found| found.get(0))?;
                    refuse_conflict(same, "entitlement", || entitlement.id.clone())?;
                    duplicates += 1;
                }
            }
            let mut insert = transaction.prepare_cached(
                "INSERT OR IGNORE INTO grants (id, entitlement_id, principal_type, principal_id) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut same_grant = transaction.prepare_cached(
                "SELECT count(*) FROM grants WHERE id = ?1 AND entitlement_id = ?2 AND principal_type = ?3
                 AND principal_id = ?4",
            )?;
            for grant in grants {
                let row = params![grant.id, grant.entitlement_id, grant.principal.resource_type, grant.principal.id];
                if insert.execute(row)? == 0 {
                    let same: i64 = same_grant.query_row(row, |found| found.get(0))?;
                    refuse_conflict(same, "grant", || grant.id.clone())?;
                    duplicates += 1;
                }
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
            transaction
                .prepare_cached(
                    "INSERT OR REPLACE INTO sync_progress (listing, scope, next_page_token, done) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![
                    progress.listing,
                    progress.scope,
                    progress.next_page_token,
                    progress.next_page_token.is_none()
                ])?;
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
            Ok((row.get(0)?, resource_from_row_at(row, 1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The ids of the entitlements the snapshot holds for `resource`.
    pub fn entitlement_ids_of(&self, resource: &Resource) -> anyhow::Result<std::collections::HashSet<String>> {
        let mut select = self
            .connection
            .prepare_cached("SELECT id FROM entitlements WHERE resource_type = ?1 AND resource_id = ?2")?;
        let ids = select.query_map(params![resource.resource_type, resource.id], |row| row.get(0))?;
        Ok(ids.collect::<Result<_, _>>()?)
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Counts what the snapshot holds, the pages of an interrupted run included.
    pub fn counts(&self) -> anyhow::Result<SyncCounts> {
        let mut counts = SyncCounts::default();
        let mut by_type =
            self.connection.prepare("SELECT resource_type, count(*) FROM resources GROUP BY resource_type")?;
        for row in by_type.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))? {
            let (kind, count) = row?;
            counts.resources.insert(kind, count as u64);
        }
        let count = |table: &str| -> anyhow::Result<u64> {
            let total: i64 =
                self.connection.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| row.get(0))?;
            Ok(total as u64)
        };
        counts.entitlements = count("entitlements")?;
        counts.grants = count("grants")?;
        counts.unsupported_principals = self.connection.query_row(
            "SELECT count(*) FROM notices WHERE kind = ?1",
            params![notice_kind_name(NoticeKind::UnsupportedPrincipal)],
            |row| row.get::<_, i64>(0),
        )? as u64;
        let mut gaps = self.connection.prepare(
            "SELECT subject, message, missing_permission FROM notices WHERE kind = ?1 ORDER BY subject, message",
        )?;
        for gap in gaps.query_map(params![notice_kind_name(NoticeKind::Gap)], |row| {
            Ok(Notice {
                kind: NoticeKind::Gap,
                subject: row.get(0)?,
                message: row.get(1)?,
                missing_permission: row.get(2)?,
            })
        })? {
            counts.gaps.push(gap?);
        }
        Ok(counts)
    }

    /// Throws the partial snapshot away: the sync ran to its end but must not be used (e.g.
    /// `--strict` with gaps), so the next run starts afresh instead of resuming it.
    pub fn discard(self) {
        let SnapshotWriter { connection, partial, .. } = self;
        let _ = connection.close();
        for file in sqlite_files(&partial) {
            let _ = std::fs::remove_file(file);
        }
    }

    /// True when this partial snapshot was completed by a run killed before it could put it in
    /// place: the caller only has to `complete` it again.
    pub fn completed(&self) -> anyhow::Result<bool> {
        let finished: Option<Option<String>> = self
            .connection
            .query_row("SELECT finished_at FROM sync_runs WHERE id = 1", [], |row| row.get(0))
            .optional()?;
        Ok(matches!(finished, Some(Some(_))))
    }

    /// Records the end of the run, makes the file durable and puts it in place of the output.
    /// Every step may be done again: a run killed before the rename left a partial file that
    /// `completed` recognises (it keeps its fingerprint, so it is resumed) and completes again.
    pub fn complete(mut self, finished_at: &str, requests: u64, throttled: u64) -> anyhow::Result<()> {
        self.mark_finished(finished_at, requests, throttled)?;
        self.put_in_place()
    }

    /// Step 1 of `complete`, in one transaction: the run is finished and its checkpoints go,
    /// but the fingerprint stays until the file is in place.
    fn mark_finished(&mut self, finished_at: &str, requests: u64, throttled: u64) -> anyhow::Result<()> {
        let transaction = self.connection.transaction()?;
        transaction.execute(
            "UPDATE sync_runs SET finished_at = ?1, requests = ?2, throttled = ?3, duplicates = ?4 WHERE id = 1",
            params![finished_at, requests as i64, throttled as i64, self.duplicates as i64],
        )?;
        transaction.execute_batch(
            "DELETE FROM sync_progress;
             DELETE FROM sync_checkpoint WHERE key <> 'fingerprint';
             DELETE FROM incremental_changed;",
        )?;
        transaction.commit()?;
        Ok(())
    }

    /// Step 2 of `complete`: the grant indexes (built once, not kept up during the sync), the
    /// audit trail carried over, then the rename.
    fn put_in_place(mut self) -> anyhow::Result<()> {
        self.connection.execute_batch(
            "CREATE INDEX IF NOT EXISTS grants_by_entitlement ON grants (entitlement_id);
             CREATE INDEX IF NOT EXISTS grants_by_principal ON grants (principal_type, principal_id);",
        )?;
        // The audit trail of grants and revokes lives in the snapshot file but outlives each
        // snapshot: copy it from the file we replace, holding the lock that audit writers take.
        let _lock = lock_output(&self.output)?;
        if self.output.is_file() {
            self.connection.execute("ATTACH DATABASE ?1 AS previous", params![self.output.to_string_lossy()])?;
            refuse_code(&self.connection, "previous", &self.output)?;
            let has_audit: bool = self.connection.query_row(
                "SELECT count(*) FROM previous.sqlite_master WHERE name = 'provisioning_audit'",
                [],
                |row| row.get::<_, i64>(0).map(|count| count > 0),
            )?;
            if has_audit {
                self.connection.execute_batch(
                    "DELETE FROM provisioning_audit;
                     INSERT INTO provisioning_audit SELECT * FROM previous.provisioning_audit;",
                )?;
            }
            self.connection.execute_batch("DETACH DATABASE previous")?;
        }
        // Leaving WAL mode folds the log into the file, so the renamed file stands alone.
        self.connection.execute_batch("PRAGMA journal_mode = DELETE;")?;
        let connection = std::mem::replace(&mut self.connection, Connection::open_in_memory()?);
        connection.close().map_err(|(_, err)| err).context("cannot close the snapshot")?;
        File::open(&self.partial)
            .and_then(|file| file.sync_all())
            .with_context(|| format!("cannot flush {}", self.partial.display()))?;
        rename_durably(&self.partial, &self.output)
            .with_context(|| format!("cannot move the finished snapshot to {}", self.output.display()))?;
        Ok(())
    }
}

/// Fails with a [`ConflictingDuplicate`] when a row listed again matched no stored row (`same` is 0).
fn refuse_conflict(same: i64, kind: &'static str, id: impl FnOnce() -> String) -> Result<(), ConflictingDuplicate> {
    if same == 0 { Err(ConflictingDuplicate { kind, id: id() }) } else { Ok(()) }
}

/// `INTO resources …`: the rest of the statement that writes a resource with [`write_resource`],
/// after `INSERT OR IGNORE` (a listing) or `INSERT OR REPLACE` (a change).
pub(super) const INSERT_RESOURCE: &str =
    "INTO resources (resource_type, id, display_name, parent_type, parent_id, profile)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// Writes one resource with a statement built on [`INSERT_RESOURCE`]; returns the rows written.
pub(super) fn write_resource(
    statement: &mut rusqlite::CachedStatement<'_>,
    resource: &Resource,
) -> rusqlite::Result<usize> {
    with_resource_columns(resource, |columns| statement.execute(columns))
}

/// Runs `run` with a resource's columns as `?1`–`?6`, in the order of [`INSERT_RESOURCE`].
fn with_resource_columns<T>(
    resource: &Resource,
    run: impl FnOnce(&[&dyn rusqlite::ToSql]) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let parent_type = resource.parent.as_ref().map(|parent| &parent.resource_type);
    let parent_id = resource.parent.as_ref().map(|parent| &parent.id);
    run(&[
        &resource.resource_type,
        &resource.id,
        &resource.display_name,
        &parent_type,
        &parent_id,
        &resource.profile_json,
    ])
}

/// The resource in the columns `resource_type, id, display_name, parent_type, parent_id,
/// profile` of a row, starting at column `first`.
pub(super) fn resource_from_row_at(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Resource> {
    let parent_type: Option<String> = row.get(first + 3)?;
    let parent_id: Option<String> = row.get(first + 4)?;
    Ok(Resource {
        resource_type: row.get(first)?,
        id: row.get(first + 1)?,
        display_name: row.get(first + 2)?,
        parent: parent_type.zip(parent_id).map(|(resource_type, id)| ResourceRef { resource_type, id }),
        profile_json: row.get(first + 5)?,
    })
}

/// `.<name>.partial` beside the output.
fn partial_path(output: &Path) -> anyhow::Result<PathBuf> {
    let directory = output.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !directory.is_dir() {
        bail!("the output directory {} does not exist: create it or choose another --output", directory.display());
    }
    let file_name =
        output.file_name().context("the output path has no file name: give a file, e.g. --output sync.db")?;
    Ok(directory.join(format!(".{}.partial", file_name.to_string_lossy())))
}

/// The partial file and SQLite's companions of it.
fn sqlite_files(partial: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = partial.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [partial.to_path_buf(), with("-wal"), with("-shm")]
}

fn lock_sync(partial: &Path) -> anyhow::Result<File> {
    let (file, name) = open_lock_file(partial)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            bail!("another sync is writing {} right now: wait for it to finish", partial.display())
        }
        Err(std::fs::TryLockError::Error(err)) => Err(err).with_context(|| format!("cannot lock {}", name.display())),
    }
}

/// A partial file can be resumed when it was written recently by a sync of the same
/// connector and configuration.
fn is_resumable(partial: &Path, fingerprint: &str) -> bool {
    let recent = sqlite_files(partial)
        .iter()
        .filter_map(|file| std::fs::metadata(file).and_then(|meta| meta.modified()).ok())
        .max()
        .and_then(|modified| SystemTime::now().duration_since(modified).ok())
        .is_some_and(|age| age < RESUMABLE_FOR);
    if !recent {
        return false;
    }
    let Ok(connection) = open_untrusted(partial, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE) else {
        return false;
    };
    connection
        .query_row("SELECT value FROM sync_checkpoint WHERE key = 'fingerprint'", [], |row| row.get::<_, String>(0))
        .is_ok_and(|stored| stored == fingerprint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(id: &str) -> Resource {
        Resource {
            resource_type: "user".to_owned(),
            id: id.to_owned(),
            display_name: id.to_owned(),
            parent: None,
            profile_json: "{}".to_owned(),
        }
    }

    #[test]
    fn a_run_killed_while_completing_is_resumed_and_only_completed_again() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let output = dir.path().join("sync.db");
        let writer = SnapshotWriter::open(&output, "fingerprint").expect("a partial snapshot");
        writer.record_run_start("azure", "1", "2026-11-27T00:00:00Z").expect("a run record");
        let mut writer = writer;
        let checkpoint = PageProgress { listing: "resources:user", scope: "", next_page_token: None };
        writer.write_page(&[resource("a"), resource("b")], &[], &[], &[], &checkpoint).expect("a page");
        // `complete` got as far as its first step, then the process was killed.
        writer.mark_finished("2026-11-27T00:01:00Z", 10, 0).expect("the first step of complete");
        drop(writer);
        assert!(!output.exists(), "nothing was put in place");

        assert!(SnapshotWriter::resumable(&output, "fingerprint"), "the completed partial is resumable");
        let resumed = SnapshotWriter::open(&output, "fingerprint").expect("the partial reopens");
        assert!(resumed.resumed() && resumed.completed().expect("readable"), "it is known to be complete");
        resumed.complete("2026-11-27T00:02:00Z", 0, 0).expect("completing again");
        let snapshot = super::super::open_snapshot(&output).expect("the output is a snapshot");
        let resources: i64 = snapshot.query_row("SELECT count(*) FROM resources", [], |row| row.get(0)).unwrap();
        assert_eq!(resources, 2);
        assert!(!partial_path(&output).unwrap().exists(), "no partial file is left");
    }

    #[test]
    fn an_object_listed_again_is_counted_when_the_same_and_a_conflict_when_not() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut writer = SnapshotWriter::open(&dir.path().join("sync.db"), "fingerprint").expect("a partial snapshot");
        let checkpoint = PageProgress { listing: "resources:user", scope: "", next_page_token: Some("2") };
        writer.write_page(&[resource("a")], &[], &[], &[], &checkpoint).expect("the first page");
        writer.write_page(&[resource("a")], &[], &[], &[], &checkpoint).expect("the same object again");
        assert_eq!(writer.duplicates(), 1);
        let changed = Resource { profile_json: r#"{"department":"finance"}"#.to_owned(), ..resource("a") };
        let error = writer.write_page(&[changed], &[], &[], &[], &checkpoint).expect_err("other content");
        let conflict = error.downcast_ref::<ConflictingDuplicate>().expect("a conflict");
        assert_eq!((conflict.kind, conflict.id.as_str()), ("resource", "user:a"));
        assert_eq!(writer.duplicates(), 1, "the failed page counted nothing");
    }

    #[test]
    fn a_partial_that_did_not_complete_is_not_taken_for_complete() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let output = dir.path().join("sync.db");
        let writer = SnapshotWriter::open(&output, "fingerprint").expect("a partial snapshot");
        writer.record_run_start("azure", "1", "2026-11-27T00:00:00Z").expect("a run record");
        drop(writer);
        let resumed = SnapshotWriter::open(&output, "fingerprint").expect("the partial reopens");
        assert!(resumed.resumed() && !resumed.completed().expect("readable"));
    }

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path)
            .map(|meta| meta.permissions().mode() & 0o777)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
    }

    #[test]
    fn the_partial_its_wal_and_the_finished_snapshot_are_readable_only_by_their_owner() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let output = dir.path().join("sync.db");
        let mut writer = SnapshotWriter::open(&output, "fingerprint").expect("a partial snapshot");
        writer.record_run_start("azure", "1", "2026-11-27T00:00:00Z").expect("a run record");
        let checkpoint = PageProgress { listing: "resources:user", scope: "", next_page_token: None };
        writer.write_page(&[resource("a")], &[], &[], &[], &checkpoint).expect("a page");
        let partial = partial_path(&output).unwrap();
        for file in sqlite_files(&partial) {
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
        writer.complete("2026-11-27T00:01:00Z", 1, 0).expect("completed");
        assert_eq!(mode(&output), 0o600, "the finished snapshot");
    }

    #[test]
    fn the_copy_an_incremental_sync_starts_from_is_private_even_when_the_output_is_not() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("a temporary directory");
        let output = dir.path().join("sync.db");
        let writer = SnapshotWriter::open(&output, "fingerprint").unwrap();
        writer.record_run_start("azure", "1", "2026-11-27T00:00:00Z").unwrap();
        writer.complete("2026-11-27T00:01:00Z", 1, 0).unwrap();
        std::fs::set_permissions(&output, std::fs::Permissions::from_mode(0o644)).unwrap();
        let copy = SnapshotWriter::open_copy(&output).expect("a copy");
        assert_eq!(mode(&copy.partial), 0o600);
        let runs: i64 = copy.connection.query_row("SELECT count(*) FROM sync_runs", [], |row| row.get(0)).unwrap();
        assert_eq!(runs, 1, "the copy holds the output's rows");
    }
}
