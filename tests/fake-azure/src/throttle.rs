//! When Graph and ARM answer 429, and what each Graph request costs in resource units.
//!
//! Two kinds of throttling, which tests can combine: scripted (`throttle_every`: every nth
//! Graph/ARM request, with a fixed `Retry-After`), and Graph's own (`resource_unit_budget`): a
//! token bucket of resource units per app and tenant, as `shared/docs/azure-reference.md` §4
//! describes. The fake serves one app registration in one tenant, so it keeps one bucket. A
//! request the bucket cannot pay for is refused with a `Retry-After` that says when it could be
//! paid for; a refused request costs nothing. ARM requests are not charged.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::Method;

use crate::request::ApiRequest;
use crate::server::lock;

struct ThrottleSettings {
    every: u32,
    seen: u64,
    retry_after_secs: f64,
}

/// Graph's resource-unit bucket: `capacity` units, refilled continuously at `per_second`.
struct ResourceUnitBucket {
    capacity: f64,
    per_second: f64,
    units: f64,
    refilled_at: Instant,
}

impl ResourceUnitBucket {
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled_at).as_secs_f64();
        self.units = (self.units + elapsed * self.per_second).min(self.capacity);
        self.refilled_at = now;
    }
}

pub struct Throttle {
    settings: Mutex<ThrottleSettings>,
    bucket: Mutex<Option<ResourceUnitBucket>>,
    /// Resource units of the Graph requests admitted so far.
    spent: AtomicU64,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            settings: Mutex::new(ThrottleSettings { every: 0, seen: 0, retry_after_secs: 0.05 }),
            bucket: Mutex::new(None),
            spent: AtomicU64::new(0),
        }
    }
}

impl Throttle {
    /// 0 turns throttling off; otherwise every `n`th admitted Graph/ARM request is refused.
    pub fn set_every(&self, n: u32) {
        let mut settings = lock(&self.settings);
        settings.every = n;
        settings.seen = 0;
    }

    pub fn set_retry_after(&self, secs: f64) {
        lock(&self.settings).retry_after_secs = secs;
    }

    /// Enforces `units` resource units per `window` on Graph, starting with a full bucket;
    /// 0 units turns the budget off.
    pub fn set_resource_unit_budget(&self, units: u32, window: Duration) {
        let bucket = (units > 0 && !window.is_zero()).then(|| ResourceUnitBucket {
            capacity: f64::from(units),
            per_second: f64::from(units) / window.as_secs_f64(),
            units: f64::from(units),
            refilled_at: Instant::now(),
        });
        *lock(&self.bucket) = bucket;
    }

    /// Counts the request; `Some(Retry-After value)` when it must be answered with 429.
    /// `graph_units` is the cost of a Graph request, `None` for ARM.
    pub fn should_throttle(&self, graph_units: Option<u32>) -> Option<String> {
        if let Some(retry_after) = self.scripted() {
            return Some(retry_after);
        }
        let units = graph_units?;
        let mut bucket = lock(&self.bucket);
        if let Some(bucket) = bucket.as_mut() {
            bucket.refill(Instant::now());
            let cost = f64::from(units);
            if bucket.units < cost {
                let wait = (cost - bucket.units) / bucket.per_second;
                return Some(format_retry_after((wait * 1000.0).ceil().max(1.0) / 1000.0));
            }
            bucket.units -= cost;
        }
        self.spent.fetch_add(u64::from(units), Ordering::Relaxed);
        None
    }

    fn scripted(&self) -> Option<String> {
        let mut settings = lock(&self.settings);
        if settings.every == 0 {
            return None;
        }
        settings.seen += 1;
        settings.seen.is_multiple_of(u64::from(settings.every)).then(|| format_retry_after(settings.retry_after_secs))
    }

    /// The share of the budget in use, as Graph reports it in `x-ms-throttle-limit-percentage`
    /// once more than 80% is used (e.g. `0.9`); `None` below that or without a budget.
    pub fn limit_percentage(&self) -> Option<String> {
        let mut bucket = lock(&self.bucket);
        let bucket = bucket.as_mut()?;
        bucket.refill(Instant::now());
        let used = 1.0 - bucket.units / bucket.capacity;
        (used > 0.8).then(|| format!("{used:.1}"))
    }

