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

#[cfg(test)]
mod tests {
    use super::objects::{GrantRow, grant_message};
    use super::proto::ResourceId;
    use super::*;

    fn id(resource_type: &str, resource: &str) -> ResourceId {
        ResourceId { resource_type: resource_type.into(), resource: resource.into() }
    }

    fn grant_to(entitlement: ResourceId, slug: &str, principal: ResourceId) -> GrantRow {
        GrantRow {
            id: format!(
                "{}:{}:{slug}:{}:{}",
                entitlement.resource_type, entitlement.resource, principal.resource_type, principal.resource
            ),
            entitlement_id: format!("{}:{}:{slug}", entitlement.resource_type, entitlement.resource),
            entitlement_resource: entitlement,
            entitlement_slug: slug.into(),
            principal,
        }
    }

    #[test]
    fn a_c1z_output_puts_the_snapshot_beside_it_with_the_db_extension() {
        assert_eq!(snapshot_beside(Path::new("/data/sync.c1z")), Some(PathBuf::from("/data/sync.db")));
        assert_eq!(snapshot_beside(Path::new("tenant.C1Z")), Some(PathBuf::from("tenant.db")));
        assert_eq!(snapshot_beside(Path::new("sync.db")), None);
        assert_eq!(snapshot_beside(Path::new("c1z")), None);
    }

    #[test]
    fn sync_times_are_written_as_baton_sdk_writes_them() {
        assert_eq!(schema::sqlite_time("2026-12-07T16:53:03Z").unwrap(), "2026-12-07 16:53:03");
        assert!(schema::sqlite_time("yesterday").is_err());
    }

    #[test]
    fn only_grants_held_by_a_group_expand_to_its_members() {
        let group = id("group", "g1");
        let (_, by_user) = grant_message(&grant_to(group.clone(), "members", id("user", "u1")));
        assert_eq!(by_user, None);
        let (grant, nested) = grant_message(&grant_to(group, "members", id("group", "g2")));
        let nested = nested.expect("a group in a group expands");
        assert_eq!(nested.entitlement_ids, ["group:g2:members"]);
        assert!(!nested.shallow, "nested members are members");
        assert_eq!(grant.annotations.len(), 1, "the annotation is in the grant too");
    }

    #[test]
    fn app_roles_assigned_to_a_group_reach_only_its_direct_members() {
        let app = id("enterprise_application", "a1");
        let (_, expandable) = grant_message(&grant_to(app.clone(), "assignment:r1", id("group", "g1")));
        assert!(expandable.expect("expands").shallow);
        let (_, owners) = grant_message(&grant_to(app, "owners", id("group", "g1")));
        assert!(!owners.expect("expands").shallow);
        let (_, rbac) = grant_message(&grant_to(id("subscription", "s1"), "role:r1", id("group", "g1")));
        assert!(!rbac.expect("expands").shallow, "Azure RBAC reaches nested members");
    }

    #[test]
    fn a_file_without_the_c1z_header_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sync.db");
        std::fs::write(&file, b"SQLite format 3\0").unwrap();
        let error = reader::C1zReader::open(&file).err().expect("refused");
        assert!(format!("{error:#}").contains("not a c1z file"), "{error:#}");
    }
}
