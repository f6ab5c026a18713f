//! Failures say what to fix, and never cost the previous snapshot.

use fake_azure::Tenant;

use crate::support::{Harness, RESOURCE_TYPES, assert_success, export, run_host, stderr};

#[tokio::test(flavor = "multi_thread")]
async fn wrong_secret_is_reported_with_its_aadsts_code() {
    let harness = Harness::start(Tenant::sample()).await;
    let output = harness.path("sync.db");
    let mut args = harness.sync_args(&output);
    let secret = args.iter().position(|arg| arg == "--azure-client-secret").expect("secret flag") + 1;
    args[secret] = "not-the-secret".into();
    let result = run_host(&args, &[]).await;
    assert!(!result.status.success());
    let message = stderr(&result);
    let last_line = message.lines().last().unwrap_or_default();
    assert!(last_line.contains("AADSTS7000215"), "{message}");
    assert!(last_line.contains("client secret is wrong"), "{message}");
    assert!(!message.contains("not-the-secret"), "the secret must not be printed: {message}");
    assert!(!output.exists(), "no output is written");
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_that_fails_midway_leaves_the_previous_output_intact() {
    let harness = Harness::start(Tenant::sample()).await;
    let output = harness.path("sync.db");
    assert_success(&harness.sync(&output, &[]).await);
    let before = export(&output).await;
    let bytes_before = std::fs::read(&output).expect("the first snapshot");

    harness.fake.mutate(|tenant| tenant.users.truncate(1));
    harness.fake.fail_after(5, 500);
    let failed = harness.sync(&output, &[]).await;
    assert!(!failed.status.success(), "the sync must fail");
    let message = stderr(&failed);
    assert!(message.lines().last().unwrap_or_default().starts_with("error:"), "{message}");
    assert!(message.contains("500"), "the reason names Azure's answer: {message}");
    assert_eq!(
        std::fs::read(&output).expect("the snapshot is still there"),
        bytes_before,
        "the previous output is untouched"
    );
    assert_eq!(export(&output).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_without_credentials_points_to_the_fix() {
    let result = run_host(&["sync".into(), "--output".into(), "/tmp/never-written.db".into()], &[]).await;
    assert!(!result.status.success());
    let message = stderr(&result);
    assert!(message.contains("BATON_AZURE_CLIENT_ID"), "{message}");
    assert!(message.contains("demo"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_to_a_remote_host_is_refused() {
    let result = run_host(
        &[
            "sync".into(),
            "--azure-client-id".into(),
            "a".into(),
            "--azure-client-secret".into(),
            "b".into(),
            "--azure-tenant-id".into(),
            "contoso.onmicrosoft.com".into(),
            "--graph-url".into(),
            "http://graph.example.com".into(),
        ],
        &[],
    )
    .await;
    assert!(!result.status.success());
    assert!(stderr(&result).contains("use https"), "{}", stderr(&result));
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_prints_counts_that_match_the_sample_tenant() {
    let dir = tempfile::tempdir().expect("a directory");
    let output = dir.path().join("demo.db");
    let result = run_host(&["demo".into(), "--output".into(), output.display().to_string()], &[]).await;
    assert_success(&result);
    let printed = String::from_utf8_lossy(&result.stdout).into_owned();
    let tenant = Tenant::sample();
    let line = |kind: &str| -> u64 {
        printed
            .lines()
            .find(|line| line.trim_start().starts_with(&format!("{kind} ")))
            .and_then(|line| line.split_whitespace().last())
            .and_then(|count| count.parse().ok())
            .unwrap_or_else(|| panic!("the summary has a {kind} count:\n{printed}"))
    };
    assert_eq!(line("user"), tenant.users.len() as u64);
    assert_eq!(line("group"), tenant.groups.len() as u64);
    assert_eq!(line("subscription"), tenant.subscriptions.len() as u64);
    assert_eq!(line("resource_group"), tenant.resource_groups.len() as u64);
    let exported = export(&output).await;
    assert_eq!(exported["resources"].as_array().map(Vec::len).unwrap_or_default() as u64, {
        let summed: u64 = RESOURCE_TYPES.iter().map(|kind| line(kind)).sum();
        summed
    });
}
