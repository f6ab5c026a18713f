//! Pacing: a throttling budget is something to spend evenly, not a wall to run into.
//!
//! Graph charges every request resource units from a token bucket per app and tenant (3,500 to
//! 8,000 units per 10 s, by tenant size) and says what each answer cost in `x-ms-resource-unit`;
//! when the bucket is empty it answers 429 with a `Retry-After`. ARM throttles too, per request.
//! Neither advertises its refill rate, so the pacer learns it, per origin of one gateway (one
//! app in one tenant):
//!
//! - Until the first 429 nothing is paced: the bucket starts full, and a sync that never
//!   empties it never waits.
//! - A 429 holds every request to that origin until its `Retry-After` (no herd of retries), and
//!   means Azure's bucket is empty. Between two 429s at least a second apart, the bucket went
//!   from empty to empty, so the units spent in between, divided by the time, is its refill
//!   rate. Until such a measurement exists the first estimate is units spent ÷ time since the
//!   start (too high: it includes the initial full bucket), and 429s that follow each other
//!   quickly cut the estimate by 15%.
//! - From then on requests leave at the learned rate, each reserving the average cost seen so
//!   far, corrected by its real cost when the answer comes. While requests wait for budget the
//!   rate creeps up (1% per second), so a low estimate is corrected by the next 429.
//! - `x-ms-throttle-limit-percentage` (sent once more than 80% of the budget is used) caps the
//!   units we believe are left.
//!
//! Every number taken from an answer is clamped before it is used (a request costs at most
//! `MAX_UNITS_PER_REQUEST`, a hold lasts at most `MAX_HOLD`), and every wait is computed with
//! checked conversions: a hostile or broken upstream can slow its own tenant down, never make
//! the host panic.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderMap, StatusCode, Uri};

use super::OutboundStats;
use super::retry::{LONGEST_RETRY_AFTER, retry_after};

/// Graph's resource units refill over a window of 10 s; a bucket holds one window's worth.
const WINDOW: Duration = Duration::from_secs(10);
/// Measurements over shorter intervals are too coarse (a few requests' worth of units).
const MIN_MEASUREMENT: Duration = Duration::from_secs(1);
const CUT_ON_QUICK_THROTTLE: f64 = 0.85;
const PROBE_PER_SECOND: f64 = 0.01;
/// The smallest Graph budget Microsoft documents for identity and access: 3,500 units per 10 s.
/// Graph's rate is never estimated below it; origins that do not charge resource units (ARM)
/// count requests and may go down to `MIN_REQUEST_RATE`.
const MIN_GRAPH_RATE: f64 = 350.0;
const MIN_REQUEST_RATE: f64 = 5.0;
/// A throttled answer without `Retry-After` holds the origin this long.
const DEFAULT_HOLD: Duration = Duration::from_secs(1);
/// The most one answer may say it cost. Graph's documented costs are 1 to 5 units (a few more
/// with `$expand`); anything far above is not a cost but a broken or hostile value.
pub const MAX_UNITS_PER_REQUEST: f64 = 1_000.0;
/// The longest a throttled answer holds an origin: the retry policy gives up on answers that
/// ask for longer, so holding the other requests for them would only delay the same outcome.
const MAX_HOLD: Duration = LONGEST_RETRY_AFTER;
/// The longest one request waits for budget before it is let through anyway.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// No rate is believed above this (units per second): far above any Azure budget, and small
/// enough that a window's capacity stays finite.
const MAX_RATE: f64 = 1.0e6;

/// The budgets of one app in one tenant, one per origin.
pub struct Pacer {
    budgets: Mutex<HashMap<String, Budget>>,
    stats: Arc<OutboundStats>,
}

impl Pacer {
    pub fn new(stats: Arc<OutboundStats>) -> Self {
        Pacer { budgets: Mutex::new(HashMap::new()), stats }
    }

