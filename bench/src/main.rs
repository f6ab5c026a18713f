//! sync-bench: full syncs of generated tenants against the fake Azure, measured.
//!
//! For each scenario it generates a tenant of a given shape, serves it from the fake Azure on
//! loopback (in this process), runs `connector-host sync` against it as a child process and
//! prints: wall time, requests made against the minimum needed, Graph resource units spent,
//! the host's peak RSS and CPU time, and the share of that CPU time spent inside the component.
//! With a resource-unit budget, it also prints the floor (units spent ÷ allowed rate) and how
//! far above it the sync finished. Figures are printed, never asserted.
//!
//! ```sh
//! cargo build --release && cargo run --release -p sync-bench -- [s] [l] [l-throttled] [l-throttled-3500] [--runs N] [--workers N]
//! ```

mod child;
mod minimum;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use fake_azure::{FakeAzure, Service, Tenant, TenantShape};

use child::{HostRun, run_host};
use minimum::Minimum;

/// The fake's ARM page size (ARM, unlike Graph, chooses it).
const ARM_PAGE: usize = 100;

struct Scenario {
    name: &'static str,
    shape: TenantShape,
    /// Graph's resource-unit budget: units per window, per app and tenant.
    budget: Option<(u32, Duration)>,
}

fn shape_s() -> TenantShape {
    TenantShape::small()
}

/// 100,000 users, 20,000 groups of 50 (1,000,000 memberships), 2,000 service principals with
/// app-role assignments, 50 subscriptions of 40 resource groups, 1,000 RBAC assignments each.
fn shape_l() -> TenantShape {
    TenantShape {
        users: 100_000,
        groups: 20_000,
        members_per_group: 50,
        service_principals: 2_000,
        app_role_assignments_per_app: 20,
        subscriptions: 50,
        resource_groups_per_subscription: 40,
        rbac_assignments_per_subscription: 1_000,
    }
}

fn scenario(name: &str) -> anyhow::Result<Scenario> {
    Ok(match name {
        "s" => Scenario { name: "S", shape: shape_s(), budget: None },
        "l" => Scenario { name: "L", shape: shape_l(), budget: None },
        "l-throttled" => {
            Scenario { name: "L, 8,000 RU per 10 s", shape: shape_l(), budget: Some((8_000, Duration::from_secs(10))) }
        }
        "l-throttled-3500" => Scenario {
            name: "L, 3,500 RU per 10 s (Graph's smallest budget)",
            shape: shape_l(),
            budget: Some((3_500, Duration::from_secs(10))),
        },
        other => bail!("unknown scenario {other:?}: use s, l, l-throttled or l-throttled-3500"),
    })
}

struct Options {
    scenarios: Vec<String>,
    host: PathBuf,
    extra_args: Vec<String>,
    runs: usize,
    /// The compiled-component cache the host runs use (`CONNECTOR_HOST_CACHE_DIR`).
    cache_dir: PathBuf,
    /// Print the host's log (its stderr) after each run.
    show_log: bool,
    /// Only serve the scenario's tenant and print the sync command, for profiling by hand.
    serve: bool,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        scenarios: Vec::new(),
        host: Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/connector-host"),
        extra_args: Vec::new(),
        runs: 1,
        cache_dir: PathBuf::new(),
        show_log: false,
        serve: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().with_context(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--host" => options.host = PathBuf::from(value("--host")?),
            "--workers" => options.extra_args.extend(["--workers".to_owned(), value("--workers")?]),
            "--runs" => options.runs = value("--runs")?.parse().context("--runs takes a number")?,
            "--show-log" => options.show_log = true,
            "--serve" => options.serve = true,
            "--" => options.extra_args.extend(args.by_ref()),
            "-h" | "--help" => {
                println!(
                    "usage: sync-bench [s] [l] [l-throttled] [l-throttled-3500] [--runs N] [--workers N] [--host PATH] [--show-log] [--serve] [-- SYNC-ARGS...]"
                );
                std::process::exit(0);
            }
            scenario => options.scenarios.push(scenario.to_owned()),
        }
    }
    if options.scenarios.is_empty() {
        options.scenarios = ["s", "l", "l-throttled"].map(String::from).to_vec();
    }
    Ok(options)
}

