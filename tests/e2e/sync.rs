//! A sync produces exactly the resources, entitlements and grants the tenant holds.

use fake_azure::{Tenant, TenantShape};

use crate::oracle::{Expected, Options};
use crate::support::{Harness, RESOURCE_TYPES, Snapshot, assert_same_map, assert_same_set, assert_success, export};

async fn assert_sync_is_exact(harness: &Harness, extra: &[&str], options: &Options) -> serde_json::Value {
    let output = harness.path("sync.db");
    assert_success(&harness.sync(&output, extra).await);
    let exported = export(&output).await;
    let actual = Snapshot::of(&exported);
    let expected = Expected::of(&harness.fake.tenant(), options);
    assert_same_map("resources", &actual.resources, &expected.resources);
    assert_same_set("entitlements", &actual.entitlements, &expected.entitlements);
    assert_same_set("grants", &actual.grants, &expected.grants);
    let notices = |kind: &str| -> Vec<&serde_json::Value> {
        exported["notices"].as_array().expect("notices").iter().filter(|notice| notice["kind"] == kind).collect()
    };
    assert_eq!(
        notices("unsupported_principal").len(),
        expected.unsupported_principals,
        "every member or assignee that is not a principal is reported once: {:#?}",
        notices("unsupported_principal")
    );
    assert!(notices("gap").is_empty(), "a tenant that answers everything has no gaps: {:#?}", notices("gap"));
    exported
}

fn profile<'a>(exported: &'a serde_json::Value, kind: &str, id: &str) -> &'a serde_json::Value {
    exported["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|resource| resource["resource_type"] == kind && resource["id"] == id)
        .map(|resource| &resource["profile"])
        .unwrap_or_else(|| panic!("{kind} {id} is in the export"))
}

#[tokio::test(flavor = "multi_thread")]
async fn sample_tenant_sync_is_exact() {
    let harness = Harness::start(Tenant::sample()).await;
    let exported = assert_sync_is_exact(&harness, &["--mailboxSettings"], &Options { skip_ad_groups: false }).await;
    let types: Vec<&str> =
        exported["resource_types"].as_array().expect("types").iter().filter_map(|t| t["id"].as_str()).collect();
    for kind in RESOURCE_TYPES {
        assert!(types.contains(&kind), "{kind} is a resource type: {types:?}");
    }
    let tenant = harness.fake.tenant();
    for user in &tenant.users {
        let profile = profile(&exported, "user", &user.id);
        assert_eq!(profile["login"], user.user_principal_name.as_str(), "{profile}");
        let expected_kind = account_kind(user.mailbox_purpose.as_deref());
        assert_eq!(profile["account_kind"], expected_kind, "user {} with mailbox {:?}", user.id, user.mailbox_purpose);
        assert_eq!(profile["status"], if user.account_enabled { "enabled" } else { "disabled" });
    }
}

/// The account kind the connector gives a user with this mailbox purpose.
fn account_kind(mailbox_purpose: Option<&str>) -> &'static str {
    match mailbox_purpose {
        Some("user") | Some("linked") => "human",
        Some("shared") | Some("room") | Some("equipment") => "non_human",
        _ => "unknown",
    }
}

/// One call per page makes a mailbox request per user: far more requests than a call may hold
/// handles at once (256), which is fine as long as each request gives its handles back.
#[tokio::test(flavor = "multi_thread")]
async fn a_page_of_a_thousand_users_reads_every_mailbox_within_one_call() {
    let shape =
        TenantShape { users: 1_000, groups: 2, service_principals: 1, subscriptions: 1, ..TenantShape::small() };
    let harness = Harness::start(Tenant::generate(&shape)).await;
    let exported = assert_sync_is_exact(
        &harness,
        &["--mailboxSettings", "--page-size", "999"],
        &Options { skip_ad_groups: false },
    )
    .await;
    let tenant = harness.fake.tenant();
    for user in &tenant.users {
        let profile = profile(&exported, "user", &user.id);
        assert_eq!(profile["account_kind"], account_kind(user.mailbox_purpose.as_deref()), "user {}", user.id);
    }
    let mailbox_requests =
        harness.fake.requests().iter().filter(|request| request.path_and_query.contains("/mailboxSettings")).count();
    assert_eq!(mailbox_requests, tenant.users.len(), "one mailbox request per user");
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_tenant_with_small_pages_and_throttling_syncs_exactly() {
    let shape = TenantShape {
        users: 120,
        groups: 15,
        members_per_group: 9,
        service_principals: 6,
        app_role_assignments_per_app: 5,
        subscriptions: 2,
        resource_groups_per_subscription: 3,
        rbac_assignments_per_subscription: 8,
    };
    let harness = Harness::start(Tenant::generate(&shape)).await;
    harness.fake.throttle_every(6);
    assert_sync_is_exact(&harness, &["--page-size", "4"], &Options { skip_ad_groups: false }).await;
    let throttled = harness.fake.requests().iter().filter(|request| request.status == 429).count();
    assert!(throttled > 0, "the fake throttled some requests, and the sync still came out exact");
}

#[tokio::test(flavor = "multi_thread")]
async fn skip_ad_groups_leaves_out_synced_groups_but_keeps_memberships_of_synced_users() {
    let harness = Harness::start(Tenant::sample()).await;
    let tenant = harness.fake.tenant();
    assert!(tenant.groups.iter().any(|g| g.on_premises_sync_enabled == Some(true)), "the sample has an on-prem group");
    let synced_user_in_a_cloud_group =
        tenant.groups.iter().filter(|g| g.on_premises_sync_enabled != Some(true)).any(|g| {
            g.members
                .iter()
                .any(|m| tenant.users.iter().any(|u| &u.id == m && u.on_premises_sync_enabled == Some(true)))
        });
    assert!(synced_user_in_a_cloud_group, "the sample has an on-prem user in a cloud group");
    assert_sync_is_exact(&harness, &["--skip-ad-groups"], &Options { skip_ad_groups: true }).await;
    let advanced =
        harness.fake.requests().into_iter().filter(|r| r.path_and_query.contains("onPremisesSyncEnabled")).count();
    assert!(advanced > 0, "groups were listed with the advanced filter");
}