    /// Waits until a request to `uri` fits the budget of its origin, and reserves its cost.
    pub async fn admit(&self, uri: &Uri) {
        let origin = origin_of(uri);
        loop {
            let wait = match self.budgets.lock() {
                Ok(mut budgets) => budgets.entry(origin.clone()).or_insert_with(Budget::new).reserve(Instant::now()),
                // A panic elsewhere must not stop requests: pacing is an optimisation.
                Err(_) => None,
            };
            match wait {
                None => return,
                Some(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Learns from an answer to a request to `uri` (every attempt, throttled ones included).
    pub fn observe(&self, uri: &Uri, status: StatusCode, headers: &HeaderMap) {
        let charged = header_number(headers, "x-ms-resource-unit").map(|units| units.min(MAX_UNITS_PER_REQUEST));
        if let Some(units) = charged.filter(|_| status != StatusCode::TOO_MANY_REQUESTS) {
            self.stats.record_resource_units(units as u64);
        }
        let Ok(mut budgets) = self.budgets.lock() else { return };
        let budget = budgets.entry(origin_of(uri)).or_insert_with(Budget::new);
        let now = Instant::now();
        if status == StatusCode::TOO_MANY_REQUESTS {
            // A wait longer than the host honours ends that request (see `retry`); the others
            // are held as briefly as for an answer that names no wait.
            let hold = retry_after(headers).filter(|wait| *wait <= MAX_HOLD).unwrap_or(DEFAULT_HOLD);
            budget.throttled(now, hold);
        } else {
            budget.answered(now, charged, header_number(headers, "x-ms-throttle-limit-percentage"));
        }
    }
}

#[derive(Clone, Copy)]
struct Throttled {
    at: Instant,
    /// Units spent up to then.
    spent: f64,
    /// Whether our bucket was full at some point since: Azure's may have overflowed, so units
    /// spent since then understate its rate.
    overflowed: bool,
}

struct Budget {
    /// Whether Azure charges resource units here (Graph) or we count requests (ARM).
    charges_units: bool,
    /// Units per request: a running average of `x-ms-resource-unit` (1 where Azure says nothing).
    cost: f64,
    /// Units per second; `None` until the first 429.
    rate: Option<f64>,
    /// Units we believe Azure's bucket holds, as of `level_at`; reservations take from it.
    level: f64,
    level_at: Instant,
    /// No request leaves before this (Azure's `Retry-After`).
    blocked_until: Option<Instant>,
    spent: f64,
    started: Instant,
    last_throttle: Option<Throttled>,
    probed_at: Instant,
}

impl Budget {
    fn new() -> Self {
        let now = Instant::now();
        Budget {
            charges_units: false,
            cost: 1.0,
            rate: None,
            level: 0.0,
            level_at: now,
            blocked_until: None,
            spent: 0.0,
            started: now,
            last_throttle: None,
            probed_at: now,
        }
    }

    fn capacity(rate: f64) -> f64 {
        rate * WINDOW.as_secs_f64()
    }

    fn refill(&mut self, now: Instant, rate: f64) {
        if now <= self.level_at {
            return;
        }
        let refilled = self.level + rate * (now - self.level_at).as_secs_f64();
        if refilled >= Self::capacity(rate) {
            self.level = Self::capacity(rate);
            if let Some(last) = self.last_throttle.as_mut() {
                last.overflowed = true;
            }
        } else {
            self.level = refilled;
        }
        self.level_at = now;
    }

    /// `None` when a request may leave now (its cost reserved), else how long to wait first.
    fn reserve(&mut self, now: Instant) -> Option<Duration> {
        if let Some(until) = self.blocked_until {
            if now < until {
                return Some(until - now);
            }
            self.blocked_until = None;
        }
        // Until Azure has throttled, nothing waits.
        let rate = self.rate?;
        self.refill(now, rate);
        if self.level >= self.cost {
            self.level -= self.cost;
            self.probed_at = now;
            return None;
        }
        // The budget, not demand, limits us now: probe for a higher rate.
        let probed = (rate * (1.0 + PROBE_PER_SECOND * (now - self.probed_at).as_secs_f64())).min(MAX_RATE);
        self.probed_at = now;
        self.rate = Some(probed);
        Some(wait_for(self.cost - self.level, probed))
    }

    fn answered(&mut self, now: Instant, charged: Option<f64>, used_share: Option<f64>) {
        let units = charged.unwrap_or(1.0);
        self.charges_units |= charged.is_some();
        self.spent += units;
        if let Some(rate) = self.rate {
            // The reservation took the average cost; settle the difference.
            self.refill(now, rate);
            self.level -= units - self.cost;
            if let Some(used) = used_share {
                self.level = self.level.min((1.0 - used).max(0.0) * Self::capacity(rate));
            }
        }
        self.cost = 0.9 * self.cost + 0.1 * units;
    }

    fn throttled(&mut self, now: Instant, hold: Duration) {
        let until = later(now, hold.min(MAX_HOLD));
        self.blocked_until = Some(self.blocked_until.map_or(until, |blocked| blocked.max(until)));
        // Azure's bucket is empty: ours is too, and refills once the hold is over.
        self.level = 0.0;
        self.level_at = until;
        let floor = if self.charges_units { MIN_GRAPH_RATE } else { MIN_REQUEST_RATE };
        let estimate = match (self.rate, self.last_throttle) {
            (None, _) | (_, None) => {
                self.last_throttle = Some(Throttled { at: now, spent: self.spent, overflowed: false });
                self.spent / (now - self.started).as_secs_f64().max(MIN_MEASUREMENT.as_secs_f64())
            }
            (Some(rate), Some(last)) if now - last.at < MIN_MEASUREMENT => rate * CUT_ON_QUICK_THROTTLE,
            (Some(rate), Some(last)) => {
                let measured = (self.spent - last.spent) / (now - last.at).as_secs_f64();
                self.last_throttle = Some(Throttled { at: now, spent: self.spent, overflowed: false });
                if last.overflowed { rate.max(measured) } else { measured }
            }
        };
        self.rate = Some(estimate.clamp(floor, MAX_RATE));
        self.probed_at = until;
    }
}

/// How long `missing` units take at `rate` units per second, between 1 ms and `MAX_WAIT`
/// (whatever the numbers: the conversion to a `Duration` is never asked to overflow).
fn wait_for(missing: f64, rate: f64) -> Duration {
    let seconds = missing / rate;
    if seconds.is_nan() {
        return MAX_WAIT;
    }
    Duration::from_secs_f64(seconds.clamp(0.001, MAX_WAIT.as_secs_f64()))
}

/// `now + by`; `now` itself in the (theoretical) case the clock cannot represent it.
fn later(now: Instant, by: Duration) -> Instant {
    now.checked_add(by).unwrap_or(now)
}

fn origin_of(uri: &Uri) -> String {
    format!("{}://{}", uri.scheme_str().unwrap_or("https"), uri.authority().map_or("", |authority| authority.as_str()))
}

fn header_number(headers: &HeaderMap, name: &str) -> Option<f64> {
    headers.get(name)?.to_str().ok()?.trim().parse::<f64>().ok().filter(|value| value.is_finite() && *value >= 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(budget: &mut Budget, at: Instant, units: f64) {
        budget.answered(at, Some(units), None);
    }

    #[test]
    fn nothing_is_paced_before_the_first_throttled_answer() {
        let mut budget = Budget::new();
        let now = Instant::now();
        for _ in 0..10_000 {
            assert_eq!(budget.reserve(now), None);
            answer(&mut budget, now, 2.0);
        }
    }

    #[test]
    fn a_throttled_answer_holds_every_request_until_retry_after() {
        let mut budget = Budget::new();
        let now = Instant::now();
        budget.throttled(now, Duration::from_millis(500));
        let wait = budget.reserve(now + Duration::from_millis(100)).expect("held");
        assert_eq!(wait, Duration::from_millis(400));
    }

    #[test]
    fn the_rate_between_two_throttled_answers_is_learned_exactly() {
        let mut budget = Budget::new();
        let start = budget.started;
        answer(&mut budget, start, 2.0);
        budget.throttled(start + Duration::from_secs(1), Duration::from_millis(1));
        // 800 units per second for 5 s, every request answered, then throttled again.
        for tenth in 1..=50 {
            answer(&mut budget, start + Duration::from_millis(1000 + tenth * 100), 80.0);
        }
        budget.throttled(start + Duration::from_secs(6), Duration::from_millis(1));
        let rate = budget.rate.expect("learned");
        assert!((rate - 800.0).abs() < 1.0, "{rate}");
    }

    #[test]
    fn paced_requests_leave_at_the_learned_rate() {
        let mut budget = Budget::new();
        let now = Instant::now();
        budget.charges_units = true;
        budget.rate = Some(1_000.0);
        budget.cost = 2.0;
        budget.throttled(now, Duration::ZERO);
        budget.rate = Some(1_000.0);
        let later = now + Duration::from_millis(10);
        let admitted = (0..100).filter(|_| budget.reserve(later).is_none()).count();
        assert_eq!(admitted, 5, "10 ms at 1,000 units/s pay for five requests of 2 units");
    }

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, value.parse().unwrap());
        headers
    }

    #[test]
    fn a_huge_resource_unit_cost_is_clamped_and_the_wait_it_causes_is_bounded() {
        let pacer = Pacer::new(Arc::new(OutboundStats::default()));
        let uri: Uri = "https://graph.example/v1.0/users".parse().unwrap();
        pacer.observe(&uri, StatusCode::OK, &headers("x-ms-resource-unit", "1"));
        pacer.observe(&uri, StatusCode::TOO_MANY_REQUESTS, &headers("retry-after", "0"));
        pacer.observe(&uri, StatusCode::OK, &headers("x-ms-resource-unit", "1e308"));
        let mut budgets = pacer.budgets.lock().unwrap();
        let budget = budgets.get_mut("https://graph.example").expect("a budget");
        assert!(budget.cost <= MAX_UNITS_PER_REQUEST, "cost {}", budget.cost);
        let wait = budget.reserve(Instant::now()).expect("the budget is spent: the request waits");
        assert!(wait <= MAX_WAIT, "{wait:?}");
    }

    #[test]
    fn a_hold_longer_than_the_longest_is_cut_to_it() {
        let mut budget = Budget::new();
        let now = Instant::now();
        budget.throttled(now, Duration::MAX);
        assert_eq!(budget.reserve(now), Some(MAX_HOLD));
    }

    #[test]
    fn a_retry_after_the_host_does_not_honour_holds_the_origin_only_briefly() {
        let pacer = Pacer::new(Arc::new(OutboundStats::default()));
        let uri: Uri = "https://graph.example/v1.0/users".parse().unwrap();
        pacer.observe(&uri, StatusCode::TOO_MANY_REQUESTS, &headers("retry-after", "1e300"));
        let mut budgets = pacer.budgets.lock().unwrap();
        let wait = budgets.get_mut("https://graph.example").expect("a budget").reserve(Instant::now());
        assert!(wait.is_some_and(|wait| wait <= DEFAULT_HOLD), "{wait:?}");
    }

    #[test]
    fn waits_are_bounded_whatever_the_arithmetic_gives() {
        assert_eq!(wait_for(f64::INFINITY, 1.0), MAX_WAIT);
        assert_eq!(wait_for(1.0, 0.0), MAX_WAIT);
        assert_eq!(wait_for(f64::NAN, 1.0), MAX_WAIT);
        assert_eq!(wait_for(-5.0, 1.0), Duration::from_millis(1));
        assert_eq!(wait_for(2.0, 1.0), Duration::from_secs(2));
    }

    #[test]
    fn quick_successive_throttles_slow_down_but_never_below_graphs_smallest_budget() {
        let mut budget = Budget::new();
        budget.charges_units = true;
        let now = Instant::now();
        budget.spent = 100_000.0;
        budget.throttled(now, Duration::ZERO);
        for step in 1..100 {
            budget.throttled(now + Duration::from_millis(step), Duration::ZERO);
        }
        assert_eq!(budget.rate, Some(MIN_GRAPH_RATE));
    }
}
