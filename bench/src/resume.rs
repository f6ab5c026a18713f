//! The kill-and-resume scenarios (`s-resume`, `l-resume`): a full sync killed with SIGKILL at
//! 10 random points must leave the previous snapshot readable and whole, and the next run must
//! resume it and produce exactly what an uninterrupted sync does.
//!
//! What a kill costs is counted per exact request (method, path and query): the killed and
//! the resumed run together make each request as often as the uninterrupted run, except
//! - token requests: each run fetches its own tokens;
//! - requests made again: answers the killed host received but had not committed with their
//!   checkpoint. The issue allows one page per worker; a page is one sandbox call, and a call
//!   can make several requests (a page of resource groups also reads its subscription's role
//!   definitions and assignments), so requests made again can exceed the workers. A request
//!   the host sent but whose answer the fake had not logged yet is not counted: it was never
//!   answered.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use fake_azure::{LoggedRequest, Service, Tenant};

use crate::digest::{SnapshotDigest, digest, open_read_only};
use crate::routes::{route_of, url_counts, url_of};
use crate::served::{HostSync, ServedTenant, work_dir};
use crate::{Options, Scenario};

const KILL_POINTS: usize = 10;
/// Kill points are drawn uniformly from this share of the uninterrupted sync's requests.
const KILL_RANGE: (f64, f64) = (0.02, 0.98);
/// The host's `--workers` when none is given.
const HOST_DEFAULT_WORKERS: u16 = 8;

pub fn seed_from_clock() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_nanos() as u64)
}

/// SplitMix64: small, seedable and good enough to spread kill points.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn fraction(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The kill points, as fractions of the uninterrupted sync's requests, in increasing order.
fn kill_fractions(seed: u64) -> Vec<f64> {
    let mut random = SplitMix64(seed);
    let (low, high) = KILL_RANGE;
    let mut fractions: Vec<f64> = (0..KILL_POINTS).map(|_| low + (high - low) * random.fraction()).collect();
    fractions.sort_by(f64::total_cmp);
    fractions
}

/// Decides when a run has made `target` requests. Each look copies the fake's whole log and
/// holds its lock (stalling the fake's answers meanwhile), so it looks rarely while the target
/// is far and at every poll once it is near.
struct KillWatch {
    target: usize,
    started: Instant,
    next_look: Instant,
    /// Requests per second, first the uninterrupted run's, then this run's own.
    rate: f64,
}

impl KillWatch {
    fn new(target: usize, rate: f64) -> KillWatch {
        let now = Instant::now();
        KillWatch { target, started: now, next_look: now, rate: rate.max(1.0) }
    }

