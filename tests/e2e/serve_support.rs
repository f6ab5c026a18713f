//! A `connector-host serve` process for tests: a tenants file written from fake Azures, the ops
//! API found from the process's own log, and small HTTP helpers to drive it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use fake_azure::{FakeAzure, Tenant};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::HOST;

pub const OPS_TOKEN: &str = "test-ops-token-0123456789abcdef";

/// One `[[tenant]]` of a tenants file pointing at a fake Azure; its secret goes in the
/// environment variable `SECRET_<ID>` (never in the file).
#[derive(Clone)]
pub struct TenantEntry {
    pub id: String,
    pub tenant: Tenant,
    pub login_url: String,
    pub graph_url: String,
    pub arm_url: String,
    /// More TOML lines for the `[[tenant]]` table (before its sub-tables).
    pub extra: String,
    /// `key = "value"` lines of `[tenant.connector_options]`.
    pub connector_options: Vec<(String, String)>,
}

impl TenantEntry {
    pub fn for_fake(id: &str, fake: &FakeAzure) -> TenantEntry {
        TenantEntry {
            id: id.to_owned(),
            tenant: fake.tenant(),
            login_url: fake.login_url(),
            graph_url: fake.graph_url(),
            arm_url: fake.arm_url(),
            extra: String::new(),
            connector_options: Vec::new(),
        }
    }

    /// A tenant whose connector is the probe component running `attack` with `options`.
    pub fn probe(id: &str, fake: &FakeAzure, attack: &str, options: &[(&str, &str)]) -> TenantEntry {
        let mut entry = TenantEntry::for_fake(id, fake);
        entry.extra = format!("component = {:?}\n", probe_component_file().display().to_string());
        entry.connector_options.push(("attack".into(), attack.into()));
        entry.connector_options.extend(options.iter().map(|(key, value)| (key.to_string(), value.to_string())));
        entry
    }

    pub fn secret_variable(&self) -> String {
        format!("SECRET_{}", self.id.to_uppercase().replace('-', "_"))
    }

    fn toml(&self) -> String {
        let mut text = format!(
            "[[tenant]]\nid = {:?}\nlogin_url = {:?}\ngraph_url = {:?}\narm_url = {:?}\nsync_interval = \"1h\"\n{}\n\
             [tenant.credentials]\nclient_id = {:?}\ntenant_id = {:?}\nclient_secret_env = {:?}\n",
            self.id,
            self.login_url,
            self.graph_url,
            self.arm_url,
            self.extra,
            self.tenant.client_id,
            self.tenant.tenant_id,
            self.secret_variable()
        );
        if !self.connector_options.is_empty() {
            text.push_str("[tenant.connector_options]\n");
            for (key, value) in &self.connector_options {
                let _ = writeln!(text, "{key} = {value:?}");
            }
        }
        text
    }
}

pub fn tenants_file(entries: &[TenantEntry]) -> String {
    entries.iter().map(TenantEntry::toml).collect::<Vec<_>>().join("\n")
}

/// Compiled components shared by every `serve` of the test run (and kept between runs).
fn shared_cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-component-cache")
}

