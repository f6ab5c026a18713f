//! A canonical digest of what a snapshot says about the tenant, so two syncs can be compared
//! whatever order their pages arrived in.
//!
//! Only the content tables count: the run's own facts (`sync_runs`: times, request counts),
//! checkpoints, delta tokens and the audit trail differ between equal syncs by design. Rows are
//! read in primary-key order (every column when a table has none) and hashed with SHA-256,
//! each value tagged with its type and length so different rows never hash alike; each table
//! has its own digest, so a mismatch says where it is.

use std::fmt;
use std::path::Path;

use anyhow::Context as _;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use sha2::{Digest as _, Sha256};

/// The tables that hold synced data, in the order they are hashed.
pub const CONTENT_TABLES: [&str; 5] = ["resource_types", "resources", "entitlements", "grants", "notices"];

/// Tables known to hold no synced data (see the module docs).
const RUN_TABLES: [&str; 8] = [
    "sync_runs",
    "sync_progress",
    "sync_checkpoint",
    "incremental_changed",
    "delta_tokens",
    "incremental_state",
    "provisioning_audit",
    "sqlite_sequence",
];

#[derive(Clone, PartialEq, Eq)]
pub struct SnapshotDigest {
    /// SHA-256 of the content tables' digests, hex.
    pub sha256: String,
    pub tables: Vec<TableDigest>,
    /// Tables neither hashed nor known to be run state: a newer schema's, worth a look.
    pub unknown_tables: Vec<String>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct TableDigest {
    pub name: &'static str,
    /// `None` when the snapshot lacks the table.
    pub rows: Option<u64>,
    sha256: [u8; 32],
}

impl SnapshotDigest {
    /// The first 16 hex digits, enough to tell digests apart in a report.
    pub fn short(&self) -> &str {
        &self.sha256[..16]
    }

    /// The content tables whose rows differ from `other`'s, to say where two syncs disagree.
    pub fn differing_tables(&self, other: &SnapshotDigest) -> Vec<&'static str> {
        self.tables
            .iter()
            .zip(&other.tables)
            .filter(|(mine, theirs)| mine != theirs)
            .map(|(mine, _)| mine.name)
            .collect()
    }
}

impl fmt::Display for SnapshotDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.short())?;
        for table in &self.tables {
            match table.rows {
                Some(rows) => write!(f, ", {} {rows}", table.name)?,
                None => write!(f, ", {} (absent)", table.name)?,
            }
        }
        Ok(())
    }
}

/// Opens a snapshot read-only: a check must not change what it checks.
pub fn open_read_only(path: &Path) -> anyhow::Result<Connection> {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .with_context(|| format!("opening the snapshot {} read-only", path.display()))
}

/// Reads the whole snapshot at `path`; fails when it cannot be read.
pub fn digest(path: &Path) -> anyhow::Result<SnapshotDigest> {
    let connection = open_read_only(path)?;
    let tables: Vec<String> = connection
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .and_then(|mut select| select.query_map([], |row| row.get(0))?.collect())
        .with_context(|| format!("listing the tables of {}", path.display()))?;
    let mut hash = Sha256::new();
    let mut digests = Vec::new();
    for table in CONTENT_TABLES {
        let mut table_hash = Sha256::new();
        let rows = if tables.iter().any(|name| name == table) {
            let count = hash_table(&connection, table, &mut table_hash)
                .with_context(|| format!("reading table {table} of {}", path.display()))?;
            Some(count)
        } else {
            table_hash.update(b"absent");
            None
        };
        let sha256: [u8; 32] = table_hash.finalize().into();
        hash.update(table.as_bytes());
        hash.update([0]);
        hash.update(sha256);
        digests.push(TableDigest { name: table, rows, sha256 });
    }
    let unknown_tables = tables
        .into_iter()
        .filter(|name| !CONTENT_TABLES.contains(&name.as_str()) && !RUN_TABLES.contains(&name.as_str()))
        .collect();
    let sha256 = hash.finalize().iter().map(|byte| format!("{byte:02x}")).collect();
    Ok(SnapshotDigest { sha256, tables: digests, unknown_tables })
}

/// Hashes the table's column names, then its rows in primary-key order; returns the row count.
fn hash_table(connection: &Connection, table: &str, hash: &mut Sha256) -> anyhow::Result<u64> {
    // (name, position in the primary key; 0 = not part of it)
    let columns: Vec<(String, i64)> = connection
        .prepare(&format!("PRAGMA table_info({})", quoted(table)))?
        .query_map([], |row| Ok((row.get::<_, String>("name")?, row.get::<_, i64>("pk")?)))?
        .collect::<Result<_, _>>()?;
    let mut key: Vec<&(String, i64)> = columns.iter().filter(|(_, pk)| *pk > 0).collect();
    key.sort_by_key(|(_, pk)| *pk);
    // Without a primary key, rows are only told apart by all their values.
    let order: Vec<String> = if key.is_empty() {
        columns.iter().map(|(name, _)| quoted(name)).collect()
    } else {
        key.iter().map(|(name, _)| quoted(name)).collect()
    };
    for (name, _) in &columns {
        hash.update(name.as_bytes());
        hash.update([0]);
    }
    let select = format!(
        "SELECT {} FROM {} ORDER BY {}",
        columns.iter().map(|(name, _)| quoted(name)).collect::<Vec<_>>().join(", "),
        quoted(table),
        order.join(", ")
    );
    let mut statement = connection.prepare(&select)?;
    let mut rows = statement.query([])?;
    let mut count = 0u64;
    while let Some(row) = rows.next()? {
        for index in 0..columns.len() {
            hash_value(row.get_ref(index)?, hash);
        }
        count += 1;
    }
    hash.update(count.to_le_bytes());
    Ok(count)
}

fn hash_value(value: ValueRef<'_>, hash: &mut Sha256) {
    let mut tagged = |tag: u8, bytes: &[u8]| {
        hash.update([tag]);
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    };
    match value {
        ValueRef::Null => tagged(0, &[]),
        ValueRef::Integer(integer) => tagged(1, &integer.to_le_bytes()),
        ValueRef::Real(real) => tagged(2, &real.to_bits().to_le_bytes()),
        ValueRef::Text(text) => tagged(3, text),
        ValueRef::Blob(blob) => tagged(4, blob),
    }
}

/// An SQL identifier in double quotes, so any table or column name is read as a name.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
