//! Incremental sync: after a full sync, the next one reads only the changes of users, groups
//! (with members and owners) and service principals, re-lists what delta queries cannot
//! tell, and still produces exactly the snapshot a full sync would.

use std::path::Path;
use std::process::Output;

use fake_azure::{DirectoryRoleAssignment, FakeAzure, Service, Tenant, TenantShape, User};
use serde_json::Value;

use crate::oracle::{Expected, Options};
use crate::support::{Harness, Snapshot, assert_same_map, assert_same_set, assert_success, export, stderr};

/// Graph requests received so far.
fn graph_requests(fake: &FakeAzure) -> Vec<String> {
    fake.requests()
        .into_iter()
        .filter(|request| request.service == Service::Graph)
        .map(|request| request.path_and_query)
        .collect()
}

/// Listings of the directory's users, groups (with their members and owners) and service
/// principals, full or delta: what incremental sync exists to avoid.
fn directory_listings(requests: &[String]) -> usize {
    requests
        .iter()
        .filter(|path| {
            let path = path.to_ascii_lowercase();
            path.starts_with("/v1.0/users?")
                || path.starts_with("/v1.0/users/delta")
                || path.starts_with("/v1.0/groups?")
                || path.starts_with("/v1.0/groups/delta")
                || (path.starts_with("/v1.0/groups/") && (path.contains("/members?") || path.contains("/owners?")))
                || path.starts_with("/v1.0/serviceprincipals?")
                || path.starts_with("/v1.0/serviceprincipals/delta")
        })
        .count()
}

/// Runs a sync and returns the Graph requests it made.
async fn sync_counting(harness: &Harness, output: &Path, extra: &[&str]) -> (Output, Vec<String>) {
    let before = graph_requests(&harness.fake).len();
    let result = harness.sync(output, extra).await;
    assert_success(&result);
    (result, graph_requests(&harness.fake).split_off(before))
}

/// Every request of the run (Graph, ARM and login), as its summary counts them.
fn summary_requests(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("requests:").map(|count| count.trim().to_owned()))
        .unwrap_or_default()
}

fn summary_mode(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("sync:").map(|mode| mode.trim().to_owned()))
        .unwrap_or_else(|| panic!("the summary names the sync mode:\n{stdout}"))
}

/// The export without the facts of the run (times, request counts).
fn content(mut exported: Value) -> Value {
    if let Some(object) = exported.as_object_mut() {
        object.remove("sync");
    }
    exported
}

fn assert_exact(exported: &Value, tenant: &Tenant) {
    let actual = Snapshot::of(exported);
    let expected = Expected::of(tenant, &Options { skip_ad_groups: false });
    assert_same_map("resources", &actual.resources, &expected.resources);
    assert_same_set("entitlements", &actual.entitlements, &expected.entitlements);
    assert_same_set("grants", &actual.grants, &expected.grants);
}

/// Exports of two snapshots compare equal (every row, names and profiles included).
fn assert_same_export(what: &str, actual: &Value, expected: &Value) {
    for section in ["resource_types", "resources", "entitlements", "grants", "notices"] {
        let (actual, expected) = (&actual[section], &expected[section]);
        if actual != expected {
            let rows = |value: &Value| value.as_array().map(|rows| rows.iter().map(Value::to_string).collect());
            let (actual, expected): (std::collections::BTreeSet<String>, std::collections::BTreeSet<String>) =
                (rows(actual).unwrap_or_default(), rows(expected).unwrap_or_default());
            assert_same_set(&format!("{what}: {section}"), &actual, &expected);
        }
    }
}