fn main() -> anyhow::Result<()> {
    let mut options = options()?;
    let cache = tempfile::tempdir().context("creating the compiled-component cache")?;
    options.cache_dir = cache.path().to_path_buf();
    if !options.host.is_file() {
        bail!("{} does not exist: run `cargo build --release` first, or pass --host", options.host.display());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if options.serve {
        let name = options.scenarios.first().map_or("s", String::as_str);
        return runtime.block_on(serve(&scenario(name)?));
    }
    runtime.block_on(warm_up(&options))?;
    for name in &options.scenarios {
        let scenario = scenario(name)?;
        for run in 1..=options.runs {
            runtime.block_on(bench(&scenario, &options, run))?;
        }
    }
    Ok(())
}

/// Serves the scenario's tenant until Ctrl-C and prints how to sync it.
async fn serve(scenario: &Scenario) -> anyhow::Result<()> {
    let tenant = Tenant::generate(&scenario.shape);
    let command = format!(
        "sync --azure-client-id {} --azure-client-secret {} --azure-tenant-id {}",
        tenant.client_id, tenant.client_secret, tenant.tenant_id
    );
    let fake = FakeAzure::start(tenant).await?;
    fake.arm_page_size(ARM_PAGE);
    if let Some((units, window)) = scenario.budget {
        fake.resource_unit_budget(units, window);
    }
    println!(
        "{} served; sync it with:\nconnector-host {command} --login-url {} --graph-url {} --arm-url {}",
        scenario.name,
        fake.login_url(),
        fake.graph_url(),
        fake.arm_url()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// What the host wrote with `--stats-json`.
struct HostStats {
    resource_units: u64,
    calls: u64,
    instantiate: Duration,
    guest: Duration,
    sync_elapsed: Duration,
    /// The host's own `VmHWM` when it wrote its figures.
    peak_rss_bytes: Option<u64>,
}

fn read_stats(path: &Path) -> anyhow::Result<HostStats> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let stats: serde_json::Value = serde_json::from_str(&text).context("the host's stats are not JSON")?;
    let seconds = |value: &serde_json::Value| Duration::from_secs_f64(value.as_f64().unwrap_or(0.0));
    Ok(HostStats {
        resource_units: stats["resource_units"].as_u64().unwrap_or(0),
        calls: stats["sandbox"]["calls"].as_u64().unwrap_or(0),
        instantiate: seconds(&stats["sandbox"]["instantiate_seconds"]),
        guest: seconds(&stats["sandbox"]["guest_seconds"]),
        sync_elapsed: seconds(&stats["elapsed_seconds"]),
        peak_rss_bytes: stats["peak_rss_bytes"].as_u64(),
    })
}

/// One sync of a tenant served by the fake Azure, and what the fake saw.
struct Measured {
    outcome: HostRun,
    requests: Vec<fake_azure::LoggedRequest>,
    units: u64,
    fake_cpu: Duration,
    /// Holds the snapshot, the host's figures and its log.
    dir: tempfile::TempDir,
}

async fn sync_against_fake(
    tenant: Tenant,
    budget: Option<(u32, Duration)>,
    options: &Options,
) -> anyhow::Result<Measured> {
    let credentials = (tenant.client_id.clone(), tenant.client_secret.clone(), tenant.tenant_id.clone());
    let fake = FakeAzure::start(tenant).await?;
    fake.arm_page_size(ARM_PAGE);
    if let Some((units, window)) = budget {
        fake.resource_unit_budget(units, window);
    }
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let stats_path = dir.path().join("stats.json");
    let mut args: Vec<String> = vec![
        "sync".into(),
        "--output".into(),
        dir.path().join("sync.db").display().to_string(),
        "--stats-json".into(),
        stats_path.display().to_string(),
        "--azure-client-id".into(),
        credentials.0,
        "--azure-client-secret".into(),
        credentials.1,
        "--azure-tenant-id".into(),
        credentials.2,
        "--login-url".into(),
        fake.login_url(),
        "--graph-url".into(),
        fake.graph_url(),
        "--arm-url".into(),
        fake.arm_url(),
    ];
    args.extend(options.extra_args.iter().cloned());

    let host = options.host.clone();
    let logs = dir.path().to_path_buf();
    let cache = options.cache_dir.clone();
    let fake_cpu_before = child::own_cpu_time();
    let outcome = tokio::task::spawn_blocking(move || run_host(&host, &args, &logs, &cache)).await??;
    let fake_cpu = child::own_cpu_time().saturating_sub(fake_cpu_before);
    Ok(Measured { outcome, requests: fake.requests(), units: fake.resource_units_spent(), fake_cpu, dir })
}

/// Syncs a tiny tenant once, so the host compiles the component into the bench's cache and
/// the measured runs start warm, as every run after a host's first does.
async fn warm_up(options: &Options) -> anyhow::Result<()> {
    let shape = TenantShape { users: 10, groups: 2, members_per_group: 2, service_principals: 2, ..shape_s() };
    let measured = sync_against_fake(Tenant::generate(&shape), None, options).await?;
    println!(
        "warm-up: a cold start (compiling the component into the cache) took {:.2} s{}",
        measured.outcome.wall.as_secs_f64(),
        if measured.outcome.success { "" } else { " and FAILED" }
    );
    Ok(())
}

async fn bench(scenario: &Scenario, options: &Options, run: usize) -> anyhow::Result<()> {
    let generating = Instant::now();
    let tenant = Tenant::generate(&scenario.shape);
    let generated_in = generating.elapsed();
    let minimum = Minimum::of(&tenant, ARM_PAGE);
    let memberships: usize = tenant.groups.iter().map(|group| group.members.len()).sum();
    let Measured { outcome, requests, units, fake_cpu, dir } =
        sync_against_fake(tenant, scenario.budget, options).await?;
    let stats_path = dir.path().join("stats.json");

    let shape = &scenario.shape;
    println!(
        "== {} (run {run}): {} users, {} groups, {} memberships, {} service principals, {} subscriptions × {} resource groups, {} RBAC assignments per subscription; generated in {:.2} s",
        scenario.name,
        shape.users,
        shape.groups,
        memberships,
        shape.service_principals,
        shape.subscriptions,
        shape.resource_groups_per_subscription,
        shape.rbac_assignments_per_subscription,
        generated_in.as_secs_f64()
    );
    if options.show_log {
        let stderr = std::fs::read_to_string(dir.path().join("host.stderr")).unwrap_or_default();
        for line in stderr.lines() {
            println!("   | {line}");
        }
    }
    if !outcome.success {
        let stderr = std::fs::read_to_string(dir.path().join("host.stderr")).unwrap_or_default();
        let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
        println!("   the sync FAILED ({}):", outcome.exit);
        for line in tail.into_iter().rev() {
            println!("   | {line}");
        }
        return Ok(());
    }
    let stats = read_stats(&stats_path)?;
    report(scenario, &outcome, &stats, &requests, units, &minimum);
    println!("   fake Azure CPU   {:.2} s (this process, while the sync ran)", fake_cpu.as_secs_f64());
    Ok(())
}

fn report(
    scenario: &Scenario,
    host: &HostRun,
    stats: &HostStats,
    requests: &[fake_azure::LoggedRequest],
    units: u64,
    minimum: &Minimum,
) {
    let count = |service: Service| requests.iter().filter(|request| request.service == service).count();
    let throttled = requests.iter().filter(|request| request.status == 429).count();
    let cpu = host.user_cpu + host.system_cpu;
    let share = |part: Duration| if cpu.is_zero() { 0.0 } else { 100.0 * part.as_secs_f64() / cpu.as_secs_f64() };
    println!(
        "   wall time        {:.2} s (the sync's own clock: {:.2} s)",
        host.wall.as_secs_f64(),
        stats.sync_elapsed.as_secs_f64()
    );
    println!(
        "   requests         {} (Graph {}, ARM {}, login {}; {} answered 429) vs minimum {} (Graph {}, ARM {}, login {}): {:.2}×",
        requests.len(),
        count(Service::Graph),
        count(Service::Arm),
        count(Service::Login),
        throttled,
        minimum.total(),
        minimum.graph,
        minimum.arm,
        minimum.tokens,
        requests.len() as f64 / minimum.total() as f64
    );
    println!("   resource units   {units} (the host counted {})", stats.resource_units);
    if let Some((budget, window)) = scenario.budget {
        let rate = f64::from(budget) / window.as_secs_f64();
        let floor = units as f64 / rate;
        println!(
            "   budget           {budget} RU per {} s: floor {floor:.1} s, the sync took {:.2}× the floor",
            window.as_secs(),
            host.wall.as_secs_f64() / floor
        );
    }
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let peak = host.peak_rss_bytes.max(stats.peak_rss_bytes.unwrap_or(0));
    println!(
        "   host peak RSS    {:.1} MiB (VmHWM polled every 10 ms: {:.1} MiB; reported by the host at its end: {})",
        mib(peak),
        mib(host.peak_rss_bytes),
        stats.peak_rss_bytes.map_or_else(|| "n/a".to_owned(), |bytes| format!("{:.1} MiB", mib(bytes)))
    );
    println!(
        "   host CPU         {:.2} s (user {:.2}, system {:.2}); in the component {:.2} s ({:.0}%), instantiating {:.2} s ({:.0}%) over {} calls ({:.0} µs per call)",
        cpu.as_secs_f64(),
        host.user_cpu.as_secs_f64(),
        host.system_cpu.as_secs_f64(),
        stats.guest.as_secs_f64(),
        share(stats.guest),
        stats.instantiate.as_secs_f64(),
        share(stats.instantiate),
        stats.calls,
        if stats.calls == 0 { 0.0 } else { stats.instantiate.as_secs_f64() * 1e6 / stats.calls as f64 }
    );
}
