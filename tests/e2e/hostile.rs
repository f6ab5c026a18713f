//! A hostile component is stopped with a clear error for its own call, and cannot use the host
//! to reach what its tenant was not given. (Authorization headers, the environment and files
//! are covered in `sandbox.rs`; a hostile tenant among many in one `serve` in `serve.rs`.)

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use connector_host::outbound::gateway::OutboundCaps;
use connector_host::outbound::resolver::NameLookup;
use connector_host::outbound::transport::{HttpTransport, TransportLimits};
use connector_host::sandbox::{ConnectorError, PageBudget, SandboxLimits};
use fake_azure::{FakeAzure, Tenant};

use crate::probe::{Sandbox, profile};

async fn fake() -> (FakeAzure, Tenant) {
    let tenant = Tenant::sample();
    (FakeAzure::start(tenant.clone()).await.expect("the fake starts"), tenant)
}

/// A loopback HTTP server that counts the requests it receives and answers with `answer`.
async fn counting_server(
    answer: impl Fn() -> axum::response::Response + Clone + Send + Sync + 'static,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let router = Router::new().fallback(move || {
        let answer = answer.clone();
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            answer()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let address = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (address, hits)
}

fn transport_error(outcome: Result<connector_host::sandbox::ResourcePage, ConnectorError>) -> String {
    match outcome {
        Err(ConnectorError::Transport(text)) => text,
        other => panic!("the request must fail inside the guest, got {other:?}"),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_spinning_call_does_not_starve_other_calls_on_the_same_thread() {
    let (fake, tenant) = fake().await;
    let limits = SandboxLimits { call_timeout: Duration::from_secs(5), ..SandboxLimits::default() };
    let hostile = Arc::new(Sandbox::new(&tenant, &fake.login_url(), &[fake.graph_url()], limits));
    let neighbour = Sandbox::new(&tenant, &fake.login_url(), &[fake.graph_url()], SandboxLimits::default());
    let spinner = tokio::spawn({
        let hostile = hostile.clone();
        async move { hostile.run("spin", &[]).await }
    });
    tokio::task::yield_now().await;
    let target = format!("{}/v1.0/organization", fake.graph_url());
    let page = neighbour.run("fetch", &[("target", &target)]).await.expect("the call completes").expect("it fetches");
    assert_eq!(profile(&page)["status"], 200);
    assert!(!spinner.is_finished(), "the neighbour must finish while the spinning call still runs on the same thread");
    let error = spinner.await.expect("the task ends").expect_err("the spinning call is stopped");
    assert!(format!("{error:#}").contains("deadline"), "the error says the deadline stopped it: {error:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_past_the_limit_stops_the_call_naming_the_limit() {
    let (fake, tenant) = fake().await;
    let limits = SandboxLimits { memory_bytes: 64 * 1024 * 1024, ..SandboxLimits::default() };
    let sandbox = Sandbox::new(&tenant, &fake.login_url(), &[fake.graph_url()], limits);
    let error = sandbox.run("allocate", &[]).await.expect_err("growing past the limit stops the call");
    let message = format!("{error:#}");
    assert!(message.contains("list-resources of allocate"), "{message}");
    assert!(message.contains("past the limit of 64 MiB"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_page_is_refused_with_the_hosts_limit() {
    let (fake, tenant) = fake().await;
    let sandbox = Sandbox::new(&tenant, &fake.login_url(), &[fake.graph_url()], SandboxLimits::default());
    let count = (PageBudget::DEFAULT.max_items + 1).to_string();
    let error = sandbox.run("huge-page", &[("count", &count)]).await.expect_err("the page is refused");
    let message = format!("{error:#}");
    assert!(message.contains(&format!("at most {} per page", PageBudget::DEFAULT.max_items)), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_metadata_address_is_refused_even_when_the_allow_list_names_it() {
    let (fake, tenant) = fake().await;
    let allowed = ["http://169.254.169.254".to_owned()];
    let sandbox = Sandbox::new(&tenant, &fake.login_url(), &allowed, SandboxLimits::default());
    let outcome = sandbox
        .run("fetch", &[("target", "http://169.254.169.254/metadata/identity/oauth2/token")])
        .await
        .expect("the call completes");
    let text = transport_error(outcome).to_lowercase();
    assert!(text.contains("prohibited"), "{text}");
}

/// Resolves every name to the given addresses, as a poisoned or internal DNS would.
struct FixedLookup(Vec<IpAddr>);

impl NameLookup for FixedLookup {
    fn lookup(&self, _host: &str) -> std::io::Result<Vec<IpAddr>> {
        Ok(self.0.clone())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_name_resolving_to_a_private_or_loopback_address_is_refused_after_dns() {
    let (fake, tenant) = fake().await;
    let (inside, hits) = counting_server(|| "internal secrets".into_response()).await;
    let lookup = FixedLookup(vec!["10.20.30.40".parse().unwrap(), inside.ip()]);
    let transport = HttpTransport::with_lookup(TransportLimits::default(), Arc::new(lookup)).expect("a transport");
    let origin = format!("http://internal.corp.test:{}", inside.port());
    let sandbox = Sandbox::with_transport(
        &tenant,
        &fake.login_url(),
        std::slice::from_ref(&origin),
        SandboxLimits::default(),
        transport,
    );
    let outcome = sandbox.run("fetch", &[("target", &format!("{origin}/admin"))]).await.expect("the call completes");
    let text = transport_error(outcome).to_lowercase();
    assert!(text.contains("prohibited"), "{text}");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing reached the address the name resolved to");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_reaches_the_guest_unchanged_and_its_target_is_checked_again() {
    let (fake, tenant) = fake().await;
    let (elsewhere, elsewhere_hits) = counting_server(|| "not for you".into_response()).await;
    let location = format!("http://{elsewhere}/stolen");
    let (redirecting, redirect_hits) = counting_server({
        let location = location.clone();
        move || (StatusCode::FOUND, [(header::LOCATION, location.clone())]).into_response()
    })
    .await;
    let allowed = [format!("http://{redirecting}")];
    let sandbox = Sandbox::new(&tenant, &fake.login_url(), &allowed, SandboxLimits::default());

    let page = sandbox
        .run("fetch", &[("target", &format!("http://{redirecting}/start"))])
        .await
        .expect("the call completes")
        .expect("the redirect is an answer, not an error");
    let report = profile(&page);
    assert_eq!(report["status"], 302, "{report}");
    let headers = report["headers"].to_string();
    assert!(headers.contains(&location), "the guest sees the Location as sent: {headers}");
    assert_eq!(redirect_hits.load(Ordering::SeqCst), 1);
    assert_eq!(elsewhere_hits.load(Ordering::SeqCst), 0, "the host did not follow the redirect");

    let follow_up = sandbox.run("fetch", &[("target", &location)]).await.expect("the call completes");
    assert!(transport_error(follow_up).to_lowercase().contains("denied"));
    assert_eq!(elsewhere_hits.load(Ordering::SeqCst), 0, "the guest's own follow-up is refused too");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_larger_than_the_tenants_cap_is_refused() {
    let (fake, tenant) = fake().await;
    let mut sandbox = Sandbox::new(&tenant, &fake.login_url(), &[fake.graph_url()], SandboxLimits::default());
    let gateway = Arc::try_unwrap(sandbox.gateway).ok().expect("the test holds the only reference");
    sandbox.gateway =
        Arc::new(gateway.with_caps(OutboundCaps { max_concurrent_requests: 4, max_response_bytes: 1024 }));
    let target = format!("{}/v1.0/users", fake.graph_url());
    let outcome = sandbox.run("fetch", &[("target", &target)]).await.expect("the call completes");
    let text = transport_error(outcome).to_lowercase();
    assert!(text.contains("size") || text.contains("body"), "the guest learns the answer was too large: {text}");
}
