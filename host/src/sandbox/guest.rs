//! What a sandboxed call holds: WASI with nothing inherited (stderr goes to the host log, capped), `wasi:http` routed to
//! the tenant's gateway, and a limiter whose refusals say which limit was hit.

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::SandboxLimits;
use super::engine::{MEMORIES_PER_CALL, TABLES_PER_CALL};
use super::guest_log::GuestLog;
use super::http_hooks::GuestHttpHooks;
use crate::memory_budget::{BudgetExceeded, CallBudget, Charge};
use crate::outbound::gateway::TenantGateway;

pub struct GuestState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: GuestHttpHooks,
    limiter: CallLimiter,
    budget: Arc<CallBudget>,
    /// The most the call's handles can hold, charged up front: wasi-http allocates header
    /// tables and outgoing-body buffers without asking the embedder, so they are bounded by
    /// count and size instead.
    _handles: Charge,
}

/// Handles (requests, bodies, streams, header tables, pollables) one call may hold at once.
/// An HTTP request through `waki` needs about ten; a page of the Azure connector, a few requests.
pub const RESOURCE_TABLE_CAPACITY: usize = 256;
/// The largest header table a guest may build, in wasi-http's own measure (names and values
/// plus their in-memory overhead). Azure requests carry a few short headers.
pub const FIELD_SIZE_LIMIT: usize = 16 * 1024;
/// The largest write into an outgoing body; wasi-http holds one chunk in its channel and one
/// being sent, so a body the host is not reading yet holds at most two.
pub const OUTGOING_BODY_CHUNK: usize = 8 * 1024;
/// The most one handle can make the host hold: a full header table, or a body's two chunks.
const HANDLE_BYTES: usize =
    if FIELD_SIZE_LIMIT > 2 * OUTGOING_BODY_CHUNK { FIELD_SIZE_LIMIT } else { 2 * OUTGOING_BODY_CHUNK };

impl GuestState {
    pub fn new(gateway: Arc<TenantGateway>, limits: &SandboxLimits) -> Result<Self, BudgetExceeded> {
        let budget = CallBudget::new(limits.memory_bytes, gateway.memory_budget().clone());
        let handles =
            budget.charge(RESOURCE_TABLE_CAPACITY * HANDLE_BYTES, "header tables and body buffers (reserved)")?;
        let mut table = ResourceTable::new();
        table.set_max_capacity(RESOURCE_TABLE_CAPACITY);
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(FIELD_SIZE_LIMIT);
        Ok(GuestState {
            wasi: WasiCtx::builder().stderr(GuestLog::default()).build(),
            http,
            table,
            hooks: GuestHttpHooks::new(gateway, budget.clone()),
            limiter: CallLimiter {
                memory: budget.empty_charge(),
                tables: budget.empty_charge(),
                table_elements: limits.table_elements,
                instances: limits.instances,
            },
            budget,
            _handles: handles,
        })
    }

    pub fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.limiter
    }

    /// What this call holds, and the first charge it was refused.
    pub fn budget(&self) -> &Arc<CallBudget> {
        &self.budget
    }

    /// How long this call has waited on the gateway so far.
    pub fn gateway_wait(&self) -> std::time::Duration {
        self.hooks.waited()
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for GuestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// Stops a call that grows past its limits with a trap naming the limit. A refused growth that
/// the guest sees as "out of memory" would end in an opaque `unreachable` trap (Rust aborts on
/// allocation failure), so the host traps first and says why.
///
/// wasmtime asks about each memory and table on its own; every growth is charged to the call's
/// budget, so the limit is on all of them together, and their number is capped as well.
struct CallLimiter {
    memory: Charge,
    tables: Charge,
    table_elements: usize,
    instances: usize,
}

/// What the host spends per table element (a pointer, or a pointer-sized reference).
const TABLE_ELEMENT_BYTES: usize = std::mem::size_of::<usize>();

impl ResourceLimiter for CallLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|maximum| desired > maximum) {
            return Ok(false);
        }
        self.memory.grow(desired.saturating_sub(current), "growing linear memory")?;
        Ok(true)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.table_elements {
            wasmtime::bail!(
                "the connector tried to grow a table to {desired} elements, past the limit of {} per call",
                self.table_elements
            );
        }
        if maximum.is_some_and(|maximum| desired > maximum) {
            return Ok(false);
        }
        self.tables.grow(desired.saturating_sub(current).saturating_mul(TABLE_ELEMENT_BYTES), "growing a table")?;
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        TABLES_PER_CALL
    }

    fn memories(&self) -> usize {
        MEMORIES_PER_CALL
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory_budget::{MIB, TenantBudget};

    fn limiter(call_limit: usize, tenant: Arc<TenantBudget>) -> CallLimiter {
        let budget = CallBudget::new(call_limit, tenant);
        CallLimiter {
            memory: budget.empty_charge(),
            tables: budget.empty_charge(),
            table_elements: 1000,
            instances: 16,
        }
    }

    #[test]
    fn the_memory_limit_is_on_all_memories_of_a_call_together() {
        let mut limiter = limiter(100 * MIB, TenantBudget::new("tenant a", 1024 * MIB));
        assert!(limiter.memory_growing(0, 60 * MIB, None).expect("the first memory fits"));
        let error = limiter.memory_growing(0, 60 * MIB, None).expect_err("a second memory does not fit beside it");
        assert!(error.to_string().contains("past the limit of 100 MiB"), "{error}");
        assert_eq!(limiter.memories(), MEMORIES_PER_CALL);
        assert_eq!(limiter.tables(), TABLES_PER_CALL);
    }

    #[test]
    fn memory_growth_is_charged_to_the_tenant_and_given_back_with_the_call() {
        let tenant = TenantBudget::new("tenant a", 1024 * MIB);
        let mut first = limiter(256 * MIB, tenant.clone());
        first.memory_growing(0, 10 * MIB, None).expect("fits");
        first.memory_growing(10 * MIB, 30 * MIB, None).expect("fits");
        assert_eq!(tenant.used(), 30 * MIB, "growth is charged by its increase");
        drop(first);
        assert_eq!(tenant.used(), 0);
    }

    #[test]
    fn tables_are_capped_in_elements_and_charged() {
        let tenant = TenantBudget::new("tenant a", 1024 * MIB);
        let mut limiter = limiter(256 * MIB, tenant.clone());
        assert!(limiter.table_growing(0, 1000, None).expect("at the cap"));
        assert_eq!(tenant.used(), 1000 * TABLE_ELEMENT_BYTES);
        let error = limiter.table_growing(1000, 1001, None).expect_err("past the cap");
        assert!(error.to_string().contains("past the limit of 1000 per call"), "{error}");
    }
}
