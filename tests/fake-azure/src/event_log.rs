//! What the fake's two change logs share (Graph's directory audit log, `graph::audit_log`, and
//! ARM's Activity Log, `arm::activity_log`): events kept in the order recorded, served newest
//! first a page at a time, and late on purpose when a test asks, as Azure's logs are.

use std::time::{Duration, SystemTime};

use serde_json::Value;

/// One recorded event: when it happened (whole ticks, as its body prints it), what a filter
/// needs to know about it, and its JSON body.
pub struct LoggedEvent<About> {
    pub at: SystemTime,
    pub about: About,
    pub body: Value,
}

/// One page of events, newest first.
pub struct EventPage {
    pub events: Vec<Value>,
    /// Where the next page starts (the sequence number of this page's last event), if there is one.
    pub continue_after: Option<usize>,
}

pub struct EventLog<About> {
    /// In the order recorded; an event's index is its sequence number, which breaks ties
    /// between events of the same time and marks where a page ended.
    events: Vec<LoggedEvent<About>>,
    /// How long after it happened an event is served.
    latency: Duration,
}

impl<About> Default for EventLog<About> {
    fn default() -> Self {
        EventLog { events: Vec::new(), latency: Duration::ZERO }
    }
}

impl<About> EventLog<About> {
    pub fn record(&mut self, events: impl IntoIterator<Item = LoggedEvent<About>>) {
        self.events.extend(events);
    }

    pub fn set_latency(&mut self, latency: Duration) {
        self.latency = latency;
    }

    /// Up to `top` events newest first: those visible at `now` (older than the latency), that
    /// `matches`, and after the event `continue_after` when continuing a paging run. `None`
    /// when `continue_after` names no event.
    ///
    /// A page continues from an event, not an offset, so events recorded while a client pages
    /// do not shift the pages it has still to read.
    pub fn page(
        &self,
        now: SystemTime,
        matches: impl Fn(&LoggedEvent<About>) -> bool,
        continue_after: Option<usize>,
        top: usize,
    ) -> Option<EventPage> {
        let resume_before = match continue_after {
            Some(sequence) => Some((self.events.get(sequence)?.at, sequence)),
            None => None,
        };
        let latency = self.latency;
        let visible = |event: &LoggedEvent<About>| {
            latency.is_zero() || now.duration_since(event.at).is_ok_and(|age| age >= latency)
        };
        let mut keys: Vec<(SystemTime, usize)> = self
            .events
            .iter()
            .enumerate()
            .filter(|(_, event)| visible(event) && matches(event))
            .map(|(sequence, event)| (event.at, sequence))
            .filter(|key| resume_before.is_none_or(|resume| *key < resume))
            .collect();
        keys.sort_unstable_by(|left, right| right.cmp(left));
        let more = keys.len() > top;
        keys.truncate(top);
        Some(EventPage {
            events: keys.iter().map(|(_, sequence)| self.events[*sequence].body.clone()).collect(),
            continue_after: if more { keys.last().map(|(_, sequence)| *sequence) } else { None },
        })
    }
}
