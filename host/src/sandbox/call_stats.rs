//! Where the time of a runtime's calls goes: instantiating, running the guest, and waiting on
//! the gateway. Read by sync summaries and the benchmark; a few relaxed atomics per call.
//!
//! The guest's share is CPU time, not wall time: with more calls than cores, a call's wall time
//! also counts the time it waited for a core. The thread's CPU clock is read around every poll
//! of a guest call; wasmtime runs the guest (and the host functions it calls, but not the
//! gateway's requests, which are separate tasks) on the polling thread.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct CallStats {
    calls: AtomicU64,
    instantiate_nanos: AtomicU64,
    guest_nanos: AtomicU64,
    gateway_wait_nanos: AtomicU64,
}

/// The counters of a runtime at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CallTimes {
    pub calls: u64,
    /// Creating stores and instantiating the component, summed over calls.
    pub instantiate: Duration,
    /// CPU time of the threads while they ran guest calls.
    pub guest: Duration,
    /// Guest calls waiting for answers from the gateway (network, retries, pacing).
    pub gateway_wait: Duration,
}

impl CallTimes {
    /// What happened between `earlier` and these counters.
    pub fn since(&self, earlier: &CallTimes) -> CallTimes {
        CallTimes {
            calls: self.calls.saturating_sub(earlier.calls),
            instantiate: self.instantiate.saturating_sub(earlier.instantiate),
            guest: self.guest.saturating_sub(earlier.guest),
            gateway_wait: self.gateway_wait.saturating_sub(earlier.gateway_wait),
        }
    }
}

impl CallStats {
    pub fn record_instantiation(&self, took: Duration) {
        self.instantiate_nanos.fetch_add(nanos(took), Ordering::Relaxed);
    }

    /// One guest call that ran for `cpu` and waited `waited` on the gateway.
    pub fn record_call(&self, cpu: Duration, waited: Duration) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.guest_nanos.fetch_add(nanos(cpu), Ordering::Relaxed);
        self.gateway_wait_nanos.fetch_add(nanos(waited), Ordering::Relaxed);
    }

    pub fn times(&self) -> CallTimes {
        let load = |counter: &AtomicU64| Duration::from_nanos(counter.load(Ordering::Relaxed));
        CallTimes {
            calls: self.calls.load(Ordering::Relaxed),
            instantiate: load(&self.instantiate_nanos),
            guest: load(&self.guest_nanos),
            gateway_wait: load(&self.gateway_wait_nanos),
        }
    }
}

/// Time one call's guest spent waiting on the gateway, shared with its `wasi:http` hooks
/// (whose request futures outlive any borrow of the store).
#[derive(Clone, Debug, Default)]
pub struct GatewayWait(Arc<AtomicU64>);

impl GatewayWait {
    pub fn add(&self, waited: Duration) {
        self.0.fetch_add(nanos(waited), Ordering::Relaxed);
    }

    pub fn total(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::Relaxed))
    }
}

/// Awaits `future`, also returning the CPU time its polls took on the polling threads.
pub async fn with_cpu_time<F: Future>(future: F) -> (F::Output, Duration) {
    let mut future = pin!(future);
    let mut cpu = Duration::ZERO;
    let output = std::future::poll_fn(|context| {
        let before = thread_cpu_time();
        let poll = future.as_mut().poll(context);
        cpu += thread_cpu_time().saturating_sub(before);
        poll
    })
    .await;
    (output, cpu)
}

fn thread_cpu_time() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(u64::try_from(now.tv_sec).unwrap_or(0), u32::try_from(now.tv_nsec).unwrap_or(0))
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
