//! When each tenant syncs: at its interval, or at once when asked, never more than the allowed
//! number of tenants at a time, and not at all once shutdown begins.
//!
//! The first run after a start comes one interval after the snapshot on disk was written, so a
//! restarted (or rescheduled) replica does not sync every tenant again at once.
//!
//! Each sync runs in a task of its own, supervised by the schedule: a panic in it (a bug, or a
//! value from upstream the code did not expect) ends that sync, not the schedule. The tenant
//! then shows the failure and is tried again after a backoff, and the other tenants never notice.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::anyhow;

use super::service::{Service, TenantSlot};
use super::status::TenantState;
use crate::outbound::OutboundStats;

/// The wait before the first retry of a tenant whose sync crashed; it doubles with each crash
/// in a row, up to the tenant's interval.
const FIRST_CRASH_BACKOFF: Duration = Duration::from_secs(60);

/// Runs one tenant's schedule until shutdown. A sync that has started is not interrupted by
/// shutdown: the caller bounds how long it waits for it.
pub async fn run_tenant(service: Arc<Service>, slot: Arc<TenantSlot>) {
    let mut shutdown = service.shutdown.subscribe();
    let mut next_run = first_run(&service, &slot);
    let mut crashes_in_a_row = 0u32;
    loop {
        {
            let mut record = slot.record();
            record.state = TenantState::Scheduled;
            record.next_run = Some(next_run);
        }
        let wait = next_run.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = slot.trigger.notified() => {}
            _ = shutdown.wait_for(|stopping| *stopping) => break,
        }
        slot.record().state = TenantState::Queued;
        let permit = tokio::select! {
            permit = service.sync_slots.clone().acquire_owned() => permit,
            _ = shutdown.wait_for(|stopping| *stopping) => break,
        };
        let Ok(_permit) = permit else { break };
        if service.is_shutting_down() {
            break;
        }
        slot.record().state = TenantState::Running;
        let started = (SystemTime::now(), Instant::now());
        let wait = match supervised_sync(&service, &slot).await {
            // The outcome is recorded by `sync` itself; the schedule goes on either way.
            Ok(()) => {
                crashes_in_a_row = 0;
                slot.config.sync_interval
            }
            Err(reason) => {
                crashes_in_a_row = crashes_in_a_row.saturating_add(1);
                let backoff = crash_backoff(crashes_in_a_row, slot.config.sync_interval);
                record_crash(&slot, started, &reason, backoff);
                backoff
            }
        };
        next_run = later(SystemTime::now(), wait);
    }
    let mut record = slot.record();
    record.state = TenantState::Stopped;
    record.next_run = None;
}

/// One sync of the tenant in a task of its own; `Err` with the panic's message if it panicked.
async fn supervised_sync(service: &Arc<Service>, slot: &Arc<TenantSlot>) -> Result<(), String> {
    let (service, slot) = (service.clone(), slot.clone());
    catch_panic(async move {
        // Its result is recorded in the tenant's status by `sync`.
        let _ = service.sync(&slot).await;
    })
    .await
}

/// Runs `work` in its own task and turns a panic in it into its message.
async fn catch_panic<F>(work: F) -> Result<F::Output, String>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(work).await.map_err(|error| {
        if error.is_panic() { panic_message(error.into_panic()) } else { "the task was cancelled".to_owned() }
    })
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => payload.downcast_ref::<&str>().map_or("a panic without a message", |text| text).to_owned(),
    }
}

/// Records a crashed sync as a failed one (status, `syncs_total{result="failure"}`), with the
/// outbound counters it had gathered, and logs it.
fn record_crash(slot: &TenantSlot, (started_at, started): (SystemTime, Instant), reason: &str, backoff: Duration) {
    let reason = crate::log_text::escaped(reason);
    let message = format!(
        "the sync stopped on an internal error ({reason}); the previous snapshot is kept and the sync is tried again in {}",
        humantime::format_duration(backoff)
    );
    tracing::error!(tenant = %slot.config.id, error = %message, "sync crashed");
    let mut record = slot.record();
    let stats = record.running_stats.take().unwrap_or_else(|| Arc::new(OutboundStats::default()));
    record.finish_sync(started_at, started.elapsed(), &stats, &Err(anyhow!(message)));
}

