//! Enterprise networks: a sync through an HTTP CONNECT proxy to Azure's real host names, served
//! by the fake over TLS with a private CA's certificate, over HTTP/2.
//!
//! The proxy here is the only party that knows where the fake listens: it maps the Azure names
//! to the fake's loopback ports. Direct connections to those names are routed to a trap
//! listener (`--insecure-test-routing`), so a connection that bypassed the proxy is counted
//! instead of leaving the machine.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use fake_azure::{FakeAzure, LoggedRequest, Service, Tenant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::oracle::{Expected, Options};
use crate::private_ca::{PrivateCa, listener_address, start_tls_fake};
use crate::support::{Snapshot, assert_same_map, assert_same_set, assert_success, export, run_host, stderr};

const LOGIN: &str = "login.microsoftonline.com";
const GRAPH: &str = "graph.microsoft.com";
const ARM: &str = "management.azure.com";

const PROXY_USER: &str = "svc-connector";
const PROXY_PASSWORD: &str = "proxy-Pa55word";

/// One tunnel the proxy opened.
#[derive(Clone, Debug)]
struct Tunnel {
    /// The `CONNECT` target, `host:port`.
    target: String,
    /// The local address of the proxy's connection to the fake: what the fake sees as peer.
    upstream: SocketAddr,
}

/// A CONNECT proxy on loopback that requires Basic credentials and maps `host:port` targets to
/// the fake's listeners; anything else is refused with 403.
struct TestProxy {
    address: SocketAddr,
    tunnels: Arc<Mutex<Vec<Tunnel>>>,
    task: JoinHandle<()>,
}

impl TestProxy {
    async fn start(routes: HashMap<String, SocketAddr>, required_authorization: String) -> TestProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("the proxy binds");
        let address = listener.local_addr().expect("the proxy's address");
        let tunnels = Arc::new(Mutex::new(Vec::new()));
        let routes = Arc::new(routes);
        let recorded = tunnels.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (routes, recorded, required) = (routes.clone(), recorded.clone(), required_authorization.clone());
                tokio::spawn(async move {
                    if let Some((mut client, mut upstream)) = accept_tunnel(client, &routes, &required, &recorded).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
            }
        });
        TestProxy { address, tunnels, task }
    }

    fn url_with_credentials(&self) -> String {
        format!("http://{PROXY_USER}:{PROXY_PASSWORD}@{}", self.address)
    }

    fn tunnels(&self) -> Vec<Tunnel> {
        self.tunnels.lock().expect("the tunnel log").clone()
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one CONNECT request and answers it; the two streams to join on success.
async fn accept_tunnel(
    mut client: TcpStream,
    routes: &HashMap<String, SocketAddr>,
    required_authorization: &str,
    recorded: &Mutex<Vec<Tunnel>>,
) -> Option<(TcpStream, TcpStream)> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") && head.len() < 16 * 1024 {
        let read = client.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        head.extend_from_slice(&chunk[..read]);
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    request.parse(&head).ok()?;
    let target = request.path?.to_owned();
    let authorization = request
        .headers
        .iter()
        .find(|header| header.name.eq_ignore_ascii_case("proxy-authorization"))
        .map(|header| String::from_utf8_lossy(header.value).into_owned());
    let refuse = |status: &str| format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
    if request.method != Some("CONNECT") {
        let _ = client.write_all(refuse("405 Method Not Allowed").as_bytes()).await;
        return None;
    }
    if authorization.as_deref() != Some(required_authorization) {
        let answer = "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n";
        let _ = client.write_all(answer.as_bytes()).await;
        return None;
    }
    let Some(fake) = routes.get(&target) else {
        let _ = client.write_all(refuse("403 Forbidden").as_bytes()).await;
        return None;
    };
    let upstream = TcpStream::connect(fake).await.ok()?;
    recorded.lock().ok()?.push(Tunnel { target, upstream: upstream.local_addr().ok()? });
    client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.ok()?;
    Some((client, upstream))
}

