//! The sandbox: one compiled connector component, and a fresh, limited instance per call.
//!
//! The component is compiled once (or loaded from the precompiled-artifact cache) and pre-linked
//! once (`InstancePre`). Every call gets its own `Store` with memory, table and instance limits
//! and a wall-clock deadline (epoch interruption), no filesystem, no environment, no sockets:
//! only `wasi:http` through the tenant's gateway, clocks, random and stderr. The number of
//! instances alive at once is bounded, so many tenants cannot exhaust the host together.

mod artifact_cache;
mod call;
mod call_stats;
mod engine;
mod epoch;
mod guest;
mod guest_log;
mod http_hooks;
mod outgoing_handler;
mod text_caps;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use tokio::sync::Semaphore;
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store};

use crate::outbound::gateway::TenantGateway;
pub use artifact_cache::{ArtifactCache, CompiledFrom};
pub use call::{ConnectorCall, HOSTCALL_FUEL, PageBudget};
pub use call_stats::{CallStats, CallTimes};
use epoch::EpochTicker;
use guest::{GuestState, RESOURCE_TABLE_CAPACITY};
pub use text_caps::TEXT_LIMIT;

wasmtime::component::bindgen!({
    path: "../wit",
    world: "connector-component",
    exports: { default: async },
});

/// The optional `incremental` interface, bound separately so that a component without it still
/// loads: its presence is looked up in the component's exports (see `ConnectorRuntime::load`).
mod incremental_bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "incremental-connector-component",
        exports: { default: async },
        with: { "idgov:connector/types": super::idgov::connector::types },
    });
}

pub use incremental_bindings::exports::idgov::connector::incremental::{
    ChangePage, GrantChanges, Guest as IncrementalGuest, GuestIndices as IncrementalIndices, TrackedType,
};

pub use exports::idgov::connector::connector::{
    ConnectorError, ConnectorMetadata, EntitlementPage, GrantPage, ProvisionResult, ResourcePage,
};
pub use idgov::connector::types::{
    Capabilities, ConfigValue, Endpoint, Entitlement, EntitlementPurpose, Grant, Notice, NoticeKind, ProvisionOutcome,
    Resource, ResourceRef, ResourceType, UpstreamError,
};

/// Limits applied to every call's store.
#[derive(Clone, Copy, Debug)]
pub struct SandboxLimits {
    /// Everything one call may make the host hold: its linear memories and tables summed, and
    /// what the host buffers for it (see `memory_budget`).
    pub memory_bytes: usize,
    pub table_elements: usize,
    pub instances: usize,
    pub call_timeout: Duration,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            memory_bytes: 256 * 1024 * 1024,
            table_elements: 100_000,
            instances: 64,
            call_timeout: Duration::from_secs(300),
        }
    }
}

impl SandboxLimits {
    /// These limits with a tenant's own settings where it has them.
    pub fn for_tenant(self, tenant: TenantCallLimits) -> SandboxLimits {
        SandboxLimits {
            memory_bytes: tenant.memory_bytes.unwrap_or(self.memory_bytes),
            call_timeout: tenant.call_timeout.unwrap_or(self.call_timeout),
            ..self
        }
    }
}

/// A tenant's own per-call limits (`serve`'s tenants file); unset ones are the runtime's.
#[derive(Clone, Copy, Debug, Default)]
pub struct TenantCallLimits {
    pub memory_bytes: Option<usize>,
    pub call_timeout: Option<Duration>,
}

/// How wasmtime finds memory for an instance. Pooling reserves slots once and reuses them;
/// on-demand maps and unmaps per instance. See docs/decisions.md for the measurements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum InstanceAllocator {
    Pooling,
    OnDemand,
}

/// Everything that shapes a runtime, beyond the component itself.
#[derive(Clone, Debug)]
pub struct RuntimeOptions {
    pub limits: SandboxLimits,
    pub allocator: InstanceAllocator,
    /// Instances alive at once; further calls wait for a slot. With pooling, also the pool size.
    pub max_concurrent_calls: usize,
    /// Where precompiled components are kept; `None` compiles in memory every time.
    pub artifact_cache: Option<PathBuf>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            limits: SandboxLimits::default(),
            allocator: InstanceAllocator::Pooling,
            max_concurrent_calls: 64,
            artifact_cache: None,
        }
    }
}

/// A compiled, pre-linked connector, ready to be instantiated per call.
pub struct ConnectorRuntime {
    engine: Engine,
    pre: wasmtime::component::InstancePre<GuestState>,
    indices: ConnectorComponentIndices,
    /// Set when the component exports `idgov:connector/incremental`.
    incremental: Option<IncrementalIndices>,
    limits: SandboxLimits,
    call_slots: Arc<Semaphore>,
    compiled_from: CompiledFrom,
    ticker: Option<EpochTicker>,
    stats: Arc<CallStats>,
}

impl ConnectorRuntime {
    pub fn new(component_bytes: &[u8], limits: SandboxLimits) -> anyhow::Result<Self> {
        ConnectorRuntime::load(component_bytes, &RuntimeOptions { limits, ..RuntimeOptions::default() })
    }

