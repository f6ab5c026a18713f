//! One instance for one call. A trap (deadline, memory, a bug in the guest) becomes an `anyhow`
//! error that names the call; the component's own errors stay `ConnectorError`s. A call whose
//! memory budget refused a charge fails with that refusal, whatever the guest made of it. Pages
//! and errors are measured in guest memory before they are copied (`page_lift`), so a component
//! cannot make the host store or hold unbounded results.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};
use tokio::sync::OwnedSemaphorePermit;
use wasmtime::Store;
use wasmtime::component::{ComponentExportIndex, ComponentNamedList, ComponentType, Instance, Lift, Lower};

use super::call_stats::{CallStats, with_cpu_time};
use super::guest::GuestState;
use super::page_lift::{
    InGuest, PageBudget, RawChangePage, RawConnectorError, RawEntitlementPage, RawGrantPage, RawProvisionResult,
    RawResourcePage, measured,
};
use super::{
    ChangePage, ConfigValue, ConnectorComponent, ConnectorError, ConnectorMetadata, EntitlementPage, GrantPage,
    IncrementalGuest, ProvisionResult, Resource, ResourcePage, ResourceRef, SandboxLimits, TrackedType,
};

/// Where the calls that return pages or connector errors are in the component's exports: they
/// are called through `page_lift`'s mirror types, not the bindings.
#[derive(Clone, Copy)]
pub struct MeasuredExports {
    pub validate_config: ComponentExportIndex,
    pub list_resources: ComponentExportIndex,
    pub list_entitlements: ComponentExportIndex,
    pub list_grants: ComponentExportIndex,
    pub grant: ComponentExportIndex,
    pub revoke: ComponentExportIndex,
    /// `None` when the component has no `incremental` interface.
    pub list_changes: Option<ComponentExportIndex>,
}

/// The instance of one call and what it needs to call into it.
pub struct CallParts {
    pub store: Store<GuestState>,
    pub instance: Instance,
    pub bindings: ConnectorComponent,
    pub incremental: Option<IncrementalGuest>,
    pub exports: MeasuredExports,
}

pub struct ConnectorCall {
    store: Store<GuestState>,
    instance: Instance,
    bindings: ConnectorComponent,
    incremental: Option<IncrementalGuest>,
    exports: MeasuredExports,
    timeout: Duration,
    budget: PageBudget,
    stats: Arc<CallStats>,
    // Declared last so the store (and its pooled slot) is gone before the slot is released.
    _slot: OwnedSemaphorePermit,
}

macro_rules! guest_call {
    ($self:ident, $what:expr, $method:ident ( $($arg:expr),* )) => {{
        let guest = $self.bindings.idgov_connector_connector();
        guest_call!(@run $self, $what, guest.$method(&mut $self.store, $($arg),*))
    }};
    (@incremental $self:ident, $what:expr, $method:ident ( $($arg:expr),* )) => {{
        let Some(guest) = $self.incremental.as_ref() else {
            bail!("the connector does not support incremental sync (it does not export idgov:connector/incremental)");
        };
        guest_call!(@run $self, $what, guest.$method(&mut $self.store, $($arg),*))
    }};
    (@run $self:ident, $what:expr, $call:expr) => {{
        let call = with_cpu_time($call);
        // The epoch deadline stops a running guest; this stops one waiting on the host (a slow
        // answer) just as surely.
        let outcome = tokio::time::timeout($self.timeout, call).await;
        let cpu = outcome.as_ref().map_or(Duration::ZERO, |(_, cpu)| *cpu);
        $self.stats.record_call(cpu, $self.store.data().gateway_wait());
        // A refused charge is the cause of whatever followed: a trap, or an error the guest
        // was given and may have swallowed.
        if let Some(refusal) = $self.store.data().budget().refusal() {
            return Err(anyhow!("the connector failed in {}: {refusal}", $what));
        }
        match outcome.map(|(value, _)| value) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(trap)) => Err(anyhow!("the connector failed in {}: {trap:#}", $what)),
            Err(_) => Err(anyhow!("the connector did not finish {} within {:?} and was stopped", $what, $self.timeout)),
        }
    }};
}

impl ConnectorCall {
    pub(super) fn new(parts: CallParts, limits: SandboxLimits, slot: OwnedSemaphorePermit, stats: Arc<CallStats>) -> Self {
        ConnectorCall {
            store: parts.store,
            instance: parts.instance,
            bindings: parts.bindings,
            incremental: parts.incremental,
            exports: parts.exports,
            timeout: limits.call_timeout,
            budget: PageBudget::DEFAULT,
            stats,
            _slot: slot,
        }
    }

