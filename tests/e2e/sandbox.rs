//! The sandbox keeps a component to the origins it was allowed, never lets it authenticate
//! itself, and never shows it a credential.

use connector_host::sandbox::{ConnectorError, SandboxLimits};
use fake_azure::{FakeAzure, Service, Tenant};

use crate::probe::{Sandbox, profile};

async fn fake() -> (FakeAzure, Tenant) {
    let tenant = Tenant::sample();
    (FakeAzure::start(tenant.clone()).await.expect("the fake starts"), tenant)
}

#[tokio::test(flavor = "multi_thread")]
async fn request_to_an_origin_not_allowed_fails_and_reaches_nothing() {
    let (fake, tenant) = fake().await;
    let sandbox = Sandbox::new(&tenant, &fake.login_url(), &[fake.graph_url()], SandboxLimits::default());
    let target = format!("{}/tenants?api-version=2022-12-01", fake.arm_url());
    let outcome = sandbox.run("fetch", &[("target", &target)]).await.expect("the call completes");
    match outcome {
        Err(ConnectorError::Transport(text)) => assert!(text.to_lowercase().contains("denied"), "{text}"),
        other => panic!("the request must fail inside the guest, got {other:?}"),
    }
    assert!(
        fake.requests().iter().all(|request| !matches!(request.service, Service::Arm | Service::Login)),
        "nothing may reach the origin that is not allowed (nor fetch a token for it)"
    );
    assert_eq!(sandbox.gateway.stats().refused(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_allow_list_allows_nothing() {
    let (fake, tenant) = fake().await;
    let sandbox = Sandbox::new(&tenant, &fake.login_url(), &[], SandboxLimits::default());
    let target = format!("{}/v1.0/organization", fake.graph_url());
    let outcome = sandbox.run("fetch", &[("target", &target)]).await.expect("the call completes");
    assert!(matches!(outcome, Err(ConnectorError::Transport(_))), "{outcome:?}");
    assert!(fake.requests().is_empty(), "no request may reach the fake: {:?}", fake.requests().len());
}

#[tokio::test(flavor = "multi_thread")]
async fn guest_set_authorization_header_is_refused() {
    let (fake, tenant) = fake().await;
    let sandbox = Sandbox::new(&tenant, &fake.login_url(), &[fake.graph_url()], SandboxLimits::default());
    let target = format!("{}/v1.0/organization", fake.graph_url());
    let outcome = sandbox
        .run("fetch", &[("target", &target), ("header-name", "Authorization"), ("header-value", "Bearer stolen")])
        .await
        .expect("the call completes");
    assert!(matches!(outcome, Err(ConnectorError::Transport(_))), "a guest-set Authorization must fail: {outcome:?}");
    assert!(
        fake.requests().iter().all(|request| request.authorization.as_deref() != Some("Bearer stolen")),
        "the guest's header must never be sent"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn allowed_requests_carry_the_hosts_token_which_the_guest_never_sees() {
    let (fake, tenant) = fake().await;
    let sandbox = Sandbox::new(&tenant, &fake.login_url(), &[fake.graph_url()], SandboxLimits::default());
    let target = format!("{}/v1.0/organization", fake.graph_url());
    let page =
        sandbox.run("fetch", &[("target", &target)]).await.expect("the call completes").expect("the fetch succeeds");
    let report = profile(&page);
    assert_eq!(report["status"], 200, "{report}");
    let graph_request = fake
        .requests()
        .into_iter()
        .find(|request| matches!(request.service, Service::Graph))
        .expect("the request reached Graph");
    let authorization = graph_request.authorization.expect("the host attached a token");
    let token = authorization.trim_start_matches("Bearer ");
    let seen_by_guest = page.items[0].profile_json.clone();
    assert!(!seen_by_guest.contains(token), "the guest must not see the token");
    assert!(!seen_by_guest.contains(&tenant.client_secret), "the guest must not see the secret");
}

#[tokio::test(flavor = "multi_thread")]
async fn guest_has_no_environment_arguments_or_files() {
    let (fake, tenant) = fake().await;
    let sandbox = Sandbox::new(&tenant, &fake.login_url(), &[fake.graph_url()], SandboxLimits::default());
    // The host's own environment holds something a guest would love to read.
    let page = sandbox.run("environment", &[]).await.expect("the call completes").expect("the probe reports");
    let report = profile(&page);
    assert_eq!(report["variables"], serde_json::json!([]), "{report}");
    assert_eq!(report["arguments"], serde_json::json!([]), "{report}");
    for file in report["files"].as_array().expect("file results") {
        assert!(!file.as_str().unwrap_or_default().ends_with("readable"), "{file}");
    }
    assert!(!page.items[0].profile_json.contains(&tenant.client_secret));
}

#[tokio::test(flavor = "multi_thread")]
async fn endless_loop_is_stopped_by_the_deadline() {
    let (fake, tenant) = fake().await;
    let limits = SandboxLimits { call_timeout: std::time::Duration::from_millis(500), ..SandboxLimits::default() };
    let sandbox = Sandbox::new(&tenant, &fake.login_url(), &[fake.graph_url()], limits);
    let started = std::time::Instant::now();
    let error = sandbox.run("spin", &[]).await.expect_err("an endless loop must be stopped");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "stopped late: {:?}", started.elapsed());
    assert!(format!("{error:#}").contains("spin"), "the error names the call: {error:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_is_capped_per_call() {
    let (fake, tenant) = fake().await;
    let limits = SandboxLimits { memory_bytes: 64 * 1024 * 1024, ..SandboxLimits::default() };
    let sandbox = Sandbox::new(&tenant, &fake.login_url(), &[fake.graph_url()], limits);
    match sandbox.run("allocate", &[]).await {
        Ok(Ok(page)) => {
            let allocated = profile(&page)["allocated_mib"].as_u64().expect("a number");
            assert!(allocated <= 64, "allocated {allocated} MiB past a 64 MiB limit");
        }
        Ok(Err(error)) => panic!("unexpected connector error {error:?}"),
        // A trap on failed growth is also a stop.
        Err(error) => assert!(format!("{error:#}").contains("allocate"), "{error:#}"),
    }
}
