//! Defects of the Go connector (§5 of the Azure reference) that must not happen here.

use fake_azure::Tenant;

use crate::oracle::{Expected, Options};
use crate::support::{Harness, Snapshot, assert_same_set, assert_success, export, users_only};

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
    let extra_users = fake_azure::Tenant::generate(&users_only(60)).users;
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

async fn synced_grants(harness: &Harness) -> std::collections::BTreeSet<String> {
    let output = harness.path("sync.db");
    assert_success(&harness.sync(&output, &["--page-size", "50"]).await);
    Snapshot::of(&export(&output).await).grants
}

/// Defect 3: only one principal per role per subscription survived a cache keyed by role.
#[tokio::test(flavor = "multi_thread")]
async fn every_principal_holding_the_same_role_on_a_subscription_is_kept() {
    let mut tenant = Tenant::sample();
    let subscription = tenant.subscriptions[0].subscription_id.clone();
    let scope = format!("/subscriptions/{subscription}");
    let holders: Vec<String> = tenant.users.iter().take(3).map(|user| user.id.clone()).collect();
    for (index, holder) in holders.iter().enumerate() {
        tenant.arm_role_assignments.push(fake_azure::ArmRoleAssignment {
            name: format!("3a3a3a3a-0000-4000-8000-00000000000{index}"),
            scope: scope.clone(),
            role_definition_id: crate::oracle::READER.into(),
            principal_id: holder.clone(),
            principal_type: "User".into(),
        });
    }
    let harness = Harness::start(tenant).await;
    let grants = synced_grants(&harness).await;
    for holder in &holders {
        let grant = format!("subscription:{subscription}:role:{}:user:{holder}", crate::oracle::READER);
        assert!(grants.contains(&grant), "{grant} is missing");
    }
}

/// Defect 4: group principals were typed `resource_group`.
#[tokio::test(flavor = "multi_thread")]
async fn group_members_that_are_groups_are_typed_group() {
    let tenant = Tenant::sample();
    let (parent, child) = tenant
        .groups
        .iter()
        .find_map(|g| {
            g.members.iter().find(|m| tenant.groups.iter().any(|c| &c.id == *m)).map(|m| (g.id.clone(), m.clone()))
        })
        .expect("the sample nests a group");
    let harness = Harness::start(tenant).await;
    let grants = synced_grants(&harness).await;
    assert!(grants.contains(&format!("group:{parent}:members:group:{child}")), "{grants:#?}");
    assert!(!grants.iter().any(|grant| grant.contains(":resource_group:")), "no principal is typed resource_group");
}

/// Defect 5: an owner of several apps kept one owner grant (grant id = owner id).
#[tokio::test(flavor = "multi_thread")]
async fn an_owner_of_several_apps_has_one_grant_per_app() {
    let mut tenant = Tenant::sample();
    let owner = tenant.users[0].id.clone();
    let apps: Vec<String> = tenant
        .service_principals
        .iter_mut()
        .filter(|sp| sp.service_principal_type == "Application")
        .take(2)
        .map(|sp| {
            if !sp.owners.contains(&owner) {
                sp.owners.push(owner.clone());
            }
            sp.id.clone()
        })
        .collect();
    assert_eq!(apps.len(), 2);
    let harness = Harness::start(tenant).await;
    let grants = synced_grants(&harness).await;
    for app in &apps {
        let grant = format!("enterprise_application:{app}:owners:user:{owner}");
        assert!(grants.contains(&grant), "{grant} is missing");
    }
}

/// Defect 7: app-role grants read through `$expand` were truncated.
#[tokio::test(flavor = "multi_thread")]
async fn app_role_assignments_are_paged_in_full_never_expanded() {
    let mut tenant = Tenant::sample();
    let extra = fake_azure::Tenant::generate(&users_only(130)).users;
    let app =
        tenant.service_principals.iter_mut().find(|sp| sp.service_principal_type == "Application").expect("an app");
    let app_id = app.id.clone();
    for (index, user) in extra.iter().enumerate() {
        app.app_role_assigned_to.push(fake_azure::AppRoleAssignment {
            id: format!("paged-assignment-{index:04}"),
            app_role_id: crate::oracle::DEFAULT_ACCESS.into(),
            principal_id: user.id.clone(),
            principal_type: "User".into(),
            principal_display_name: user.display_name.clone(),
            resource_id: app_id.clone(),
        });
    }
    tenant.users.extend(extra.clone());
    let harness = Harness::start(tenant).await;
    let grants = synced_grants(&harness).await;
    let default_access = format!("enterprise_application:{app_id}:assignment:{}:user:", crate::oracle::DEFAULT_ACCESS);
    let synced = extra.iter().filter(|user| grants.contains(&format!("{default_access}{}", user.id))).count();
    assert_eq!(synced, extra.len(), "every one of the {} assignments is synced", extra.len());
    assert!(
        harness.fake.requests().iter().all(|r| !r.path_and_query.to_lowercase().contains("expand=approleassignedto")),
        "appRoleAssignedTo is never read through $expand"
    );
}

/// Defect 8: every service-principal grantee was typed `managed_identity`.
#[tokio::test(flavor = "multi_thread")]
async fn service_principal_grantees_are_typed_by_what_they_are() {
    let tenant = Tenant::sample();
    let harness = Harness::start(tenant.clone()).await;
    let grants = synced_grants(&harness).await;
    let mut checked = 0;
    for grant in &grants {
        let mut parts = grant.rsplitn(3, ':');
        let (Some(id), Some(kind)) = (parts.next(), parts.next()) else { continue };
        if let Some(sp) = tenant.service_principals.iter().find(|sp| sp.id == id) {
            let expected = match sp.service_principal_type.as_str() {
                "Application" => "enterprise_application",
                "ManagedIdentity" => "managed_identity",
                other => panic!("a {other} service principal must not be granted: {grant}"),
            };
            assert_eq!(kind, expected, "{grant}");
            checked += 1;
        }
    }
    let kinds: std::collections::BTreeSet<&str> = grants.iter().filter_map(|g| g.rsplitn(3, ':').nth(1)).collect();
    assert!(kinds.contains("enterprise_application") && kinds.contains("managed_identity"), "{kinds:?}");
    assert!(checked >= 2, "the sample grants both kinds of service principal");
}
