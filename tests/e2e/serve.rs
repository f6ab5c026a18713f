//! `serve`: many tenants in one process, each exact and isolated, a hostile one among them
//! changing nothing for the others; the operations API; shutdown.

use std::collections::{BTreeMap, BTreeSet};

use fake_azure::{FakeAzure, Service, Tenant, TenantShape};
use serde_json::{Value, json};

use crate::oracle::{Expected, Options};
use crate::serve_support::{OPS_TOKEN, ServeProcess, TenantEntry, tenants_file};
use crate::support::{Snapshot, assert_same_map, assert_same_set, export};

/// A small generated tenant, different for each `n` (sizes and a user of its own), with its own
/// app registration secret.
pub(crate) fn small_tenant(n: usize) -> Tenant {
    let shape = TenantShape {
        users: 6 + n % 5,
        groups: 2 + n % 3,
        members_per_group: 3,
        service_principals: 3,
        app_role_assignments_per_app: 2,
        subscriptions: 1,
        resource_groups_per_subscription: 1 + n % 2,
        rbac_assignments_per_subscription: 3,
    };
    let mut tenant = Tenant::generate(&shape);
    let mut own_user = tenant.users[0].clone();
    own_user.id = format!("5e1f0000-0000-4000-8000-{n:012}");
    own_user.user_principal_name = format!("only-in-tenant-{n}@example.com");
    tenant.users.push(own_user);
    tenant.client_secret = format!("secret-of-tenant-{n}");
    tenant
}

pub(crate) fn secrets(entries: &[TenantEntry]) -> Vec<(String, String)> {
    entries.iter().map(|entry| (entry.secret_variable(), entry.tenant.client_secret.clone())).collect()
}

pub(crate) async fn assert_snapshot_is_exact(serve: &ServeProcess, id: &str, fake: &FakeAzure) {
    let actual = Snapshot::of(&export(&serve.snapshot(id)).await);
    let expected = Expected::of(&fake.tenant(), &Options { skip_ad_groups: false });
    assert_same_map(&format!("resources of {id}"), &actual.resources, &expected.resources);
    assert_same_set(&format!("entitlements of {id}"), &actual.entitlements, &expected.entitlements);
    assert_same_set(&format!("grants of {id}"), &actual.grants, &expected.grants);
}

/// The bearer tokens a fake received on Graph and ARM.
fn tokens_seen(fake: &FakeAzure) -> BTreeSet<String> {
    fake.requests()
        .into_iter()
        .filter(|request| matches!(request.service, Service::Graph | Service::Arm))
        .filter_map(|request| request.authorization)
        .collect()
}

/// A hostile tenant: the probe component running one probe for its whole sync, and the error
/// its tenant's status must show.
struct Attack {
    probe: &'static str,
    options: &'static [(&'static str, &'static str)],
    error: &'static str,
}

const ATTACKS: [Attack; 4] = [
    Attack { probe: "spin", options: &[], error: "deadline" },
    Attack { probe: "allocate", options: &[], error: "past the limit of 256 MiB" },
    Attack { probe: "huge-page", options: &[("count", "20000")], error: "at most 10000 per page" },
    Attack {
        probe: "fetch",
        options: &[("target", "http://169.254.169.254/metadata/identity/oauth2/token")],
        error: "not in the allow-list",
    },
];

