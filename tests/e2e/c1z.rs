//! The c1z holds what `export` holds, as baton reads it: every row's protobuf decodes and agrees
//! with the columns baton filters on, ids and counts per type equal the export's, traits and
//! expansions are as baton expects, and the bytes are the same for the same snapshot.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use connector_host::c1z::proto::{
    AccountType, Annotation, AppTrait, ChildResourceType, GrantExpandable, GroupTrait, Purpose, ResourceStatus,
    RoleTrait, Trait, UserStatusValue, UserTrait,
};
use connector_host::c1z::reader::C1zReader;
use fake_azure::{Tenant, TenantShape};
use prost::Message as _;
use serde_json::Value;

use crate::support::{Harness, Snapshot, assert_same_map, assert_same_set, assert_success, export, run_host};

async fn export_c1z(snapshot: &Path, output: &Path) {
    let args = [
        "export",
        "--input",
        &snapshot.display().to_string(),
        "--format",
        "c1z",
        "--output",
        &output.display().to_string(),
    ];
    assert_success(&run_host(&args.map(str::to_owned), &[]).await);
}

/// Whether `baton` resolves an annotation of this type: all we write are messages of baton-sdk
/// v0.7.27, the SDK of the newest `baton` (267e3b8). Its `-o json` listings fail whole on one
/// annotation it cannot resolve, as they did on `NonHumanIdentityTrait` (baton-sdk v0.11.0).
fn baton_resolves(any: &prost_types::Any) -> bool {
    [
        UserTrait::type_url(),
        GroupTrait::type_url(),
        RoleTrait::type_url(),
        AppTrait::type_url(),
        ChildResourceType::type_url(),
        GrantExpandable::type_url(),
    ]
    .contains(&any.type_url)
}

fn texts<'a>(exported: &'a Value, list: &str) -> impl Iterator<Item = &'a Value> {
    exported[list].as_array().unwrap_or_else(|| panic!("{list} is an array")).iter()
}

fn field(value: &Value, key: &str) -> String {
    value[key].as_str().unwrap_or_else(|| panic!("{key} is a string in {value}")).to_owned()
}

