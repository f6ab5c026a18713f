//! Entra ID's directory audit log, for what Graph delta queries cannot report: a service
//! principal's owners and app-role assignments (`appRoleAssignedTo`), and its own creation,
//! deletion and profile changes. A connector reads it as a change feed.
//!
//! The log remembers every service principal as it last saw it and, after each Graph write
//! and each [`crate::FakeAzure::mutate`], records an event for every difference. One mechanism
//! for both, and no route has to remember to log. Comparing is cheap enough to do on every
//! write: only service principals are compared (a few thousand at most, even in a 100,000-user
//! tenant), and only those that changed are cloned.
//!
//! Like Entra's, the log is late on purpose when a test asks ([`AuditLog::set_latency`]): an
//! event is served only that long after it happened, with its original `activityDateTime`.

mod activities;
pub mod endpoint;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::directory::Directory;
use crate::event_log::{EventLog, EventPage, LoggedEvent};
use crate::ids::{random_guid, rfc3339_ticks, whole_ticks};
use crate::model::ServicePrincipal;
use crate::server::lock;

pub struct AuditLog {
    state: Mutex<LogState>,
}

struct LogState {
    /// Each service principal as the log last saw it, by id: what the next changes are measured from.
    seen: HashMap<String, ServicePrincipal>,
    log: EventLog<()>,
}

/// Bounds of `activityDateTime`, both inclusive, as `$filter` gives them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub from: Option<SystemTime>,
    pub to: Option<SystemTime>,
}

impl TimeRange {
    fn contains(&self, at: SystemTime) -> bool {
        self.from.is_none_or(|from| at >= from) && self.to.is_none_or(|to| at <= to)
    }
}

impl AuditLog {
    /// A log with no events that takes the directory's service principals as they are now.
    pub fn new(directory: &Directory) -> Self {
        let seen = directory.tenant.service_principals.iter().map(|sp| (sp.id.clone(), sp.clone())).collect();
        AuditLog { state: Mutex::new(LogState { seen, log: EventLog::default() }) }
    }

    pub fn set_latency(&self, latency: Duration) {
        lock(&self.state).log.set_latency(latency);
    }

    /// Records an event for every change to a service principal since the last call. The caller
    /// holds the directory's lock, so a change made by a concurrent write is seen whole, and
    /// by exactly one call.
    pub fn record_changes(&self, directory: &Directory) {
        let mut state = lock(&self.state);
        let current = &directory.tenant.service_principals;
        // (id, as last seen, as it is now) of each service principal that changed.
        type Changed<'a> = (&'a str, Option<&'a ServicePrincipal>, Option<&'a ServicePrincipal>);
        let mut changed: Vec<Changed> = current
            .iter()
            .filter_map(|sp| match state.seen.get(&sp.id) {
                Some(seen) if seen == sp => None,
                seen => Some((sp.id.as_str(), seen, Some(sp))),
            })
            .collect();
        let created = changed.iter().filter(|(_, before, _)| before.is_none()).count();
        // Every id is unique, so the count tells whether any service principal was deleted.
        if current.len() - created != state.seen.len() {
            let current_ids: HashSet<&str> = current.iter().map(|sp| sp.id.as_str()).collect();
            let deleted = state.seen.values().filter(|sp| !current_ids.contains(sp.id.as_str()));
            changed.extend(deleted.map(|sp| (sp.id.as_str(), Some(sp), None)));
        }
        if changed.is_empty() {
            return;
        }
        let activities: Vec<_> = changed
            .iter()
            .flat_map(|(_, before, after)| activities::service_principal_changes(*before, *after, directory))
            .collect();
        let updates: Vec<(String, Option<ServicePrincipal>)> =
            changed.into_iter().map(|(id, _, after)| (id.to_owned(), after.cloned())).collect();
        for (id, now) in updates {
            match now {
                Some(sp) => state.seen.insert(id, sp),
                None => state.seen.remove(&id),
            };
        }
        // Entra shares one correlation id among the events of one operation.
        let at = whole_ticks(SystemTime::now());
        let (printed_at, correlation_id) = (rfc3339_ticks(at), random_guid());
        let client_id = &directory.tenant.client_id;
        state.log.record(activities.into_iter().map(|activity| LoggedEvent {
            at,
            about: (),
            body: activity.into_event(&printed_at, &correlation_id, client_id),
        }));
    }

    /// Up to `top` events newest first within `range` (see [`EventLog::page`]).
    pub fn page(
        &self,
        now: SystemTime,
        range: TimeRange,
        continue_after: Option<usize>,
        top: usize,
    ) -> Option<EventPage> {
        lock(&self.state).log.page(now, |event| range.contains(event.at), continue_after, top)
    }
}
