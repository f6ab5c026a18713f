//! The probe component (tests/components/probe), built once per test run, and a way to run
//! one of its probes in a sandbox whose gateway allows exactly the given origins.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use connector_host::credentials::{ClientCredentials, Secret, TokenProvider};
use connector_host::outbound::OutboundStats;
use connector_host::outbound::gateway::{GatewaySettings, TenantGateway};
use connector_host::outbound::policy::{AllowedOrigin, Origin, OutboundPolicy};
use connector_host::outbound::transport::{HttpTransport, TransportLimits};
use connector_host::sandbox::{
    ConfigValue, ConnectorError, ConnectorMetadata, ConnectorRuntime, ResourcePage, SandboxLimits,
};
use fake_azure::Tenant;

static PROBE: OnceLock<Vec<u8>> = OnceLock::new();
static HOSTILE_ENDPOINTS_PROBE: OnceLock<PathBuf> = OnceLock::new();

pub fn probe_component() -> &'static [u8] {
    PROBE.get_or_init(|| {
        let file = build_probe("target/probe", &[]);
        std::fs::read(file).expect("the probe component exists")
    })
}

/// The probe built with `hostile-endpoints`: its metadata asks for an endpoint no host knows.
/// Its own target directory, so the two builds never overwrite each other's file.
pub fn hostile_endpoints_probe_file() -> &'static Path {
    HOSTILE_ENDPOINTS_PROBE.get_or_init(|| build_probe("target/probe-hostile-endpoints", &["hostile-endpoints"]))
}

/// Builds the probe crate into `target_dir` (relative to the workspace) and returns its file.
fn build_probe(target_dir: &str, features: &[&str]) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let crate_dir = root.join("tests/components/probe");
    let target_dir = root.join(target_dir);
    let mut command = Command::new(env!("CARGO"));
    command
        .current_dir(&crate_dir)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(&target_dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    if !features.is_empty() {
        command.args(["--features", &features.join(",")]);
    }
    let status = command.status().expect("cargo runs to build the probe component");
    assert!(status.success(), "the probe component builds (is the wasm32-wasip2 target installed?)");
    target_dir.join("wasm32-wasip2/release/probe_connector.wasm")
}

pub struct Sandbox {
    pub runtime: ConnectorRuntime,
    pub gateway: Arc<TenantGateway>,
}

impl Sandbox {
    /// A sandbox for the probe whose gateway allows `allowed` origins, each with the Graph
    /// scope, and holds the tenant's credentials.
    pub fn new(tenant: &Tenant, login_url: &str, allowed: &[String], limits: SandboxLimits) -> Sandbox {
        let transport = HttpTransport::new(TransportLimits::default()).expect("a transport");
        Sandbox::with_transport(tenant, login_url, allowed, limits, transport)
    }

    /// The same, sending through `transport` (e.g. one whose name lookup the test controls).
    pub fn with_transport(
        tenant: &Tenant,
        login_url: &str,
        allowed: &[String],
        limits: SandboxLimits,
        transport: HttpTransport,
    ) -> Sandbox {
        let runtime = ConnectorRuntime::new(probe_component(), limits).expect("the probe loads");
        let stats = Arc::new(OutboundStats::default());
        let credentials = ClientCredentials {
            tenant_id: tenant.tenant_id.clone(),
            client_id: tenant.client_id.clone(),
            client_secret: Secret::new(tenant.client_secret.clone()),
        };
        let login = url::Url::parse(login_url).expect("a login URL");
        let tokens =
            TokenProvider::new(credentials, &login, transport.clone(), stats.clone()).expect("a token provider");
        let policy = OutboundPolicy::new(
            allowed
                .iter()
                .map(|origin| AllowedOrigin {
                    origin: Origin::parse(origin).expect("an origin"),
                    token_scope: Some("https://graph.microsoft.com/.default".into()),
                })
                .collect(),
        );
        let gateway = TenantGateway::new(GatewaySettings {
            policy,
            tokens: Some(Arc::new(tokens)),
            transport,
            max_concurrent_requests: 4,
            stats,
        });
        Sandbox { runtime, gateway: Arc::new(gateway) }
    }

    /// What the probe declares, read once as the host does before it syncs.
    pub async fn metadata(&self) -> ConnectorMetadata {
        let call = self.runtime.instantiate(self.gateway.clone()).await.expect("the probe instantiates");
        call.metadata().await.expect("the probe declares its metadata")
    }

    pub async fn run(
        &self,
        probe: &str,
        config: &[(&str, &str)],
    ) -> anyhow::Result<Result<ResourcePage, ConnectorError>> {
        let config: Vec<ConfigValue> =
            config.iter().map(|(key, value)| ConfigValue { key: key.to_string(), value: value.to_string() }).collect();
        self.runtime.instantiate(self.gateway.clone()).await?.list_resources(&config, probe, None, None).await
    }
}

pub fn profile(page: &ResourcePage) -> serde_json::Value {
    serde_json::from_str(&page.items[0].profile_json).expect("the probe reports JSON")
}