#[tokio::test(flavor = "multi_thread")]
async fn fifty_tenants_sync_exactly_in_one_process_while_hostile_tenants_fail_alone() {
    let mut fakes = Vec::new();
    let mut entries = Vec::new();
    for n in 0..50 {
        let fake = FakeAzure::start(small_tenant(n)).await.expect("a fake Azure");
        fake.throttle_every(5);
        fake.arm_page_size(2);
        let mut entry = TenantEntry::for_fake(&format!("tenant-{n:02}"), &fake);
        entry.extra = "page_size = 4\n".into();
        entries.push(entry);
        fakes.push(fake);
    }
    let hostile_fake = FakeAzure::start(small_tenant(99)).await.expect("a fake Azure");
    for attack in &ATTACKS {
        let id = format!("hostile-{}", attack.probe);
        entries.push(TenantEntry::probe(&id, &hostile_fake, attack.probe, attack.options));
    }
    let serve = ServeProcess::start(
        &tenants_file(&entries),
        &secrets(&entries),
        &["--max-concurrent-syncs", "54", "--workers", "2", "--call-timeout", "20s"],
    )
    .await;
    let ids: Vec<String> = entries.iter().map(|entry| entry.id.clone()).collect();
    let statuses = serve.wait_for_syncs(&ids, 1).await;

    for attack in &ATTACKS {
        let status = &statuses[&format!("hostile-{}", attack.probe)];
        assert_eq!(status["last_result"]["outcome"], "failure", "{status}");
        let error = status["last_result"]["error"].as_str().unwrap_or_default();
        assert!(error.contains(attack.error), "hostile-{} fails saying why: {error}", attack.probe);
    }
    for (entry, fake) in entries.iter().zip(&fakes) {
        let status = &statuses[&entry.id];
        assert_eq!(status["last_result"]["outcome"], "success", "{status}");
        assert_snapshot_is_exact(&serve, &entry.id, fake).await;
    }
    let throttled: usize =
        fakes.iter().map(|fake| fake.requests().iter().filter(|request| request.status == 429).count()).sum();
    assert!(throttled > 0, "the fakes throttled, and every result is still exact");

    // Each tenant's requests carried only tokens its own Azure issued: none was refused, and
    // no token was seen by two fakes.
    let mut all_tokens = BTreeSet::new();
    for (entry, fake) in entries.iter().zip(&fakes) {
        assert!(
            fake.requests().iter().all(|request| request.status != 401),
            "{} got a foreign or missing token",
            entry.id
        );
        for token in tokens_seen(fake) {
            assert!(all_tokens.insert(token), "a token of one tenant reached the Azure of another ({})", entry.id);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ops_api_serves_health_without_a_token_and_everything_else_only_with_it() {
    let fake = FakeAzure::start(Tenant::sample()).await.expect("a fake Azure");
    let entries = [TenantEntry::for_fake("contoso", &fake)];
    let serve = ServeProcess::start(&tenants_file(&entries), &secrets(&entries), &[]).await;
    assert_eq!(serve.call("GET", "/healthz", None, None).await.0, 200);
    serve.wait_for_syncs(&["contoso".into()], 1).await;
    assert_eq!(serve.call("GET", "/readyz", None, None).await.0, 200);
    for (method, path) in [("GET", "/metrics"), ("GET", "/tenants/contoso"), ("POST", "/tenants/contoso/sync")] {
        assert_eq!(serve.call(method, path, None, None).await.0, 401, "{method} {path} without a token");
        assert_eq!(serve.call(method, path, Some("wrong-token-0123456789"), None).await.0, 401, "{method} {path}");
    }

    let status = serve.status("contoso").await;
    assert_eq!(status["state"], "scheduled", "{status}");
    assert!(status["next_run"].is_string(), "{status}");
    let summary = &status["last_result"]["summary"];
    assert_eq!(summary["resources"]["user"], fake.tenant().users.len(), "{status}");
    assert!(summary["gaps"].is_array(), "{status}");

    let (code, _) = serve.call("POST", "/tenants/contoso/sync", Some(OPS_TOKEN), None).await;
    assert_eq!(code, 202);
    serve.wait_for_syncs(&["contoso".into()], 2).await;
    let (_, metrics) = serve.call("GET", "/metrics", Some(OPS_TOKEN), None).await;
    let metrics = metrics.as_str().expect("metrics are text").to_owned();
    for expected in [
        "connector_host_syncs_total{tenant=\"contoso\",result=\"success\"} 2",
        "connector_host_sync_duration_seconds_count{tenant=\"contoso\"} 2",
        "connector_host_outbound_requests_total{tenant=\"contoso\"}",
        "connector_host_throttled_responses_total{tenant=\"contoso\"} 0",
        "connector_host_gaps{tenant=\"contoso\"}",
        "connector_host_last_success_timestamp_seconds{tenant=\"contoso\"}",
    ] {
        assert!(metrics.contains(expected), "metrics lack {expected}:\n{metrics}");
    }

    let (code, body) = serve.call("GET", "/tenants/fabrikam", Some(OPS_TOKEN), None).await;
    assert_eq!(code, 404, "{body}");
    let change = json!({"entitlement": "group:x:members", "principal_type": "user", "principal_id": "y"});
    let (code, body) = serve.call("POST", "/tenants/contoso/grant", Some(OPS_TOKEN), Some(change)).await;
    assert_eq!(code, 403, "provisioning is off for contoso: {body}");
    assert!(body["error"].as_str().unwrap_or_default().contains("provisioning = true"), "{body}");
}

/// The sample tenant on a fake with provisioning on, and a change it has not seen: a user
/// added to a cloud security group it is not in.
pub struct PendingMembership {
    pub fake: FakeAzure,
    pub entry: TenantEntry,
    pub group_id: String,
    pub user_id: String,
    /// The body of the grant (or revoke) request.
    pub change: Value,
}

impl PendingMembership {
    pub async fn start() -> PendingMembership {
        let tenant = Tenant::sample();
        let group = tenant
            .groups
            .iter()
            .find(|group| group.on_premises_sync_enabled != Some(true) && group.group_types.is_empty())
            .expect("the sample has a cloud security group")
            .clone();
        let user =
            tenant.users.iter().find(|user| !group.members.contains(&user.id)).expect("a user outside it").clone();
        let fake = FakeAzure::start(tenant).await.expect("a fake Azure");
        let mut entry = TenantEntry::for_fake("contoso", &fake);
        entry.extra = "provisioning = true\n".into();
        let change = json!({
            "entitlement": format!("group:{}:members", group.id),
            "principal_type": "user",
            "principal_id": user.id,
        });
        PendingMembership { fake, entry, group_id: group.id, user_id: user.id, change }
    }

    /// Whether Azure lists the user in the group now.
    pub fn is_member(&self) -> bool {
        let groups = self.fake.tenant().groups;
        groups.into_iter().find(|group| group.id == self.group_id).expect("the group").members.contains(&self.user_id)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grant_through_the_ops_api_changes_azure_for_a_tenant_with_provisioning_on() {
    let pending = PendingMembership::start().await;
    let entries = [pending.entry.clone()];
    let serve = ServeProcess::start(&tenants_file(&entries), &secrets(&entries), &[]).await;
    let change = pending.change.clone();
    let (code, body) = serve.call("POST", "/tenants/contoso/grant", Some(OPS_TOKEN), Some(change.clone())).await;
    assert_eq!(code, 200, "{body}\n{}", serve.log());
    assert_eq!(body["outcome"], "granted", "{body}");
    assert!(pending.is_member(), "Azure now lists the user as a member");
    let (code, body) = serve.call("POST", "/tenants/contoso/revoke", Some(OPS_TOKEN), Some(change)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["outcome"], "revoked", "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_secret_file_is_read_at_the_next_sync() {
    let fake = FakeAzure::start(Tenant::sample()).await.expect("a fake Azure");
    let tenant = fake.tenant();
    let dir = tempfile::tempdir().expect("a directory");
    let secret_file = dir.path().join("client-secret");
    std::fs::write(&secret_file, "an-expired-secret\n").expect("the secret file");
    let toml = format!(
        "[[tenant]]\nid = \"contoso\"\nlogin_url = {:?}\ngraph_url = {:?}\narm_url = {:?}\n\
         [tenant.credentials]\nclient_id = {:?}\ntenant_id = {:?}\nclient_secret_file = {:?}\n",
        fake.login_url(),
        fake.graph_url(),
        fake.arm_url(),
        tenant.client_id,
        tenant.tenant_id,
        secret_file.display().to_string()
    );
    let serve = ServeProcess::start(&toml, &[], &[]).await;
    let first = serve.wait_for_syncs(&["contoso".into()], 1).await;
    let error = first["contoso"]["last_result"]["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains("AADSTS7000215"), "the wrong secret is reported: {error}");
    assert!(!serve.log().contains("an-expired-secret"), "the secret is never logged");

    std::fs::write(&secret_file, format!("{}\n", tenant.client_secret)).expect("the rotated secret");
    assert_eq!(serve.call("POST", "/tenants/contoso/sync", Some(OPS_TOKEN), None).await.0, 202);
    let second = serve.wait_for_syncs(&["contoso".into()], 2).await;
    assert_eq!(second["contoso"]["last_result"]["outcome"], "success", "{}", second["contoso"]);
    assert!(second["contoso"]["last_error"]["message"].as_str().unwrap_or_default().contains("AADSTS7000215"));
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_serve_disjoint_shares_of_the_tenants_named_by_pod_name() {
    let fake = FakeAzure::start(Tenant::sample()).await.expect("a fake Azure");
    let entries: Vec<TenantEntry> = (0..8).map(|n| TenantEntry::for_fake(&format!("tenant-{n}"), &fake)).collect();
    let mut served: BTreeMap<String, usize> = BTreeMap::new();
    for replica in ["connector-host-0", "connector-host-1"] {
        let mut serve = ServeProcess::start(
            &tenants_file(&entries),
            &secrets(&entries),
            &["--shard-count", "2", "--shard-index", replica],
        )
        .await;
        let (code, list) = serve.call("GET", "/tenants", Some(OPS_TOKEN), None).await;
        assert_eq!(code, 200);
        let mine: Vec<String> = list["tenants"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|t| t["id"].as_str().unwrap_or_default().to_owned())
            .collect();
        for id in &mine {
            *served.entry(id.clone()).or_default() += 1;
        }
        let other = entries.iter().map(|entry| &entry.id).find(|id| !mine.contains(id));
        if let Some(other) = other {
            let (code, body) = serve.call("GET", &format!("/tenants/{other}"), Some(OPS_TOKEN), None).await;
            assert_eq!(code, 404);
            assert!(body["error"].as_str().unwrap_or_default().contains("served by replica"), "{body}");
        }
        let (status, _) = serve.terminate().await;
        assert!(status.success(), "{status}");
    }
    assert_eq!(served.len(), entries.len(), "every tenant is served: {served:?}");
    assert!(served.values().all(|count| *count == 1), "by exactly one replica: {served:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_the_running_sync_finish_then_exits_zero() {
    let fake = FakeAzure::start(Tenant::sample()).await.expect("a fake Azure");
    // Slow answers keep the sync running when the signal comes.
    fake.throttle_every(3);
    fake.throttle_retry_after(0.2);
    let entries = [TenantEntry::for_fake("contoso", &fake)];
    let mut serve =
        ServeProcess::start(&tenants_file(&entries), &secrets(&entries), &["--shutdown-grace", "120s"]).await;
    loop {
        let status: Value = serve.status("contoso").await;
        if status["state"] == "running" && !fake.requests().is_empty() {
            break;
        }
        assert!(status["last_result"].is_null(), "the sync ended before the test could interrupt it: {status}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let snapshot = serve.snapshot("contoso");
    let (status, log) = serve.terminate().await;
    assert!(status.success(), "serve exits 0 after SIGTERM: {status}\n{log}");
    assert!(log.contains("sync finished"), "the running sync completed before the exit:\n{log}");
    assert!(snapshot.is_file(), "its snapshot is in place");
}