    fn reached(&mut self, made_so_far: &dyn Fn() -> usize) -> bool {
        let now = Instant::now();
        if now < self.next_look {
            return false;
        }
        let made = made_so_far();
        if made >= self.target {
            return true;
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        if made > 100 && elapsed > 0.5 {
            self.rate = made as f64 / elapsed;
        }
        let part_of_the_way = 0.3 * (self.target - made) as f64 / self.rate;
        self.next_look = now + Duration::from_secs_f64(part_of_the_way.min(1.0));
        false
    }
}

/// One kill point's outcome.
struct KillOutcome {
    fraction: f64,
    target: usize,
    killed: usize,
    resumed: usize,
    /// Requests beyond the uninterrupted run's (see the module docs).
    extra: ExtraRequests,
    /// The snapshot the output held before, read right after the kill: equal to the reference.
    previous_intact: Result<bool, String>,
    /// What the killed sync left beside the output: its partial snapshot, and whether that still
    /// holds the checkpoint's fingerprint (which makes it resumable).
    partial_kept: Option<String>,
    /// The resumed run's own word that it continued from the checkpoint.
    did_resume: bool,
    /// Objects the resumed run wrote that were already there: pages re-read after their commit.
    duplicates: u64,
    equal: bool,
    /// The resumed run's snapshot.
    result: SnapshotDigest,
    delta_tokens: Option<u64>,
}

impl KillOutcome {
    fn passed(&self) -> bool {
        matches!(self.previous_intact, Ok(true)) && self.did_resume && self.equal
    }
}

pub async fn bench(scenario: &Scenario, options: &Options, run: usize) -> anyhow::Result<bool> {
    let generating = Instant::now();
    let tenant = Tenant::generate(&scenario.shape);
    println!(
        "== {} (run {run}): {} users, {} groups, {} service principals; generated in {:.2} s",
        scenario.name,
        scenario.shape.users,
        scenario.shape.groups,
        scenario.shape.service_principals,
        generating.elapsed().as_secs_f64()
    );
    let served = ServedTenant::start(tenant, None).await?;
    let host = &options.host;
    let workers = options.workers.unwrap_or(HOST_DEFAULT_WORKERS);
    let dir = work_dir(options.keep)?;
    let reference = dir.path().join("reference.db");

    let uninterrupted = served.sync(host, &reference, &dir.path().join("uninterrupted"), &["--full"])?;
    uninterrupted.ensure_success("the uninterrupted sync")?;
    let full_requests = uninterrupted.request_count();
    let expected = digest(&reference)?;
    let expected_tokens = delta_token_count(&reference)?;
    let reference_requests = served.requests_of(&uninterrupted);
    let reference_urls = url_counts(reference_requests.iter().filter(|request| request.service != Service::Login));
    let reference_tokens = login_count(&reference_requests);
    drop(reference_requests);
    println!(
        "   uninterrupted full sync: {full_requests} requests in {:.2} s; digest {expected}; {} delta tokens",
        uninterrupted.outcome.wall.as_secs_f64(),
        expected_tokens.map_or_else(|| "no".to_owned(), |count| count.to_string()),
    );
    if !expected.unknown_tables.is_empty() {
        println!("   note: tables left out of the digest: {}", expected.unknown_tables.join(", "));
    }
    println!(
        "   seed {} (reproduce with --seed {}); {KILL_POINTS} kill points in [{:.0}%, {:.0}%] of {full_requests} requests; workers {workers}",
        options.seed,
        options.seed,
        KILL_RANGE.0 * 100.0,
        KILL_RANGE.1 * 100.0
    );
    let rate = full_requests as f64 / uninterrupted.outcome.wall.as_secs_f64().max(0.001);
    let baseline =
        Baseline { reference: &reference, expected: &expected, urls: &reference_urls, tokens: reference_tokens };

    let mut outcomes = Vec::new();
    for (index, fraction) in kill_fractions(options.seed).into_iter().enumerate() {
        let target = ((fraction * full_requests as f64).round() as usize).max(1);
        let work = dir.path().join(format!("kill-{}", index + 1));
        match kill_and_resume(&served, options, &baseline, &work, fraction, target, rate)? {
            Attempt::Killed(outcome) => {
                print_outcome(index + 1, full_requests, workers, &outcome, &expected, expected_tokens);
                outcomes.push(outcome);
            }
            Attempt::NotKilled(why) => {
                println!("   kill {:>2} at {:5.1}% (request {target}): {why}; not counted", index + 1, fraction * 100.0)
            }
        }
        if !options.keep {
            // An L snapshot is a few hundred MB: keep one kill point's files at a time.
            let _ = std::fs::remove_dir_all(&work);
        }
    }

    let equal = outcomes.iter().filter(|outcome| outcome.equal).count();
    let passed = outcomes.iter().filter(|outcome| outcome.passed()).count();
    let max_overhead = outcomes.iter().map(|outcome| overhead(outcome, full_requests)).max().unwrap_or(0);
    let max_again = outcomes.iter().map(|outcome| outcome.extra.made_again_total()).max().unwrap_or(0);
    // A kill that landed after the sync completed tested nothing, but is no failure either.
    let all_passed = passed == outcomes.len() && !outcomes.is_empty();
    println!(
        "   summary: {equal} of {} resumed snapshots equal the uninterrupted one ({} of {KILL_POINTS} kill points not counted); {passed} passed every check; max overhead {max_overhead} requests, max made again {max_again} (workers {workers}){}",
        outcomes.len(),
        KILL_POINTS - outcomes.len(),
        if all_passed { "" } else { "  <-- FAIL" }
    );
    Ok(all_passed)
}

/// What every kill point is compared with: the uninterrupted sync.
struct Baseline<'a> {
    reference: &'a Path,
    expected: &'a SnapshotDigest,
    /// Its requests (tokens aside), by exact URL.
    urls: &'a HashMap<String, i64>,
    tokens: i64,
}

