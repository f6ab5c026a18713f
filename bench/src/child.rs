//! The host as a child process, so its memory and CPU are measured apart from the fake Azure
//! that runs in this process.

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

fn seconds(time: libc::timeval) -> Duration {
    Duration::from_secs(u64::try_from(time.tv_sec).unwrap_or(0))
        + Duration::from_micros(u64::try_from(time.tv_usec).unwrap_or(0))
}

/// How the host process ended and what it used.
pub struct HostRun {
    pub success: bool,
    pub exit: String,
    pub wall: Duration,
    pub peak_rss_bytes: u64,
    pub user_cpu: Duration,
    pub system_cpu: Duration,
}

/// Runs `host args...` with stdout and stderr in files under `logs`, and waits for it with
/// `wait4`, which reports the child's own peak RSS and CPU time.
pub fn run_host(host: &Path, args: &[String], logs: &Path) -> anyhow::Result<HostRun> {
    let stdout = File::create(logs.join("host.stdout")).context("creating the host's stdout file")?;
    let stderr = File::create(logs.join("host.stderr")).context("creating the host's stderr file")?;
    let started = Instant::now();
    let child = Command::new(host)
        .args(args)
        .env_clear()
        .env("BATON_LOG_LEVEL", "warn")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("starting {} (build it with `cargo build --release`)", host.display()))?;
    let pid = libc::pid_t::try_from(child.id()).context("the child's pid does not fit pid_t")?;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet reaped (std's `Child` only reaps in `wait`, which
    // is never called); `status` and `usage` are valid for writes for the duration of the call.
    let reaped = loop {
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped >= 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            break reaped;
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
        exit,
        wall,
        // Linux reports ru_maxrss in KiB.
        peak_rss_bytes: u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
        user_cpu: seconds(usage.ru_utime),
        system_cpu: seconds(usage.ru_stime),
    })
}
