//! A full sync checks what a component lists as the incremental path does: the listed type,
//! the entitlements and grants of the listed resource, one content per id, listings that end,
//! and a deadline for the whole sync. The probe component's `listing-attack`s break each rule.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use connector_host::cli::FullSyncInterval;
use connector_host::sandbox::{ConfigValue, SandboxLimits};
use connector_host::store::{SnapshotIdentity, SnapshotWriter};
use connector_host::sync::{SyncJob, SyncSummary};
use fake_azure::{FakeAzure, Tenant};

use crate::probe::Sandbox;

struct ProbeSync {
    fake: FakeAzure,
    tenant: Tenant,
    dir: tempfile::TempDir,
}

impl ProbeSync {
    async fn start() -> ProbeSync {
        let tenant = Tenant::sample();
        let fake = FakeAzure::start(tenant.clone()).await.expect("the fake starts");
        ProbeSync { fake, tenant, dir: tempfile::tempdir().expect("a temporary directory") }
    }

    fn output(&self) -> std::path::PathBuf {
        self.dir.path().join("sync.db")
    }

    /// A sync of the probe into `sync.db` under `attack`, stopped after `deadline`.
    async fn sync(&self, attack: &str, deadline: Duration) -> anyhow::Result<SyncSummary> {
        let sandbox =
            Sandbox::new(&self.tenant, &self.fake.login_url(), &[self.fake.graph_url()], SandboxLimits::default());
        let metadata = sandbox.metadata().await;
        SyncJob {
            runtime: Arc::new(sandbox.runtime),
            metadata,
            gateway: sandbox.gateway,
            config: vec![ConfigValue { key: "listing-attack".into(), value: attack.into() }],
            output: self.output(),
            strict: false,
            workers: 2,
            show_progress: false,
            full: false,
            full_sync_interval: FullSyncInterval::Never,
            identity: SnapshotIdentity::new(&self.tenant.tenant_id, &self.tenant.client_id, &self.fake.login_url()),
            deadline,
        }
        .run()
        .await
    }

    async fn refused(&self, attack: &str) -> String {
        let error = self.sync(attack, Duration::from_secs(600)).await.expect_err("the sync is refused");
        format!("{error:#}")
    }
}

fn exported(path: &Path) -> serde_json::Value {
    let mut out = Vec::new();
    connector_host::export::export(path, &mut out).expect("the snapshot exports");
    serde_json::from_slice(&out).expect("export prints JSON")
}

fn resource_ids(export: &serde_json::Value) -> Vec<String> {
    let resources = export["resources"].as_array().expect("resources");
    resources.iter().map(|resource| resource["id"].as_str().expect("an id").to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resource_of_another_type_in_a_listing_fails_the_sync_naming_the_listing() {
    let probe = ProbeSync::start().await;
    let message = probe.refused("wrong-type").await;
    assert!(message.contains("listing fetch") && message.contains("environment (planted)"), "{message}");
    assert!(!probe.output().exists(), "nothing is put in place");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_entitlement_of_another_resource_fails_the_sync_naming_the_call() {
    let probe = ProbeSync::start().await;
    let message = probe.refused("foreign-entitlement").await;
    assert!(
        message.contains("listing entitlements of") && message.contains("environment:environment-1:member"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grant_of_an_entitlement_the_resource_does_not_have_fails_the_sync_naming_the_call() {
    let probe = ProbeSync::start().await;
    let message = probe.refused("foreign-grant").await;
    assert!(message.contains("listing grants of fetch:fetch-1"), "{message}");
    assert!(message.contains("entitlement environment:environment-1:member"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_identical_duplicate_is_counted_and_kept_once() {
    let probe = ProbeSync::start().await;
    let summary = probe.sync("identical-duplicate", Duration::from_secs(600)).await.expect("the sync completes");
    assert_eq!(summary.duplicates, 1, "{summary:?}");
    let ids = resource_ids(&exported(&probe.output()));
    assert_eq!(ids.iter().filter(|id| *id == "fetch-1").count(), 1, "{ids:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_with_other_content_fails_the_sync_and_drops_its_partial_file() {
    let probe = ProbeSync::start().await;
    probe.sync("plain", Duration::from_secs(600)).await.expect("a first snapshot");
    let before = exported(&probe.output());
    let message = probe.refused("conflicting-duplicate").await;
    assert!(message.contains("resource fetch:fetch-1 twice with different content"), "{message}");
    assert_eq!(exported(&probe.output()), before, "the previous snapshot is unchanged");
    let partial = SnapshotWriter::partial_file(&probe.output()).expect("a partial path");
    assert!(!partial.exists(), "resuming would meet the same contradiction: the partial file is gone");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_token_cycle_longer_than_one_page_is_stopped_naming_the_listing() {
    let probe = ProbeSync::start().await;
    let message = probe.refused("token-cycle").await;
    assert!(message.contains("listing fetch") && message.contains("page token it had returned before"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_past_its_deadline_fails_and_keeps_the_previous_snapshot_and_its_checkpoint() {
    let probe = ProbeSync::start().await;
    probe.sync("plain", Duration::from_secs(600)).await.expect("a first snapshot");
    let before = exported(&probe.output());
    let error = probe.sync("endless", Duration::from_secs(3)).await.expect_err("a listing that never ends is stopped");
    let message = format!("{error:#}");
    assert!(message.contains("deadline of 3s") && message.contains("--sync-deadline"), "{message}");
    assert_eq!(exported(&probe.output()), before, "the previous snapshot is unchanged");
    let partial = SnapshotWriter::partial_file(&probe.output()).expect("a partial path");
    let checkpoint = rusqlite::Connection::open(&partial)
        .and_then(|connection| {
            connection.query_row(
                "SELECT next_page_token FROM sync_progress WHERE listing = 'resources:fetch'",
                [],
                |row| row.get::<_, String>(0),
            )
        })
        .expect("the partial file holds the listing's checkpoint");
    assert!(checkpoint.parse::<u64>().is_ok_and(|page| page > 0), "{checkpoint}");
}