/// The latest sync of `c1z` holds exactly the export's objects, each decoded and consistent.
fn assert_c1z_matches_export(c1z: &Path, exported: &Value) -> C1zReader {
    let reader = C1zReader::open(c1z).expect("our reader opens the c1z");
    let runs = reader.sync_runs().expect("sync runs");
    assert_eq!(runs.len(), 1, "one sync run: {runs:?}");
    assert_eq!(runs[0].sync_type, "full");
    assert!(runs[0].ended_at.is_some(), "the run is complete: {runs:?}");
    let sync = reader.latest_full_sync().expect("a finished full sync");
    assert_eq!(sync, runs[0]);
    let expected = Snapshot::of(exported);

    let types: BTreeMap<String, Vec<i32>> = reader
        .resource_types(&sync.sync_id)
        .expect("resource types decode")
        .into_iter()
        .map(|kind| (kind.id, kind.traits))
        .collect();
    let exported_types: BTreeSet<String> = texts(exported, "resource_types").map(|kind| field(kind, "id")).collect();
    assert_same_set("resource types", &types.keys().cloned().collect(), &exported_types);
    for (kind, expected_trait) in [
        ("user", Trait::User),
        ("managed_identity", Trait::User),
        ("group", Trait::Group),
        ("role", Trait::Role),
        ("enterprise_application", Trait::App),
    ] {
        assert_eq!(types[kind], [expected_trait as i32], "{kind} carries the {expected_trait:?} trait");
    }
    for kind in ["tenant", "subscription", "resource_group"] {
        assert!(types[kind].is_empty(), "{kind} carries no trait");
    }

    let resources = reader.resources(&sync.sync_id).expect("resources decode");
    let in_c1z: BTreeMap<(String, String), Option<(String, String)>> = resources
        .iter()
        .map(|resource| {
            let id = resource.id.clone().expect("a resource id");
            let parent = resource.parent_resource_id.clone().map(|parent| (parent.resource_type, parent.resource));
            ((id.resource_type, id.resource), parent)
        })
        .collect();
    assert_eq!(in_c1z.len(), resources.len(), "no resource twice");
    assert_same_map("resources", &in_c1z, &expected.resources);
    let names: BTreeMap<(String, String), String> = texts(exported, "resources")
        .map(|resource| ((field(resource, "resource_type"), field(resource, "id")), field(resource, "display_name")))
        .collect();
    for resource in &resources {
        let id = resource.id.clone().expect("a resource id");
        assert_eq!(resource.display_name, names[&(id.resource_type.clone(), id.resource.clone())], "{id:?}");
        assert!(resource.profile.is_some(), "{id:?} carries its profile");
        let has = |type_url: String| resource.annotations.iter().any(|any| any.type_url == type_url);
        assert!(resource.annotations.iter().all(baton_resolves), "{id:?}: {:?}", resource.annotations);
        match id.resource_type.as_str() {
            "group" => assert!(has(GroupTrait::type_url()), "{id:?} has the group trait"),
            "role" => assert!(has(RoleTrait::type_url()), "{id:?} has the role trait"),
            "enterprise_application" => assert!(has(AppTrait::type_url()), "{id:?} has the app trait"),
            "managed_identity" => {
                let service = UserTrait::find_in(&resource.annotations).expect("decodes").expect("a user trait");
                assert_eq!(service.account_type, AccountType::Service as i32, "{id:?} is a service account");
                assert!(service.status.is_some(), "{id:?} says whether it is enabled");
            }
            "user" => assert!(has(UserTrait::type_url()), "{id:?} has the user trait"),
            _ => {}
        }
        let children: Vec<String> = resource
            .annotations
            .iter()
            .filter(|any| any.type_url == ChildResourceType::type_url())
            .map(|any| ChildResourceType::decode(any.value.as_slice()).expect("a child type").resource_type_id)
            .collect();
        let expected_children: &[&str] = match id.resource_type.as_str() {
            "tenant" => &["subscription"],
            "subscription" => &["resource_group"],
            _ => &[],
        };
        assert_eq!(children, expected_children, "child types of {id:?}");
    }

    let entitlements = reader.entitlements(&sync.sync_id).expect("entitlements decode");
    let by_id: BTreeMap<String, _> =
        entitlements.iter().map(|entitlement| (entitlement.id.clone(), entitlement)).collect();
    assert_eq!(by_id.len(), entitlements.len(), "no entitlement twice");
    assert_same_set("entitlements", &by_id.keys().cloned().collect(), &expected.entitlements);
    for exported_entitlement in texts(exported, "entitlements") {
        let entitlement = by_id[&field(exported_entitlement, "id")];
        let resource = entitlement.resource.clone().and_then(|resource| resource.id).expect("its resource");
        assert_eq!(resource.resource_type, field(exported_entitlement, "resource_type"));
        assert_eq!(resource.resource, field(exported_entitlement, "resource_id"));
        assert_eq!(entitlement.slug, field(exported_entitlement, "slug"));
        assert_eq!(entitlement.display_name, field(exported_entitlement, "display_name"));
        let purpose = match field(exported_entitlement, "purpose").as_str() {
            "assignment" => Purpose::Assignment,
            "ownership" => Purpose::Ownership,
            "permission" => Purpose::Permission,
            other => panic!("unknown purpose {other}"),
        };
        assert_eq!(entitlement.purpose, purpose as i32, "{}", entitlement.id);
        assert!(!entitlement.grantable_to.is_empty(), "{} says who can hold it", entitlement.id);
    }

    let grants = reader.grants(&sync.sync_id).expect("grants decode");
    let grant_ids: BTreeSet<String> = grants.iter().map(|stored| stored.grant.id.clone()).collect();
    assert_eq!(grant_ids.len(), grants.len(), "no grant twice");
    assert_same_set("grants", &grant_ids, &expected.grants);
    let exported_grants: BTreeMap<String, (String, String, String)> = texts(exported, "grants")
        .map(|grant| {
            (
                field(grant, "id"),
                (field(grant, "entitlement_id"), field(grant, "principal_type"), field(grant, "principal_id")),
            )
        })
        .collect();
    for stored in &grants {
        assert!(stored.grant.annotations.iter().all(baton_resolves), "{}", stored.grant.id);
        let (entitlement_id, principal_type, principal_id) = &exported_grants[&stored.grant.id];
        let entitlement = stored.grant.entitlement.clone().expect("its entitlement");
        assert_eq!(&entitlement.id, entitlement_id);
        let principal = stored.grant.principal.clone().and_then(|principal| principal.id).expect("its principal");
        assert_eq!((&principal.resource_type, &principal.resource), (principal_type, principal_id));
        match (principal_type.as_str(), &stored.expansion) {
            ("group", Some(expansion)) => {
                assert_eq!(expansion.entitlement_ids, [format!("group:{principal_id}:members")], "{}", stored.grant.id);
                let app_role = entitlement_id.starts_with("enterprise_application:")
                    && entitlement.slug.starts_with("assignment:");
                assert_eq!(expansion.shallow, app_role, "only app roles stop at direct members: {}", stored.grant.id);
                assert!(stored.needs_expansion, "{} is left for the reader to expand", stored.grant.id);
            }
            ("group", None) => panic!("{} has a group principal and no GrantExpandable", stored.grant.id),
            (_, None) => assert!(!stored.needs_expansion),
            (_, Some(expansion)) => panic!("{} is not a group's yet expands: {expansion:?}", stored.grant.id),
        }
    }
    reader
}

