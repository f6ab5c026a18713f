//! The audit trail of grants and revokes, kept in the snapshot file and carried across syncs.

use std::path::Path;

use anyhow::Context as _;
use rusqlite::params;

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
