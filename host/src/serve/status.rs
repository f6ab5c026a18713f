//! What the service knows about each tenant: its state, its last result, its counters. Read by
//! the operations API (status, metrics), written by the tenant's scheduler.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::outbound::OutboundStats;
use crate::sync::SyncSummary;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantState {
    /// Waiting for its next run.
    Scheduled,
    /// Due, waiting for a free sync slot.
    Queued,
    Running,
    /// The service is shutting down; no more syncs.
    Stopped,
}

#[derive(Clone, Debug, Serialize)]
pub struct GapView {
    pub subject: String,
    pub message: String,
    pub missing_permission: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SummaryView {
    pub resources: BTreeMap<String, u64>,
    pub entitlements: u64,
    pub grants: u64,
    pub gaps: Vec<GapView>,
    pub unsupported_principals: u64,
    pub requests: u64,
    pub throttled: u64,
    pub duplicates: u64,
}

impl SummaryView {
    fn of(summary: &SyncSummary) -> Self {
        SummaryView {
            resources: summary.resources.clone(),
            entitlements: summary.entitlements,
            grants: summary.grants,
            gaps: summary
                .gaps
                .iter()
                .map(|gap| GapView {
                    subject: gap.subject.clone(),
                    message: gap.message.clone(),
                    missing_permission: gap.missing_permission.clone(),
                })
                .collect(),
            unsupported_principals: summary.unsupported_principals,
            requests: summary.requests,
            throttled: summary.throttled,
            duplicates: summary.duplicates,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct SyncResultView {
    /// `success` or `failure`.
    pub outcome: &'static str,
    pub started_at: String,
    pub finished_at: String,
    pub duration_seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<SummaryView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ErrorView {
    pub at: String,
    pub message: String,
}

/// Upper bounds of the sync duration histogram, in seconds.
pub const DURATION_BUCKETS: [f64; 9] = [1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0];

/// Counters since the process started.
#[derive(Clone, Debug, Default)]
pub struct TenantCounters {
    pub syncs_succeeded: u64,
    pub syncs_failed: u64,
    /// Syncs whose duration fell at or below each of [`DURATION_BUCKETS`].
    pub duration_buckets: [u64; DURATION_BUCKETS.len()],
    pub duration_sum_seconds: f64,
    pub requests: u64,
    pub throttled: u64,
    pub refused: u64,
    pub gaps_last_success: u64,
    pub last_success: Option<SystemTime>,
    /// `(action, outcome)` → count, for grants and revokes.
    pub provisioning: BTreeMap<(&'static str, &'static str), u64>,
}

/// Everything recorded about one tenant.
#[derive(Debug)]
pub struct TenantRecord {
    pub state: TenantState,
    pub next_run: Option<SystemTime>,
    pub last_result: Option<SyncResultView>,
    pub last_error: Option<ErrorView>,
    pub counters: TenantCounters,
    /// The outbound counters of the sync running now, so metrics move during a long sync.
    pub running_stats: Option<Arc<OutboundStats>>,
}

impl TenantRecord {
    pub fn new() -> Self {
        TenantRecord {
            state: TenantState::Scheduled,
            next_run: None,
            last_result: None,
            last_error: None,
            counters: TenantCounters::default(),
            running_stats: None,
        }
    }

    /// Records a finished sync: its result, its counters, and clears the running state.
    pub fn finish_sync(
        &mut self,
        started: SystemTime,
        elapsed: Duration,
        stats: &OutboundStats,
        outcome: &anyhow::Result<SyncSummary>,
    ) {
        let finished = SystemTime::now();
        let seconds = elapsed.as_secs_f64();
        let counters = &mut self.counters;
        counters.requests += stats.requests();
        counters.throttled += stats.throttled();
        counters.refused += stats.refused();
        counters.duration_sum_seconds += seconds;
        for (count, bound) in counters.duration_buckets.iter_mut().zip(DURATION_BUCKETS) {
            if seconds <= bound {
                *count += 1;
            }
        }
        let mut result = SyncResultView {
            outcome: "success",
            started_at: rfc3339(started),
            finished_at: rfc3339(finished),
            duration_seconds: seconds,
            summary: None,
            error: None,
        };
        match outcome {
            Ok(summary) => {
                counters.syncs_succeeded += 1;
                counters.gaps_last_success = summary.gaps.len() as u64;
                counters.last_success = Some(finished);
                result.summary = Some(SummaryView::of(summary));
            }
            Err(error) => {
                counters.syncs_failed += 1;
                let message = format!("{error:#}");
                result.outcome = "failure";
                result.error = Some(message.clone());
                self.last_error = Some(ErrorView { at: rfc3339(finished), message });
            }
        }
        self.last_result = Some(result);
        self.running_stats = None;
    }

    /// Outbound counters including the sync running now.
    pub fn outbound_totals(&self) -> (u64, u64, u64) {
        let counters = &self.counters;
        match &self.running_stats {
            Some(live) => (
                counters.requests + live.requests(),
                counters.throttled + live.throttled(),
                counters.refused + live.refused(),
            ),
            None => (counters.requests, counters.throttled, counters.refused),
        }
    }
}

pub fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

/// A tenant's status as `GET /tenants/{id}` shows it.
#[derive(Serialize)]
pub struct TenantStatusView<'a> {
    pub id: &'a str,
    pub state: TenantState,
    pub provisioning: bool,
    pub sync_interval_seconds: u64,
    pub next_run: Option<String>,
    pub last_success_at: Option<String>,
    pub last_result: Option<&'a SyncResultView>,
    pub last_error: Option<&'a ErrorView>,
}
