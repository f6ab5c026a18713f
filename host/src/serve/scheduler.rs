//! When each tenant syncs: at its interval, or at once when asked, never more than the allowed
//! number of tenants at a time, and not at all once shutdown begins.
//!
//! The first run after a start comes one interval after the snapshot on disk was written, so a
//! restarted (or rescheduled) replica does not sync every tenant again at once.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::service::{Service, TenantSlot};
use super::status::TenantState;

/// Runs one tenant's schedule until shutdown. A sync that has started is not interrupted by
/// shutdown: the caller bounds how long it waits for it.
pub async fn run_tenant(service: Arc<Service>, slot: Arc<TenantSlot>) {
    let mut shutdown = service.shutdown.subscribe();
    let mut next_run = first_run(&service, &slot);
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
        // The outcome is recorded by `sync` itself; the schedule goes on either way.
        let _ = service.sync(&slot).await;
        next_run = SystemTime::now() + slot.config.sync_interval;
    }
    let mut record = slot.record();
    record.state = TenantState::Stopped;
    record.next_run = None;
}

/// One interval after the last snapshot was written, or now when there is none.
fn first_run(service: &Service, slot: &TenantSlot) -> SystemTime {
    let now = SystemTime::now();
    let written = std::fs::metadata(slot.snapshot_path(&service.data_dir)).and_then(|meta| meta.modified());
    match written {
        Ok(written) => (written + slot.config.sync_interval).min(now + slot.config.sync_interval),
        Err(_) => now,
    }
}
