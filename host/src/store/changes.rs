//! Applying an incremental sync to a copy of the previous snapshot, and the delta tokens a
//! snapshot keeps for the next one.
//!
//! The copy is the same partial file a full sync writes (see `SnapshotWriter::open_copy`),
//! renamed over the output only when the sync completes, so a failed incremental sync leaves
//! the previous snapshot as it was. Its fingerprint names the previous snapshot's delta tokens,
//! so a killed incremental sync is resumed by the next one that starts from the same snapshot.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use rusqlite::{Connection, OptionalExtension, params};

use super::schema::SCHEMA_IF_MISSING;
use super::writer::{INSERT_RESOURCE, resource_from_row_at, write_resource};
use super::{SnapshotWriter, open_snapshot};
use crate::sandbox::{Grant, Resource};

/// Deletes a resource's entitlements, the grants on them and its notices (`?1` its type, `?2`
/// its id): grants go first, while the entitlements still name them.
const RESOURCE_ACCESS_DELETES: [&str; 3] = [
    "DELETE FROM grants WHERE entitlement_id IN
        (SELECT id FROM entitlements WHERE resource_type = ?1 AND resource_id = ?2)",
    "DELETE FROM entitlements WHERE resource_type = ?1 AND resource_id = ?2",
    "DELETE FROM notices WHERE resource_type = ?1 AND resource_id = ?2",
];

/// What a snapshot remembers for the next incremental sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaState {
    pub connector: String,
    /// Identifies the connector version and configuration the tokens were issued under.
    pub config_fingerprint: String,
    /// Resource type → delta token.
    pub tokens: BTreeMap<String, String>,
    /// When the full sync this snapshot's chain of incremental syncs started from began (RFC 3339).
    pub full_sync_started_at: String,
}

/// Reads the delta state of a completed snapshot; `None` when there is no usable snapshot
/// or it holds no delta tokens (a full sync is needed then).
pub fn previous_delta_state(output: &Path) -> Option<DeltaState> {
    let connection = open_snapshot(output).ok()?;
    read_delta_state(&connection).ok().flatten()
}

fn read_delta_state(connection: &Connection) -> anyhow::Result<Option<DeltaState>> {
    let has_tables: i64 = connection.query_row(
        "SELECT count(*) FROM sqlite_master WHERE name IN ('delta_tokens', 'incremental_state')",
        [],
        |row| row.get(0),
    )?;
    if has_tables < 2 {
        return Ok(None);
    }
    // A snapshot written before `full_sync_started_at` existed fails here: it gets a full sync.
    let Some((connector, config_fingerprint, full_sync_started_at)) = connection
        .query_row(
            "SELECT connector, config_fingerprint, full_sync_started_at FROM incremental_state WHERE id = 1",
            [],
            |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?)),
        )
        .optional()?
    else {
        return Ok(None);
    };
    let mut select = connection.prepare("SELECT resource_type, token FROM delta_tokens")?;
    let tokens = select
        .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    Ok(Some(DeltaState { connector, config_fingerprint, tokens, full_sync_started_at }))
}

impl SnapshotWriter {
    /// Starts an incremental sync from the previous snapshot in `output`: everything that
    /// describes a run (its record, the resource types, the audit trail copied at completion,
    /// the delta tokens) is cleared; resources, entitlements, grants and notices stay.
    pub fn continue_from(output: &Path, fingerprint: &str) -> anyhow::Result<Self> {
        if Self::resumable(output, fingerprint) {
            let writer = Self::open(output, fingerprint)?;
            if writer.resumed() {
                return Ok(writer);
            }
        }
        let writer = Self::open_copy(output)?;
        writer.connection.execute_batch(SCHEMA_IF_MISSING).context("cannot upgrade the previous snapshot")?;
        writer
            .connection
            .execute_batch(
                "DELETE FROM sync_runs; DELETE FROM resource_types; DELETE FROM provisioning_audit;
                 DELETE FROM delta_tokens; DELETE FROM incremental_state;
                 DELETE FROM sync_progress; DELETE FROM sync_checkpoint; DELETE FROM incremental_changed;
                 DELETE FROM notices WHERE resource_type IS NULL;
                 CREATE INDEX IF NOT EXISTS grants_by_entitlement ON grants (entitlement_id);
                 CREATE INDEX IF NOT EXISTS grants_by_principal ON grants (principal_type, principal_id);",
            )
            .context("cannot reset the copy of the previous snapshot")?;
        // Written last: a copy killed before this point is not resumed, it is copied again.
        writer
            .connection
            .execute("INSERT INTO sync_checkpoint (key, value) VALUES ('fingerprint', ?1)", params![fingerprint])?;
        Ok(writer)
    }

