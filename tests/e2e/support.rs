//! Test support: a fake Azure per test, the host binary run against it, and its export read back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

use fake_azure::{FakeAzure, Tenant};
use serde_json::Value;

pub const HOST: &str = env!("CARGO_BIN_EXE_connector-host");

/// The eight resource types of §1 of the Azure reference.
pub const RESOURCE_TYPES: [&str; 8] =
    ["user", "group", "role", "enterprise_application", "managed_identity", "tenant", "subscription", "resource_group"];

/// A tenant shape with `users` users and nothing else, to add principals to a sample tenant.
pub fn users_only(users: usize) -> fake_azure::TenantShape {
    fake_azure::TenantShape {
        users,
        groups: 0,
        members_per_group: 0,
        service_principals: 0,
        app_role_assignments_per_app: 0,
        subscriptions: 0,
        resource_groups_per_subscription: 0,
        rbac_assignments_per_subscription: 0,
    }
}

pub struct Harness {
    pub fake: FakeAzure,
    pub dir: tempfile::TempDir,
}

impl Harness {
    pub async fn start(tenant: Tenant) -> Harness {
        let fake = FakeAzure::start(tenant).await.expect("the fake Azure starts");
        Harness { fake, dir: tempfile::tempdir().expect("a temporary directory") }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `sync` arguments for this fake: its credentials and its three loopback endpoints.
    pub fn sync_args(&self, output: &Path) -> Vec<String> {
        let mut args = vec!["sync".into(), "--output".into(), output.display().to_string()];
        args.extend(self.fake.host_args());
        args
    }

    pub async fn sync(&self, output: &Path, extra: &[&str]) -> Output {
        let mut args = self.sync_args(output);
        args.extend(extra.iter().map(|arg| arg.to_string()));
        run_host(&args, &[]).await
    }
}

/// Runs the host binary with a clean environment (no BATON_* from the developer's shell).
pub async fn run_host(args: &[String], env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(HOST);
    command.args(args).env_clear().env("BATON_LOG_LEVEL", "warn");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().await.expect("the host binary runs")
}

pub fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "host failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub async fn export(snapshot: &Path) -> Value {
    let output = run_host(&["export".into(), "--input".into(), snapshot.display().to_string()], &[]).await;
    assert_success(&output);
    serde_json::from_slice(&output.stdout).expect("export prints one JSON document")
}

/// The parts of an export the oracle predicts.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub resources: BTreeMap<(String, String), Option<(String, String)>>,
    pub entitlements: BTreeSet<String>,
    pub grants: BTreeSet<String>,
}

fn text(value: &Value, key: &str) -> String {
    value[key].as_str().unwrap_or_else(|| panic!("{key} is a string in {value}")).to_owned()
}

impl Snapshot {
    pub fn of(export: &Value) -> Snapshot {
        let resources = export["resources"]
            .as_array()
            .expect("resources is an array")
            .iter()
            .map(|resource| {
                let parent = match &resource["parent"] {
                    Value::Null => None,
                    parent => Some((text(parent, "resource_type"), text(parent, "id"))),
                };
                ((text(resource, "resource_type"), text(resource, "id")), parent)
            })
            .collect();
        let entitlements = export["entitlements"]
            .as_array()
            .expect("entitlements is an array")
            .iter()
            .map(|e| text(e, "id"))
            .collect();
        let grants = export["grants"].as_array().expect("grants is an array").iter().map(|g| text(g, "id")).collect();
        Snapshot { resources, entitlements, grants }
    }
}

/// Asserts two sets are equal, printing only the differences (the sets can be large).
pub fn assert_same_set<T: Ord + std::fmt::Debug>(what: &str, actual: &BTreeSet<T>, expected: &BTreeSet<T>) {
    let missing: Vec<&T> = expected.difference(actual).take(20).collect();
    let unexpected: Vec<&T> = actual.difference(expected).take(20).collect();
    assert!(
        missing.is_empty() && unexpected.is_empty(),
        "{what} differ: {} expected, {} synced\nmissing (first 20): {missing:#?}\nunexpected (first 20): {unexpected:#?}",
        expected.len(),
        actual.len()
    );
}

pub fn assert_same_map<K: Ord + std::fmt::Debug, V: PartialEq + std::fmt::Debug>(
    what: &str,
    actual: &BTreeMap<K, V>,
    expected: &BTreeMap<K, V>,
) {
    let missing: Vec<&K> = expected.keys().filter(|key| !actual.contains_key(*key)).take(20).collect();
    let unexpected: Vec<&K> = actual.keys().filter(|key| !expected.contains_key(*key)).take(20).collect();
    let different: Vec<(&K, &V, &V)> = expected
        .iter()
        .filter_map(|(key, value)| actual.get(key).filter(|got| *got != value).map(|got| (key, value, got)))
        .take(20)
        .collect();
    assert!(
        missing.is_empty() && unexpected.is_empty() && different.is_empty(),
        "{what} differ:\nmissing: {missing:#?}\nunexpected: {unexpected:#?}\ndifferent (key, expected, synced): {different:#?}"
    );
}
