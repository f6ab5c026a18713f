//! The sandbox: one compiled connector component, and a fresh, limited instance per call.
//!
//! The component is compiled once and pre-linked once (`InstancePre`). Every call gets its own
//! `Store` with memory, table and instance limits and a wall-clock deadline (epoch
//! interruption), no filesystem, no environment, no sockets: only `wasi:http` through the
//! tenant's gateway, clocks, random and stderr.

mod http_hooks;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::outbound::gateway::TenantGateway;
use http_hooks::GuestHttpHooks;

wasmtime::component::bindgen!({
    path: "../wit",
    world: "connector-component",
    exports: { default: async },
});

pub use exports::idgov::connector::connector::{
    ConnectorError, ConnectorMetadata, EntitlementPage, GrantPage, ProvisionResult, ResourcePage,
};
pub use idgov::connector::types::{
    Capabilities, ConfigValue, Entitlement, EntitlementPurpose, Grant, Notice, NoticeKind, ProvisionOutcome, Resource,
    ResourceRef, ResourceType, UpstreamError,
};

/// Limits applied to every call's store.
#[derive(Clone, Copy, Debug)]
pub struct SandboxLimits {
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

const EPOCH_TICK: Duration = Duration::from_millis(50);

/// A compiled, pre-linked connector, ready to be instantiated per call.
pub struct ConnectorRuntime {
    engine: Engine,
    pre: ConnectorComponentPre<GuestState>,
    limits: SandboxLimits,
    ticker: Option<EpochTicker>,
}

impl ConnectorRuntime {
    pub fn new(component_bytes: &[u8], limits: SandboxLimits) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(|err| anyhow!("cannot create the wasmtime engine: {err}"))?;
        let component = Component::new(&engine, component_bytes)
            .map_err(|err| anyhow!("the connector component does not compile: {err:#}"))?;
        let mut linker: Linker<GuestState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|err| anyhow!("cannot link WASI: {err}"))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|err| anyhow!("cannot link wasi:http: {err}"))?;
        let instance_pre = linker.instantiate_pre(&component).map_err(|err| {
            anyhow!("the component imports something this host does not provide (only WASI 0.2 is available): {err:#}")
        })?;
        let pre = ConnectorComponentPre::new(instance_pre)
            .map_err(|err| anyhow!("the component does not export the idgov:connector world: {err:#}"))?;
        let ticker = EpochTicker::start(engine.clone());
        Ok(ConnectorRuntime { engine, pre, limits, ticker: Some(ticker) })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A fresh instance for one call, whose requests go through `gateway`.
    pub async fn instantiate(&self, gateway: Arc<TenantGateway>) -> anyhow::Result<ConnectorCall> {
        let state = GuestState {
            wasi: WasiCtx::builder().inherit_stderr().build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: GuestHttpHooks::new(gateway),
            limits: StoreLimitsBuilder::new()
                .memory_size(self.limits.memory_bytes)
                .table_elements(self.limits.table_elements)
                .instances(self.limits.instances)
                .build(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        let ticks = (self.limits.call_timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        let bindings = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|err| anyhow!("cannot instantiate the connector: {err:#}"))?;
        Ok(ConnectorCall { store, bindings, timeout: self.limits.call_timeout })
    }
}

impl Drop for ConnectorRuntime {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.stop();
        }
    }
}

/// Advances the engine's epoch so running guests hit their deadline.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        });
        EpochTicker { stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

pub struct GuestState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: GuestHttpHooks,
    limits: StoreLimits,
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

/// One instance, for one call. A trap (deadline, memory, a bug in the guest) becomes an
/// `anyhow` error that names the call; the component's own errors stay `ConnectorError`s.
pub struct ConnectorCall {
    store: Store<GuestState>,
    bindings: ConnectorComponent,
    timeout: Duration,
}

macro_rules! guest_call {
    ($self:ident, $what:expr, $method:ident ( $($arg:expr),* )) => {{
        let guest = $self.bindings.idgov_connector_connector();
        let call = guest.$method(&mut $self.store, $($arg),*);
        match tokio::time::timeout($self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(trap)) => Err(anyhow!("the connector failed in {}: {trap:#}", $what)),
            Err(_) => Err(anyhow!("the connector did not finish {} within {:?}", $what, $self.timeout)),
        }
    }};
}

impl ConnectorCall {
    pub async fn metadata(mut self) -> anyhow::Result<ConnectorMetadata> {
        guest_call!(self, "metadata", call_metadata())
    }

    pub async fn validate_config(mut self, config: &[ConfigValue]) -> anyhow::Result<Result<(), ConnectorError>> {
        guest_call!(self, "validate-config", call_validate_config(config))
    }

    pub async fn list_resources(
        mut self,
        config: &[ConfigValue],
        resource_type: &str,
        parent: Option<&ResourceRef>,
        page_token: Option<&str>,
    ) -> anyhow::Result<Result<ResourcePage, ConnectorError>> {
        let what = format!("list-resources of {resource_type}");
        guest_call!(self, what, call_list_resources(config, resource_type, parent, page_token))
    }

    pub async fn list_entitlements(
        mut self,
        config: &[ConfigValue],
        resource: &Resource,
        page_token: Option<&str>,
    ) -> anyhow::Result<Result<EntitlementPage, ConnectorError>> {
        let what = format!("list-entitlements of {}:{}", resource.resource_type, resource.id);
        guest_call!(self, what, call_list_entitlements(config, resource, page_token))
    }

    pub async fn list_grants(
        mut self,
        config: &[ConfigValue],
        resource: &Resource,
        page_token: Option<&str>,
    ) -> anyhow::Result<Result<GrantPage, ConnectorError>> {
        let what = format!("list-grants of {}:{}", resource.resource_type, resource.id);
        guest_call!(self, what, call_list_grants(config, resource, page_token))
    }

    pub async fn grant(
        mut self,
        config: &[ConfigValue],
        entitlement_id: &str,
        principal: &ResourceRef,
    ) -> anyhow::Result<Result<ProvisionResult, ConnectorError>> {
        guest_call!(self, format!("grant of {entitlement_id}"), call_grant(config, entitlement_id, principal))
    }

    pub async fn revoke(
        mut self,
        config: &[ConfigValue],
        entitlement_id: &str,
        principal: &ResourceRef,
    ) -> anyhow::Result<Result<ProvisionResult, ConnectorError>> {
        guest_call!(self, format!("revoke of {entitlement_id}"), call_revoke(config, entitlement_id, principal))
    }
}

/// Loads a component file given on the command line.
pub fn read_component_file(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read the component {}: check --component", path.display()))
}