pub struct ServeProcess {
    child: tokio::process::Child,
    pub ops_url: String,
    pub data_dir: PathBuf,
    log: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl ServeProcess {
    /// Starts `serve` with `tenants_toml`, secrets in the environment, and `extra` arguments, and
    /// waits until its ops API listens.
    pub async fn start(tenants_toml: &str, env: &[(String, String)], extra: &[&str]) -> ServeProcess {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = dir.path().join("tenants.toml");
        std::fs::write(&config, tenants_toml).expect("the tenants file is written");
        let data_dir = dir.path().join("data");
        let mut command = tokio::process::Command::new(HOST);
        command
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--cache-dir")
            .arg(shared_cache_dir())
            .args(["--ops-listen", "127.0.0.1:0"])
            .args(extra)
            .env_clear()
            .env("BATON_LOG_FORMAT", "json")
            .env("BATON_LOG_LEVEL", "info")
            .env("CONNECTOR_HOST_OPS_TOKEN", OPS_TOKEN)
            .envs(env.iter().map(|(key, value)| (key.as_str(), value.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("the host binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (address_tx, address_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(read_log(BufReader::new(stderr), log.clone(), address_tx));
        let address = tokio::time::timeout(Duration::from_secs(120), address_rx)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_else(|| panic!("serve never listened; its log:\n{}", log.lock().unwrap()));
        let serve = ServeProcess { child, ops_url: format!("http://{address}"), data_dir, log, _dir: dir };
        serve.wait_until_ready().await;
        serve
    }

    /// Waits for `/readyz` (the connector compiled or loaded from the cache), as Kubernetes does
    /// before sending traffic. The bound only keeps a broken build from hanging the suite.
    async fn wait_until_ready(&self) {
        let bound = tokio::time::Instant::now() + Duration::from_secs(120);
        while self.call("GET", "/readyz", None, None).await.0 != 200 {
            assert!(tokio::time::Instant::now() < bound, "serve never became ready; its log:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().map(|log| log.clone()).unwrap_or_default()
    }

    pub fn snapshot(&self, tenant: &str) -> PathBuf {
        self.data_dir.join(tenant).join("sync.db")
    }

    /// Sends a request to the ops API; returns the status and the body (JSON when it is JSON).
    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let mut request = http::Request::builder().method(method).uri(format!("{}{path}", self.ops_url));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let payload = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                Bytes::from(body.to_string())
            }
            None => Bytes::new(),
        };
        let response =
            client.request(request.body(Full::new(payload)).expect("a request")).await.expect("the ops API answers");
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.expect("a body").to_bytes();
        let value =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, value)
    }

    pub async fn status(&self, tenant: &str) -> Value {
        let (status, body) = self.call("GET", &format!("/tenants/{tenant}"), Some(OPS_TOKEN), None).await;
        assert_eq!(status, 200, "status of {tenant}: {body}");
        body
    }

    /// Waits until each tenant has finished `syncs` syncs (successful or not), and returns their
    /// statuses. The bound only keeps a broken build from hanging the suite.
    pub async fn wait_for_syncs(&self, tenants: &[String], syncs: u64) -> BTreeMap<String, Value> {
        let finished = |status: &Value| status["last_result"].is_object();
        let bound = tokio::time::Instant::now() + Duration::from_secs(900);
        loop {
            let (_, metrics) = self.call("GET", "/metrics", Some(OPS_TOKEN), None).await;
            let metrics = metrics.as_str().unwrap_or_default().to_owned();
            let mut statuses = BTreeMap::new();
            for tenant in tenants {
                let status = self.status(tenant).await;
                if finished(&status) && finished_syncs(&metrics, tenant) >= syncs {
                    statuses.insert(tenant.clone(), status);
                }
            }
            if statuses.len() == tenants.len() {
                return statuses;
            }
            assert!(
                tokio::time::Instant::now() < bound,
                "only {} of {} tenants finished; log:\n{}",
                statuses.len(),
                tenants.len(),
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub async fn terminate(&mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().expect("the process runs");
        let pid = rustix::process::Pid::from_raw(pid as i32).expect("a valid pid");
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM is sent");
        let status = tokio::time::timeout(Duration::from_secs(120), self.child.wait())
            .await
            .expect("serve exits after SIGTERM")
            .expect("its status");
        // Let the log reader take the last lines.
        tokio::time::sleep(Duration::from_millis(100)).await;
        (status, self.log())
    }
}

/// `connector_host_syncs_total` of a tenant, both results, from the metrics text.
pub fn finished_syncs(metrics: &str, tenant: &str) -> u64 {
    let prefix = format!("connector_host_syncs_total{{tenant=\"{tenant}\",");
    metrics
        .lines()
        .filter(|line| line.starts_with(&prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

async fn read_log(
    mut stderr: BufReader<tokio::process::ChildStderr>,
    log: Arc<Mutex<String>>,
    address: tokio::sync::oneshot::Sender<String>,
) {
    let mut address = Some(address);
    let mut line = String::new();
    while stderr.read_line(&mut line).await.is_ok_and(|read| read > 0) {
        if let Ok(entry) = serde_json::from_str::<Value>(&line)
            && entry["fields"]["message"] == "ops API listening"
            && let Some(sender) = address.take()
        {
            let _ = sender.send(entry["fields"]["address"].as_str().unwrap_or_default().to_owned());
        }
        if let Ok(mut log) = log.lock() {
            log.push_str(&line);
        }
        line.clear();
    }
}

/// Path of a file inside the tests' component build (the probe).
pub fn probe_component_file() -> &'static Path {
    static FILE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    FILE.get_or_init(|| {
        crate::probe::probe_component();
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/probe/wasm32-wasip2/release/probe_connector.wasm")
    })
}
