//! The sync output: one SQLite file per tenant.
//!
//! A sync writes into a partial file next to the output and renames it over the output only
//! when the sync completed, so readers always see the previous complete snapshot, and a failed
//! or killed sync leaves it intact. Each page is written in one transaction together with the
//! checkpoint saying which page comes next, so a killed sync resumes where it stopped.

mod audit;
mod changes;
mod files;
mod identity;
mod schema;
mod untrusted;
mod writer;

use std::path::Path;

use anyhow::Context as _;
use rusqlite::{Connection, OptionalExtension};

use crate::sandbox::{EntitlementPurpose, NoticeKind};
pub use audit::{AuditRecord, PENDING, PendingAudit, begin_audit, lock_output, settle_audit};
pub use changes::{DeltaState, previous_delta_state};
pub use files::create_private_dir;
pub use identity::{RecordedIdentity, SnapshotIdentity, recorded_identity};
pub use writer::{ConflictingDuplicate, ListingProgress, PageProgress, SnapshotWriter, SyncCounts};

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

/// Opens a finished snapshot for reading.
pub fn open_snapshot(path: &Path) -> anyhow::Result<Connection> {
    if !path.is_file() {
        anyhow::bail!("{} does not exist: run `connector-host sync --output {}` first", path.display(), path.display());
    }
    let connection = untrusted::open_untrusted(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let finished: Option<Option<String>> = connection
        .query_row("SELECT finished_at FROM sync_runs WHERE id = 1", [], |row| row.get(0))
        .optional()
        .with_context(|| format!("{} is not a sync snapshot of connector-host", path.display()))?;
    match finished {
        Some(Some(_)) => Ok(connection),
        _ => anyhow::bail!("{} holds no completed sync: run the sync again", path.display()),
    }
}
