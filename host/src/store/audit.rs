//! The audit trail of grants and revokes, kept in the snapshot file and carried across syncs.

use std::path::Path;

use anyhow::Context as _;
use rusqlite::{Connection, params};

use super::schema::create_schema;

/// An exclusive lock on `<output>.lock`, held while the snapshot file is replaced or an audit
/// row is written, so neither loses the other's work.
pub fn lock_output(output: &Path) -> anyhow::Result<std::fs::File> {
    let (file, name) = open_lock_file(output)?;
    file.lock().with_context(|| format!("cannot lock {}", name.display()))?;
    Ok(file)
}

/// Opens (creating it) the lock file `<path>.lock`; the caller decides how to lock it.
pub(super) fn open_lock_file(path: &Path) -> anyhow::Result<(std::fs::File, std::path::PathBuf)> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let name = std::path::PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&name)
        .with_context(|| format!("cannot open the lock file {}", name.display()))?;
    Ok((file, name))
}

/// One grant or revoke, as the audit trail keeps it.
pub struct AuditRecord<'a> {
    /// When the change was started.
    pub at: &'a str,
    pub action: &'a str,
    pub entitlement_id: &'a str,
    pub principal_type: &'a str,
    pub principal_id: &'a str,
    /// `pending` from before the call until it is settled; a row left `pending` belongs to a
    /// process that stopped during the call (the change may have been made).
    pub outcome: &'a str,
    pub grant_id: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub error: Option<&'a str>,
    pub retried: bool,
}

/// The outcome of a row written before the change and not settled yet.
pub const PENDING: &str = "pending";

/// A row written as `pending` before a change was started, to be settled once it ends.
#[derive(Debug)]
pub struct PendingAudit {
    id: i64,
}

impl PendingAudit {
    pub fn id(&self) -> i64 {
        self.id
    }
}

/// Records that a change is about to be made (outcome `pending`). A change must not start
/// unless this succeeds: a change the trail does not show is what the trail exists to prevent.
pub fn begin_audit(output: &Path, record: &AuditRecord<'_>) -> anyhow::Result<PendingAudit> {
    let connection = open_audit(output)?;
    insert(&connection, &AuditRecord { outcome: PENDING, ..*record })?;
    Ok(PendingAudit { id: connection.last_insert_rowid() })
}

/// Settles a pending row with how the change ended. A row that is gone (the file was replaced
/// by one without it) is written again, settled, rather than lost.
pub fn settle_audit(output: &Path, pending: &PendingAudit, record: &AuditRecord<'_>) -> anyhow::Result<()> {
    let connection = open_audit(output)?;
    let updated = connection.execute(
        "UPDATE provisioning_audit SET outcome = ?2, grant_id = ?3, request_id = ?4, error = ?5, retried = ?6
         WHERE id = ?1 AND outcome = ?7",
        params![pending.id, record.outcome, record.grant_id, record.request_id, record.error, record.retried, PENDING],
    )?;
    if updated == 0 {
        insert(&connection, record)?;
    }
    Ok(())
}

/// Opens `output` for the audit trail, creating the file (schema only, no snapshot) if no sync
/// has written it yet. The returned connection holds the output's lock until it is dropped.
fn open_audit(output: &Path) -> anyhow::Result<AuditConnection> {
    let lock = lock_output(output)?;
    super::files::open_private_file(output)
        .with_context(|| format!("cannot open {} to record the audit trail", output.display()))?;
    let connection = super::untrusted::open_untrusted(output, rusqlite::OpenFlags::default())
        .with_context(|| format!("cannot open {} to record the audit trail", output.display()))?;
    let has_schema: bool =
        connection.query_row("SELECT count(*) FROM sqlite_master WHERE name = 'sync_runs'", [], |row| {
            row.get::<_, i64>(0).map(|count| count > 0)
        })?;
    if !has_schema {
        create_schema(&connection).context("cannot create the snapshot schema")?;
    }
    Ok(AuditConnection { connection, _lock: lock })
}

/// A connection to the audit trail and the output lock it is used under.
struct AuditConnection {
    connection: Connection,
    _lock: std::fs::File,
}

impl std::ops::Deref for AuditConnection {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.connection
    }
}

fn insert(connection: &Connection, record: &AuditRecord<'_>) -> anyhow::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(outcome: &str) -> AuditRecord<'_> {
        AuditRecord {
            at: "2026-12-07T17:00:00Z",
            action: "grant",
            entitlement_id: "group:g:members",
            principal_type: "user",
            principal_id: "u",
            outcome,
            grant_id: None,
            request_id: None,
            error: None,
            retried: false,
        }
    }

    fn outcomes(output: &Path) -> Vec<(i64, String, Option<String>)> {
        let connection = Connection::open(output).unwrap();
        let mut statement =
            connection.prepare("SELECT id, outcome, error FROM provisioning_audit ORDER BY id").unwrap();
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn a_change_is_pending_until_it_is_settled() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("sync.db");
        let pending = begin_audit(&output, &record("granted")).unwrap();
        assert_eq!(
            outcomes(&output),
            [(pending.id(), PENDING.to_owned(), None)],
            "written as pending, whatever it says"
        );
        let settled = AuditRecord { error: Some("the connector trapped"), ..record("unknown") };
        settle_audit(&output, &pending, &settled).unwrap();
        assert_eq!(outcomes(&output), [(pending.id(), "unknown".to_owned(), Some("the connector trapped".to_owned()))]);
    }

    #[test]
    fn a_pending_row_that_is_gone_is_written_again_settled() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("sync.db");
        let pending = begin_audit(&output, &record("granted")).unwrap();
        Connection::open(&output).unwrap().execute("DELETE FROM provisioning_audit", []).unwrap();
        settle_audit(&output, &pending, &record("granted")).unwrap();
        let rows = outcomes(&output);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].1, "granted");
    }

    #[test]
    fn no_pending_row_can_be_written_where_the_output_cannot_be_opened() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("missing-directory").join("sync.db");
        assert!(begin_audit(&output, &record("granted")).is_err());
    }
}