/// Each user's trait says what the tenant says: login, email, status, account type.
fn assert_user_traits(reader: &C1zReader, tenant: &Tenant) {
    let sync = reader.latest_full_sync().expect("a sync");
    let resources = reader.resources(&sync.sync_id).expect("resources");
    for user in &tenant.users {
        let resource = resources
            .iter()
            .find(|resource| {
                resource.id.as_ref().is_some_and(|id| id.resource_type == "user" && id.resource == user.id)
            })
            .unwrap_or_else(|| panic!("user {} is in the c1z", user.id));
        let user_trait = UserTrait::find_in(&resource.annotations).expect("decodes").expect("a user trait");
        assert_eq!(user_trait.login, user.user_principal_name);
        let emails: Vec<(&str, bool)> =
            user_trait.emails.iter().map(|email| (email.address.as_str(), email.is_primary)).collect();
        assert_eq!(emails, user.mail.as_deref().map(|mail| (mail, true)).into_iter().collect::<Vec<_>>());
        let (status, resource_status) = if user.account_enabled {
            (UserStatusValue::Enabled, ResourceStatus::Enabled)
        } else {
            (UserStatusValue::Disabled, ResourceStatus::Disabled)
        };
        assert_eq!(user_trait.status.map(|status| status.status), Some(status as i32), "user {}", user.id);
        assert_eq!(
            resource.status.clone().map(|status| status.status),
            Some(resource_status as i32),
            "user {}",
            user.id
        );
        let account_type = match user.mailbox_purpose.as_deref() {
            Some("user" | "linked") => AccountType::Human,
            Some("shared" | "room" | "equipment") => AccountType::Service,
            _ => AccountType::Unspecified,
        };
        assert_eq!(user_trait.account_type, account_type as i32, "user {} ({:?})", user.id, user.mailbox_purpose);
        assert_eq!(user_trait.employee_ids, user.employee_id.iter().cloned().collect::<Vec<_>>());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sample_tenant_c1z_holds_what_export_holds() {
    let harness = Harness::start(Tenant::sample()).await;
    let snapshot = harness.path("sync.db");
    assert_success(&harness.sync(&snapshot, &["--mailboxSettings"]).await);
    let c1z = harness.path("sync.c1z");
    export_c1z(&snapshot, &c1z).await;
    let reader = assert_c1z_matches_export(&c1z, &export(&snapshot).await);
    let tenant = harness.fake.tenant();
    assert_user_traits(&reader, &tenant);
    let sync = reader.latest_full_sync().expect("a sync");
    let nested = reader
        .grants(&sync.sync_id)
        .expect("grants")
        .into_iter()
        .filter(|stored| stored.grant.id.contains(":members:group:"))
        .count();
    assert!(nested > 0, "the sample has a group in a group, so some membership grant expands");
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_with_a_c1z_output_writes_the_snapshot_beside_it_and_the_c1z_from_it() {
    let dir = tempfile::tempdir().expect("a directory");
    let c1z = dir.path().join("sync.c1z");
    assert_success(&run_host(&["demo".into(), "-f".into(), c1z.display().to_string()], &[]).await);
    let snapshot = dir.path().join("sync.db");
    assert!(snapshot.exists(), "the snapshot is written beside the c1z");
    assert_c1z_matches_export(&c1z, &export(&snapshot).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_tenant_c1z_holds_what_export_holds() {
    let shape = TenantShape {
        users: 60,
        groups: 12,
        members_per_group: 8,
        service_principals: 5,
        app_role_assignments_per_app: 4,
        subscriptions: 2,
        resource_groups_per_subscription: 3,
        rbac_assignments_per_subscription: 6,
    };
    let harness = Harness::start(Tenant::generate(&shape)).await;
    let snapshot = harness.path("sync.db");
    assert_success(&harness.sync(&snapshot, &["--page-size", "7", "--mailboxSettings"]).await);
    let c1z = harness.path("sync.c1z");
    export_c1z(&snapshot, &c1z).await;
    let reader = assert_c1z_matches_export(&c1z, &export(&snapshot).await);
    assert_user_traits(&reader, &harness.fake.tenant());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_exports_of_one_snapshot_are_byte_identical() {
    let harness = Harness::start(Tenant::sample()).await;
    let snapshot = harness.path("sync.db");
    assert_success(&harness.sync(&snapshot, &[]).await);
    let (first, second) = (harness.path("first.c1z"), harness.path("second.c1z"));
    export_c1z(&snapshot, &first).await;
    export_c1z(&snapshot, &second).await;
    let first_bytes = std::fs::read(&first).expect("the first c1z");
    assert!(first_bytes.starts_with(b"C1ZF\0"), "the c1z header");
    assert_eq!(first_bytes, std::fs::read(&second).expect("the second c1z"), "same snapshot, same bytes");
    export_c1z(&snapshot, &first).await;
    assert_eq!(first_bytes, std::fs::read(&first).expect("the c1z"), "writing it again over itself changes nothing");
}

/// Every object of the latest sync of a c1z, by id, as its encoded message.
struct SyncObjects {
    resources: BTreeMap<String, Vec<u8>>,
    entitlements: BTreeMap<String, Vec<u8>>,
    grants: BTreeMap<String, Vec<u8>>,
}

impl SyncObjects {
    fn of(reader: &C1zReader, sync_id: &str) -> SyncObjects {
        let resources = reader.resources(sync_id).expect("resources");
        let entitlements = reader.entitlements(sync_id).expect("entitlements");
        let grants = reader.grants(sync_id).expect("grants");
        SyncObjects {
            resources: resources
                .iter()
                .map(|resource| {
                    let id = resource.id.clone().expect("an id");
                    (format!("{}:{}", id.resource_type, id.resource), resource.encode_to_vec())
                })
                .collect(),
            entitlements: entitlements
                .iter()
                .map(|entitlement| (entitlement.id.clone(), entitlement.encode_to_vec()))
                .collect(),
            grants: grants.iter().map(|stored| (stored.grant.id.clone(), stored.grant.encode_to_vec())).collect(),
        }
    }
}

/// Created, deleted and modified ids between two syncs, as `baton diff` buckets them.
fn diff(old: &BTreeMap<String, Vec<u8>>, new: &BTreeMap<String, Vec<u8>>) -> [BTreeSet<String>; 3] {
    let created = new.keys().filter(|id| !old.contains_key(*id)).cloned().collect();
    let deleted = old.keys().filter(|id| !new.contains_key(*id)).cloned().collect();
    let modified = new
        .iter()
        .filter(|(id, data)| old.get(*id).is_some_and(|before| before != *data))
        .map(|(id, _)| id.clone())
        .collect();
    [created, deleted, modified]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_c1z_written_over_the_previous_one_diffs_to_exactly_the_grant_made_between_syncs() {
    let harness = Harness::start(Tenant::sample()).await;
    let c1z = harness.path("sync.c1z");
    let snapshot = harness.path("sync.db");
    assert_success(&harness.sync(&c1z, &[]).await);
    assert!(snapshot.is_file(), "sync -f sync.c1z writes the SQLite snapshot beside it");
    let first = harness.path("first.c1z");
    std::fs::copy(&c1z, &first).expect("keep the first c1z");
    assert_c1z_matches_export(&first, &export(&snapshot).await);

    let tenant = harness.fake.tenant();
    let group = tenant.groups.iter().find(|g| g.on_premises_sync_enabled != Some(true)).expect("a cloud group");
    let user =
        tenant.users.iter().find(|u| u.user_type == "Member" && !group.members.contains(&u.id)).expect("a non-member");
    let entitlement = format!("group:{}:members", group.id);
    let mut grant = harness.sync_args(&snapshot);
    grant[0] = "grant".into();
    grant.extend(
        ["--provisioning", "--entitlement", &entitlement, "--principal-type", "user", "--principal-id", &user.id]
            .map(str::to_owned),
    );
    assert_success(&run_host(&grant, &[]).await);
    // The c1z orders syncs by their end, to the second: the second sync must end in a later one.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_success(&harness.sync(&c1z, &[]).await);

    let before = C1zReader::open(&first).expect("the first c1z");
    let after = C1zReader::open(&c1z).expect("the second c1z");
    let old_sync = before.latest_full_sync().expect("the first sync");
    let new_sync = after.latest_full_sync().expect("the second sync");
    assert_ne!(old_sync.sync_id, new_sync.sync_id);
    let old = SyncObjects::of(&before, &old_sync.sync_id);
    let new = SyncObjects::of(&after, &new_sync.sync_id);
    let nothing = [BTreeSet::new(), BTreeSet::new(), BTreeSet::new()];
    assert_eq!(diff(&old.resources, &new.resources), nothing, "no resource changed");
    assert_eq!(diff(&old.entitlements, &new.entitlements), nothing, "no entitlement changed");
    let granted = format!("{entitlement}:user:{}", user.id);
    assert_eq!(diff(&old.grants, &new.grants), [BTreeSet::from([granted]), BTreeSet::new(), BTreeSet::new()]);

    // `baton diff -f sync.c1z` compares the two syncs the second file holds: the first is kept.
    let runs = after.sync_runs().expect("sync runs");
    assert_eq!(runs.iter().map(|run| &run.sync_id).collect::<Vec<_>>(), [&new_sync.sync_id, &old_sync.sync_id]);
    let kept = SyncObjects::of(&after, &old_sync.sync_id);
    assert_eq!(kept.grants, old.grants, "the previous sync is kept as it was");
    assert_eq!(kept.resources, old.resources);
    assert_eq!(kept.entitlements, old.entitlements);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_at_the_output_that_is_not_a_c1z_is_replaced_and_keeps_no_history() {
    let harness = Harness::start(Tenant::sample()).await;
    let snapshot = harness.path("sync.db");
    assert_success(&harness.sync(&snapshot, &[]).await);
    let c1z = harness.path("sync.c1z");
    std::fs::write(&c1z, b"not a c1z").expect("a stray file");
    export_c1z(&snapshot, &c1z).await;
    assert_c1z_matches_export(&c1z, &export(&snapshot).await);
}
