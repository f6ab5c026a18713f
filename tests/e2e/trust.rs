//! Issue 10, findings 1–4: a hostile connector cannot choose where the app registration's
//! tokens go or which audience they are for, cannot write outside a grant or revoke, and cannot
//! hide a write behind a method override; a tenant id cannot send the client secret elsewhere;
//! no change reaches Azure without an audit row.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use connector_host::cloud::{AzureCloud, AzureEndpoints, EndpointOverrides};
use connector_host::credentials::{ClientCredentials, Secret};
use connector_host::outbound::OutboundStats;
use connector_host::outbound::transport::{HttpTransport, TransportLimits};
use connector_host::provision::{Action, Change, ProvisioningContext, apply};
use connector_host::sandbox::{ConnectorError, ConnectorRuntime, ResourceRef, SandboxLimits};
use connector_host::store::{AuditRecord, begin_audit};
use connector_host::tenant::{TenantSettings, offline_gateway};
use fake_azure::{FakeAzure, Service, Tenant};
use serde_json::Value;

use crate::probe::{Sandbox, hostile_endpoints_probe_file, probe_component, profile};
use crate::serve::{assert_snapshot_is_exact, secrets};
use crate::serve_support::{ServeProcess, TenantEntry, tenants_file};
use crate::support::{Harness, assert_success, export, run_host, stderr};

/// A loopback listener that counts the connections it accepts and answers nothing.
async fn counting_listener() -> (SocketAddr, Arc<AtomicUsize>) {
    let accepted = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let address = listener.local_addr().expect("its address");
    let counter = accepted.clone();
    tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    (address, accepted)
}

/// Requests to Graph or ARM that could change something (anything but a GET).
fn writes_seen(fake: &FakeAzure) -> Vec<String> {
    fake.requests()
        .into_iter()
        .filter(|request| request.service != Service::Login && request.method != "GET")
        .map(|request| format!("{} {}", request.method, request.path_and_query))
        .collect()
}

fn user_outside(tenant: &Tenant, group: usize) -> String {
    let members = &tenant.groups[group].members;
    tenant.users.iter().find(|user| !members.contains(&user.id)).expect("a user outside the group").id.clone()
}

/// A hostile tenant of the `serve` test and the words its failure must contain.
struct Hostile {
    entry: TenantEntry,
    error: Vec<String>,
}

