//! A budget of log lines, so a component cannot flood the operator's logs by making request
//! after request the gateway refuses (each refusal is cheap for it and a warning for us).
//!
//! Each gateway (one tenant's sync or change) may log `PER_WINDOW` failed requests per
//! `WINDOW`; the rest are counted, and the next line that is logged, or the gateway's end,
//! says how many were left out. The counters (`connector_host_refused_requests_total`) still
//! count every refusal.

use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
const PER_WINDOW: u32 = 20;

pub struct LogBudget {
    state: Mutex<Window>,
}

struct Window {
    started: Instant,
    logged: u32,
    /// Lines left out since the last one logged.
    suppressed: u64,
}

impl Default for LogBudget {
    fn default() -> Self {
        LogBudget { state: Mutex::new(Window { started: Instant::now(), logged: 0, suppressed: 0 }) }
    }
}

impl LogBudget {
    /// `Some(lines left out before this one)` when this line may be logged, `None` when not.
    pub fn admit(&self) -> Option<u64> {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Option<u64> {
        let mut window = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if now.saturating_duration_since(window.started) >= WINDOW {
            window.started = now;
            window.logged = 0;
        }
        if window.logged >= PER_WINDOW {
            window.suppressed += 1;
            return None;
        }
        window.logged += 1;
        Some(std::mem::take(&mut window.suppressed))
    }
}

impl Drop for LogBudget {
    fn drop(&mut self) {
        let suppressed = self.state.get_mut().map(|window| window.suppressed).unwrap_or(0);
        if suppressed > 0 {
            tracing::warn!(
                suppressed,
                "more outbound requests failed than were logged (at most {PER_WINDOW} a minute)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_budget_lines_are_counted_and_the_next_window_reports_them() {
        let budget = LogBudget::default();
        let start = Instant::now();
        for _ in 0..PER_WINDOW {
            assert_eq!(budget.admit_at(start), Some(0));
        }
        for _ in 0..5 {
            assert_eq!(budget.admit_at(start + Duration::from_secs(1)), None);
        }
        assert_eq!(budget.admit_at(start + WINDOW), Some(5), "the first line of the next window says 5 were left out");
        assert_eq!(budget.admit_at(start + WINDOW), Some(0));
    }
}
