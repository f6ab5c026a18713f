//! National clouds work end to end: `--azure-cloud` switches login, Graph, ARM and the token
//! scopes together, and every request of a sync goes to that cloud's hosts. The fake answers
//! under the cloud's names through the host's loopback connect-to routing.

use fake_azure::{Service, Tenant};

use crate::support::{Harness, assert_success, run_host};

fn port(url: &str) -> String {
    url.rsplit(':').next().expect("a port").to_owned()
}

async fn sync_in_cloud(cloud: &str, login: &str, graph: &str, arm: &str) {
    let harness = Harness::start(Tenant::sample()).await;
    let routes = format!(
        "{login}:443=127.0.0.1:{},{graph}:443=127.0.0.1:{},{arm}:443=127.0.0.1:{}",
        port(&harness.fake.login_url()),
        port(&harness.fake.graph_url()),
        port(&harness.fake.arm_url())
    );
    let output = harness.path("sync.db");
    let args: Vec<String> = [
        "sync",
        "--output",
        &output.display().to_string(),
        "--azure-cloud",
        cloud,
        "--azure-client-id",
        &harness.tenant.client_id,
        "--azure-client-secret",
        &harness.tenant.client_secret,
        "--azure-tenant-id",
        &harness.tenant.tenant_id,
        "--mailboxSettings",
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect();
    assert_success(&run_host(&args, &[("CONNECTOR_HOST_CONNECT_TO", &routes)]).await);

    let requests = harness.fake.requests();
    assert!(requests.len() > 20, "the sync made its requests: {}", requests.len());
    for request in &requests {
        let host = request
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("host"))
            .map(|(_, value)| value.as_str())
            .unwrap_or_default();
        let expected = match request.service {
            Service::Login => login,
            Service::Graph => graph,
            Service::Arm => arm,
        };
        assert_eq!(host, expected, "{} {} went to {host}", request.method, request.path_and_query);
    }
    for service in [Service::Login, Service::Graph, Service::Arm] {
        assert!(requests.iter().any(|r| r.service == service), "{service:?} was used");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn us_government_sync_sends_every_request_to_us_government_hosts() {
    sync_in_cloud("usgov", "login.microsoftonline.us", "graph.microsoft.us", "management.usgovcloudapi.net").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn china_sync_sends_every_request_to_china_hosts() {
    sync_in_cloud("china", "login.chinacloudapi.cn", "microsoftgraph.chinacloudapi.cn", "management.chinacloudapi.cn")
        .await;
}
