//! National clouds work end to end: `--azure-cloud` switches login, Graph, ARM and the token
//! scopes together, and every request of a sync goes to that cloud's hosts. The fake answers
//! over HTTPS under the cloud's names (a private CA's certificate) through the host's loopback
//! connect-to routing, which only `--insecure-test-routing` turns on.

use fake_azure::{Service, Tenant};

use crate::private_ca::{listener_address, start_tls_fake};
use crate::support::{assert_success, run_host};

async fn sync_in_cloud(cloud: &str, login: &str, graph: &str, arm: &str) {
    let (fake, ca) = start_tls_fake(Tenant::sample(), &[login, graph, arm]).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let routes = format!(
        "{login}:443={},{graph}:443={},{arm}:443={}",
        listener_address(&fake.login_url()),
        listener_address(&fake.graph_url()),
        listener_address(&fake.arm_url())
    );
    let output = dir.path().join("sync.db");
    let mut args: Vec<String> = ["sync", "--output", &output.display().to_string(), "--azure-cloud", cloud]
        .iter()
        .map(|arg| arg.to_string())
        .collect();
    args.extend(fake.credential_args());
    args.extend(["--mailboxSettings".into(), "--insecure-test-routing".into(), "--ca-file".into()]);
    args.push(ca.write_ca(dir.path()).display().to_string());
    assert_success(&run_host(&args, &[("CONNECTOR_HOST_CONNECT_TO", &routes)]).await);

    let requests = fake.requests();
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
