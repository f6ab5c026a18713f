//! A generated tenant served by the fake Azure in this process, and syncs of it by the host as a
//! child process: the plumbing every scenario shares.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use fake_azure::{FakeAzure, LoggedRequest, Tenant};

use crate::child::{HostRun, run_host};

/// The fake's ARM page size (ARM, unlike Graph, chooses it).
pub const ARM_PAGE: usize = 100;

/// How to start the host: its binary, the compiled-component cache every run shares (so only
/// the warm-up pays for compiling), and the flags every sync gets (`--workers`, `-- ARGS`).
pub struct HostCommand {
    pub binary: PathBuf,
    pub cache_dir: PathBuf,
    pub extra_args: Vec<String>,
}

/// A temporary directory for a scenario's snapshots and logs; with `--keep` it stays, for a
/// look at a failure (`sqlite3`, `connector-host export`), and its path is printed.
pub fn work_dir(keep: bool) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("sync-bench-")
        .disable_cleanup(keep)
        .tempdir()
        .context("creating a temporary directory")?;
    if keep {
        println!("   snapshots and logs kept in {}", dir.path().display());
    }
    Ok(dir)
}

/// A tenant on loopback, with the credentials its token endpoint accepts.
pub struct ServedTenant {
    pub fake: FakeAzure,
}

/// One `connector-host sync` against a served tenant.
pub struct HostSync {
    pub outcome: HostRun,
    /// This run's requests: their positions in the fake's log.
    pub requests: Range<usize>,
    /// What the host wrote with `--stats-json`; `None` when it did not finish.
    pub stats: Option<HostStats>,
    /// Where its stdout and stderr are.
    pub logs: PathBuf,
}

impl HostSync {
    pub fn request_count(&self) -> usize {
        self.requests.len()
    }

    /// The last `lines` lines of the host's stderr, for a failure report.
    pub fn log_tail(&self, lines: usize) -> Vec<String> {
        let stderr = std::fs::read_to_string(self.logs.join("host.stderr")).unwrap_or_default();
        let mut tail: Vec<String> = stderr.lines().rev().take(lines).map(str::to_owned).collect();
        tail.reverse();
        tail
    }

    /// Fails with the host's exit and the end of its log unless it completed.
    pub fn ensure_success(&self, what: &str) -> anyhow::Result<()> {
        if self.outcome.success {
            return Ok(());
        }
        anyhow::bail!("{what} FAILED ({}):\n   | {}", self.outcome.exit, self.log_tail(20).join("\n   | "))
    }
}

impl ServedTenant {
    pub async fn start(tenant: Tenant, budget: Option<(u32, Duration)>) -> anyhow::Result<ServedTenant> {
        let fake = FakeAzure::start(tenant).await?;
        fake.arm_page_size(ARM_PAGE);
        if let Some((units, window)) = budget {
            fake.resource_unit_budget(units, window);
        }
        Ok(ServedTenant { fake })
    }

    /// The requests the fake has answered so far. This copies the fake's whole log (it offers
    /// no cheaper count), so callers that poll it keep their looks few.
    pub fn request_count(&self) -> usize {
        self.fake.requests().len()
    }

    /// `sync` with the credentials and the fake's URLs, writing `output`.
    fn sync_args(&self, output: &Path) -> Vec<String> {
        let mut args: Vec<String> = vec!["sync".into(), "--output".into(), output.display().to_string()];
        args.extend(self.connection_args());
        args
    }

    /// The credentials and URLs, as `connector-host sync` takes them.
    pub fn connection_args(&self) -> Vec<String> {
        self.fake.host_args()
    }

    /// Runs `connector-host sync` into `output` with `args` after the usual ones, logging into
    /// `logs` (a directory of its own per run). It blocks this worker thread, not the fake's.
    pub fn sync(&self, host: &HostCommand, output: &Path, logs: &Path, args: &[&str]) -> anyhow::Result<HostSync> {
        self.sync_until(host, output, logs, args, |_| false)
    }

    /// Like `sync`, but kills the host with SIGKILL once `kill_now` says so. It is asked every
    /// 10 ms, with a function that counts the requests of this run the fake has answered.
    pub fn sync_until(
        &self,
        host: &HostCommand,
        output: &Path,
        logs: &Path,
        args: &[&str],
        mut kill_now: impl FnMut(&dyn Fn() -> usize) -> bool,
    ) -> anyhow::Result<HostSync> {
        std::fs::create_dir_all(logs).with_context(|| format!("creating {}", logs.display()))?;
        let stats_path = logs.join("stats.json");
        let _ = std::fs::remove_file(&stats_path);
        let mut all_args = self.sync_args(output);
        all_args.extend(["--stats-json".to_owned(), stats_path.display().to_string()]);
        all_args.extend(host.extra_args.iter().cloned());
        all_args.extend(args.iter().map(|arg| (*arg).to_owned()));
        let first = self.request_count();
        let made_so_far = || self.request_count().saturating_sub(first);
        let outcome = tokio::task::block_in_place(|| {
            run_host(&host.binary, &all_args, logs, &host.cache_dir, || kill_now(&made_so_far))
        })?;
        if outcome.killed {
            // A request the host sent just before it died may still be in the fake's hands:
            // let it land in the log, so it counts for this run and not the next.
            std::thread::sleep(Duration::from_millis(100));
        }
        let stats = if outcome.success { Some(HostStats::read(&stats_path)?) } else { None };
        Ok(HostSync { outcome, requests: first..self.request_count(), stats, logs: logs.to_path_buf() })
    }

    /// The requests of a run, from the fake's log.
    pub fn requests_of(&self, run: &HostSync) -> Vec<LoggedRequest> {
        let mut log = self.fake.requests();
        log.truncate(run.requests.end);
        log.split_off(run.requests.start.min(log.len()))
    }
}

/// What the host wrote with `--stats-json`.
pub struct HostStats {
    /// `full`, `incremental` or `full (delta token expired)`.
    pub mode: String,
    /// True when the run continued an interrupted one from its checkpoint.
    pub resumed: bool,
    pub resource_units: u64,
    /// Objects written twice (kept once): a page re-read after a resume that had been written.
    pub duplicates: u64,
    pub calls: u64,
    pub instantiate: Duration,
    pub guest: Duration,
    pub sync_elapsed: Duration,
    /// The host's own `VmHWM` when it wrote its figures.
    pub peak_rss_bytes: Option<u64>,
}

impl HostStats {
    fn read(path: &Path) -> anyhow::Result<HostStats> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let stats: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("the host's figures in {} are not JSON", path.display()))?;
        let seconds = |value: &serde_json::Value| Duration::from_secs_f64(value.as_f64().unwrap_or(0.0));
        Ok(HostStats {
            mode: stats["mode"].as_str().unwrap_or("unknown").to_owned(),
            resumed: stats["resumed"].as_bool().unwrap_or(false),
            resource_units: stats["resource_units"].as_u64().unwrap_or(0),
            duplicates: stats["duplicates"].as_u64().unwrap_or(0),
            calls: stats["sandbox"]["calls"].as_u64().unwrap_or(0),
            instantiate: seconds(&stats["sandbox"]["instantiate_seconds"]),
            guest: seconds(&stats["sandbox"]["guest_seconds"]),
            sync_elapsed: seconds(&stats["elapsed_seconds"]),
            peak_rss_bytes: stats["peak_rss_bytes"].as_u64(),
        })
    }
}
