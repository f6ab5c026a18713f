//! sync-bench: syncs of generated tenants against the fake Azure, measured.
//!
//! For each scenario it generates a tenant of a given shape, serves it from the fake Azure on
//! loopback (in this process) and runs `connector-host sync` against it as a child process.
//!
//! - `s`, `l`, `l-throttled`, `l-throttled-3500`: one full sync; prints wall time, requests
//!   made against the minimum needed, Graph resource units spent, the host's peak RSS and CPU
//!   time, and the share of that CPU time spent inside the component. With a resource-unit
//!   budget, it also prints the floor (units spent ÷ allowed rate) and how far above it the
//!   sync finished.
//! - `s-resume`, `l-resume`: kills a full sync with SIGKILL at 10 random points (`--seed N`
//!   reproduces them), checks the previous snapshot stays readable and whole, resumes, and
//!   compares each result with an uninterrupted sync; prints the requests re-read.
//! - `s-incremental`, `l-incremental`: an incremental sync of the unchanged tenant (its
//!   requests against the full sync's, by route), then of the tenant after 100 changes,
//!   checking exactly those changes show and the result equals a fresh full sync.
//!
//! Figures are printed, never asserted; a wrong snapshot is, and makes the bench exit with 1.
//!
//! ```sh
//! cargo build --release -p connector-host -p sync-bench
//! target/release/sync-bench [s] [l] [l-throttled] [l-throttled-3500] [s-resume] [l-resume] [s-incremental] [l-incremental] [--runs N] [--workers N] [--seed N]
//! ```

mod child;
mod diff;
mod digest;
mod full_sync;
mod incremental;
mod minimum;
mod resume;
mod routes;
mod served;
mod tenant_changes;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use fake_azure::{Tenant, TenantShape};

use served::{HostCommand, ServedTenant};

const USAGE: &str =
    "usage: sync-bench [s] [l] [l-throttled] [l-throttled-3500] [s-resume] [l-resume] [s-incremental] [l-incremental]
                  [--runs N] [--workers N] [--seed N] [--host PATH] [--show-log] [--keep] [--serve] [-- SYNC-ARGS...]

  s, l                 one full sync of the S or L tenant, measured
  l-throttled[-3500]   the same under Graph's resource-unit budget (8,000 or 3,500 RU per 10 s)
  s-resume, l-resume   kill a full sync at 10 random points, resume, compare with an uninterrupted one
  s-incremental, l-incremental
                       incremental syncs of the unchanged tenant, then after 100 changes, checked
  --runs N             run each scenario N times
  --workers N          the host's --workers (its default is 8)
  --seed N             the kill points of the resume scenarios (default: from the clock; printed)
  --host PATH          the connector-host binary (default: target/release/connector-host)
  --show-log           print the host's log after each full-sync scenario
  --keep               keep the snapshots and logs of the resume and incremental scenarios
  --serve              only serve the first scenario's tenant and print the sync command
  -- SYNC-ARGS         passed to every `connector-host sync`
Without a scenario: s, l, l-throttled.";

/// What a scenario measures.
#[derive(Clone, Copy)]
enum Measure {
    FullSync,
    KillAndResume,
    Incremental,
}

pub struct Scenario {
    name: &'static str,
    shape: TenantShape,
    /// Graph's resource-unit budget: units per window, per app and tenant.
    budget: Option<(u32, Duration)>,
    measure: Measure,
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
    let plain = |name, shape, measure| Scenario { name, shape, budget: None, measure };
    Ok(match name {
        "s" => plain("S", TenantShape::small(), Measure::FullSync),
        "l" => plain("L", shape_l(), Measure::FullSync),
        "l-throttled" => Scenario {
            name: "L, 8,000 RU per 10 s",
            shape: shape_l(),
            budget: Some((8_000, Duration::from_secs(10))),
            measure: Measure::FullSync,
        },
        "l-throttled-3500" => Scenario {
            name: "L, 3,500 RU per 10 s (Graph's smallest budget)",
            shape: shape_l(),
            budget: Some((3_500, Duration::from_secs(10))),
            measure: Measure::FullSync,
        },
        "s-resume" => plain("S, killed and resumed", TenantShape::small(), Measure::KillAndResume),
        "l-resume" => plain("L, killed and resumed", shape_l(), Measure::KillAndResume),
        "s-incremental" => plain("S, incremental", TenantShape::small(), Measure::Incremental),
        "l-incremental" => plain("L, incremental", shape_l(), Measure::Incremental),
        other => bail!("unknown scenario {other:?}\n{USAGE}"),
    })
}

