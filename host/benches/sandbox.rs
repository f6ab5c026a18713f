//! Sandbox benchmark: prints what a tenant call costs and what the host holds in memory.
//!
//! `cargo bench -p connector-host --bench sandbox` prints
//! 1. getting the Azure connector ready: a cold compile, the compile that also fills the
//!    artifact cache, and a load from that cache;
//! 2. instantiating one sandbox per call with the pooling and the on-demand allocator, one at
//!    a time and 50 at once (each instance followed by a `metadata` call, as a real call is);
//! 3. the memory of a `connector-host serve` process (VmRSS, VmHWM from /proc) syncing 1, 10
//!    and 50 fake tenants of 1,000 users at once, with each allocator.
//!
//! `cargo bench -p connector-host --bench sandbox -- memory` runs one part (`compile`,
//! `instantiate`, `memory`). Figures only: nothing here passes or fails. Everything runs on
//! loopback.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use connector_host::component::AZURE_CONNECTOR;
use connector_host::outbound::transport::{HttpTransport, TransportLimits};
use connector_host::sandbox::{CompiledFrom, ConnectorRuntime, InstanceAllocator, RuntimeOptions};
use connector_host::tenant::offline_gateway;
use fake_azure::{FakeAzure, Tenant, TenantShape};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

const HOST: &str = env!("CARGO_BIN_EXE_connector-host");
const SEQUENTIAL_CALLS: usize = 400;
const CONCURRENT_TASKS: usize = 50;
const CALLS_PER_TASK: usize = 20;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // `cargo bench ... -- memory` runs only that part (cargo itself adds `--bench`).
    let parts: Vec<String> = std::env::args().skip(1).filter(|arg| !arg.starts_with("--")).collect();
    let wanted = |part: &str| parts.is_empty() || parts.iter().any(|given| given == part);
    runtime.block_on(async {
        let cache = tempfile::tempdir()?;
        if wanted("compile") {
            compile_figures(cache.path())?;
        }
        if wanted("instantiate") {
            for allocator in [InstanceAllocator::Pooling, InstanceAllocator::OnDemand] {
                instantiate_figures(allocator, cache.path()).await?;
            }
        }
        if !wanted("memory") {
            return anyhow::Ok(());
        }
        println!("\n== host memory of `serve` syncing N tenants of 1,000 users at once ==");
        println!(
            "{:<10} {:>8} {:>14} {:>14} {:>14} {:>10}",
            "allocator", "tenants", "RSS ready MiB", "RSS peak MiB", "VmHWM MiB", "sync s"
        );
        let serve_cache = tempfile::tempdir()?;
        for allocator in ["pooling", "on-demand"] {
            // A first run fills the artifact cache, so the figures are those of a restart.
            memory_figures(allocator, 1, serve_cache.path(), false).await?;
            for tenants in [1, 10, 50] {
                memory_figures(allocator, tenants, serve_cache.path(), true).await?;
            }
        }
        anyhow::Ok(())
    })
}

fn options(allocator: InstanceAllocator, cache: Option<&Path>) -> RuntimeOptions {
    RuntimeOptions {
        allocator,
        max_concurrent_calls: CONCURRENT_TASKS + 4,
        artifact_cache: cache.map(Path::to_path_buf),
        ..RuntimeOptions::default()
    }
}

fn compile_figures(cache: &Path) -> anyhow::Result<()> {
    println!("== getting the Azure connector ({} KiB) ready ==", AZURE_CONNECTOR.len() / 1024);
    let started = Instant::now();
    ConnectorRuntime::load(AZURE_CONNECTOR, &options(InstanceAllocator::OnDemand, None))?;
    println!("cold compile, no cache:           {:>8.1} ms", ms(started.elapsed()));
    let started = Instant::now();
    let filled = ConnectorRuntime::load(AZURE_CONNECTOR, &options(InstanceAllocator::OnDemand, Some(cache)))?;
    assert_eq!(filled.compiled_from(), CompiledFrom::Source);
    println!("compile and write the cache:      {:>8.1} ms", ms(started.elapsed()));
    let started = Instant::now();
    let cached = ConnectorRuntime::load(AZURE_CONNECTOR, &options(InstanceAllocator::OnDemand, Some(cache)))?;
    let took = started.elapsed();
    assert_eq!(cached.compiled_from(), CompiledFrom::Cache, "the second load comes from the cache");
    println!("load from the precompiled cache:  {:>8.1} ms", ms(took));
    Ok(())
}

