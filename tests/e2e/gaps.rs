//! A listing Azure refuses is a visible gap, never an empty result (defect 11), and
//! `--strict` turns gaps into a failed sync that keeps the previous output.

use fake_azure::Tenant;
use serde_json::Value;

use crate::support::{Harness, Snapshot, assert_success, export, stderr};

fn gaps(exported: &Value) -> Vec<&Value> {
    exported["notices"].as_array().expect("notices").iter().filter(|notice| notice["kind"] == "gap").collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn tenant_without_p2_reports_eligibility_as_not_licensed_not_as_zero() {
    let mut tenant = Tenant::sample();
    tenant.role_eligibilities = None;
    let harness = Harness::start(tenant.clone()).await;
    let output = harness.path("sync.db");
    let result = harness.sync(&output, &[]).await;
    assert_success(&result);
    let summary = String::from_utf8_lossy(&result.stdout).into_owned();
    assert!(summary.contains("not licensed"), "the summary shows the gap:\n{summary}");
    let exported = export(&output).await;
    let gaps = gaps(&exported);
    assert!(!gaps.is_empty(), "eligibility must be reported as a gap");
    assert!(gaps.iter().all(|gap| gap["message"].as_str().unwrap_or_default().contains("not licensed")), "{gaps:#?}");
    let snapshot = Snapshot::of(&exported);
    assert!(!snapshot.grants.iter().any(|grant| grant.contains(":eligible:")), "no eligible grant is invented");
    let assigned = snapshot.grants.iter().filter(|grant| grant.contains(":assigned:")).count();
    assert_eq!(assigned, tenant.role_assignments.len(), "active assignments still come through");
}

#[tokio::test(flavor = "multi_thread")]
async fn forbidden_role_assignments_of_one_subscription_are_a_gap_naming_the_missing_role() {
    let tenant = Tenant::sample();
    let forbidden = tenant.subscriptions[0].subscription_id.clone();
    let allowed = tenant.subscriptions[1].subscription_id.clone();
    let harness = Harness::start(tenant.clone()).await;
    harness.fake.forbid(&format!("/subscriptions/{forbidden}/providers/Microsoft.Authorization/roleAssignments"));
    let output = harness.path("sync.db");
    assert_success(&harness.sync(&output, &[]).await);
    let exported = export(&output).await;
    let gaps = gaps(&exported);
    assert!(
        gaps.iter().any(|gap| gap["subject"].as_str().unwrap_or_default().contains(&forbidden)
            && gap["missing_permission"].as_str().unwrap_or_default().contains("Reader")),
        "the gap names the call and the missing role: {gaps:#?}"
    );
    let snapshot = Snapshot::of(&exported);
    let expected_allowed = tenant
        .arm_role_assignments
        .iter()
        .filter(|a| a.scope.eq_ignore_ascii_case(&format!("/subscriptions/{allowed}")))
        .count();
    let synced_allowed = snapshot.grants.iter().filter(|g| g.starts_with(&format!("subscription:{allowed}:"))).count();
    assert_eq!(synced_allowed, expected_allowed, "the other subscription is synced in full");
}

#[tokio::test(flavor = "multi_thread")]
async fn strict_fails_on_a_gap_and_keeps_the_previous_output() {
    let tenant = Tenant::sample();
    let subscription = tenant.subscriptions[0].subscription_id.clone();
    let harness = Harness::start(tenant).await;
    let output = harness.path("sync.db");
    assert_success(&harness.sync(&output, &["--strict"]).await);
    let before = std::fs::read(&output).expect("the first snapshot");
    harness.fake.forbid(&format!("/subscriptions/{subscription}/providers/Microsoft.Authorization/roleAssignments"));
    // `--full`: an incremental sync would not read the RBAC of a subscription whose Activity
    // Log shows no change, so it would not meet the refusal.
    let failed = harness.sync(&output, &["--strict", "--full"]).await;
    assert!(!failed.status.success(), "a gap fails a strict sync");
    let message = stderr(&failed);
    assert!(message.contains("--strict") && message.contains(&subscription), "{message}");
    assert_eq!(std::fs::read(&output).expect("the snapshot"), before, "the previous output is unchanged");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_top_level_listing_fails_the_sync_and_names_the_permission() {
    let harness = Harness::start(Tenant::sample()).await;
    harness.fake.forbid("/v1.0/users");
    let output = harness.path("sync.db");
    let failed = harness.sync(&output, &[]).await;
    assert!(!failed.status.success(), "users cannot be left out silently");
    let message = stderr(&failed);
    assert!(message.contains("User.Read.All"), "the error names the permission to grant: {message}");
    assert!(!output.exists());
}
