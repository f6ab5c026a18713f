//! Everything that leaves the sandbox: the allow-list, the transport, retries, and the
//! gateway that puts them together with the tenant's credentials.

pub mod gateway;
pub mod log_budget;
pub mod pacing;
pub mod policy;
pub mod proxy;
pub mod resolver;
pub mod retry;
pub mod tls;
pub mod transport;

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one sync or provisioning run, read by progress display and summaries.
#[derive(Debug, Default)]
pub struct OutboundStats {
    requests: AtomicU64,
    throttled: AtomicU64,
    refused: AtomicU64,
    resource_units: AtomicU64,
}

impl OutboundStats {
    pub fn record_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_resource_units(&self, units: u64) {
        self.resource_units.fetch_add(units, Ordering::Relaxed);
    }

    pub fn record_refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests sent, including retries and token requests.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Answers that were 429.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    /// Resource units Azure charged (`x-ms-resource-unit`), summed.
    pub fn resource_units(&self) -> u64 {
        self.resource_units.load(Ordering::Relaxed)
    }

    /// Requests the host refused to send.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}