    /// Creates or replaces resources, as a change reports them complete, and remembers them
    /// as changed in this run (see [`SnapshotWriter::changed_resources`]).
    pub fn upsert_resources(&mut self, resources: &[Resource]) -> anyhow::Result<()> {
        let transaction = self.connection.transaction()?;
        {
            let mut upsert = transaction.prepare_cached(&format!("INSERT OR REPLACE {INSERT_RESOURCE}"))?;
            let mut changed = transaction
                .prepare_cached("INSERT OR IGNORE INTO incremental_changed (resource_type, id) VALUES (?1, ?2)")?;
            for resource in resources {
                changed.execute(params![resource.resource_type, resource.id])?;
                write_resource(&mut upsert, resource)?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    /// Removes deleted resources with everything that hangs on them: their entitlements, the
    /// grants on those, the grants they hold as principals, and notices about them.
    pub fn remove_resources(&mut self, resource_type: &str, ids: &[String]) -> anyhow::Result<()> {
        let transaction = self.connection.transaction()?;
        for id in ids {
            for statement in RESOURCE_ACCESS_DELETES.iter().chain(&[
                "DELETE FROM grants WHERE principal_type = ?1 AND principal_id = ?2",
                "DELETE FROM resources WHERE resource_type = ?1 AND id = ?2",
                "DELETE FROM incremental_changed WHERE resource_type = ?1 AND id = ?2",
            ]) {
                transaction.execute(statement, params![resource_type, id])?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    /// Adds grants whose entitlement the snapshot holds (a change may name a resource that
    /// is not synced, e.g. a group left out by a filter); returns how many were new.
    pub fn add_grants(&mut self, grants: &[Grant]) -> anyhow::Result<u64> {
        let transaction = self.connection.transaction()?;
        let mut added = 0;
        {
            let mut insert = transaction.prepare_cached(
                "INSERT OR IGNORE INTO grants (id, entitlement_id, principal_type, principal_id)
                 SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM entitlements WHERE id = ?2)",
            )?;
            for grant in grants {
                added += insert.execute(params![
                    grant.id,
                    grant.entitlement_id,
                    grant.principal.resource_type,
                    grant.principal.id
                ])? as u64;
            }
        }
        transaction.commit()?;
        Ok(added)
    }

    /// Removes the grants of `entitlement_id` to a principal with that id, whatever its type.
    pub fn remove_grants(&mut self, removals: &[(String, String)]) -> anyhow::Result<()> {
        let transaction = self.connection.transaction()?;
        {
            let mut delete =
                transaction.prepare_cached("DELETE FROM grants WHERE entitlement_id = ?1 AND principal_id = ?2")?;
            for (entitlement_id, principal_id) in removals {
                delete.execute(params![entitlement_id, principal_id])?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    /// Forgets the entitlements and grants of every resource of a type (and notices about
    /// those resources), before they are listed again.
    pub fn clear_access_of_type(&mut self, resource_type: &str) -> anyhow::Result<()> {
        let transaction = self.connection.transaction()?;
        for statement in [
            "DELETE FROM grants WHERE entitlement_id IN (SELECT id FROM entitlements WHERE resource_type = ?1)",
            "DELETE FROM entitlements WHERE resource_type = ?1",
            "DELETE FROM notices WHERE resource_type = ?1",
        ] {
            transaction.execute(statement, params![resource_type])?;
        }
        transaction.commit()?;
        Ok(())
    }

    /// Forgets every resource of a type and its access, before the type is listed again.
    /// Grants its resources hold elsewhere are kept: they belong to other resources' listings.
    pub fn clear_type(&mut self, resource_type: &str) -> anyhow::Result<()> {
        self.clear_access_of_type(resource_type)?;
        self.connection.execute("DELETE FROM resources WHERE resource_type = ?1", params![resource_type])?;
        Ok(())
    }

    /// Forgets the entitlements of one resource, the grants on them and its notices, before
    /// they are listed again.
    pub fn clear_access_of(&mut self, resource: &Resource) -> anyhow::Result<()> {
        let transaction = self.connection.transaction()?;
        for statement in RESOURCE_ACCESS_DELETES {
            transaction.execute(statement, params![resource.resource_type, resource.id])?;
        }
        transaction.commit()?;
        Ok(())
    }

    /// Forgets the entitlements (not the grants) of one resource, before they are listed again.
    pub fn clear_entitlements_of(&mut self, resource: &Resource) -> anyhow::Result<()> {
        self.connection.execute(
            "DELETE FROM entitlements WHERE resource_type = ?1 AND resource_id = ?2",
            params![resource.resource_type, resource.id],
        )?;
        Ok(())
    }

    /// The resources of a type upserted in this run and not removed since, in id order.
    pub fn changed_resources(&self, resource_type: &str) -> anyhow::Result<Vec<Resource>> {
        let mut select = self.connection.prepare(
            "SELECT r.resource_type, r.id, r.display_name, r.parent_type, r.parent_id, r.profile
             FROM incremental_changed c JOIN resources r ON r.resource_type = c.resource_type AND r.id = c.id
             WHERE c.resource_type = ?1 ORDER BY c.id",
        )?;
        let rows = select.query_map(params![resource_type], |row| resource_from_row_at(row, 0))?;
        rows.collect::<Result<_, _>>().context("cannot read the resources changed in this run")
    }

    /// Keeps the delta token a type's changes ended with until the run completes, so a resumed
    /// run that finds those changes applied still has it.
    pub fn stage_delta_token(&mut self, resource_type: &str, token: &str) -> anyhow::Result<()> {
        self.connection.execute(
            "INSERT OR REPLACE INTO sync_checkpoint (key, value) VALUES (?1, ?2)",
            params![format!("delta_token:{resource_type}"), token],
        )?;
        Ok(())
    }

    pub fn staged_delta_token(&self, resource_type: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .connection
            .query_row(
                "SELECT value FROM sync_checkpoint WHERE key = ?1",
                params![format!("delta_token:{resource_type}")],
                |row| row.get(0),
            )
            .optional()?)
    }

    pub fn write_delta_state(&mut self, state: &DeltaState) -> anyhow::Result<()> {
        let transaction = self.connection.transaction()?;
        transaction.execute_batch("DELETE FROM delta_tokens; DELETE FROM incremental_state;")?;
        transaction.execute(
            "INSERT INTO incremental_state (id, connector, config_fingerprint, full_sync_started_at)
             VALUES (1, ?1, ?2, ?3)",
            params![state.connector, state.config_fingerprint, state.full_sync_started_at],
        )?;
        for (resource_type, token) in &state.tokens {
            transaction.execute(
                "INSERT INTO delta_tokens (resource_type, token) VALUES (?1, ?2)",
                params![resource_type, token],
            )?;
        }
        transaction.commit()?;
        Ok(())
    }
}
