//! One instance for one call. A trap (deadline, memory, a bug in the guest) becomes an `anyhow`
//! error that names the call; the component's own errors stay `ConnectorError`s. A call whose
//! memory budget refused a charge fails with that refusal, whatever the guest made of it. Pages
//! larger than the host accepts are refused as errors too, and their notices and errors cut, so
//! a component cannot make the host store or hold unbounded results.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};
use tokio::sync::OwnedSemaphorePermit;
use wasmtime::Store;

use super::call_stats::{CallStats, with_cpu_time};
use super::guest::{GuestState, RESOURCE_TABLE_CAPACITY};
use super::text_caps::Capped as _;
use super::{
    ChangePage, ConfigValue, ConnectorComponent, ConnectorError, ConnectorMetadata, EntitlementPage, GrantPage,
    IncrementalGuest, ProvisionResult, Resource, ResourcePage, ResourceRef, SandboxLimits, TrackedType,
};

/// The most a single page may hold. Azure pages hold at most 999 objects (Graph) or about a
/// thousand (ARM); ten times that leaves room for other connectors and still bounds what one
/// call can make the host keep.
#[derive(Clone, Copy, Debug)]
pub struct PageBudget {
    pub max_items: usize,
    /// Text in the page (ids, names, profiles), summed.
    pub max_bytes: usize,
}

impl PageBudget {
    pub const DEFAULT: PageBudget = PageBudget { max_items: 10_000, max_bytes: 32 * 1024 * 1024 };

    fn check(&self, what: &str, items: usize, bytes: usize) -> anyhow::Result<()> {
        if items > self.max_items {
            bail!(
                "the connector returned {items} items in one page of {what}; the host accepts at most {} per page (a connector must page larger results)",
                self.max_items
            );
        }
        if bytes > self.max_bytes {
            bail!(
                "the connector returned {} MiB in one page of {what}; the host accepts at most {} MiB per page (a connector must page larger results)",
                bytes / (1024 * 1024),
                self.max_bytes / (1024 * 1024)
            );
        }
        Ok(())
    }
}

/// What the host copies out of the sandbox for one result (or one call from the guest into the
/// host) at most: wasmtime's hostcall fuel, spent per byte of text and per element of a list as
/// the result is lifted, before the host can look at it. A page within `PageBudget::DEFAULT`
/// fits (its text, and each item's host representation, a few hundred bytes); elements that
/// alias one string in guest memory spend it again for each copy, so they cannot make the host
/// allocate without bound.
pub const HOSTCALL_FUEL: usize = PageBudget::DEFAULT.max_bytes + PageBudget::DEFAULT.max_items * 512;

pub struct ConnectorCall {
    store: Store<GuestState>,
    bindings: ConnectorComponent,
    incremental: Option<IncrementalGuest>,
    timeout: Duration,
    budget: PageBudget,
    stats: Arc<CallStats>,
    // Declared last so the store (and its pooled slot) is gone before the slot is released.
    _slot: OwnedSemaphorePermit,
}

macro_rules! guest_call {
    ($self:ident, $what:expr, $method:ident ( $($arg:expr),* )) => {{
        let guest = $self.bindings.idgov_connector_connector();
        guest_call!(@run $self, guest, $what, $method($($arg),*))
    }};
    (@incremental $self:ident, $what:expr, $method:ident ( $($arg:expr),* )) => {{
        let Some(guest) = $self.incremental.as_ref() else {
            bail!("the connector does not support incremental sync (it does not export idgov:connector/incremental)");
        };
        guest_call!(@run $self, guest, $what, $method($($arg),*))
    }};
    (@run $self:ident, $guest:ident, $what:expr, $method:ident ( $($arg:expr),* )) => {{
        let guest = $guest;
        let call = with_cpu_time(guest.$method(&mut $self.store, $($arg),*));
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
            Ok(Ok(value)) => Ok(value.capped()),
            Ok(Err(trap)) => Err(anyhow!("the connector failed in {}: {}", $what, explained(trap))),
            // Worded like the epoch deadline's trap: whichever of the two stops the call first,
            // the operator reads the same cause.
            Err(_) => Err(anyhow!("the connector did not finish {} within its deadline of {:?} and was stopped", $what, $self.timeout)),
        }
    }};
}

