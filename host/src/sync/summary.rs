//! What a sync did, printed at its end.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde_json::json;

use crate::sandbox::{CallTimes, Notice};

/// How a sync read the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Everything was listed.
    Full,
    /// The previous snapshot plus the changes since it (and what changes cannot tell, re-listed).
    Incremental,
    /// Everything was listed because the previous snapshot's delta token had expired.
    FullAfterExpiredToken,
    /// Everything was listed because the last full sync was older than `--full-sync-interval`.
    FullByInterval,
    /// Everything was listed because the output held a snapshot of another tenant, app
    /// registration or login endpoint.
    FullForAnotherIdentity,
}

impl SyncMode {
    pub fn name(self) -> &'static str {
        match self {
            SyncMode::Full => "full",
            SyncMode::Incremental => "incremental",
            SyncMode::FullAfterExpiredToken => "full (delta token expired)",
            SyncMode::FullByInterval => "full (last full sync older than --full-sync-interval)",
            SyncMode::FullForAnotherIdentity => "full (the output held another tenant's snapshot)",
        }
    }
}

#[derive(Debug)]
pub struct SyncSummary {
    pub mode: SyncMode,
    /// True when this run continued an interrupted one from its checkpoint.
    pub resumed: bool,
    /// Resources per resource type.
    pub resources: BTreeMap<String, u64>,
    pub entitlements: u64,
    pub grants: u64,
    /// Listings that could not be read: their results are missing from the snapshot.
    pub gaps: Vec<Notice>,
    /// Members or assignees that are not principals (devices, contacts, legacy apps).
    pub unsupported_principals: u64,
    pub requests: u64,
    pub throttled: u64,
    /// Resource units Azure charged (`x-ms-resource-unit`), summed.
    pub resource_units: u64,
    /// Where the sandbox calls' time went (this sync's share of the runtime's counters).
    pub sandbox: CallTimes,
    /// Objects listed more than once (kept once).
    pub duplicates: u64,
    pub elapsed: Duration,
}

impl SyncSummary {
    pub fn gap_lines(&self) -> Vec<String> {
        self.gaps
            .iter()
            .map(|gap| match &gap.missing_permission {
                Some(permission) => format!("{}: {} (needs {permission})", gap.subject, gap.message),
                None => format!("{}: {}", gap.subject, gap.message),
            })
            .collect()
    }

    /// The figures a benchmark or a monitoring job reads (`sync --stats-json`).
    pub fn stats_json(&self) -> serde_json::Value {
        json!({
            "mode": self.mode.name(),
            "resumed": self.resumed,
            "resources": self.resources,
            "entitlements": self.entitlements,
            "grants": self.grants,
            "gaps": self.gaps.len(),
            "unsupported_principals": self.unsupported_principals,
            "requests": self.requests,
            "throttled": self.throttled,
            "resource_units": self.resource_units,
            "duplicates": self.duplicates,
            "elapsed_seconds": self.elapsed.as_secs_f64(),
            "peak_rss_bytes": peak_rss_bytes(),
            "sandbox": {
                "calls": self.sandbox.calls,
                "instantiate_seconds": self.sandbox.instantiate.as_secs_f64(),
                "guest_seconds": self.sandbox.guest.as_secs_f64(),
                "gateway_wait_seconds": self.sandbox.gateway_wait.as_secs_f64(),
            },
        })
    }
}

/// The process's peak resident set so far (`VmHWM`), where Linux reports it.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

impl fmt::Display for SyncSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "sync:                      {}", self.mode.name())?;
        if self.resumed {
            writeln!(f, "resumed an interrupted sync from its checkpoint")?;
        }
        writeln!(f, "resources:")?;
        for (kind, count) in &self.resources {
            writeln!(f, "  {kind:<24} {count}")?;
        }
        writeln!(f, "entitlements:              {}", self.entitlements)?;
        writeln!(f, "grants:                    {}", self.grants)?;
        writeln!(f, "unsupported principals:    {}", self.unsupported_principals)?;
        writeln!(f, "gaps:                      {}", self.gaps.len())?;
        for line in self.gap_lines() {
            writeln!(f, "  - {line}")?;
        }
        writeln!(f, "requests:                  {} ({} throttled)", self.requests, self.throttled)?;
        if self.resource_units > 0 {
            writeln!(f, "resource units:            {}", self.resource_units)?;
        }
        writeln!(
            f,
            "sandbox calls:             {} ({:.2} s in the component, {:.2} s instantiating)",
            self.sandbox.calls,
            self.sandbox.guest.as_secs_f64(),
            self.sandbox.instantiate.as_secs_f64()
        )?;
        if self.duplicates > 0 {
            writeln!(f, "listed twice (kept once):  {}", self.duplicates)?;
        }
        write!(f, "time:                      {:.2} s", self.elapsed.as_secs_f64())
    }
}
