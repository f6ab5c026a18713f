//! When Graph and ARM answer 429, and what each Graph request costs in resource units.
//!
//! Today throttling is scripted (`throttle_every`); a resource-unit token bucket can replace
//! `Throttle::should_throttle` without touching the services, which only ask this module.

use std::sync::Mutex;

use axum::http::Method;

use crate::server::lock;

struct ThrottleSettings {
    every: u32,
    seen: u64,
    retry_after_secs: f64,
}

pub struct Throttle {
    settings: Mutex<ThrottleSettings>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle { settings: Mutex::new(ThrottleSettings { every: 0, seen: 0, retry_after_secs: 0.05 }) }
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

    /// Counts the request; `Some(Retry-After value)` when it must be answered with 429.
    pub fn should_throttle(&self) -> Option<String> {
        let mut settings = lock(&self.settings);
        if settings.every == 0 {
            return None;
        }
        settings.seen += 1;
        settings.seen.is_multiple_of(u64::from(settings.every)).then(|| format_retry_after(settings.retry_after_secs))
    }
}

/// Graph sends fractional seconds (`2.128`); whole numbers stay whole.
fn format_retry_after(secs: f64) -> String {
    let text = format!("{secs:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
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
        assert_eq!(throttle.should_throttle(), None);
        assert_eq!(throttle.should_throttle().as_deref(), Some("0.05"));
    }
}
