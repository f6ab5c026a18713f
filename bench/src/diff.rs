//! What changed between two snapshots of one tenant: grants added and removed, resources
//! added, removed or changed, entitlements changed. SQLite compares the two files itself
//! (`EXCEPT`), so an L snapshot's million grants never have to fit in this process.

use std::path::Path;

use anyhow::Context as _;
use rusqlite::Connection;

use crate::digest::open_read_only;

/// A grant as the snapshot stores it, without its id (which is made of these three).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GrantRow {
    pub entitlement_id: String,
    pub principal_type: String,
    pub principal_id: String,
}

impl std::fmt::Display for GrantRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} → {}:{}", self.entitlement_id, self.principal_type, self.principal_id)
    }
}

/// A resource by its key, `(resource_type, id)`.
pub type ResourceKey = (String, String);

pub struct SnapshotDiff {
    pub grants_added: Vec<GrantRow>,
    pub grants_removed: Vec<GrantRow>,
    pub resources_added: Vec<ResourceKey>,
    pub resources_removed: Vec<ResourceKey>,
    /// Resources in both whose name, parent or profile differ.
    pub resources_changed: Vec<ResourceKey>,
    /// Entitlement rows in only one of the two.
    pub entitlements_changed: u64,
}

/// Compares the snapshot `after` with the earlier `before`.
pub fn diff(before: &Path, after: &Path) -> anyhow::Result<SnapshotDiff> {
    let connection = open_read_only(after)?;
    // An attached file is opened with the main connection's flags: read-only too.
    connection
        .execute("ATTACH DATABASE ?1 AS before", [before.to_string_lossy()])
        .with_context(|| format!("attaching {} to compare it with {}", before.display(), after.display()))?;
    let context = || format!("comparing {} with {}", after.display(), before.display());
    let grants = |from: &str, minus: &str| -> anyhow::Result<Vec<GrantRow>> {
        let sql = format!(
            "SELECT entitlement_id, principal_type, principal_id FROM {from}.grants
             EXCEPT SELECT entitlement_id, principal_type, principal_id FROM {minus}.grants ORDER BY 1, 2, 3"
        );
        let mut select = connection.prepare(&sql)?;
        let rows = select.query_map([], |row| {
            Ok(GrantRow { entitlement_id: row.get(0)?, principal_type: row.get(1)?, principal_id: row.get(2)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    let grants_added = grants("main", "before").with_context(context)?;
    let grants_removed = grants("before", "main").with_context(context)?;
    let resources_added = keys(
        &connection,
        "SELECT resource_type, id FROM main.resources EXCEPT SELECT resource_type, id FROM before.resources",
    )
    .with_context(context)?;
    let resources_removed = keys(
        &connection,
        "SELECT resource_type, id FROM before.resources EXCEPT SELECT resource_type, id FROM main.resources",
    )
    .with_context(context)?;
    let resources_changed = keys(
        &connection,
        "SELECT resource_type, id FROM (SELECT * FROM main.resources EXCEPT SELECT * FROM before.resources)
         INTERSECT SELECT resource_type, id FROM before.resources ORDER BY 1, 2",
    )
    .with_context(context)?;
    let entitlements_changed: i64 = connection
        .query_row(
            "SELECT (SELECT count(*) FROM (SELECT * FROM main.entitlements EXCEPT SELECT * FROM before.entitlements))
                  + (SELECT count(*) FROM (SELECT * FROM before.entitlements EXCEPT SELECT * FROM main.entitlements))",
            [],
            |row| row.get(0),
        )
        .with_context(context)?;
    Ok(SnapshotDiff {
        grants_added,
        grants_removed,
        resources_added,
        resources_removed,
        resources_changed,
        entitlements_changed: entitlements_changed as u64,
    })
}

fn keys(connection: &Connection, sql: &str) -> anyhow::Result<Vec<ResourceKey>> {
    let mut select = connection.prepare(sql)?;
    let rows = select.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