/// Where direct connections to the Azure names land: it counts them and closes them.
struct Trap {
    address: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Trap {
    async fn start() -> Trap {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("the trap binds");
        let address = listener.local_addr().expect("the trap's address");
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((connection, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::Relaxed);
                drop(connection);
            }
        });
        Trap { address, connections, task }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

impl Drop for Trap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The exact header the host must send: `Basic base64(user:password)`.
fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// The fake over TLS under the public cloud's names, the proxy that knows it, and the trap.
struct ProxiedAzure {
    fake: FakeAzure,
    ca: PrivateCa,
    proxy: TestProxy,
    trap: Trap,
    dir: tempfile::TempDir,
}

impl ProxiedAzure {
    async fn start() -> ProxiedAzure {
        let (fake, ca) = start_tls_fake(Tenant::sample(), &[LOGIN, GRAPH, ARM]).await;
        let routes = [(LOGIN, fake.login_url()), (GRAPH, fake.graph_url()), (ARM, fake.arm_url())]
            .into_iter()
            .map(|(name, url)| (format!("{name}:443"), listener_address(&url)))
            .collect();
        let proxy = TestProxy::start(routes, basic(PROXY_USER, PROXY_PASSWORD)).await;
        let trap = Trap::start().await;
        ProxiedAzure { fake, ca, proxy, trap, dir: tempfile::tempdir().expect("a temporary directory") }
    }

