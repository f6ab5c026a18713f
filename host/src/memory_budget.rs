//! Byte budgets: what one sandboxed call, and one tenant across all its calls at once, may make
//! the host hold.
//!
//! wasmtime limits each linear memory on its own, and much of what a guest can make the host
//! hold is not linear memory at all: request bodies being buffered, answers waiting to be read,
//! header tables. Each of them is charged here before it is allocated, against the call's budget
//! and against its tenant's, and given back when it is dropped. A refusal names the budget that
//! was full and what asked, and is kept so the call fails with it even when the guest swallows
//! the error it was given.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;

pub const MIB: usize = 1024 * 1024;

/// The budget of a tenant when the tenants file does not set one (and of `sync`, `grant`,
/// `revoke`): far above what the Azure connector needs (tens of MiB per call), far below what
/// would take a host down.
pub const DEFAULT_TENANT_BUDGET_BYTES: usize = 1024 * MIB;

/// What all the calls of one tenant hold at once.
#[derive(Debug)]
pub struct TenantBudget {
    /// How errors name the tenant: "tenant contoso", or "the tenant" outside `serve`.
    label: String,
    limit: usize,
    used: AtomicUsize,
    /// The most ever charged at once, for tests and measurements.
    peak: AtomicUsize,
}

impl TenantBudget {
    pub fn new(label: impl Into<String>, limit: usize) -> Arc<TenantBudget> {
        Arc::new(TenantBudget { label: label.into(), limit, used: AtomicUsize::new(0), peak: AtomicUsize::new(0) })
    }

    /// The most all the tenant's calls held at once so far.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// Bytes charged now, by all the tenant's calls.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::SeqCst)
    }
}

impl Default for TenantBudget {
    fn default() -> Self {
        TenantBudget {
            label: "the tenant".into(),
            limit: DEFAULT_TENANT_BUDGET_BYTES,
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }
}

/// Adds `bytes` to `used` unless that passes `limit`; never overshoots, even for a moment, so a
/// concurrent charge is not refused because of one that is itself refused.
fn reserve(used: &AtomicUsize, limit: usize, bytes: usize) -> bool {
    used.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| now.checked_add(bytes).filter(|&after| after <= limit))
        .is_ok()
}

/// A charge that would pass a budget.
#[derive(Clone, Debug, thiserror::Error)]
pub enum BudgetExceeded {
    #[error(
        "the connector exceeded its memory budget of {limit} per call: {what} needed {requested} more, past the limit of {limit}",
        limit = Size(*limit), requested = Size(*requested)
    )]
    Call { limit: usize, what: &'static str, requested: usize },
    #[error(
        "{tenant} exceeded its memory budget of {limit} for all its calls at once: {what} needed {requested} more (raise memory_budget_mib for the tenant if its connector really needs more)",
        limit = Size(*limit), requested = Size(*requested)
    )]
    Tenant { tenant: String, limit: usize, what: &'static str, requested: usize },
}

/// Sizes as people read them: whole MiB from 1 MiB up, else KiB or bytes.
struct Size(usize);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            bytes if bytes >= MIB => write!(f, "{} MiB", bytes.div_ceil(MIB)),
            bytes if bytes >= 1024 => write!(f, "{} KiB", bytes.div_ceil(1024)),
            bytes => write!(f, "{bytes} bytes"),
        }
    }
}

/// What one call holds: its linear memories and tables, and what the host holds for it.
#[derive(Debug)]
pub struct CallBudget {
    limit: usize,
    used: AtomicUsize,
    tenant: Arc<TenantBudget>,
    /// The first refusal, reported as the call's error whatever the guest did with it.
    refusal: Mutex<Option<BudgetExceeded>>,
}

impl CallBudget {
    pub fn new(limit: usize, tenant: Arc<TenantBudget>) -> Arc<CallBudget> {
        Arc::new(CallBudget { limit, used: AtomicUsize::new(0), tenant, refusal: Mutex::new(None) })
    }

    /// A charge of nothing yet, to grow as the thing it pays for grows.
    pub fn empty_charge(self: &Arc<Self>) -> Charge {
        Charge { call: self.clone(), bytes: 0 }
    }

    /// Charges `bytes` for `what` to this call and its tenant, or refuses and remembers why.
    pub fn charge(self: &Arc<Self>, bytes: usize, what: &'static str) -> Result<Charge, BudgetExceeded> {
        let mut charge = self.empty_charge();
        charge.grow(bytes, what)?;
        Ok(charge)
    }

    /// The first charge refused in this call, if any.
    pub fn refusal(&self) -> Option<BudgetExceeded> {
        self.refusal.lock().ok().and_then(|slot| slot.clone())
    }