fn probe_attack(id: &str, fake: &FakeAzure, method: &str, target: &str, error: &[&str]) -> Hostile {
    let options = [("method", method), ("target", target), ("body", "{}")];
    let mut entry = TenantEntry::probe(id, fake, "request", &options);
    entry.extra.push_str("provisioning = true\n");
    Hostile { entry, error: error.iter().map(|word| word.to_string()).collect() }
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_endpoints_writes_and_tenant_ids_fail_alone_in_serve_while_the_other_tenant_stays_exact() {
    let healthy_fake = FakeAzure::start(Tenant::sample()).await.expect("a fake Azure");
    let hostile_fake = FakeAzure::start(Tenant::sample()).await.expect("a fake Azure");
    let key_vault_fake = FakeAzure::start(Tenant::sample()).await.expect("a fake Azure");
    let (elsewhere, elsewhere_hits) = counting_listener().await;
    let mut healthy = TenantEntry::for_fake("healthy", &healthy_fake);
    healthy.extra = "provisioning = true\n".into();

    let graph = hostile_fake.graph_url();
    let group = &hostile_fake.tenant().groups[0].id;
    let mut asks_for_key_vault = TenantEntry::for_fake("keyvault", &key_vault_fake);
    asks_for_key_vault.extra = format!("component = {:?}\n", hostile_endpoints_probe_file().display().to_string());
    let mut injected_tenant_id = TenantEntry::for_fake("injected-tenant-id", &hostile_fake);
    injected_tenant_id.tenant.tenant_id = format!("//{elsewhere}");
    let hostile = [
        Hostile { entry: asks_for_key_vault, error: vec!["asks for the endpoint \"keyvault\"".into()] },
        probe_attack(
            "write-in-sync",
            &hostile_fake,
            "POST",
            &format!("{graph}/v1.0/groups/{group}/members/$ref"),
            &["POST", "may only read"],
        ),
        probe_attack("trace", &hostile_fake, "TRACE", &format!("{graph}/v1.0/organization"), &["TRACE", "refused"]),
        probe_attack(
            "propfind",
            &hostile_fake,
            "PROPFIND",
            &format!("{graph}/v1.0/organization"),
            &["PROPFIND", "refused"],
        ),
        Hostile { entry: injected_tenant_id, error: vec!["neither a GUID".into()] },
    ];
    let mut entries = vec![healthy];
    let mut expected_errors = Vec::new();
    for attack in hostile {
        expected_errors.push((attack.entry.id.clone(), attack.error));
        entries.push(attack.entry);
    }
    let serve = ServeProcess::start(&tenants_file(&entries), &secrets(&entries), &["--call-timeout", "20s"]).await;
    let ids: Vec<String> = entries.iter().map(|entry| entry.id.clone()).collect();
    let statuses = serve.wait_for_syncs(&ids, 1).await;

    for (id, words) in &expected_errors {
        let status = &statuses[id];
        assert_eq!(status["last_result"]["outcome"], "failure", "{id}: {status}");
        let error = status["last_result"]["error"].as_str().unwrap_or_default();
        for word in words {
            assert!(error.contains(word.as_str()), "{id} fails saying why ({word}): {error}");
        }
    }
    assert_eq!(statuses["healthy"]["last_result"]["outcome"], "success", "{}", statuses["healthy"]);
    assert_snapshot_is_exact(&serve, "healthy", &healthy_fake).await;
    assert_eq!(writes_seen(&hostile_fake), Vec::<String>::new(), "no hostile write reached Azure");
    assert_eq!(elsewhere_hits.load(Ordering::SeqCst), 0, "the injected tenant id sent nothing elsewhere");
    assert!(key_vault_fake.requests().is_empty(), "a connector asking for an unknown endpoint gets no token at all");
}

/// A fake Azure, a probe sandbox (read-only, as every sync's) allowed its Graph, and a Graph URL.
async fn graph_sandbox() -> (FakeAzure, Sandbox, String) {
    let tenant = Tenant::sample();
    let fake = FakeAzure::start(tenant.clone()).await.expect("a fake Azure");
    let sandbox = Sandbox::new(&tenant, &fake.login_url(), &[fake.graph_url()], SandboxLimits::default());
    let target = format!("{}/v1.0/organization", fake.graph_url());
    (fake, sandbox, target)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_gateway_refuses_writes_and_exotic_methods_before_they_leave() {
    let (fake, sandbox, target) = graph_sandbox().await;
    for method in ["TRACE", "PROPFIND", "CONNECT", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"] {
        let outcome = sandbox
            .run("request", &[("target", &target), ("method", method), ("body", "{}")])
            .await
            .expect("the call completes");
        match outcome {
            Err(ConnectorError::Transport(text)) => assert!(text.to_lowercase().contains("denied"), "{method}: {text}"),
            other => panic!("{method} must be refused inside the guest, got {other:?}"),
        }
        let cause = sandbox.gateway.take_first_failure().unwrap_or_default();
        assert!(cause.contains(&format!("{method} ")) && cause.contains("may only read"), "{method}: {cause}");
    }
    let reached: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|request| request.service == Service::Graph)
        .map(|request| request.method)
        .collect();
    assert!(reached.is_empty(), "nothing reached Graph: {reached:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn method_override_headers_are_stripped_and_other_headers_kept() {
    let (fake, sandbox, target) = graph_sandbox().await;
    let headers = "X-HTTP-Method-Override: DELETE\nX-HTTP-Method: DELETE\nX-Method-Override: DELETE\nX-Probe-Kept: yes";
    let page = sandbox
        .run("request", &[("target", &target), ("headers", headers)])
        .await
        .expect("the call completes")
        .expect("the GET is sent");
    assert_eq!(profile(&page)["status"], 200, "{}", profile(&page));
    let sent =
        fake.requests().into_iter().find(|request| request.service == Service::Graph).expect("the GET reached Graph");
    assert_eq!(sent.method, "GET");
    let names: Vec<String> = sent.headers.iter().map(|(name, _)| name.to_ascii_lowercase()).collect();
    assert!(names.contains(&"x-probe-kept".to_owned()), "other headers pass: {names:?}");
    for header in ["x-http-method-override", "x-http-method", "x-method-override"] {
        assert!(!names.contains(&header.to_owned()), "{header} was stripped: {names:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_id_that_names_another_host_fails_before_any_request() {
    let harness = Harness::start(Tenant::sample()).await;
    let (elsewhere, hits) = counting_listener().await;
    let mut args = harness.sync_args(&harness.path("sync.db"));
    let at = args.iter().position(|arg| arg == "--azure-tenant-id").expect("the fake's arguments name a tenant id");
    args.drain(at..at + 2);
    for injected in [format!("http://{elsewhere}"), format!("//{elsewhere}"), format!("\\\\{elsewhere}")] {
        let output = run_host(&args, &[("BATON_AZURE_TENANT_ID", injected.as_str())]).await;
        assert!(!output.status.success(), "{injected} must be refused");
        let text = stderr(&output);
        assert!(text.contains("BATON_AZURE_TENANT_ID") && text.contains("neither a GUID"), "{injected}: {text}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the listener at the injected address received nothing");
    assert!(harness.fake.requests().is_empty(), "nothing was sent at all");
}

/// A provisioning change through the probe component, against `harness`'s fake, recorded in
/// `audit_file`; the call stops after `call_timeout`.
async fn probe_change(harness: &Harness, audit_file: &Path, change: &Change) -> anyhow::Result<Value> {
    let tenant = harness.fake.tenant();
    let overrides = EndpointOverrides {
        login: Some(harness.fake.login_url()),
        graph: Some(harness.fake.graph_url()),
        arm: Some(harness.fake.arm_url()),
    };
    let settings = TenantSettings {
        credentials: ClientCredentials {
            tenant_id: tenant.tenant_id.clone(),
            client_id: tenant.client_id.clone(),
            client_secret: Secret::new(tenant.client_secret.clone()),
        },
        endpoints: AzureEndpoints::resolve(AzureCloud::Public, &overrides)?,
        mailbox_settings: false,
        skip_ad_groups: false,
        page_size: 999,
        provisioning: true,
    };
    let limits = SandboxLimits { call_timeout: Duration::from_secs(3), ..SandboxLimits::default() };
    let runtime = ConnectorRuntime::new(probe_component(), limits)?;
    let transport = HttpTransport::new(TransportLimits::default())?;
    let metadata = runtime.instantiate(Arc::new(offline_gateway(transport.clone()))).await?.metadata().await?;
    let gateway = Arc::new(settings.provisioning_gateway(&metadata, transport, Arc::new(OutboundStats::default()))?);
    let config = settings.connector_config();
    let context = ProvisioningContext { runtime: &runtime, gateway, config: &config };
    let report = apply(&settings, &context, audit_file, change).await?;
    Ok(serde_json::to_value(&report)?)
}

fn grant(entitlement_id: &str, user: &str) -> Change {
    Change {
        action: Action::Grant,
        entitlement_id: entitlement_id.to_owned(),
        principal: ResourceRef { resource_type: "user".into(), id: user.to_owned() },
    }
}

/// A harness whose snapshot exists (a sync of the Azure connector), so `export` can read it.
async fn synced_harness() -> Harness {
    let harness = Harness::start(Tenant::sample()).await;
    assert_success(&harness.sync(&harness.path("sync.db"), &[]).await);
    harness
}

/// The audit trail's one row as `export` shows it, checked to have `outcome`.
async fn only_audit_row(audit_file: &Path, outcome: &str) -> Value {
    let exported = export(audit_file).await;
    let rows = exported["provisioning_audit"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 1, "one row: {rows:?}");
    assert_eq!(rows[0]["outcome"], outcome, "{}", rows[0]);
    rows[0].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grant_that_traps_after_its_write_is_settled_as_unknown_in_the_audit_trail() {
    let harness = synced_harness().await;
    let tenant = harness.fake.tenant();
    let user = user_outside(&tenant, 0);
    let entitlement = format!("add-member-then-trap:{}", tenant.groups[0].id);
    let audit_file = harness.path("sync.db");

    let error = probe_change(&harness, &audit_file, &grant(&entitlement, &user)).await.expect_err("the call traps");
    assert!(harness.fake.tenant().groups[0].members.contains(&user), "the write reached Azure before the trap");
    let row = only_audit_row(&audit_file, "unknown").await;
    assert_eq!(row["principal_id"], user.as_str());
    let recorded = row["error"].as_str().unwrap_or_default();
    assert!(recorded.contains("may or may not have been made"), "{recorded}");
    assert!(format!("{error:#}").contains("grant"), "the error names the call: {error:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grant_past_its_deadline_is_settled_as_unknown_in_the_audit_trail() {
    let harness = synced_harness().await;
    let user = user_outside(&harness.fake.tenant(), 0);
    let audit_file = harness.path("sync.db");
    let error = probe_change(&harness, &audit_file, &grant("spin", &user)).await.expect_err("the deadline stops it");
    assert!(format!("{error:#}").contains("deadline"), "{error:#}");
    let row = only_audit_row(&audit_file, "unknown").await;
    assert!(row["error"].as_str().unwrap_or_default().contains("deadline"), "{}", row);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grant_answered_with_an_error_is_settled_as_error() {
    let harness = synced_harness().await;
    let user = user_outside(&harness.fake.tenant(), 0);
    let audit_file = harness.path("sync.db");
    let report = probe_change(&harness, &audit_file, &grant("nothing-to-grant", &user)).await.expect("an answer");
    assert_eq!(report["outcome"], "error", "{report}");
    only_audit_row(&audit_file, "error").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_change_starts_when_its_audit_row_cannot_be_written() {
    let harness = Harness::start(Tenant::sample()).await;
    let tenant = harness.fake.tenant();
    let user = user_outside(&tenant, 0);
    let entitlement = format!("add-member-then-trap:{}", tenant.groups[0].id);
    let unwritable = harness.path("no-such-directory").join("sync.db");
    let error = probe_change(&harness, &unwritable, &grant(&entitlement, &user)).await.expect_err("refused");
    assert!(format!("{error:#}").contains("nothing was changed"), "{error:#}");
    assert!(!harness.fake.tenant().groups[0].members.contains(&user), "the group is unchanged");
    assert_eq!(writes_seen(&harness.fake), Vec::<String>::new(), "no write was sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_row_left_pending_by_a_killed_process_shows_as_pending_in_export() {
    let harness = synced_harness().await;
    let audit_file = harness.path("sync.db");
    let record = AuditRecord {
        at: "2026-12-07T17:00:00Z",
        action: "grant",
        entitlement_id: "group:g:members",
        principal_type: "user",
        principal_id: "u",
        outcome: "granted",
        grant_id: None,
        request_id: None,
        error: None,
        retried: false,
    };
    begin_audit(&audit_file, &record).expect("the pending row is written");
    only_audit_row(&audit_file, "pending").await;
}
