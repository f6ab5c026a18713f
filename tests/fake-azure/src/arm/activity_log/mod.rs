//! Azure Monitor's Activity Log, the change feed a connector reads for Azure RBAC: after a sync
//! it asks each subscription for the events since then, and re-reads only the subscriptions
//! whose role assignments, custom role definitions or resource groups changed.
//!
//! The log remembers the ARM state as it last saw it and, after each ARM write and each
//! [`crate::FakeAzure::mutate`], records the operations that differ (see [`operations`]). One
//! mechanism for both, and no route has to remember to log, as with Graph's audit log.
//!
//! Like Azure's, the log is late on purpose when a test asks ([`ActivityLog::set_latency`]): an
//! event is served only that long after it happened, with its original `eventTimestamp`.

pub mod endpoint;
mod events;
mod operations;

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::ids::{random_guid, whole_ticks};
use crate::model::Tenant;
use crate::server::lock;
use events::{Phase, Request, event_data};
use operations::ArmSnapshot;

pub struct ActivityLog {
    state: Mutex<LogState>,
}

struct LogState {
    seen: ArmSnapshot,
    /// In the order recorded; an event's index is its sequence number, which breaks ties
    /// between events of the same time and marks where a page ended.
    events: Vec<ActivityEvent>,
    latency: Duration,
}

struct ActivityEvent {
    /// Whole ticks, as printed in the body's `eventTimestamp`.
    at: SystemTime,
    /// As spelled in the tenant; `None` for events above every subscription.
    subscription_id: Option<String>,
    resource_group: Option<String>,
    provider: &'static str,
    body: Value,
}

/// Which events a listing asks for: one subscription's, between two times (both inclusive).
pub struct EventFilter {
    pub subscription_id: String,
    pub from: SystemTime,
    pub to: SystemTime,
    pub resource_provider: Option<String>,
    pub resource_group: Option<String>,
}

impl EventFilter {
    fn matches(&self, event: &ActivityEvent) -> bool {
        let is = |wanted: &str, actual: Option<&str>| actual.is_some_and(|actual| actual.eq_ignore_ascii_case(wanted));
        is(&self.subscription_id, event.subscription_id.as_deref())
            && (self.from..=self.to).contains(&event.at)
            && self.resource_provider.as_deref().is_none_or(|wanted| is(wanted, Some(event.provider)))
            && self.resource_group.as_deref().is_none_or(|wanted| is(wanted, event.resource_group.as_deref()))
    }
}

/// One page of events, newest first.
pub struct ActivityPage {
    pub events: Vec<Value>,
    /// Where the next page starts (the sequence number of this page's last event), if there is one.
    pub continue_after: Option<usize>,
}

impl ActivityLog {
    /// A log with no events that takes the tenant's ARM state as it is now.
    pub fn new(tenant: &Tenant) -> Self {
        let state = LogState { seen: ArmSnapshot::of(tenant), events: Vec::new(), latency: Duration::ZERO };
        ActivityLog { state: Mutex::new(state) }
    }

    pub fn set_latency(&self, latency: Duration) {
        lock(&self.state).latency = latency;
    }

    /// Records two events for every ARM operation since the last call. The caller holds the
    /// directory's lock, so a change made by a concurrent write is seen whole, and by exactly
    /// one call. `correlation_id` is the request's (ARM's `x-ms-correlation-request-id`).
    pub fn record_changes(&self, tenant: &Tenant, correlation_id: &str) {
        let mut state = lock(&self.state);
        let operations = state.seen.advance(tenant);
        if operations.is_empty() {
            return;
        }
        let request = Request {
            tenant_id: &tenant.tenant_id,
            caller: &tenant.client_id,
            correlation_id,
            at: whole_ticks(SystemTime::now()),
        };
        for operation in &operations {
            let operation_id = random_guid();
            for phase in [Phase::Begin, Phase::End] {
                state.events.push(ActivityEvent {
                    at: request.at,
                    subscription_id: operation.subscription_id.clone(),
                    resource_group: operation.resource_group.clone(),
                    provider: operation.kind.provider(),
                    body: event_data(operation, &operation_id, phase, &request),
                });
            }
        }
    }

    /// Up to `top` events newest first: those visible at `now` (older than the latency), that
    /// `filter` matches, and after the event `continue_after` when continuing a paging run.
    /// `None` when `continue_after` names no event.
    ///
    /// A page continues from an event, not an offset, so events recorded while a client pages
    /// do not shift the pages it has still to read.
    pub fn page(
        &self,
        now: SystemTime,
        filter: &EventFilter,
        continue_after: Option<usize>,
        top: usize,
    ) -> Option<ActivityPage> {
        let state = lock(&self.state);
        let resume_before = match continue_after {
            Some(sequence) => Some((state.events.get(sequence)?.at, sequence)),
            None => None,
        };
        let latency = state.latency;
        let visible =
            |event: &ActivityEvent| latency.is_zero() || now.duration_since(event.at).is_ok_and(|age| age >= latency);
        let mut keys: Vec<(SystemTime, usize)> = state
            .events
            .iter()
            .enumerate()
            .filter(|(_, event)| visible(event) && filter.matches(event))
            .map(|(sequence, event)| (event.at, sequence))
            .filter(|key| resume_before.is_none_or(|resume| *key < resume))
            .collect();
        keys.sort_unstable_by(|left, right| right.cmp(left));
        let more = keys.len() > top;
        keys.truncate(top);
        Some(ActivityPage {
            events: keys.iter().map(|(_, sequence)| state.events[*sequence].body.clone()).collect(),
            continue_after: if more { keys.last().map(|(_, sequence)| *sequence) } else { None },
        })
    }
}