/// The changes a governance team cares about: people join and leave groups, an account is
/// deleted, another is created, a group is renamed, a role is assigned.
fn change_the_tenant(fake: &FakeAzure) -> String {
    let new_user_id = "5d1e7c2a-0b3f-4a6e-9c8d-7f2e1a3b4c5d".to_owned();
    let new_user = new_user_id.clone();
    fake.mutate(move |tenant| {
        let users: Vec<String> = tenant.users.iter().map(|user| user.id.clone()).collect();
        let deleted = users.last().expect("the tenant has users").clone();
        // Two users join the first group, one leaves the second.
        let joiners: Vec<String> =
            users.iter().filter(|id| !tenant.groups[0].members.contains(id)).take(2).cloned().collect();
        tenant.groups[0].members.extend(joiners);
        if let Some(group) = tenant.groups.iter_mut().skip(1).find(|group| !group.members.is_empty()) {
            group.members.remove(0);
        }
        // A user is deleted: Entra removes it from every group and assignment.
        tenant.users.retain(|user| user.id != deleted);
        for group in &mut tenant.groups {
            group.members.retain(|id| *id != deleted);
            group.owners.retain(|id| *id != deleted);
        }
        for app in &mut tenant.service_principals {
            app.app_role_assigned_to.retain(|assignment| assignment.principal_id != deleted);
            app.owners.retain(|id| *id != deleted);
        }
        tenant.role_assignments.retain(|assignment| assignment.principal_id != deleted);
        if let Some(eligibilities) = &mut tenant.role_eligibilities {
            eligibilities.retain(|eligibility| eligibility.principal_id != deleted);
        }
        tenant.arm_role_assignments.retain(|assignment| assignment.principal_id != deleted);
        // A user is created and joins the last group.
        tenant.users.push(User {
            id: new_user.clone(),
            display_name: "Nadia Incremental".into(),
            user_principal_name: format!("nadia@{}", tenant.default_domain),
            mail: Some(format!("nadia@{}", tenant.default_domain)),
            user_type: "Member".into(),
            account_enabled: true,
            job_title: Some("Analyst".into()),
            department: None,
            employee_id: None,
            on_premises_sync_enabled: None,
            mailbox_purpose: Some("user".into()),
        });
        if let Some(group) = tenant.groups.last_mut() {
            group.members.push(new_user.clone());
        }
        // A group is renamed.
        tenant.groups[0].display_name.push_str(" (renamed)");
        // The new user gets a directory role.
        let role = tenant.role_definitions[0].id.clone();
        tenant.role_assignments.push(DirectoryRoleAssignment {
            id: "incremental-role-assignment-1".into(),
            principal_id: new_user.clone(),
            role_definition_id: role,
            directory_scope_id: "/".into(),
        });
    });
    new_user_id
}