async fn instantiate_figures(allocator: InstanceAllocator, cache: &Path) -> anyhow::Result<()> {
    let runtime = Arc::new(ConnectorRuntime::load(AZURE_CONNECTOR, &options(allocator, Some(cache)))?);
    let gateway = Arc::new(offline_gateway(HttpTransport::new(TransportLimits::default())?));
    println!("\n== one sandbox per call, {allocator:?} allocator ==");
    for _ in 0..20 {
        runtime.instantiate(gateway.clone()).await?.metadata().await?;
    }
    let mut instantiate = Vec::with_capacity(SEQUENTIAL_CALLS);
    let mut whole_call = Vec::with_capacity(SEQUENTIAL_CALLS);
    for _ in 0..SEQUENTIAL_CALLS {
        let started = Instant::now();
        let call = runtime.instantiate(gateway.clone()).await?;
        instantiate.push(started.elapsed());
        call.metadata().await?;
        whole_call.push(started.elapsed());
    }
    print_distribution("instantiate, one at a time", &mut instantiate);
    print_distribution("instantiate + metadata call", &mut whole_call);

    let started = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENT_TASKS)
        .map(|_| {
            let runtime = runtime.clone();
            let gateway = gateway.clone();
            tokio::spawn(async move {
                let mut times = Vec::with_capacity(CALLS_PER_TASK);
                for _ in 0..CALLS_PER_TASK {
                    let call_started = Instant::now();
                    let call = runtime.instantiate(gateway.clone()).await?;
                    times.push(call_started.elapsed());
                    call.metadata().await?;
                }
                anyhow::Ok(times)
            })
        })
        .collect();
    let mut concurrent = Vec::new();
    for task in tasks {
        concurrent.extend(task.await??);
    }
    let elapsed = started.elapsed();
    print_distribution(&format!("instantiate, {CONCURRENT_TASKS} tasks at once"), &mut concurrent);
    println!(
        "  {} calls in {:.0} ms: {:.0} calls/s",
        concurrent.len(),
        ms(elapsed),
        concurrent.len() as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn print_distribution(label: &str, samples: &mut [Duration]) {
    samples.sort();
    let at = |fraction: f64| samples[((samples.len() - 1) as f64 * fraction) as usize];
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!("{label:<32} mean {:>7.3} ms   p50 {:>7.3} ms   p99 {:>7.3} ms", ms(mean), ms(at(0.5)), ms(at(0.99)));
}

/// `VmRSS` and `VmHWM` of a process, in MiB.
fn memory_of(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<f64>().ok())
            .map(|kib| kib / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

async fn get(url: &str, token: &str) -> anyhow::Result<String> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request =
        http::Request::get(url).header("authorization", format!("Bearer {token}")).body(Full::new(Bytes::new()))?;
    let response = client.request(request).await?;
    Ok(String::from_utf8_lossy(&response.into_body().collect().await?.to_bytes()).into_owned())
}

fn bench_tenant(n: usize) -> Tenant {
    let mut tenant = Tenant::generate(&TenantShape {
        users: 1000,
        groups: 50,
        members_per_group: 20,
        service_principals: 10,
        app_role_assignments_per_app: 10,
        subscriptions: 2,
        resource_groups_per_subscription: 5,
        rbac_assignments_per_subscription: 10,
    });
    tenant.client_secret = format!("bench-secret-{n}");
    tenant
}

async fn memory_figures(allocator: &str, tenants: usize, cache: &Path, print: bool) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let token = "bench-ops-token-0123456789abcdef";
    let mut fakes = Vec::new();
    let mut config = String::new();
    let mut secrets = Vec::new();
    for n in 0..tenants {
        let tenant = bench_tenant(n);
        let fake = FakeAzure::start(tenant.clone()).await?;
        config.push_str(&format!(
            "[[tenant]]\nid = \"bench-{n}\"\nlogin_url = {:?}\ngraph_url = {:?}\narm_url = {:?}\n\
             [tenant.credentials]\nclient_id = {:?}\ntenant_id = {:?}\nclient_secret_env = \"SECRET_{n}\"\n\n",
            fake.login_url(),
            fake.graph_url(),
            fake.arm_url(),
            tenant.client_id,
            tenant.tenant_id
        ));
        secrets.push((format!("SECRET_{n}"), tenant.client_secret.clone()));
        fakes.push(fake);
    }
    let config_file = dir.path().join("tenants.toml");
    std::fs::write(&config_file, config)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let ops = format!("http://127.0.0.1:{port}");
    let mut child = tokio::process::Command::new(HOST)
        .arg("serve")
        .arg("--config")
        .arg(&config_file)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--cache-dir")
        .arg(cache)
        .args(["--ops-listen", &format!("127.0.0.1:{port}")])
        .args(["--max-concurrent-syncs", &tenants.to_string(), "--instance-allocator", allocator])
        .env_clear()
        .env("BATON_LOG_LEVEL", "warn")
        .env("CONNECTOR_HOST_OPS_TOKEN", token)
        .envs(secrets)
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or_else(|| anyhow::anyhow!("serve exited at once"))?;
    let started = Instant::now();
    let mut ready_rss = None;
    let mut peak_rss: f64 = 0.0;
    loop {
        if let Some((rss, _)) = memory_of(pid) {
            peak_rss = peak_rss.max(rss);
        }
        if ready_rss.is_none() && get(&format!("{ops}/readyz"), token).await.is_ok_and(|body| body.starts_with("ready"))
        {
            ready_rss = memory_of(pid).map(|(rss, _)| rss);
        }
        if let Ok(metrics) = get(&format!("{ops}/metrics"), token).await {
            let count = |result: &str| -> u64 {
                metrics
                    .lines()
                    .filter(|line| line.starts_with("connector_host_syncs_total{") && line.contains(result))
                    .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
                    .sum()
            };
            if count("result=\"failure\"") > 0 {
                let statuses = get(&format!("{ops}/tenants"), token).await.unwrap_or_default();
                anyhow::bail!("a benchmark sync failed: {statuses}");
            }
            if count("result=\"success\"") >= tenants as u64 {
                break;
            }
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(600), "the syncs did not finish in 10 minutes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let synced_in = started.elapsed();
    let (_, hwm) = memory_of(pid).unwrap_or_default();
    if print {
        println!(
            "{allocator:<10} {tenants:>8} {:>14.1} {peak_rss:>14.1} {hwm:>14.1} {:>10.1}",
            ready_rss.unwrap_or_default(),
            synced_in.as_secs_f64()
        );
    }
    child.start_kill()?;
    child.wait().await?;
    Ok(())
}
