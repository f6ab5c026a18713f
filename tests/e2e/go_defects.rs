//! Defects of the Go connector (§5 of the Azure reference) that must not happen here.

use fake_azure::Tenant;

use crate::oracle::{Expected, Options};
use crate::support::{Harness, Snapshot, assert_same_set, assert_success, export};

fn group_with(tenant: &mut Tenant, members: usize, owners: usize) -> String {
    let users: Vec<String> = tenant.users.iter().map(|user| user.id.clone()).collect();
    let mut group = tenant.groups[0].clone();
    group.id = "0b1f2e3d-4c5b-4a69-8877-665544332211".into();
    group.display_name = "Paged group".into();
    group.on_premises_sync_enabled = None;
    group.members = users.iter().cycle().take(members.min(users.len())).cloned().collect();
    group.owners = users.iter().rev().take(owners).cloned().collect();
    tenant.groups.push(group.clone());
    group.id
}

/// Defect 1: pages of 50 or fewer members lost their nextLink, truncating memberships.
#[tokio::test(flavor = "multi_thread")]
async fn member_pages_of_fifty_or_fewer_keep_their_next_link() {
    let mut tenant = Tenant::sample();
    let only_users = fake_azure::TenantShape {
        users: 60,
        groups: 0,
        members_per_group: 0,
        service_principals: 0,
        app_role_assignments_per_app: 0,
        subscriptions: 0,
        resource_groups_per_subscription: 0,
        rbac_assignments_per_subscription: 0,
    };
    let extra_users = fake_azure::Tenant::generate(&only_users).users;
    tenant.users.extend(extra_users);
    let group = group_with(&mut tenant, 60, 1);
    let harness = Harness::start(tenant).await;
    let output = harness.path("sync.db");
    assert_success(&harness.sync(&output, &["--page-size", "50"]).await);
    let actual = Snapshot::of(&export(&output).await);
    let expected = Expected::of(&harness.fake.tenant(), &Options { skip_ad_groups: false });
    let members = |grants: &std::collections::BTreeSet<String>| -> std::collections::BTreeSet<String> {
        grants.iter().filter(|id| id.starts_with(&format!("group:{group}:members:"))).cloned().collect()
    };
    assert_eq!(members(&expected.grants).len(), 60);
    assert_same_set("members of the paged group", &members(&actual.grants), &members(&expected.grants));
}

/// Defect 2: owner paging ignored the page token and fetched the same page again and again.
#[tokio::test(flavor = "multi_thread")]
async fn owner_pages_follow_their_token_once_each() {
    let mut tenant = Tenant::sample();
    let group = group_with(&mut tenant, 1, 7);
    let harness = Harness::start(tenant).await;
    let output = harness.path("sync.db");
    assert_success(&harness.sync(&output, &["--page-size", "2"]).await);
    let owner_requests: Vec<String> = harness
        .fake
        .requests()
        .into_iter()
        .filter(|request| request.path_and_query.contains(&format!("/groups/{group}/owners")) && request.status == 200)
        .map(|request| request.path_and_query)
        .collect();
    let distinct: std::collections::BTreeSet<&String> = owner_requests.iter().collect();
    assert_eq!(distinct.len(), owner_requests.len(), "an owners page was fetched twice: {owner_requests:#?}");
    assert!(owner_requests.len() >= 4, "7 owners at 2 a page take at least 4 pages: {owner_requests:#?}");
    let actual = Snapshot::of(&export(&output).await);
    let owners: Vec<&String> =
        actual.grants.iter().filter(|id| id.starts_with(&format!("group:{group}:owners:"))).collect();
    assert_eq!(owners.len(), 7, "{owners:#?}");
}

/// Defect 9: a user without a mailbox (404 on mailboxSettings) was dropped from the sync.
#[tokio::test(flavor = "multi_thread")]
async fn user_without_mailbox_is_kept_with_unknown_purpose() {
    let tenant = Tenant::sample();
    let without_mailbox: Vec<String> =
        tenant.users.iter().filter(|user| user.mailbox_purpose.is_none()).map(|user| user.id.clone()).collect();
    assert!(!without_mailbox.is_empty(), "the sample has a user without a mailbox");
    let harness = Harness::start(tenant).await;
    let output = harness.path("sync.db");
    assert_success(&harness.sync(&output, &["--mailboxSettings"]).await);
    let exported = export(&output).await;
    for id in &without_mailbox {
        let user = exported["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .find(|resource| resource["resource_type"] == "user" && resource["id"] == id.as_str())
            .unwrap_or_else(|| panic!("user {id} without a mailbox must be synced"));
        assert_eq!(user["profile"]["account_kind"], "unknown", "{user}");
    }
    let not_found = harness
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.path_and_query.contains("mailboxSettings") && r.status == 404)
        .count();
    assert_eq!(not_found, without_mailbox.len(), "each mailbox-less user answered 404 once");
}
