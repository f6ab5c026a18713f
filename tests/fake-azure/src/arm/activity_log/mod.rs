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

use crate::event_log::{EventLog, EventPage, LoggedEvent};
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
    log: EventLog<EventAbout>,
}

/// What a filter needs to know of an event.
struct EventAbout {
    /// As spelled in the tenant; `None` for events above every subscription.
    subscription_id: Option<String>,
    resource_group: Option<String>,
    provider: &'static str,
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
    fn matches(&self, event: &LoggedEvent<EventAbout>) -> bool {
        let is = |wanted: &str, actual: Option<&str>| actual.is_some_and(|actual| actual.eq_ignore_ascii_case(wanted));
        let about = &event.about;
        is(&self.subscription_id, about.subscription_id.as_deref())
            && (self.from..=self.to).contains(&event.at)
            && self.resource_provider.as_deref().is_none_or(|wanted| is(wanted, Some(about.provider)))
            && self.resource_group.as_deref().is_none_or(|wanted| is(wanted, about.resource_group.as_deref()))
    }
}

impl ActivityLog {
    /// A log with no events that takes the tenant's ARM state as it is now.
    pub fn new(tenant: &Tenant) -> Self {
        let state = LogState { seen: ArmSnapshot::of(tenant), log: EventLog::default() };
        ActivityLog { state: Mutex::new(state) }
    }

    pub fn set_latency(&self, latency: Duration) {
        lock(&self.state).log.set_latency(latency);
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
                state.log.record([LoggedEvent {
                    at: request.at,
                    about: EventAbout {
                        subscription_id: operation.subscription_id.clone(),
                        resource_group: operation.resource_group.clone(),
                        provider: operation.kind.provider(),
                    },
                    body: event_data(operation, &operation_id, phase, &request),
                }]);
            }
        }
    }

    /// Up to `top` events newest first that `filter` matches (see [`EventLog::page`]).
    pub fn page(
        &self,
        now: SystemTime,
        filter: &EventFilter,
        continue_after: Option<usize>,
        top: usize,
    ) -> Option<EventPage> {
        lock(&self.state).log.page(now, |event| filter.matches(event), continue_after, top)
    }
}