    /// Bytes this call holds now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::SeqCst)
    }

    fn take(&self, bytes: usize, what: &'static str) -> Result<(), BudgetExceeded> {
        if !reserve(&self.used, self.limit, bytes) {
            return Err(self.refuse(BudgetExceeded::Call { limit: self.limit, what, requested: bytes }));
        }
        if !reserve(&self.tenant.used, self.tenant.limit, bytes) {
            self.used.fetch_sub(bytes, Ordering::SeqCst);
            return Err(self.refuse(BudgetExceeded::Tenant {
                tenant: self.tenant.label.clone(),
                limit: self.tenant.limit,
                what,
                requested: bytes,
            }));
        }
        self.tenant.peak.fetch_max(self.tenant.used(), Ordering::SeqCst);
        Ok(())
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::SeqCst);
        self.tenant.used.fetch_sub(bytes, Ordering::SeqCst);
    }

    fn refuse(&self, refusal: BudgetExceeded) -> BudgetExceeded {
        tracing::warn!(error = %refusal, "memory budget refused a charge");
        if let Ok(mut slot) = self.refusal.lock()
            && slot.is_none()
        {
            *slot = Some(refusal.clone());
        }
        refusal
    }
}

/// Bytes charged to a call and its tenant, given back when dropped.
#[derive(Debug)]
pub struct Charge {
    call: Arc<CallBudget>,
    bytes: usize,
}

impl Charge {
    /// Charges `bytes` more for the same thing; on refusal the charge stays as it was.
    pub fn grow(&mut self, bytes: usize, what: &'static str) -> Result<(), BudgetExceeded> {
        self.call.take(bytes, what)?;
        self.bytes += bytes;
        Ok(())
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// `bytes` holding this charge until the last clone of them is dropped, so whoever keeps
    /// the bytes (the guest reading an answer slowly, or never) keeps them charged.
    pub fn hold(self, bytes: Bytes) -> Bytes {
        Bytes::from_owner(ChargedBytes { bytes, _charge: self })
    }
}

struct ChargedBytes {
    bytes: Bytes,
    _charge: Charge,
}

impl AsRef<[u8]> for ChargedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// Why [`collect_charged`] stopped.
pub enum CollectError<E> {
    /// The body is longer than the most allowed.
    TooLarge,
    /// The budget had no room for the next chunk.
    Refused(BudgetExceeded),
    /// Reading the body failed.
    Body(E),
}

/// Reads `body` whole, at most `max` bytes, growing `charge` by each chunk before keeping it,
/// so nothing is held that the budget has no room for (`None`: read uncharged). Request bodies
/// a guest sends and answers it receives are both read this way.
pub async fn collect_charged<B>(
    mut body: B,
    max: usize,
    mut charge: Option<&mut Charge>,
    what: &'static str,
) -> Result<Bytes, CollectError<B::Error>>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let mut received = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(chunk) = frame.map_err(CollectError::Body)?.into_data() else { continue };
        if received.len() + chunk.len() > max {
            return Err(CollectError::TooLarge);
        }
        if let Some(charge) = charge.as_deref_mut() {
            charge.grow(chunk.len(), what).map_err(CollectError::Refused)?;
        }
        received.extend_from_slice(&chunk);
    }
    Ok(received.freeze())
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.call.give_back(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_charge_past_the_call_budget_is_refused_and_remembered() {
        let call = CallBudget::new(10 * MIB, TenantBudget::new("tenant a", 100 * MIB));
        let _held = call.charge(8 * MIB, "a request body").expect("within the budget");
        let refused = call.charge(4 * MIB, "an answer").expect_err("past the call's budget");
        assert!(refused.to_string().contains("memory budget of 10 MiB per call"), "{refused}");
        assert_eq!(call.used(), 8 * MIB, "a refused charge takes nothing");
        assert!(matches!(call.refusal(), Some(BudgetExceeded::Call { .. })));
    }

    #[test]
    fn the_tenant_budget_spans_its_calls_and_is_given_back_on_drop() {
        let tenant = TenantBudget::new("tenant a", 10 * MIB);
        let first = CallBudget::new(8 * MIB, tenant.clone());
        let second = CallBudget::new(8 * MIB, tenant.clone());
        let held = first.charge(6 * MIB, "linear memory").expect("within both budgets");
        let refused = second.charge(6 * MIB, "linear memory").expect_err("the tenant's budget is full");
        assert!(refused.to_string().starts_with("tenant a exceeded its memory budget of 10 MiB"), "{refused}");
        assert_eq!(second.used(), 0);
        drop(held);
        assert_eq!(tenant.used(), 0);
        second.charge(6 * MIB, "linear memory").expect("room again once the first call let go");
    }

    #[test]
    fn a_growing_charge_keeps_what_it_had_when_refused() {
        let call = CallBudget::new(4 * MIB, TenantBudget::new("tenant a", 100 * MIB));
        let mut memory = call.empty_charge();
        memory.grow(3 * MIB, "linear memory").expect("within the budget");
        memory.grow(2 * MIB, "linear memory").expect_err("past the budget");
        assert_eq!(memory.bytes(), 3 * MIB);
        drop(memory);
        assert_eq!(call.used(), 0);
    }
}