/// A kill point's outcome, or why there was nothing to resume.
enum Attempt {
    Killed(Box<KillOutcome>),
    NotKilled(&'static str),
}

/// Kills a full sync into a copy of the reference after `target` requests, checks the copy,
/// resumes.
fn kill_and_resume(
    served: &ServedTenant,
    options: &Options,
    baseline: &Baseline<'_>,
    work: &Path,
    fraction: f64,
    target: usize,
    rate: f64,
) -> anyhow::Result<Attempt> {
    std::fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
    let output = work.join("sync.db");
    // The previous complete snapshot, which must stay readable while the killed sync's partial exists.
    std::fs::copy(baseline.reference, &output)
        .with_context(|| format!("copying the reference snapshot to {}", output.display()))?;
    let previous_file = inode(&output)?;
    let mut watch = KillWatch::new(target, rate);
    let killed =
        served.sync_until(&options.host, &output, &work.join("killed"), &["--full"], |made| watch.reached(made))?;
    if !killed.outcome.killed {
        killed.ensure_success("the sync that was to be killed")?;
        return Ok(Attempt::NotKilled("the sync finished before it could be killed"));
    }
    // A completed sync renames its snapshot over the output: a kill after that hit a finished sync.
    if inode(&output)? != previous_file {
        return Ok(Attempt::NotKilled("the sync had put its snapshot in place when the kill landed"));
    }
    let partial = partial_of(&output);
    let partial_kept = partial.exists().then(|| checkpoint_state(&partial));
    let previous_intact = match digest(&output) {
        Ok(previous) => Ok(previous == *baseline.expected),
        Err(error) => Err(format!("{error:#}")),
    };
    let resumed = served.sync(&options.host, &output, &work.join("resumed"), &["--full"])?;
    resumed.ensure_success("the resumed sync")?;
    let result = digest(&output)?;

    let extra = extra_requests(served, baseline, &killed, &resumed);
    Ok(Attempt::Killed(Box::new(KillOutcome {
        fraction,
        target,
        killed: killed.request_count(),
        resumed: resumed.request_count(),
        extra,
        previous_intact,
        partial_kept,
        did_resume: resumed.stats.as_ref().is_some_and(|stats| stats.resumed),
        duplicates: resumed.stats.as_ref().map_or(0, |stats| stats.duplicates),
        equal: result == *baseline.expected,
        result,
        delta_tokens: delta_token_count(&output)?,
    })))
}

/// What the killed and the resumed run requested beyond the uninterrupted run, by exact URL.
struct ExtraRequests {
    tokens: i64,
    /// Other requests made more often than the uninterrupted run made them, by route.
    made_again: Vec<(String, i64)>,
    /// Requests of the uninterrupted run that neither run made.
    never_made: i64,
}

impl ExtraRequests {
    fn made_again_total(&self) -> i64 {
        self.made_again.iter().map(|(_, count)| count).sum()
    }
}

fn extra_requests(
    served: &ServedTenant,
    baseline: &Baseline<'_>,
    killed: &HostSync,
    resumed: &HostSync,
) -> ExtraRequests {
    let killed = served.requests_of(killed);
    let resumed = served.requests_of(resumed);
    let tokens = login_count(&killed) + login_count(&resumed) - baseline.tokens;
    let both: Vec<&LoggedRequest> =
        killed.iter().chain(&resumed).filter(|request| request.service != Service::Login).collect();
    let counts = url_counts(both.iter().copied());
    let routes: HashMap<String, String> = both.iter().map(|request| (url_of(request), route_of(request))).collect();
    let urls: HashSet<&String> = counts.keys().chain(baseline.urls.keys()).collect();
    let mut made_again: HashMap<&str, i64> = HashMap::new();
    let mut never_made = 0;
    for url in urls {
        let excess = counts.get(url).copied().unwrap_or(0) - baseline.urls.get(url).copied().unwrap_or(0);
        if excess > 0 {
            *made_again.entry(routes.get(url).map_or("?", String::as_str)).or_default() += excess;
        } else {
            never_made -= excess;
        }
    }
    let mut made_again: Vec<(String, i64)> =
        made_again.into_iter().map(|(route, count)| (route.to_owned(), count)).collect();
    made_again.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ExtraRequests { tokens, made_again, never_made }
}

/// Whether a partial snapshot still holds the fingerprint a resume needs, and whether its run
/// was already marked finished: to tell a kill mid-sync from one while the sync completed.
fn checkpoint_state(partial: &Path) -> String {
    let read = || -> anyhow::Result<(bool, bool)> {
        let connection = open_read_only(partial)?;
        let fingerprint: bool =
            connection.query_row("SELECT count(*) > 0 FROM sync_checkpoint WHERE key = 'fingerprint'", [], |row| {
                row.get(0)
            })?;
        let finished: bool =
            connection
                .query_row("SELECT count(*) > 0 FROM sync_runs WHERE finished_at IS NOT NULL", [], |row| row.get(0))?;
        Ok((fingerprint, finished))
    };
    match read() {
        Ok((fingerprint, finished)) => format!(
            "{} fingerprint, run {}",
            if fingerprint { "with its" } else { "without a" },
            if finished { "marked finished: killed while completing" } else { "not finished" }
        ),
        Err(error) => format!("unreadable: {error:#}"),
    }
}

/// The file behind a path: a rename over it gives the path another one.
fn inode(path: &Path) -> anyhow::Result<u64> {
    use std::os::unix::fs::MetadataExt as _;
    Ok(std::fs::metadata(path).with_context(|| format!("reading the metadata of {}", path.display()))?.ino())
}

/// `.<name>.partial` beside the output, where the host keeps an unfinished sync and its checkpoint.
fn partial_of(output: &Path) -> std::path::PathBuf {
    let name = output.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    output.with_file_name(format!(".{name}.partial"))
}

fn login_count(requests: &[LoggedRequest]) -> i64 {
    requests.iter().filter(|request| request.service == Service::Login).count() as i64
}

/// Requests of the killed and resumed runs together beyond the uninterrupted run's.
fn overhead(outcome: &KillOutcome, full_requests: usize) -> i64 {
    (outcome.killed + outcome.resumed) as i64 - full_requests as i64
}

/// Delta tokens a snapshot keeps for the next incremental sync (`None`: it has no such table).
fn delta_token_count(snapshot: &Path) -> anyhow::Result<Option<u64>> {
    let connection = open_read_only(snapshot)?;
    let has_table: bool = connection
        .query_row("SELECT count(*) > 0 FROM sqlite_master WHERE name = 'delta_tokens'", [], |row| row.get(0))
        .with_context(|| format!("reading the tables of {}", snapshot.display()))?;
    if !has_table {
        return Ok(None);
    }
    let count: i64 = connection
        .query_row("SELECT count(*) FROM delta_tokens", [], |row| row.get(0))
        .with_context(|| format!("counting the delta tokens of {}", snapshot.display()))?;
    Ok(Some(count as u64))
}

fn print_outcome(
    number: usize,
    full_requests: usize,
    workers: u16,
    outcome: &KillOutcome,
    expected: &SnapshotDigest,
    tokens: Option<u64>,
) {
    let previous = match &outcome.previous_intact {
        Ok(true) => "previous snapshot intact".to_owned(),
        Ok(false) => "previous snapshot CHANGED <-- FAIL".to_owned(),
        Err(error) => format!("previous snapshot UNREADABLE ({error}) <-- FAIL"),
    };
    let made_again = outcome.extra.made_again_total();
    let again = if made_again > i64::from(workers) {
        format!("{made_again} made again (more than the workers: one call in flight can have made several)")
    } else {
        format!("{made_again} made again")
    };
    let never_made = outcome.extra.never_made;
    let never = if never_made > 0 { format!(", {never_made} never made") } else { String::new() };
    let duplicates = if outcome.duplicates > 0 {
        format!(" ({} objects written twice: committed pages re-read)", outcome.duplicates)
    } else {
        String::new()
    };
    println!(
        "   kill {number:>2} at {:5.1}% (request {} of {full_requests}): killed run {}, resumed run {}; overhead {:+} = {} tokens + {again}{never}{duplicates}; workers {workers}; {previous}; {}; {}{}",
        outcome.fraction * 100.0,
        outcome.target,
        outcome.killed,
        outcome.resumed,
        overhead(outcome, full_requests),
        outcome.extra.tokens,
        match (outcome.did_resume, &outcome.partial_kept) {
            (true, _) => "resumed".to_owned(),
            (false, Some(state)) => format!("did NOT resume its partial snapshot ({state}) <-- FAIL"),
            (false, None) => "did NOT resume: the killed sync left no partial snapshot <-- FAIL".to_owned(),
        },
        if outcome.equal {
            "digest equal".to_owned()
        } else {
            format!(
                "digest DIFFERS: {} (tables {:?}) <-- FAIL",
                outcome.result,
                outcome.result.differing_tables(expected)
            )
        },
        if outcome.delta_tokens == tokens { "" } else { "; delta tokens differ from the reference's" },
    );
    // A handful of routes when the resume worked; the whole sync's when it did not.
    let routes: Vec<String> =
        outcome.extra.made_again.iter().take(6).map(|(route, count)| format!("{count}× {route}")).collect();
    if !routes.is_empty() {
        let more = outcome.extra.made_again.len().saturating_sub(routes.len());
        let more = if more > 0 { format!(" and {more} more routes") } else { String::new() };
        println!("            made again: {}{more}", routes.join(", "));
    }
}