struct Options {
    scenarios: Vec<String>,
    host: HostCommand,
    /// The host's `--workers`, when given (the resume scenarios print it).
    workers: Option<u16>,
    runs: usize,
    /// Seeds the kill points of the resume scenarios.
    seed: u64,
    /// Print the host's log (its stderr) after each full-sync run.
    show_log: bool,
    /// Keep the work directories of the resume and incremental scenarios.
    keep: bool,
    /// Only serve the scenario's tenant and print the sync command, for profiling by hand.
    serve: bool,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        scenarios: Vec::new(),
        host: HostCommand {
            binary: Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/connector-host"),
            cache_dir: PathBuf::new(),
            extra_args: Vec::new(),
        },
        workers: None,
        runs: 1,
        seed: resume::seed_from_clock(),
        show_log: false,
        keep: false,
        serve: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().with_context(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--host" => options.host.binary = PathBuf::from(value("--host")?),
            "--workers" => {
                let workers = value("--workers")?;
                options.workers = Some(workers.parse().context("--workers takes a number from 1 to 256")?);
                options.host.extra_args.extend(["--workers".to_owned(), workers]);
            }
            "--runs" => options.runs = value("--runs")?.parse().context("--runs takes a number")?,
            "--seed" => options.seed = value("--seed")?.parse().context("--seed takes a number")?,
            "--show-log" => options.show_log = true,
            "--keep" => options.keep = true,
            "--serve" => options.serve = true,
            "--" => options.host.extra_args.extend(args.by_ref()),
            "-h" | "--help" => {
                println!("{USAGE}");
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
    options.host.cache_dir = cache.path().to_path_buf();
    if !options.host.binary.is_file() {
        bail!(
            "{} does not exist: run `cargo build --release -p connector-host` first, or pass --host",
            options.host.binary.display()
        );
    }
    let scenarios = options.scenarios.iter().map(|name| scenario(name)).collect::<anyhow::Result<Vec<_>>>()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if options.serve {
        return runtime.block_on(serve(scenarios.first().context("--serve needs a scenario")?));
    }
    runtime.block_on(full_sync::warm_up(&options.host))?;
    let mut failures = Vec::new();
    for scenario in &scenarios {
        for run in 1..=options.runs {
            let passed = match scenario.measure {
                Measure::FullSync => {
                    runtime.block_on(full_sync::bench(scenario, &options.host, options.show_log, run))?;
                    true
                }
                Measure::KillAndResume => runtime.block_on(resume::bench(scenario, &options, run))?,
                Measure::Incremental => runtime.block_on(incremental::bench(scenario, &options, run))?,
            };
            if !passed {
                failures.push(format!("{} (run {run})", scenario.name));
            }
        }
    }
    if !failures.is_empty() {
        println!("\n!!! FAILED: {} — see the lines marked FAIL above", failures.join(", "));
        std::process::exit(1);
    }
    Ok(())
}

/// Serves the scenario's tenant until Ctrl-C and prints how to sync it.
async fn serve(scenario: &Scenario) -> anyhow::Result<()> {
    let served = ServedTenant::start(Tenant::generate(&scenario.shape), scenario.budget).await?;
    println!("{} served; sync it with:\nconnector-host sync {}", scenario.name, served.connection_args().join(" "));
    tokio::signal::ctrl_c().await?;
    Ok(())
}