    /// Resource units charged to the Graph requests admitted so far.
    pub fn resource_units_spent(&self) -> u64 {
        self.spent.load(Ordering::Relaxed)
    }
}

/// Graph sends fractional seconds (`2.128`); whole numbers stay whole.
fn format_retry_after(secs: f64) -> String {
    let text = format!("{secs:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The resource-unit cost of a Graph request as received (`/v1.0/...`).
pub fn request_units(request: &ApiRequest) -> u32 {
    let query = &request.query;
    let top = query.get("$top").and_then(|top| top.trim().parse().ok());
    let resource = request.segments.get(1..).unwrap_or_default();
    graph_resource_units(&request.method, resource, query.get("$select").is_some(), query.get("$expand").is_some(), top)
}

/// The resource-unit cost of a Graph request (identity and access service, per the throttling doc):
/// `GET users` 2, `GET groups/{id}/members` 3, `transitiveMembers` 5, other requests 1;
/// `$select` −1, `$expand` +1, `$top` below 20 −1; never below 1.
pub fn graph_resource_units(
    method: &Method,
    resource_segments: &[String],
    has_select: bool,
    has_expand: bool,
    top: Option<usize>,
) -> u32 {
    let base: i32 = if method != Method::GET {
        1
    } else {
        match resource_segments {
            [users] if users.eq_ignore_ascii_case("users") => 2,
            [groups, _, members, ..]
                if groups.eq_ignore_ascii_case("groups") && members.eq_ignore_ascii_case("members") =>
            {
                3
            }
            [groups, _, transitive, ..]
                if groups.eq_ignore_ascii_case("groups") && transitive.eq_ignore_ascii_case("transitiveMembers") =>
            {
                5
            }
            _ => 1,
        }
    };
    let modifiers = -i32::from(has_select) + i32::from(has_expand) - i32::from(top.is_some_and(|top| top < 20));
    u32::try_from((base + modifiers).max(1)).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(path: &str) -> Vec<String> {
        path.split('/').map(str::to_owned).collect()
    }

    #[test]
    fn resource_units_follow_the_documented_costs() {
        assert_eq!(graph_resource_units(&Method::GET, &segments("users"), false, false, None), 2);
        assert_eq!(graph_resource_units(&Method::GET, &segments("users"), true, false, Some(999)), 1);
        assert_eq!(graph_resource_units(&Method::GET, &segments("groups/g/members"), true, false, None), 2);
        assert_eq!(graph_resource_units(&Method::GET, &segments("organization"), true, false, Some(5)), 1);
    }

    #[test]
    fn every_second_request_is_throttled_with_fractional_retry_after() {
        let throttle = Throttle::default();
        throttle.set_every(2);
        assert_eq!(throttle.should_throttle(Some(1)), None);
        assert_eq!(throttle.should_throttle(Some(1)).as_deref(), Some("0.05"));
    }

    #[test]
    fn an_empty_bucket_refuses_until_the_cost_has_been_refilled() {
        let throttle = Throttle::default();
        throttle.set_resource_unit_budget(10, Duration::from_secs(10));
        assert_eq!(throttle.should_throttle(Some(4)), None);
        assert_eq!(throttle.should_throttle(Some(4)), None);
        let retry_after: f64 = throttle.should_throttle(Some(4)).expect("2 units left, 4 needed").parse().unwrap();
        assert!((1.9..=2.0).contains(&retry_after), "2 missing units at 1 unit/s: {retry_after}");
        assert_eq!(throttle.resource_units_spent(), 8, "the refused request cost nothing");
    }

    #[test]
    fn arm_requests_are_not_charged() {
        let throttle = Throttle::default();
        throttle.set_resource_unit_budget(1, Duration::from_secs(10));
        assert_eq!(throttle.should_throttle(None), None);
        assert_eq!(throttle.should_throttle(Some(1)), None);
        assert!(throttle.should_throttle(Some(1)).is_some());
        assert_eq!(throttle.limit_percentage().as_deref(), Some("1.0"));
    }
}