    pub fn load(component_bytes: &[u8], options: &RuntimeOptions) -> anyhow::Result<Self> {
        let engine = engine::build(options)?;
        let (component, compiled_from) = compile(&engine, component_bytes, options.artifact_cache.as_deref())?;
        let mut linker: Linker<GuestState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|err| anyhow!("cannot link WASI: {err}"))?;
        outgoing_handler::add_to_linker(&mut linker).map_err(|err| anyhow!("cannot link wasi:http: {err}"))?;
        let instance_pre = linker.instantiate_pre(&component).map_err(|err| {
            anyhow!("the component imports something this host does not provide (only WASI 0.2 is available): {err:#}")
        })?;
        let indices = ConnectorComponentIndices::new(&instance_pre)
            .map_err(|err| anyhow!("the component does not export the idgov:connector world: {err:#}"))?;
        // Optional: a component without it (or with an incompatible one) is synced in full.
        let incremental = IncrementalIndices::new(&instance_pre).ok();
        let ticker = EpochTicker::start(engine.clone());
        Ok(ConnectorRuntime {
            engine,
            pre: instance_pre,
            indices,
            incremental,
            limits: options.limits,
            call_slots: Arc::new(Semaphore::new(options.max_concurrent_calls.max(1))),
            compiled_from,
            ticker: Some(ticker),
            stats: Arc::new(CallStats::default()),
        })
    }

    /// Whether the component exports the `incremental` interface.
    pub fn supports_incremental(&self) -> bool {
        self.incremental.is_some()
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Where the time of this runtime's calls went.
    pub fn stats(&self) -> &Arc<CallStats> {
        &self.stats
    }

    /// Whether this runtime compiled the component or loaded it from the artifact cache.
    pub fn compiled_from(&self) -> CompiledFrom {
        self.compiled_from
    }

    /// A fresh instance for one call, whose requests go through `gateway`. Waits while the
    /// maximum number of instances is alive.
    pub async fn instantiate(&self, gateway: Arc<TenantGateway>) -> anyhow::Result<ConnectorCall> {
        let slot = self
            .call_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| anyhow!("the connector runtime is shutting down"))?;
        let started = Instant::now();
        let limits = self.limits.for_tenant(gateway.call_limits());
        let state = GuestState::new(gateway, &limits).map_err(|refusal| anyhow!("cannot start a call: {refusal}"))?;
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| state.limiter());
        store.set_hostcall_fuel(HOSTCALL_FUEL);
        // The guest's own handle tables: one entry per host handle it holds (at most
        // `RESOURCE_TABLE_CAPACITY`), plus room for borrows and resources of its own.
        store.set_max_component_handles(4 * RESOURCE_TABLE_CAPACITY);
        let deadline = Instant::now() + limits.call_timeout;
        let timeout = limits.call_timeout;
        // The guest yields to the executor at every tick, so a busy loop cannot hold a worker
        // thread (and with it other tenants' calls); past the deadline it is stopped. Tokio's
        // own yield lets the I/O driver run before the guest resumes: a plain self-wake would
        // leave other calls' sockets unpolled for dozens of ticks.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(wasmtime::format_err!("the call ran past its deadline of {timeout:?} and was stopped"))
            } else {
                Ok(wasmtime::UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())))
            }
        });
        let instance = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|err| anyhow!("cannot instantiate the connector: {err:#}"))?;
        let bindings = self
            .indices
            .load(&mut store, &instance)
            .map_err(|err| anyhow!("the component does not export the idgov:connector world: {err:#}"))?;
        let incremental = match &self.incremental {
            Some(indices) => Some(indices.load(&mut store, &instance).map_err(|err| {
                anyhow!("the component's incremental interface does not match the contract: {err:#}")
            })?),
            None => None,
        };
        self.stats.record_instantiation(started.elapsed());
        Ok(ConnectorCall::new(store, bindings, incremental, limits, slot, self.stats.clone()))
    }
}

impl Drop for ConnectorRuntime {
    fn drop(&mut self) {
        self.call_slots.close();
        if let Some(ticker) = self.ticker.take() {
            ticker.stop();
        }
    }
}

fn compile(engine: &Engine, bytes: &[u8], cache_dir: Option<&Path>) -> anyhow::Result<(Component, CompiledFrom)> {
    let compile_in_memory = || {
        Component::new(engine, bytes)
            .map(|component| (component, CompiledFrom::Source))
            .map_err(|err| anyhow!("the connector component does not compile: {err:#}"))
    };
    let Some(dir) = cache_dir else { return compile_in_memory() };
    match ArtifactCache::open(dir) {
        Ok(cache) => cache.load_or_compile(engine, bytes),
        Err(error) => {
            // A cache is an optimisation: a sync must never fail because of it.
            tracing::warn!(cache = %dir.display(), error = %format!("{error:#}"), "not using the compiled-component cache");
            compile_in_memory()
        }
    }
}

/// Loads a component file given on the command line.
pub fn read_component_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read the component {}: check --component", path.display()))
}
