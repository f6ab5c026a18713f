//! The incremental scenarios (`s-incremental`, `l-incremental`): what an incremental sync of an
//! unchanged tenant costs against a full one (the target: at most 5% of its requests),
//! which routes remain, and whether 100 changes show in the next snapshot, exactly.

use std::time::Instant;

use anyhow::Context as _;
use fake_azure::Tenant;

use crate::diff::{GrantRow, diff};
use crate::digest::digest;
use crate::routes::breakdown;
use crate::served::{HostSync, ServedTenant, work_dir};
use crate::tenant_changes;
use crate::{Options, Scenario};

/// The target for an unchanged tenant, as a share of the full sync's requests.
const TARGET_SHARE: f64 = 0.05;
/// Grants listed when a check fails.
const SHOWN: usize = 5;

pub async fn bench(scenario: &Scenario, options: &Options, run: usize) -> anyhow::Result<bool> {
    let generating = Instant::now();
    let tenant = Tenant::generate(&scenario.shape);
    println!(
        "== {} (run {run}): {} users, {} groups, {} service principals, {} subscriptions; generated in {:.2} s",
        scenario.name,
        scenario.shape.users,
        scenario.shape.groups,
        scenario.shape.service_principals,
        scenario.shape.subscriptions,
        generating.elapsed().as_secs_f64()
    );
    let served = ServedTenant::start(tenant, None).await?;
    let host = &options.host;
    let dir = work_dir(options.keep)?;
    let output = dir.path().join("sync.db");
    let mut checks = Checks::default();

    let full = served.sync(host, &output, &dir.path().join("full"), &[])?;
    full.ensure_success("the full sync")?;
    let full_requests = full.request_count();
    let full_digest = digest(&output)?;
    println!(
        "   full sync: {full_requests} requests in {:.2} s; digest {full_digest}",
        full.outcome.wall.as_secs_f64()
    );

    let unchanged = served.sync(host, &output, &dir.path().join("unchanged"), &[])?;
    unchanged.ensure_success("the incremental sync of the unchanged tenant")?;
    print_requests("incremental sync, unchanged tenant", &served, &unchanged, full_requests);
    checks.mode(&unchanged);
    let unchanged_digest = digest(&output)?;
    checks.check(
        "the unchanged tenant's snapshot equals the full sync's",
        unchanged_digest == full_digest,
        format!("digest {unchanged_digest}; tables that differ: {:?}", unchanged_digest.differing_tables(&full_digest)),
    );

    let before = dir.path().join("before-changes.db");
    std::fs::copy(&output, &before).with_context(|| format!("keeping a copy of {}", output.display()))?;
    let changes = tenant_changes::apply(&served.fake)?;
    println!("   changes: {}", changes.description.join("; "));

    let changed = served.sync(host, &output, &dir.path().join("changed"), &[])?;
    changed.ensure_success("the incremental sync after 100 changes")?;
    print_requests("incremental sync, after 100 changes", &served, &changed, full_requests);
    checks.mode(&changed);

    let difference = diff(&before, &output)?;
    let missing: Vec<&GrantRow> =
        changes.expected_grants.iter().filter(|grant| difference.grants_added.binary_search(grant).is_err()).collect();
    let unexpected: Vec<&GrantRow> =
        difference.grants_added.iter().filter(|grant| changes.expected_grants.binary_search(grant).is_err()).collect();
    checks.check(
        &format!("exactly the {} expected grants were added", changes.expected_grants.len()),
        missing.is_empty() && unexpected.is_empty(),
        format!(
            "{} added, {} of them expected; missing: {}; unexpected: {}",
            difference.grants_added.len(),
            difference.grants_added.len() - unexpected.len(),
            listed(&missing),
            listed(&unexpected)
        ),
    );
    checks.check(
        "no grant disappeared",
        difference.grants_removed.is_empty(),
        format!("{} removed: {}", difference.grants_removed.len(), listed(&difference.grants_removed)),
    );
    checks.check(
        "entitlements unchanged",
        difference.entitlements_changed == 0,
        format!("{} rows differ", difference.entitlements_changed),
    );
    let unexpected_changes: Vec<_> =
        difference.resources_changed.iter().filter(|key| !changes.expected_changed_resources.contains(key)).collect();
    checks.check(
        "resources unchanged (but the profile of the application given an owner, which lists its owners)",
        difference.resources_added.is_empty()
            && difference.resources_removed.is_empty()
            && unexpected_changes.is_empty(),
        format!(
            "{} added, {} removed, {} changed ({} unexpectedly: {:?})",
            difference.resources_added.len(),
            difference.resources_removed.len(),
            difference.resources_changed.len(),
            unexpected_changes.len(),
            unexpected_changes.iter().take(SHOWN).collect::<Vec<_>>()
        ),
    );

    let fresh = dir.path().join("fresh-full.db");
    let fresh_sync = served.sync(host, &fresh, &dir.path().join("fresh-full"), &["--full"])?;
    fresh_sync.ensure_success("the fresh full sync of the changed tenant")?;
    let (incremental_digest, fresh_digest) = (digest(&output)?, digest(&fresh)?);
    checks.check(
        "the incremental snapshot equals a fresh full sync of the changed tenant",
        incremental_digest == fresh_digest,
        format!(
            "incremental {incremental_digest}; full ({} requests) {fresh_digest}; tables that differ: {:?}",
            fresh_sync.request_count(),
            incremental_digest.differing_tables(&fresh_digest)
        ),
    );
    println!(
        "   {}",
        if checks.failed == 0 {
            format!("all {} checks passed", checks.passed)
        } else {
            format!("{} of {} checks FAILED", checks.failed, checks.passed + checks.failed)
        }
    );
    Ok(checks.failed == 0)
}

/// Prints a run's requests against the full sync's, and by route.
fn print_requests(what: &str, served: &ServedTenant, run: &HostSync, full_requests: usize) {
    let share = run.request_count() as f64 / full_requests.max(1) as f64;
    println!(
        "   {what}: {} requests in {:.2} s = {:.2}% of the full sync's {full_requests} ({} the {:.0}% target)",
        run.request_count(),
        run.outcome.wall.as_secs_f64(),
        share * 100.0,
        if share <= TARGET_SHARE { "within" } else { "ABOVE" },
        TARGET_SHARE * 100.0
    );
    for (route, count) in breakdown(&served.requests_of(run)) {
        println!("     {count:>8}  {route}");
    }
}

fn listed<T: std::fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        return "none".to_owned();
    }
    let shown: Vec<String> = items.iter().take(SHOWN).map(ToString::to_string).collect();
    let more = items.len().saturating_sub(SHOWN);
    if more == 0 { shown.join(", ") } else { format!("{} and {more} more", shown.join(", ")) }
}

/// Pass/FAIL lines, counted.
#[derive(Default)]
struct Checks {
    passed: usize,
    failed: usize,
}

impl Checks {
    fn check(&mut self, what: &str, ok: bool, detail: String) {
        if ok {
            self.passed += 1;
            println!("   pass  {what}: {detail}");
        } else {
            self.failed += 1;
            println!("   FAIL  {what}: {detail}  <-- FAIL");
        }
    }

    /// The host ran the sync incrementally, as the output allowed.
    fn mode(&mut self, run: &HostSync) {
        let mode = run.stats.as_ref().map_or("unknown", |stats| stats.mode.as_str());
        self.check("the host ran an incremental sync", mode == "incremental", format!("mode {mode}"));
    }
}
