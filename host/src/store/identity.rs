//! Whose data a snapshot holds. Graph and ARM have the same URLs for every tenant, so the
//! connector's configuration cannot tell two tenants apart: the directory, the app
//! registration and the login endpoint can. They go into the fingerprints that decide whether
//! a partial file is resumed or a snapshot continued incrementally, and are recorded in clear
//! (none is a secret) so a run can say why it does neither.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::untrusted::open_untrusted;

/// The tenant, the app registration that reads it and the login endpoint that issues its tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotIdentity {
    pub tenant_id: String,
    pub client_id: String,
    pub login_url: String,
}

impl SnapshotIdentity {
    /// Directory and application ids are GUIDs (or a domain name), compared without case.
    pub fn new(tenant_id: &str, client_id: &str, login_url: &str) -> Self {
        SnapshotIdentity {
            tenant_id: tenant_id.to_ascii_lowercase(),
            client_id: client_id.to_ascii_lowercase(),
            login_url: login_url.trim_end_matches('/').to_owned(),
        }
    }

    /// Adds the identity to a fingerprint being computed.
    pub fn hash_into(&self, hash: &mut Sha256) {
        for part in [&self.tenant_id, &self.client_id, &self.login_url] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
    }

    /// What differs from `this_sync`, in words, e.g. `tenant a (this sync: b)`.
    pub fn differences(&self, this_sync: &SnapshotIdentity) -> String {
        [
            ("tenant", &self.tenant_id, &this_sync.tenant_id),
            ("client id", &self.client_id, &this_sync.client_id),
            ("login URL", &self.login_url, &this_sync.login_url),
        ]
        .into_iter()
        .filter(|(_, recorded, current)| recorded != current)
        .map(|(what, recorded, current)| format!("{what} {recorded} (this sync: {current})"))
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// Records whose data the file holds (one row; a later run replaces it).
pub(super) fn record_identity(connection: &Connection, identity: &SnapshotIdentity) -> rusqlite::Result<()> {
    connection.execute(
        "INSERT OR REPLACE INTO snapshot_identity (id, tenant_id, client_id, login_url) VALUES (1, ?1, ?2, ?3)",
        params![identity.tenant_id, identity.client_id, identity.login_url],
    )?;
    Ok(())
}

/// What a snapshot or partial file says about whose data it holds.
#[derive(Debug, PartialEq, Eq)]
pub enum RecordedIdentity {
    /// No such file, or not one a sync wrote.
    NoFile,
    /// Written by a version that did not record it.
    Unrecorded,
    Recorded(SnapshotIdentity),
}

/// Reads the identity recorded in `path`. A file that cannot be read as a snapshot counts as
/// none: the callers only explain a decision the fingerprints have made already.
pub fn recorded_identity(path: &Path) -> RecordedIdentity {
    if !path.is_file() {
        return RecordedIdentity::NoFile;
    }
    let Ok(connection) = open_untrusted(path, OpenFlags::SQLITE_OPEN_READ_WRITE) else {
        return RecordedIdentity::NoFile;
    };
    // A file with no run is none a sync wrote (e.g. only an audit trail, from `grant`).
    let has_runs = connection
        .query_row("SELECT count(*) FROM sync_runs", [], |row| row.get::<_, i64>(0))
        .is_ok_and(|count| count > 0);
    if !has_runs {
        return RecordedIdentity::NoFile;
    }
    let recorded = connection
        .query_row("SELECT tenant_id, client_id, login_url FROM snapshot_identity WHERE id = 1", [], |row| {
            Ok(SnapshotIdentity { tenant_id: row.get(0)?, client_id: row.get(1)?, login_url: row.get(2)? })
        })
        .optional();
    match recorded {
        Ok(Some(identity)) => RecordedIdentity::Recorded(identity),
        _ => RecordedIdentity::Unrecorded,
    }
}