/// A trap's message, and for the traps of wasmtime's own limits, which limit that is (their
/// text does not say).
fn explained(trap: wasmtime::Error) -> String {
    let message = format!("{trap:#}");
    if message.contains("fuel allocated for hostcalls has been exhausted") {
        format!(
            "{message} (the host copies at most {} MiB of one result out of the sandbox; a connector must page larger results)",
            HOSTCALL_FUEL.div_ceil(1024 * 1024)
        )
    } else if message.contains("resource table has no free keys") {
        format!(
            "{message} (a call may hold at most {RESOURCE_TABLE_CAPACITY} handles at once: requests, bodies, streams, header tables)"
        )
    } else {
        message
    }
}

fn resource_bytes(resource: &Resource) -> usize {
    resource.resource_type.len()
        + resource.id.len()
        + resource.display_name.len()
        + resource.profile_json.len()
        + resource.parent.as_ref().map_or(0, |parent| parent.resource_type.len() + parent.id.len())
}

impl ConnectorCall {
    pub(super) fn new(
        store: Store<GuestState>,
        bindings: ConnectorComponent,
        incremental: Option<IncrementalGuest>,
        limits: SandboxLimits,
        slot: OwnedSemaphorePermit,
        stats: Arc<CallStats>,
    ) -> Self {
        ConnectorCall {
            store,
            bindings,
            incremental,
            timeout: limits.call_timeout,
            budget: PageBudget::DEFAULT,
            stats,
            _slot: slot,
        }
    }

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
        let answer = guest_call!(self, what, call_list_resources(config, resource_type, parent, page_token))?;
        if let Ok(page) = &answer {
            let bytes = page.items.iter().map(resource_bytes).sum();
            self.budget.check(&what, page.items.len(), bytes)?;
        }
        Ok(answer)
    }

    pub async fn list_entitlements(
        mut self,
        config: &[ConfigValue],
        resource: &Resource,
        page_token: Option<&str>,
    ) -> anyhow::Result<Result<EntitlementPage, ConnectorError>> {
        let what = format!("list-entitlements of {}:{}", resource.resource_type, resource.id);
        let answer = guest_call!(self, what, call_list_entitlements(config, resource, page_token))?;
        if let Ok(page) = &answer {
            let bytes = page
                .items
                .iter()
                .map(|item| {
                    item.id.len()
                        + item.slug.len()
                        + item.display_name.len()
                        + item.description.len()
                        + item.grantable_to.iter().map(String::len).sum::<usize>()
                })
                .sum();
            self.budget.check(&what, page.items.len(), bytes)?;
        }
        Ok(answer)
    }

    pub async fn list_grants(
        mut self,
        config: &[ConfigValue],
        resource: &Resource,
        page_token: Option<&str>,
    ) -> anyhow::Result<Result<GrantPage, ConnectorError>> {
        let what = format!("list-grants of {}:{}", resource.resource_type, resource.id);
        let answer = guest_call!(self, what, call_list_grants(config, resource, page_token))?;
        if let Ok(page) = &answer {
            let bytes =
                page.items.iter().map(|item| item.id.len() + item.entitlement_id.len() + item.principal.id.len()).sum();
            self.budget.check(&what, page.items.len(), bytes)?;
        }
        Ok(answer)
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
        let what = format!("list-changes of {resource_type}");
        let answer =
            guest_call!(@incremental self, what, call_list_changes(config, resource_type, delta_token, page_token))?;
        if let Ok(page) = &answer {
            let items = page.upserted.len() + page.removed.len() + page.grants_added.len() + page.grants_removed.len();
            let bytes = page.upserted.iter().map(resource_bytes).sum::<usize>()
                + page.removed.iter().map(String::len).sum::<usize>()
                + page
                    .grants_added
                    .iter()
                    .map(|grant| grant.id.len() + grant.entitlement_id.len() + grant.principal.id.len())
                    .sum::<usize>()
                + page
                    .grants_removed
                    .iter()
                    .map(|removal| removal.entitlement_id.len() + removal.principal_id.len())
                    .sum::<usize>();
            self.budget.check(&what, items, bytes)?;
        }
        Ok(answer)
    }
}
