//! A snapshot or partial file of another tenant is never continued: syncing tenant B into
//! tenant A's file is a full sync that keeps nothing of A (Graph has the same URLs for every
//! tenant, so only the identity tells them apart). And the files a sync or `export` reads are
//! refused when they hold code connector-host never writes.

use std::path::Path;

use fake_azure::{Tenant, TenantShape};
use serde_json::Value;

use crate::resume::{kill_sync_after, partial_of};
use crate::support::{Harness, assert_success, export, run_host, stderr};

/// The export without the run's own facts (times, request counts), which differ by design.
fn comparable(mut exported: Value) -> Value {
    if let Some(object) = exported.as_object_mut() {
        object.remove("sync");
    }
    exported
}

fn shape() -> TenantShape {
    TenantShape {
        users: 120,
        groups: 20,
        members_per_group: 8,
        service_principals: 4,
        app_role_assignments_per_app: 4,
        subscriptions: 2,
        resource_groups_per_subscription: 2,
        rbac_assignments_per_subscription: 6,
    }
}

/// Turns the fake (same URLs) into tenant `b` and syncs it alone into `reference.db`.
async fn become_tenant(harness: &Harness, b: &Tenant, extra: &[&str]) -> Value {
    harness.fake.mutate(|tenant| *tenant = b.clone());
    let reference = harness.path("reference.db");
    assert_success(&harness.sync(&reference, extra).await);
    comparable(export(&reference).await)
}

#[tokio::test(flavor = "multi_thread")]
async fn syncing_another_tenant_into_a_snapshot_is_a_full_sync_that_keeps_nothing_of_it() {
    let a = Tenant::sample();
    let b = Tenant::generate(&shape());
    assert_ne!(a.tenant_id, b.tenant_id, "two tenants");
    let harness = Harness::start(a.clone()).await;
    let output = harness.path("sync.db");
    assert_success(&harness.sync(&output, &[]).await);

    let expected = become_tenant(&harness, &b, &[]).await;
    let result = harness.sync(&output, &[]).await;
    assert_success(&result);
    let summary = String::from_utf8_lossy(&result.stdout).into_owned();
    assert!(summary.contains("full (the output held another tenant's snapshot)"), "{summary}");
    let log = stderr(&result);
    assert!(log.contains("another tenant") && log.contains(&b.tenant_id) && log.contains(&a.tenant_id), "{log}");
    assert_eq!(comparable(export(&output).await), expected, "the snapshot is tenant B's alone");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partial_file_of_another_tenant_is_not_resumed() {
    let a = Tenant::generate(&shape());
    let b = Tenant::sample();
    let harness = Harness::start(a).await;
    let output = harness.path("sync.db");
    let mut kill_at = 60;
    while !kill_sync_after(&harness, &output, kill_at, &["--page-size", "5"]).await {
        kill_at /= 2;
        assert!(kill_at > 5, "could not kill the sync before it finished");
    }
    assert!(partial_of(&output).exists(), "tenant A's sync left its checkpoint");

    let expected = become_tenant(&harness, &b, &["--page-size", "5"]).await;
    let result = harness.sync(&output, &["--page-size", "5"]).await;
    assert_success(&result);
    let summary = String::from_utf8_lossy(&result.stdout).into_owned();
    assert!(!summary.contains("resumed"), "tenant A's pages are not continued:\n{summary}");
    let log = stderr(&result);
    assert!(log.contains("partial file read another tenant") && log.contains(&b.tenant_id), "{log}");
    assert_eq!(comparable(export(&output).await), expected, "the snapshot is tenant B's alone");
}

fn add_to_schema(path: &Path, sql: &str) {
    let connection = rusqlite::Connection::open(path).expect("the snapshot opens");
    connection.execute_batch(sql).expect("the schema change");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_previous_snapshot_holding_code_is_refused_by_sync_and_export_and_left_as_it_is() {
    let harness = Harness::start(Tenant::sample()).await;
    let clean = harness.path("clean.db");
    assert_success(&harness.sync(&clean, &[]).await);
    let cases = [
        (
            "CREATE TRIGGER copy_out AFTER DELETE ON grants BEGIN
                 INSERT INTO notices (kind, subject, message) VALUES ('gap', old.id, 'kept'); END;",
            "trigger named \"copy_out\"",
            true,
        ),
        ("CREATE VIEW reviewed AS SELECT * FROM grants;", "view named \"reviewed\"", true),
        // A function that is not innocuous, run by every insert when trusted_schema is on. A
        // read-only export inserts nothing, so SQLite lets it read the file.
        ("CREATE TABLE checked (x CHECK (rtreedepth(x'00000000') IS NOT NULL));", "unsafe use of rtreedepth()", false),
    ];
    for (index, (sql, named, export_refuses)) in cases.into_iter().enumerate() {
        let output = harness.path(&format!("tampered-{index}.db"));
        std::fs::copy(&clean, &output).expect("a copy of the snapshot");
        add_to_schema(&output, sql);
        let before = std::fs::read(&output).expect("readable");

        let result = harness.sync(&output, &[]).await;
        assert!(!result.status.success(), "the sync is refused ({named})");
        let log = stderr(&result);
        assert!(log.contains(named) && log.contains("move it away"), "the error names it: {log}");
        assert_eq!(std::fs::read(&output).expect("readable"), before, "the file is left as it was");
        assert!(!partial_of(&output).exists(), "nothing was copied from it");

        if !export_refuses {
            continue;
        }
        let exported = run_host(&["export".into(), "--input".into(), output.display().to_string()], &[]).await;
        assert!(
            !exported.status.success() && stderr(&exported).contains(named),
            "export refuses it too ({named}): {}",
            stderr(&exported)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partial_file_holding_a_trigger_is_refused() {
    let harness = Harness::start(Tenant::sample()).await;
    let output = harness.path("sync.db");
    add_to_schema(
        &partial_of(&output),
        "CREATE TABLE sync_checkpoint (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         CREATE TRIGGER keep AFTER DELETE ON sync_checkpoint BEGIN SELECT 1; END;",
    );
    let result = harness.sync(&output, &[]).await;
    assert!(!result.status.success(), "the sync is refused");
    let log = stderr(&result);
    assert!(log.contains(".sync.db.partial") && log.contains("trigger named \"keep\""), "{log}");
    assert!(!output.exists(), "no snapshot was written");
}
