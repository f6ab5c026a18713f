//! Incremental sync: after a full sync, the next one reads only the changes of users, groups
//! (with members and owners) and service principals, reads again the applications the
//! directory audit log names, re-lists what neither can tell, and still produces exactly the
//! snapshot a full sync would.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use fake_azure::{AppRoleAssignment, DirectoryRoleAssignment, FakeAzure, Service, Tenant, TenantShape, User};
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

/// Applications whose access a sync read: `appRoleAssignedTo` and `owners` of a service
/// principal, or the service principal read again whole (with `$expand=owners`). Reads that
/// only type a principal (`$select=id,servicePrincipalType`) do not count.
fn applications_read(requests: &[String]) -> BTreeSet<String> {
    requests
        .iter()
        .filter_map(|path| {
            let rest = path.strip_prefix("/v1.0/servicePrincipals/")?;
            let id = rest.split(['/', '?']).next()?;
            let after = &rest[id.len()..];
            let reads_access = after.starts_with("/appRoleAssignedTo")
                || after.starts_with("/owners")
                || (after.starts_with('?') && after.contains("$expand"));
            (id != "delta" && reads_access).then(|| id.to_ascii_lowercase())
        })
        .collect()
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

/// The snapshot at `output` holds exactly the fake's tenant and, row for row, what a fresh full
/// sync (with the same `extra` arguments) writes. Returns its export.
async fn assert_exact_and_same_as_a_full_sync(harness: &Harness, output: &Path, extra: &[&str]) -> Value {
    let exported = export(output).await;
    assert_exact(&exported, &harness.fake.tenant());
    let fresh = harness.path("fresh.db");
    sync_counting(harness, &fresh, extra).await;
    assert_same_export("incremental vs a fresh full sync", &content(exported.clone()), &content(export(&fresh).await));
    exported
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
    // users/delta, groups/delta, and servicePrincipals/delta twice (managed identities, and
    // enterprise applications, whose access the audit log tells).
    assert_eq!(incremental_listings, 4, "{incremental_requests:#?}");
    assert!(
        applications_read(&incremental_requests).is_empty(),
        "no application changed, none is read again: {incremental_requests:#?}"
    );
    assert_eq!(
        incremental_requests.iter().filter(|path| path.starts_with("/v1.0/auditLogs/directoryAudits?")).count(),
        1,
        "{incremental_requests:#?}"
    );
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
    let exported = assert_exact_and_same_as_a_full_sync(&harness, &output, &["--mailboxSettings"]).await;
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

/// Application ids of the tenant, in order.
fn application_ids(tenant: &Tenant) -> Vec<String> {
    tenant
        .service_principals
        .iter()
        .filter(|sp| sp.service_principal_type == "Application")
        .map(|sp| sp.id.to_ascii_lowercase())
        .collect()
}

/// One application loses an assignment, another gets one (for a user), a third gets a new
/// owner. Returns the three applications' ids.
fn change_application_access(fake: &FakeAzure) -> BTreeSet<String> {
    let tenant = fake.tenant();
    let applications: Vec<&fake_azure::ServicePrincipal> =
        tenant.service_principals.iter().filter(|sp| sp.service_principal_type == "Application").collect();
    let unassigned = applications
        .iter()
        .find(|sp| !sp.app_role_assigned_to.is_empty())
        .expect("an application with an assignment")
        .id
        .to_ascii_lowercase();
    let mut others = applications.iter().map(|sp| sp.id.to_ascii_lowercase()).filter(|id| *id != unassigned);
    let (assigned, owned) = (others.next(), others.next());
    let (assigned, owned) = assigned.zip(owned).expect("the tenant has three applications");
    let changed = BTreeSet::from([assigned.clone(), owned.clone(), unassigned.clone()]);
    fake.mutate(move |tenant| {
        let users: Vec<(String, String)> =
            tenant.users.iter().map(|user| (user.id.clone(), user.display_name.clone())).collect();
        let application = |tenant: &mut Tenant, id: &str| {
            let index = tenant.service_principals.iter().position(|sp| sp.id.eq_ignore_ascii_case(id));
            index.expect("the application exists")
        };
        let index = application(tenant, &assigned);
        let sp = &mut tenant.service_principals[index];
        let role =
            sp.app_roles.first().map_or("00000000-0000-0000-0000-000000000000".to_owned(), |role| role.id.clone());
        let (user, name) = users
            .iter()
            .find(|(user, _)| !sp.app_role_assigned_to.iter().any(|held| held.principal_id == *user))
            .expect("a user without an assignment")
            .clone();
        sp.app_role_assigned_to.push(AppRoleAssignment {
            id: "aW5jcmVtZW50YWwtYXNzaWdubWVudA".into(),
            app_role_id: role,
            principal_id: user,
            principal_type: "User".into(),
            principal_display_name: name,
            resource_id: sp.id.clone(),
        });
        let index = application(tenant, &owned);
        let sp = &mut tenant.service_principals[index];
        let owner = users.iter().find(|(user, _)| !sp.owners.contains(user)).expect("a user who is not an owner");
        sp.owners.push(owner.0.clone());
        let index = application(tenant, &unassigned);
        let sp = &mut tenant.service_principals[index];
        assert!(!sp.app_role_assigned_to.is_empty(), "the third application has an assignment to remove");
        sp.app_role_assigned_to.remove(0);
    });
    changed
}

#[tokio::test(flavor = "multi_thread")]
async fn application_assignments_and_owners_are_read_again_only_for_the_applications_the_audit_log_names() {
    let harness = Harness::start(Tenant::sample()).await;
    let output = harness.path("sync.db");
    let (_, full) = sync_counting(&harness, &output, &[]).await;
    assert_eq!(
        applications_read(&full).intersection(&application_ids(&harness.fake.tenant()).into_iter().collect()).count(),
        application_ids(&harness.fake.tenant()).len(),
        "a full sync reads every application's assignments"
    );
    let changed = change_application_access(&harness.fake);

    let (incremental, requests) = sync_counting(&harness, &output, &[]).await;
    assert_eq!(summary_mode(&incremental), "incremental");
    assert_eq!(applications_read(&requests), changed, "only the changed applications are read: {requests:#?}");
    assert_exact_and_same_as_a_full_sync(&harness, &output, &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_audit_log_makes_incremental_sync_read_every_application_and_stay_exact() {
    let harness = Harness::start(Tenant::sample()).await;
    let output = harness.path("sync.db");
    sync_counting(&harness, &output, &[]).await;
    harness.fake.forbid("auditLogs");
    change_application_access(&harness.fake);

    let (incremental, requests) = sync_counting(&harness, &output, &[]).await;
    assert_eq!(summary_mode(&incremental), "incremental");
    assert!(
        stderr(&incremental).contains("AuditLog.Read.All"),
        "the log names the permission: {}",
        stderr(&incremental)
    );
    assert!(
        requests.iter().any(|path| path.starts_with("/v1.0/servicePrincipals?")),
        "every application is listed instead: {requests:#?}"
    );
    assert_exact_and_same_as_a_full_sync(&harness, &output, &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_audit_event_that_arrives_late_is_caught_by_the_next_incremental_sync() {
    let harness = Harness::start(Tenant::sample()).await;
    let output = harness.path("sync.db");
    sync_counting(&harness, &output, &[]).await;
    // Long enough that no sync under load outlasts it; the events are then released at once,
    // keeping their timestamps, as a log that delivers them late does.
    harness.fake.audit_latency(Duration::from_secs(600));
    let changed = change_application_access(&harness.fake);

    // The events are not in the log yet: this sync cannot know, like one against Azure.
    let (_, early) = sync_counting(&harness, &output, &[]).await;
    assert!(applications_read(&early).is_empty(), "the events are not visible yet: {early:#?}");
    harness.fake.audit_latency(Duration::ZERO);
    let (_, late) = sync_counting(&harness, &output, &[]).await;
    assert_eq!(applications_read(&late), changed, "the next sync reads the log from before the previous one began");
    assert_exact(&export(&output).await, &harness.fake.tenant());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_previous_sync_older_than_the_audit_logs_retention_reads_every_application_again() {
    let harness = Harness::start(Tenant::sample()).await;
    let output = harness.path("sync.db");
    sync_counting(&harness, &output, &[]).await;
    // The applications' delta token remembers when its round began: move that 8 days back.
    {
        let snapshot = rusqlite::Connection::open(&output).expect("the snapshot opens");
        let token: String = snapshot
            .query_row("SELECT token FROM delta_tokens WHERE resource_type = 'enterprise_application'", [], |row| {
                row.get(0)
            })
            .expect("the applications have a delta token");
        let mut token: Value = serde_json::from_str(&token).expect("the connector's token is JSON");
        let eight_days_ago = std::time::SystemTime::now() - Duration::from_secs(8 * 24 * 3600);
        token["began"] = Value::from(humantime::format_rfc3339_seconds(eight_days_ago).to_string());
        snapshot
            .execute(
                "UPDATE delta_tokens SET token = ?1 WHERE resource_type = 'enterprise_application'",
                [token.to_string()],
            )
            .expect("the token is replaced");
    }
    change_application_access(&harness.fake);

    let (incremental, requests) = sync_counting(&harness, &output, &[]).await;
    assert_eq!(summary_mode(&incremental), "incremental");
    assert!(stderr(&incremental).contains("audit log may have dropped events"), "{}", stderr(&incremental));
    assert!(!requests.iter().any(|path| path.starts_with("/v1.0/auditLogs/")), "{requests:#?}");
    assert!(requests.iter().any(|path| path.starts_with("/v1.0/servicePrincipals?")), "{requests:#?}");
    assert_exact_and_same_as_a_full_sync(&harness, &output, &[]).await;
}

/// When the snapshot says its chain of incremental syncs started (its last full sync began).
fn full_sync_started_at(output: &Path) -> String {
    let snapshot = rusqlite::Connection::open(output).expect("the snapshot opens");
    snapshot
        .query_row("SELECT full_sync_started_at FROM incremental_state WHERE id = 1", [], |row| row.get(0))
        .expect("the snapshot records its last full sync")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_sync_is_due_after_the_full_sync_interval_and_never_when_turned_off() {
    let harness = Harness::start(Tenant::sample()).await;
    let output = harness.path("sync.db");
    sync_counting(&harness, &output, &[]).await;
    let began = full_sync_started_at(&output);
    let (incremental, _) = sync_counting(&harness, &output, &[]).await;
    assert_eq!(summary_mode(&incremental), "incremental");
    assert_eq!(full_sync_started_at(&output), began, "an incremental sync keeps the chain's start");

    let two_days_ago = std::time::SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
    let backdate = |output: &Path| {
        let snapshot = rusqlite::Connection::open(output).expect("the snapshot opens");
        let at = humantime::format_rfc3339_seconds(two_days_ago).to_string();
        snapshot.execute("UPDATE incremental_state SET full_sync_started_at = ?1", [at]).expect("backdated");
    };
    backdate(&output);
    let (never, _) = sync_counting(&harness, &output, &["--full-sync-interval", "never"]).await;
    assert_eq!(summary_mode(&never), "incremental", "turned off, the age does not matter");

    backdate(&output);
    let (due, _) = sync_counting(&harness, &output, &[]).await;
    assert_eq!(summary_mode(&due), "full (last full sync older than --full-sync-interval)");
    assert_ne!(full_sync_started_at(&output), humantime::format_rfc3339_seconds(two_days_ago).to_string());
    let (after, _) = sync_counting(&harness, &output, &["--full-sync-interval", "36h"]).await;
    assert_eq!(summary_mode(&after), "incremental", "the full sync started a new chain");

    let mut args = harness.sync_args(&output);
    args.extend(["--full-sync-interval".to_owned(), "daily".to_owned()]);
    let refused = crate::support::run_host(&args, &[]).await;
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("write it like \"24h\""), "{}", stderr(&refused));
}

/// ARM requests received since `before` (an index into the fake's log).
fn arm_requests_since(fake: &FakeAzure, before: usize) -> Vec<String> {
    fake.requests()
        .into_iter()
        .skip(before)
        .filter(|request| request.service == Service::Arm)
        .map(|request| request.path_and_query.to_ascii_lowercase())
        .collect()
}

/// Subscriptions whose role assignments a sync listed.
fn rbac_read(requests: &[String]) -> BTreeSet<String> {
    requests
        .iter()
        .filter(|path| path.contains("/providers/microsoft.authorization/roleassignments"))
        .filter_map(|path| path.strip_prefix("/subscriptions/")?.split('/').next().map(str::to_owned))
        .collect()
}

/// In the first subscription: a user gets Owner of it, a group gets Reader on one of its
/// resource groups, another resource group is deleted with its assignments, a new one is
/// created. The second subscription does not change. Returns the first subscription's id.
fn change_the_first_subscription(fake: &FakeAzure) -> String {
    let tenant = fake.tenant();
    let subscription = tenant.subscriptions[0].subscription_id.to_ascii_lowercase();
    let changed = subscription.clone();
    fake.mutate(move |tenant| {
        let scope = format!("/subscriptions/{changed}");
        let groups: Vec<String> = tenant
            .resource_groups
            .iter()
            .filter(|group| group.subscription_id.eq_ignore_ascii_case(&changed))
            .map(|group| group.name.clone())
            .collect();
        assert!(groups.len() >= 2, "the first subscription has two resource groups: {groups:?}");
        let (kept, deleted) = (groups[0].clone(), groups[1].clone());
        let role = |name: &str| {
            tenant.arm_role_definitions.iter().find(|role| role.role_name == name).expect("a built-in role").id.clone()
        };
        let (owner, reader) = (role("Owner"), role("Reader"));
        let user = tenant.users.iter().find(|user| user.user_type == "Member").expect("a user").id.clone();
        let group = tenant.groups[0].id.clone();
        tenant.arm_role_assignments.push(fake_azure::ArmRoleAssignment {
            name: "7d1c2a3b-4e5f-4a6b-8c7d-9e0f1a2b3c4d".into(),
            scope: scope.clone(),
            role_definition_id: owner,
            principal_id: user,
            principal_type: "User".into(),
        });
        tenant.arm_role_assignments.push(fake_azure::ArmRoleAssignment {
            name: "8e2d3b4c-5f6a-4b7c-9d8e-0f1a2b3c4d5e".into(),
            scope: format!("{scope}/resourceGroups/{kept}"),
            role_definition_id: reader,
            principal_id: group,
            principal_type: "Group".into(),
        });
        let deleted_scope = format!("{scope}/resourcegroups/{}", deleted.to_ascii_lowercase());
        tenant
            .arm_role_assignments
            .retain(|assignment| !assignment.scope.to_ascii_lowercase().starts_with(&deleted_scope));
        tenant
            .resource_groups
            .retain(|group| !(group.subscription_id.eq_ignore_ascii_case(&changed) && group.name == deleted));
        tenant.resource_groups.push(fake_azure::ResourceGroup {
            subscription_id: changed.clone(),
            name: "rg-incremental".into(),
            location: "northeurope".into(),
        });
    });
    subscription
}

#[tokio::test(flavor = "multi_thread")]
async fn azure_rbac_is_read_again_only_for_subscriptions_whose_activity_log_shows_a_change() {
    let harness = Harness::start(Tenant::sample()).await;
    let output = harness.path("sync.db");
    let subscriptions = harness.fake.tenant().subscriptions.len();
    sync_counting(&harness, &output, &[]).await;

    let before = harness.fake.requests().len();
    sync_counting(&harness, &output, &[]).await;
    let unchanged = arm_requests_since(&harness.fake, before);
    assert!(rbac_read(&unchanged).is_empty(), "nothing changed, no RBAC is read: {unchanged:#?}");
    let logs = unchanged.iter().filter(|path| path.contains("/eventtypes/management/values")).count();
    assert_eq!(logs, 2 * subscriptions, "one log read per subscription for each of the two types: {unchanged:#?}");

    let changed = change_the_first_subscription(&harness.fake);
    let before = harness.fake.requests().len();
    let (incremental, _) = sync_counting(&harness, &output, &[]).await;
    assert_eq!(summary_mode(&incremental), "incremental");
    let requests = arm_requests_since(&harness.fake, before);
    assert_eq!(rbac_read(&requests), BTreeSet::from([changed]), "only the changed subscription: {requests:#?}");
    assert_exact_and_same_as_a_full_sync(&harness, &output, &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_activity_log_makes_incremental_sync_read_that_subscriptions_rbac_again() {
    let harness = Harness::start(Tenant::sample()).await;
    let output = harness.path("sync.db");
    sync_counting(&harness, &output, &[]).await;
    harness.fake.forbid("eventtypes");
    change_the_first_subscription(&harness.fake);

    let before = harness.fake.requests().len();
    let (incremental, _) = sync_counting(&harness, &output, &[]).await;
    assert!(stderr(&incremental).contains("eventtypes"), "the log says what was refused: {}", stderr(&incremental));
    let requests = arm_requests_since(&harness.fake, before);
    assert_eq!(rbac_read(&requests).len(), harness.fake.tenant().subscriptions.len(), "{requests:#?}");
    assert_exact_and_same_as_a_full_sync(&harness, &output, &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_activity_log_event_that_arrives_late_is_caught_by_the_next_incremental_sync() {
    let harness = Harness::start(Tenant::sample()).await;
    let output = harness.path("sync.db");
    sync_counting(&harness, &output, &[]).await;
    // As for the audit log: hidden for longer than any sync takes, then released.
    harness.fake.activity_log_latency(Duration::from_secs(600));
    let changed = change_the_first_subscription(&harness.fake);

    let before = harness.fake.requests().len();
    sync_counting(&harness, &output, &[]).await;
    assert!(rbac_read(&arm_requests_since(&harness.fake, before)).is_empty(), "the events are not visible yet");
    harness.fake.activity_log_latency(Duration::ZERO);
    let before = harness.fake.requests().len();
    sync_counting(&harness, &output, &[]).await;
    assert_eq!(rbac_read(&arm_requests_since(&harness.fake, before)), BTreeSet::from([changed]));
    assert_exact(&export(&output).await, &harness.fake.tenant());
}