/// `FIRST_CRASH_BACKOFF` doubled for each crash in a row after the first, never past `interval`.
fn crash_backoff(crashes_in_a_row: u32, interval: Duration) -> Duration {
    let doublings = crashes_in_a_row.saturating_sub(1).min(16);
    FIRST_CRASH_BACKOFF.saturating_mul(1 << doublings).min(interval)
}

/// `time + by`, or a century later when that cannot be represented (an interval of ages in the
/// tenants file must not panic the schedule).
fn later(time: SystemTime, by: Duration) -> SystemTime {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    time.checked_add(by).or_else(|| time.checked_add(CENTURY)).unwrap_or(time)
}

/// One interval after the last snapshot was written, or now when there is none.
fn first_run(service: &Service, slot: &TenantSlot) -> SystemTime {
    let now = SystemTime::now();
    let written = std::fs::metadata(slot.snapshot_path(&service.data_dir)).and_then(|meta| meta.modified());
    match written {
        Ok(written) => later(written, slot.config.sync_interval).min(later(now, slot.config.sync_interval)),
        Err(_) => now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_in_the_supervised_work_becomes_its_message() {
        let outcome = catch_panic(async { panic!("x-ms-resource-unit overflowed") }).await;
        assert_eq!(outcome, Err::<(), _>("x-ms-resource-unit overflowed".to_owned()));
        let formatted = catch_panic(async { panic!("{} units", 7) }).await;
        assert_eq!(formatted, Err::<(), _>("7 units".to_owned()));
        assert_eq!(catch_panic(async { 42 }).await, Ok(42));
    }

    #[test]
    fn crash_backoff_doubles_from_a_minute_up_to_the_interval() {
        let hour = Duration::from_secs(3600);
        assert_eq!(crash_backoff(1, hour), Duration::from_secs(60));
        assert_eq!(crash_backoff(3, hour), Duration::from_secs(240));
        assert_eq!(crash_backoff(7, hour), hour);
        assert_eq!(crash_backoff(u32::MAX, hour), hour);
        assert_eq!(crash_backoff(1, Duration::from_secs(10)), Duration::from_secs(10));
    }

    #[test]
    fn a_crashed_sync_shows_as_a_failure_that_names_the_reason_and_the_retry() {
        let tenants_file = "[[tenant]]\nid = \"contoso\"\n[tenant.credentials]\nclient_id = \"a\"\ntenant_id = \"b\"\nclient_secret_env = \"S\"\n";
        let config = super::super::config::parse(tenants_file, std::path::Path::new("/")).unwrap().remove(0);
        let slot = TenantSlot {
            memory_budget: crate::memory_budget::TenantBudget::new(
                "tenant contoso",
                config.sandbox.memory_budget_bytes,
            ),
            config,
            record: std::sync::Mutex::new(super::super::status::TenantRecord::new()),
            trigger: tokio::sync::Notify::new(),
        };
        slot.record().running_stats = Some(Arc::new(OutboundStats::default()));
        record_crash(
            &slot,
            (SystemTime::now(), Instant::now()),
            "attempt to add with overflow\n",
            Duration::from_secs(60),
        );
        let record = slot.record();
        let result = record.last_result.as_ref().expect("a result");
        assert_eq!(result.outcome, "failure");
        let error = result.error.as_deref().unwrap_or_default();
        assert!(error.contains("internal error (attempt to add with overflow\\n)"), "{error}");
        assert!(error.contains("tried again in 1m"), "{error}");
        assert_eq!(record.counters.syncs_failed, 1);
        assert!(record.running_stats.is_none(), "the tenant no longer counts as running");
    }

    #[test]
    fn an_interval_too_long_to_add_does_not_panic() {
        let now = SystemTime::now();
        assert!(later(now, Duration::MAX) > now);
    }
}
