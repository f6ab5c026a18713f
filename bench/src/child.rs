//! The host as a child process, so its memory and CPU are measured apart from the fake Azure
//! that runs in this process.
//!
//! Peak memory is read from the child's `VmHWM` while it runs, not from `wait4`'s `ru_maxrss`:
//! the kernel folds the parent's resident set at the moment of `fork`/`vfork` into the child's
//! `ru_maxrss`, and this process holds the whole generated tenant.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// CPU time of this process (user and system), where the fake Azure runs.
pub fn own_cpu_time() -> Duration {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct, and getrusage only
    // writes into the one we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// `VmHWM` of `/proc/<pid>/status`, in bytes; `None` once the process is gone.
fn high_water_mark(status_file: &str) -> Option<u64> {
    let status = std::fs::read_to_string(status_file).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

fn seconds(time: libc::timeval) -> Duration {
    Duration::from_secs(u64::try_from(time.tv_sec).unwrap_or(0))
        + Duration::from_micros(u64::try_from(time.tv_usec).unwrap_or(0))
}

/// How the host process ended and what it used.
pub struct HostRun {
    pub success: bool,
    /// True when `kill_now` had it killed.
    pub killed: bool,
    pub exit: String,
    pub wall: Duration,
    /// The highest `VmHWM` seen while polling (every 10 ms).
    pub peak_rss_bytes: u64,
    pub user_cpu: Duration,
    pub system_cpu: Duration,
}

/// Runs `host args...` with stdout and stderr in files under `logs`, polling its peak RSS, and
/// reaps it with `wait4`, which reports its CPU time. At every poll (every 10 ms) it asks
/// `kill_now`, and kills the host with SIGKILL, as an OOM killer or a lost node would, the
/// first time it answers true.
pub fn run_host(
    host: &Path,
    args: &[String],
    logs: &Path,
    cache_dir: &Path,
    mut kill_now: impl FnMut() -> bool,
) -> anyhow::Result<HostRun> {
    let stdout = File::create(logs.join("host.stdout")).context("creating the host's stdout file")?;
    let stderr = File::create(logs.join("host.stderr")).context("creating the host's stderr file")?;
    let started = Instant::now();
    let child = Command::new(host)
        .args(args)
        .env_clear()
        .env("BATON_LOG_LEVEL", "warn")
        .env("CONNECTOR_HOST_CACHE_DIR", cache_dir)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("starting {} (build it with `cargo build --release`)", host.display()))?;
    let pid = libc::pid_t::try_from(child.id()).context("the child's pid does not fit pid_t")?;
    let status_file = format!("/proc/{pid}/status");
    let mut peak_rss_bytes = 0;
    let mut killed = false;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = loop {
        if let Some(peak) = high_water_mark(&status_file) {
            peak_rss_bytes = peak_rss_bytes.max(peak);
        }
        // SAFETY: `pid` is our own child, not yet reaped (std's `Child` only reaps in `wait`,
        // which is never called); `status` and `usage` are valid for writes during the call.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        match reaped {
            0 if !killed && kill_now() => {
                // SAFETY: `pid` is our own child and not yet reaped, so it cannot name another process.
                if unsafe { libc::kill(pid, libc::SIGKILL) } != 0 {
                    anyhow::bail!("killing the host (pid {pid}) failed: {}", std::io::Error::last_os_error());
                }
                killed = true;
            }
            0 => std::thread::sleep(Duration::from_millis(10)),
            reaped if reaped > 0 => break reaped,
            _ if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
            failed => break failed,
        }
    };
    let wall = started.elapsed();
    if reaped != pid {
        anyhow::bail!("wait4 on the host failed: {}", std::io::Error::last_os_error());
    }
    let success = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    let exit = if libc::WIFEXITED(status) {
        format!("exit code {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("signal {}", libc::WTERMSIG(status))
    } else {
        format!("status {status}")
    };
    Ok(HostRun {
        success,
        killed,
        exit,
        wall,
        peak_rss_bytes,
        user_cpu: seconds(usage.ru_utime),
        system_cpu: seconds(usage.ru_stime),
    })
}
