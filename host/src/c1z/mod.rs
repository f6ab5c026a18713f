//! The `.c1z` format of ConductorOne's baton SDK, so that ConductorOne and the `baton` CLI read
//! what we sync: `C1ZF\0`, then a zstd stream of a SQLite database whose rows hold
//! `c1.connector.v2` protobuf messages (see `docs/baton.md`).
//!
//! We write it from our SQLite snapshot, which stays the source of truth (incremental syncs,
//! checkpoints and the audit trail live there); the c1z is an export of it.

mod objects;
pub mod proto;
pub mod reader;
mod schema;
mod writer;

use std::path::{Path, PathBuf};

pub use writer::{C1zWritten, write_c1z};

/// The first bytes of a c1z (format v1: SQLite in zstd).
pub const FILE_HEADER: &[u8; 5] = b"C1ZF\0";

/// For `sync -f <name>.c1z` (the Go connector's output): the SQLite snapshot written beside
/// it, `<name>.db`, from which the c1z is then written. `None` for any other output.
pub fn snapshot_beside(output: &Path) -> Option<PathBuf> {
    let is_c1z = output.extension().is_some_and(|extension| extension.eq_ignore_ascii_case("c1z"));
    is_c1z.then(|| output.with_extension("db"))
}