    /// Direct connections to each Azure name go to the trap, unless `direct` sends that name
    /// to the fake itself.
    fn connect_to(&self, direct: &[(&str, String)]) -> String {
        [LOGIN, GRAPH, ARM]
            .iter()
            .map(|name| {
                let target = direct
                    .iter()
                    .find(|(direct_name, _)| direct_name == name)
                    .map_or(self.trap.address, |(_, url)| listener_address(url));
                format!("{name}:443={target}")
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Syncs the public cloud (its real host names) with `HTTPS_PROXY` and the given extras.
    async fn sync(&self, extra_args: &[String], env: &[(&str, &str)], direct: &[(&str, String)]) -> Output {
        let mut args = vec!["sync".into(), "--output".into(), self.output().display().to_string()];
        args.extend(self.fake.credential_args());
        args.push("--insecure-test-routing".into());
        args.extend(extra_args.iter().cloned());
        let proxy = self.proxy.url_with_credentials();
        let routes = self.connect_to(direct);
        let mut variables = vec![("HTTPS_PROXY", proxy.as_str()), ("CONNECTOR_HOST_CONNECT_TO", routes.as_str())];
        variables.extend_from_slice(env);
        run_host(&args, &variables).await
    }

    fn output(&self) -> std::path::PathBuf {
        self.dir.path().join("sync.db")
    }

    fn ca_file_args(&self) -> Vec<String> {
        vec!["--ca-file".into(), self.ca.write_ca(self.dir.path()).display().to_string()]
    }

    fn came_through_the_proxy(&self, request: &LoggedRequest) -> bool {
        let upstreams: BTreeSet<SocketAddr> = self.proxy.tunnels().iter().map(|tunnel| tunnel.upstream).collect();
        request.peer.is_some_and(|peer| upstreams.contains(&peer))
    }
}

async fn assert_snapshot_matches_the_oracle(azure: &ProxiedAzure) {
    let actual = Snapshot::of(&export(&azure.output()).await);
    let expected = Expected::of(&azure.fake.tenant(), &Options { skip_ad_groups: false });
    assert_same_map("resources", &actual.resources, &expected.resources);
    assert_same_set("entitlements", &actual.entitlements, &expected.entitlements);
    assert_same_set("grants", &actual.grants, &expected.grants);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_through_a_connect_proxy_to_a_private_ca_reaches_only_the_proxy_over_http2_and_is_exact() {
    let azure = ProxiedAzure::start().await;
    let output = azure.sync(&azure.ca_file_args(), &[("BATON_LOG_LEVEL", "info")], &[]).await;
    assert_success(&output);
    assert_snapshot_matches_the_oracle(&azure).await;

    let requests = azure.fake.requests();
    assert!(requests.len() > 20, "the sync made its requests: {}", requests.len());
    for request in &requests {
        assert!(
            azure.came_through_the_proxy(request),
            "{} {} came from {:?}, not through the proxy",
            request.method,
            request.path_and_query,
            request.peer
        );
        assert_eq!(request.version, http::Version::HTTP_2, "{} {}", request.method, request.path_and_query);
    }
    for service in [Service::Login, Service::Graph, Service::Arm] {
        assert!(requests.iter().any(|request| request.service == service), "{service:?} was used");
    }
    assert_eq!(azure.trap.connections(), 0, "no connection bypassed the proxy");
    let targets: BTreeSet<String> = azure.proxy.tunnels().iter().map(|tunnel| tunnel.target.clone()).collect();
    let expected: BTreeSet<String> = [LOGIN, GRAPH, ARM].iter().map(|name| format!("{name}:443")).collect();
    assert_eq!(targets, expected, "the proxy was asked for the Azure names only");
    assert!(!stderr(&output).contains(PROXY_PASSWORD), "the proxy password is never logged:\n{}", stderr(&output));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_private_ca_the_sync_fails_naming_ssl_cert_file_and_ca_file() {
    let azure = ProxiedAzure::start().await;
    let output = azure.sync(&[], &[], &[]).await;
    assert!(!output.status.success(), "a certificate from an unknown CA must fail the sync");
    let text = stderr(&output);
    assert!(text.contains(LOGIN) && text.contains("SSL_CERT_FILE") && text.contains("--ca-file"), "{text}");
    assert!(azure.fake.requests().is_empty(), "no request was answered over an untrusted connection");
    assert!(!azure.output().exists(), "no snapshot is written");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_proxy_hosts_are_reached_directly_and_the_others_through_the_proxy() {
    let azure = ProxiedAzure::start().await;
    let direct = [(ARM, azure.fake.arm_url())];
    let output = azure.sync(&azure.ca_file_args(), &[("no_proxy", "example.org, .azure.com")], &direct).await;
    assert_success(&output);
    assert_snapshot_matches_the_oracle(&azure).await;

    let requests = azure.fake.requests();
    for request in &requests {
        let expected_through_proxy = request.service != Service::Arm;
        assert_eq!(
            azure.came_through_the_proxy(request),
            expected_through_proxy,
            "{:?} {} {}",
            request.service,
            request.method,
            request.path_and_query
        );
    }
    assert!(requests.iter().any(|request| request.service == Service::Arm), "ARM was used");
    assert!(azure.proxy.tunnels().iter().all(|tunnel| !tunnel.target.starts_with(ARM)), "ARM bypassed the proxy");
    assert_eq!(azure.trap.connections(), 0, "only ARM was reached directly, and at the fake");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_that_wants_other_credentials_fails_the_sync_saying_so() {
    let azure = ProxiedAzure::start().await;
    let wrong = format!("http://{PROXY_USER}:wrong-password@{}", azure.proxy.address);
    let output = azure.sync(&azure.ca_file_args(), &[("HTTPS_PROXY", &wrong)], &[]).await;
    assert!(!output.status.success(), "a 407 must fail the sync");
    let text = stderr(&output);
    assert!(text.contains("407") && text.contains("HTTPS_PROXY"), "{text}");
    assert!(!text.contains("wrong-password"), "the proxy password is never printed: {text}");
    assert!(azure.fake.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn loopback_endpoints_never_go_through_the_proxy() {
    let harness = crate::support::Harness::start(Tenant::sample()).await;
    let proxy = TestProxy::start(HashMap::new(), basic(PROXY_USER, PROXY_PASSWORD)).await;
    let output = harness.path("sync.db");
    let proxy_url = proxy.url_with_credentials();
    let run = run_host(&harness.sync_args(&output), &[("HTTPS_PROXY", &proxy_url), ("HTTP_PROXY", &proxy_url)]).await;
    assert_success(&run);
    assert!(proxy.tunnels().is_empty(), "the fake on 127.0.0.1 was reached directly");
    assert!(harness.fake.requests().len() > 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_to_routing_is_refused_without_insecure_test_routing() {
    let harness = crate::support::Harness::start(Tenant::sample()).await;
    let routes = format!("{GRAPH}:443={}", listener_address(&harness.fake.graph_url()));
    let run = run_host(&harness.sync_args(&harness.path("sync.db")), &[("CONNECTOR_HOST_CONNECT_TO", &routes)]).await;
    assert!(!run.status.success(), "a rerouting variable without the flag must stop the host");
    let text = stderr(&run);
    assert!(text.contains("CONNECTOR_HOST_CONNECT_TO") && text.contains("--insecure-test-routing"), "{text}");
    assert!(harness.fake.requests().is_empty(), "nothing was sent");
}