#[tokio::test(flavor = "multi_thread")]
async fn unchanged_tenant_incremental_sync_reads_only_delta_queries_and_exports_the_same_snapshot() {
    let harness = Harness::start(Tenant::sample()).await;
    let output = harness.path("sync.db");
    let (full, full_requests) = sync_counting(&harness, &output, &[]).await;
    assert_eq!(summary_mode(&full), "full");
    let after_full = content(export(&output).await);

    let (incremental, incremental_requests) = sync_counting(&harness, &output, &[]).await;
    assert_eq!(summary_mode(&incremental), "incremental");
    eprintln!(
        "sample tenant, all requests: full {}, incremental {}",
        summary_requests(&full),
        summary_requests(&incremental)
    );
    assert_same_export("unchanged tenant", &content(export(&output).await), &after_full);

    let (full_listings, incremental_listings) =
        (directory_listings(&full_requests), directory_listings(&incremental_requests));
    eprintln!(
        "sample tenant: full sync {} Graph requests ({full_listings} directory listings), incremental {} ({incremental_listings})",
        full_requests.len(),
        incremental_requests.len()
    );
    // users/delta, groups/delta, servicePrincipals/delta for managed identities, and the listing
    // of enterprise applications (not tracked: their owners ride in the profile).
    assert_eq!(incremental_listings, 4, "{incremental_requests:#?}");
    // Since owners come with the group listing (`$expand=owners`), a full sync of the sample
    // tenant makes 14 directory listings.
    assert!(full_listings >= 3 * incremental_listings, "full {full_listings}, incremental {incremental_listings}");
    assert!(incremental_requests.len() < full_requests.len(), "{incremental_requests:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn incremental_sync_after_membership_user_group_and_role_changes_matches_the_tenant_exactly() {
    let harness = Harness::start(Tenant::sample()).await;
    let output = harness.path("sync.db");
    sync_counting(&harness, &output, &["--mailboxSettings"]).await;
    let new_user = change_the_tenant(&harness.fake);

    let (incremental, _) = sync_counting(&harness, &output, &["--mailboxSettings"]).await;
    assert_eq!(summary_mode(&incremental), "incremental");
    let exported = export(&output).await;
    assert_exact(&exported, &harness.fake.tenant());
    let renamed = &harness.fake.tenant().groups[0];
    let group = exported["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|resource| resource["resource_type"] == "group" && resource["id"] == renamed.id.as_str())
        .expect("the renamed group is exported");
    assert_eq!(group["display_name"], renamed.display_name.as_str());
    assert!(
        exported["grants"].as_array().expect("grants").iter().any(|grant| grant["principal_id"] == new_user.as_str()
            && grant["entitlement_id"].as_str().is_some_and(|id| id.starts_with("role:"))),
        "the new user's directory role shows"
    );

    let fresh = harness.path("fresh.db");
    sync_counting(&harness, &fresh, &["--mailboxSettings"]).await;
    assert_same_export("incremental vs a fresh full sync", &content(exported), &content(export(&fresh).await));
}

#[tokio::test(flavor = "multi_thread")]
async fn full_flag_rereads_everything_and_gives_the_same_export() {
    let harness = Harness::start(Tenant::sample()).await;
    let output = harness.path("sync.db");
    let (_, first) = sync_counting(&harness, &output, &[]).await;
    change_the_tenant(&harness.fake);
    sync_counting(&harness, &output, &[]).await;
    let after_incremental = content(export(&output).await);

    let (forced, forced_requests) = sync_counting(&harness, &output, &["--full"]).await;
    assert_eq!(summary_mode(&forced), "full");
    assert!(directory_listings(&forced_requests) >= directory_listings(&first) - 2, "{forced_requests:#?}");
    let exported = export(&output).await;
    assert_exact(&exported, &harness.fake.tenant());
    assert_same_export("--full after incremental", &content(exported), &after_incremental);

    let env_forced = {
        let mut args = harness.sync_args(&output);
        args.push("--log-level".into());
        args.push("warn".into());
        crate::support::run_host(&args, &[("BATON_FULL_SYNC", "true")]).await
    };
    assert_success(&env_forced);
    assert_eq!(summary_mode(&env_forced), "full");
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_delta_token_falls_back_to_a_full_sync_and_says_so() {
    let harness = Harness::start(Tenant::sample()).await;
    let output = harness.path("sync.db");
    sync_counting(&harness, &output, &[]).await;
    change_the_tenant(&harness.fake);
    harness.fake.expire_delta_tokens();

    let (fallback, _) = sync_counting(&harness, &output, &[]).await;
    assert_eq!(summary_mode(&fallback), "full (delta token expired)");
    assert!(stderr(&fallback).contains("delta token"), "the log says why: {}", stderr(&fallback));
    assert_exact(&export(&output).await, &harness.fake.tenant());

    let (next, _) = sync_counting(&harness, &output, &[]).await;
    assert_eq!(summary_mode(&next), "incremental", "the fallback stored fresh delta tokens");
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_tenant_incremental_sync_is_exact_and_a_fraction_of_a_full_sync() {
    let harness = Harness::start(Tenant::generate(&TenantShape::small())).await;
    let output = harness.path("sync.db");
    let (full_run, full) = sync_counting(&harness, &output, &[]).await;
    let (unchanged_run, unchanged) = sync_counting(&harness, &output, &[]).await;
    change_the_tenant(&harness.fake);
    let (changed_run, changed) = sync_counting(&harness, &output, &[]).await;
    eprintln!(
        "TenantShape::small(), all requests: full {}, incremental unchanged {}, after changes {}",
        summary_requests(&full_run),
        summary_requests(&unchanged_run),
        summary_requests(&changed_run)
    );
    assert_exact(&export(&output).await, &harness.fake.tenant());
    eprintln!(
        "TenantShape::small(): full sync {} Graph requests ({} directory listings); incremental unchanged {} ({}); after changes {} ({})",
        full.len(),
        directory_listings(&full),
        unchanged.len(),
        directory_listings(&unchanged),
        changed.len(),
        directory_listings(&changed)
    );
    assert_eq!(directory_listings(&unchanged), 4, "{unchanged:#?}");
    assert!(directory_listings(&unchanged) * 20 <= directory_listings(&full), "at most 5% of the full listings");
}
