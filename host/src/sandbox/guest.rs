//! What a sandboxed call holds: WASI with nothing inherited (stderr goes to the host log, capped), `wasi:http` routed to
//! the tenant's gateway, and a limiter whose refusals say which limit was hit.

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::SandboxLimits;
use super::guest_log::GuestLog;
use super::http_hooks::GuestHttpHooks;
use crate::outbound::gateway::TenantGateway;

pub struct GuestState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: GuestHttpHooks,
    limiter: CallLimiter,
}

impl GuestState {
    pub fn new(gateway: Arc<TenantGateway>, limits: &SandboxLimits) -> Self {
        GuestState {
            wasi: WasiCtx::builder().stderr(GuestLog::default()).build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: GuestHttpHooks::new(gateway),
            limiter: CallLimiter {
                memory_bytes: limits.memory_bytes,
                table_elements: limits.table_elements,
                instances: limits.instances,
            },
        }
    }

    pub fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.limiter
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
struct CallLimiter {
    memory_bytes: usize,
    table_elements: usize,
    instances: usize,
}

const MIB: usize = 1024 * 1024;

impl ResourceLimiter for CallLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            wasmtime::bail!(
                "the connector tried to grow its memory to {} MiB, past the limit of {} MiB per call",
                desired.div_ceil(MIB),
                self.memory_bytes / MIB
            );
        }
        Ok(maximum.is_none_or(|maximum| desired <= maximum))
    }

    fn table_growing(&mut self, _current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.table_elements {
            wasmtime::bail!(
                "the connector tried to grow a table to {desired} elements, past the limit of {} per call",
                self.table_elements
            );
        }
        Ok(maximum.is_none_or(|maximum| desired <= maximum))
    }

    fn instances(&self) -> usize {
        self.instances
    }

    // A component's core instances each bring at most a few tables and memories, so the
    // instance count bounds them too.
    fn tables(&self) -> usize {
        self.instances
    }

    fn memories(&self) -> usize {
        self.instances
    }
}
