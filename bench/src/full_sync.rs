//! The full-sync scenarios (`s`, `l`, `l-throttled`, ...): one sync of a generated tenant,
//! measured: wall time, requests against the minimum needed, Graph resource units, the host's
//! peak RSS and CPU time, and the share of that CPU time spent inside the component.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use fake_azure::{Service, Tenant, TenantShape};

use crate::Scenario;
use crate::child::{self, HostRun};
use crate::minimum::Minimum;
use crate::served::{ARM_PAGE, HostCommand, HostStats, HostSync, ServedTenant};

/// One sync of a tenant served by the fake Azure, and what the fake saw.
struct Measured {
    sync: HostSync,
    requests: Vec<fake_azure::LoggedRequest>,
    units: u64,
    fake_cpu: Duration,
    /// Holds the snapshot, the host's figures and its log.
    _dir: tempfile::TempDir,
}

async fn sync_once(tenant: Tenant, budget: Option<(u32, Duration)>, host: &HostCommand) -> anyhow::Result<Measured> {
    let served = ServedTenant::start(tenant, budget).await?;
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let fake_cpu_before = child::own_cpu_time();
    let sync = served.sync(host, &dir.path().join("sync.db"), dir.path(), &[])?;
    let fake_cpu = child::own_cpu_time().saturating_sub(fake_cpu_before);
    Ok(Measured {
        requests: served.requests_of(&sync),
        units: served.fake.resource_units_spent(),
        sync,
        fake_cpu,
        _dir: dir,
    })
}

/// Syncs a tiny tenant once, so the host compiles the component into the bench's cache and
/// the measured runs start warm, as every run after a host's first does.
pub async fn warm_up(host: &HostCommand) -> anyhow::Result<()> {
    let shape =
        TenantShape { users: 10, groups: 2, members_per_group: 2, service_principals: 2, ..TenantShape::small() };
    let measured = sync_once(Tenant::generate(&shape), None, host).await?;
    println!(
        "warm-up: a cold start (compiling the component into the cache) took {:.2} s{}",
        measured.sync.outcome.wall.as_secs_f64(),
        if measured.sync.outcome.success { "" } else { " and FAILED" }
    );
    Ok(())
}

pub async fn bench(scenario: &Scenario, host: &HostCommand, show_log: bool, run: usize) -> anyhow::Result<()> {
    let generating = Instant::now();
    let tenant = Tenant::generate(&scenario.shape);
    let generated_in = generating.elapsed();
    let minimum = Minimum::of(&tenant, ARM_PAGE);
    let memberships: usize = tenant.groups.iter().map(|group| group.members.len()).sum();
    let Measured { sync, requests, units, fake_cpu, _dir } = sync_once(tenant, scenario.budget, host).await?;

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
    if show_log {
        let stderr = std::fs::read_to_string(sync.logs.join("host.stderr")).unwrap_or_default();
        for line in stderr.lines() {
            println!("   | {line}");
        }
    }
    let Some(stats) = &sync.stats else {
        println!("   the sync FAILED ({}):", sync.outcome.exit);
        for line in sync.log_tail(20) {
            println!("   | {line}");
        }
        return Ok(());
    };
    report(scenario, &sync.outcome, stats, &requests, units, &minimum);
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