    /// Calls `export` with `params` and copies its result into host memory only once its sizes,
    /// read in guest memory, are within the page budget.
    async fn call_measured<P, R>(
        &mut self,
        what: &str,
        export: ComponentExportIndex,
        params: P,
    ) -> anyhow::Result<R::Owned>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: InGuest + ComponentType + Lift + Send + Sync + 'static,
    {
        let func = self
            .instance
            .get_typed_func::<P, (R,)>(&mut self.store, &export)
            .map_err(|err| anyhow!("the component's {what} does not match the contract: {err:#}"))?;
        let (raw,) = guest_call!(@run self, what, func.call_async(&mut self.store, params))?;
        measured(&mut self.store, &raw, self.budget, what).map_err(|err| anyhow!("{err:#} (in {what})"))
    }

    pub async fn metadata(mut self) -> anyhow::Result<ConnectorMetadata> {
        guest_call!(self, "metadata", call_metadata())
    }

    pub async fn validate_config(mut self, config: &[ConfigValue]) -> anyhow::Result<Result<(), ConnectorError>> {
        let export = self.exports.validate_config;
        self.call_measured::<_, Result<(), RawConnectorError>>("validate-config", export, (config,)).await
    }

    pub async fn list_resources(
        mut self,
        config: &[ConfigValue],
        resource_type: &str,
        parent: Option<&ResourceRef>,
        page_token: Option<&str>,
    ) -> anyhow::Result<Result<ResourcePage, ConnectorError>> {
        let what = format!("list-resources of {resource_type}");
        let export = self.exports.list_resources;
        self.call_measured::<_, Result<RawResourcePage, RawConnectorError>>(
            &what,
            export,
            (config, resource_type, parent, page_token),
        )
        .await
    }

    pub async fn list_entitlements(
        mut self,
        config: &[ConfigValue],
        resource: &Resource,
        page_token: Option<&str>,
    ) -> anyhow::Result<Result<EntitlementPage, ConnectorError>> {
        let what = format!("list-entitlements of {}:{}", resource.resource_type, resource.id);
        let export = self.exports.list_entitlements;
        self.call_measured::<_, Result<RawEntitlementPage, RawConnectorError>>(
            &what,
            export,
            (config, resource, page_token),
        )
        .await
    }

    pub async fn list_grants(
        mut self,
        config: &[ConfigValue],
        resource: &Resource,
        page_token: Option<&str>,
    ) -> anyhow::Result<Result<GrantPage, ConnectorError>> {
        let what = format!("list-grants of {}:{}", resource.resource_type, resource.id);
        let export = self.exports.list_grants;
        self.call_measured::<_, Result<RawGrantPage, RawConnectorError>>(&what, export, (config, resource, page_token))
            .await
    }

    pub async fn grant(
        mut self,
        config: &[ConfigValue],
        entitlement_id: &str,
        principal: &ResourceRef,
    ) -> anyhow::Result<Result<ProvisionResult, ConnectorError>> {
        let what = format!("grant of {entitlement_id}");
        let export = self.exports.grant;
        self.call_measured::<_, Result<RawProvisionResult, RawConnectorError>>(
            &what,
            export,
            (config, entitlement_id, principal),
        )
        .await
    }

    pub async fn revoke(
        mut self,
        config: &[ConfigValue],
        entitlement_id: &str,
        principal: &ResourceRef,
    ) -> anyhow::Result<Result<ProvisionResult, ConnectorError>> {
        let what = format!("revoke of {entitlement_id}");
        let export = self.exports.revoke;
        self.call_measured::<_, Result<RawProvisionResult, RawConnectorError>>(
            &what,
            export,
            (config, entitlement_id, principal),
        )
        .await
    }

    /// The resource types whose changes `list-changes` reports.
    pub async fn tracked_types(mut self, config: &[ConfigValue]) -> anyhow::Result<Vec<TrackedType>> {
        guest_call!(@incremental self, "tracked-types", call_tracked_types(config))
    }

    pub async fn list_changes(
        mut self,
        config: &[ConfigValue],
        resource_type: &str,
        delta_token: Option<&str>,
        page_token: Option<&str>,
    ) -> anyhow::Result<Result<ChangePage, ConnectorError>> {
        let Some(export) = self.exports.list_changes else {
            bail!("the connector does not support incremental sync (it does not export idgov:connector/incremental)");
        };
        let what = format!("list-changes of {resource_type}");
        self.call_measured::<_, Result<RawChangePage, RawConnectorError>>(
            &what,
            export,
            (config, resource_type, delta_token, page_token),
        )
        .await
    }
}
