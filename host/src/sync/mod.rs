//! The sync engine: drives the connector's paged calls for every resource type and streams
//! the answers into a snapshot.
//!
//! Order: resource types in dependency order (a type `listed-under` another comes after it),
//! first every resource, then each resource's entitlements and grants. Each call runs in a
//! fresh sandbox instance; several resources are worked on at once.

mod incremental;
mod progress;
pub mod summary;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{anyhow, bail};
use futures::StreamExt;

use crate::connector_error::describe;
use crate::outbound::gateway::TenantGateway;
use crate::sandbox::{
    Capabilities, ConfigValue, ConnectorError, ConnectorMetadata, ConnectorRuntime, Notice, NoticeKind, Resource,
    ResourceRef, ResourceType,
};
use crate::store::SnapshotWriter;
use crate::tenant::token_scopes;
use incremental::{DeltaPlan, RunStart};
pub use progress::SyncProgress;
pub use summary::{SyncMode, SyncSummary};

pub struct SyncJob {
    pub runtime: Arc<ConnectorRuntime>,
    pub gateway: Arc<TenantGateway>,
    pub config: Vec<ConfigValue>,
    pub output: PathBuf,
    /// Fail the sync when any listing could not be read.
    pub strict: bool,
    /// Resources worked on at once (each in its own sandbox).
    pub workers: usize,
    pub show_progress: bool,
    /// Re-read everything even when the output allows an incremental sync.
    pub full: bool,
}

const BATCH: usize = 256;

impl SyncJob {
    pub async fn run(self) -> anyhow::Result<SyncSummary> {
        let started = Instant::now();
        let calls_before = self.runtime.stats().times();
        let started_at = crate::clock::now_rfc3339();
        let metadata = self.metadata().await?;
        self.validate().await?;
        let scopes = token_scopes(&metadata, &self.config);
        self.gateway.preflight(&scopes).await.map_err(|err| anyhow!("{err}"))?;

        let order = sync_order(&metadata.resource_types)?;
        let delta = self.delta_plan(&metadata, &order).await?;
        let run = RunStart { started, calls_before, started_at: &started_at, metadata: &metadata, order: &order };
        if let Some(previous) = delta.previous.as_ref().filter(|_| !self.full) {
            match self.run_incremental(&run, &delta, previous).await? {
                Some(summary) => return Ok(summary),
                None => {
                    tracing::warn!("a delta token has expired (the identity system answered 410): running a full sync");
                    return self.run_full(&run, &delta, SyncMode::FullAfterExpiredToken).await;
                }
            }
        }
        if self.full && delta.previous.is_some() {
            tracing::info!("--full: re-reading everything although the output allows an incremental sync");
        }
        self.run_full(&run, &delta, SyncMode::Full).await
    }

    async fn run_full(&self, run: &RunStart<'_>, delta: &DeltaPlan, mode: SyncMode) -> anyhow::Result<SyncSummary> {
        let metadata = run.metadata;
        let writer = SnapshotWriter::create(&self.output)?;
        writer.record_run_start(&metadata.name, &metadata.version, run.started_at)?;
        writer.write_resource_types(&metadata.resource_types)?;
        let writer = Mutex::new(writer);
        let mut progress = SyncProgress::new(self.gateway.stats().clone(), self.show_progress);
        let mut tally = Tally::default();
        // Tokens for "now" are taken before the listing, so changes made while it runs are
        // reported again by the next incremental sync (applying a change twice is harmless).
        let tokens = self.start_tracking(&delta.tracked).await;

        for kind in run.order {
            progress.start_phase(format!("{} resources", kind.id));
            self.list_resources_of(kind, &writer, &mut progress, &mut tally).await?;
        }
        for kind in run.order {
            progress.start_phase(format!("{} entitlements and grants", kind.id));
            self.list_access_of(kind, &writer, &mut progress, &mut tally).await?;
        }
        progress.finish();

        let mut writer = writer.into_inner().map_err(|_| anyhow!("the snapshot writer was poisoned by a panic"))?;
        if let Some(tokens) = tokens {
            writer.write_delta_state(&delta.state_with(tokens))?;
        }
        let summary = self.summary(run, mode, tally, writer.duplicates());
        self.finish(writer, summary)
    }

    /// The summary of a run, from what it counted.
    fn summary(&self, run: &RunStart<'_>, mode: SyncMode, tally: Tally, duplicates: u64) -> SyncSummary {
        let stats = self.gateway.stats();
        SyncSummary {
            mode,
            resources: tally.resources,
            entitlements: tally.entitlements,
            grants: tally.grants,
            gaps: tally.gaps,
            unsupported_principals: tally.unsupported_principals,
            requests: stats.requests(),
            throttled: stats.throttled(),
            resource_units: stats.resource_units(),
            sandbox: self.runtime.stats().times().since(&run.calls_before),
            duplicates,
            elapsed: run.started.elapsed(),
        }
    }

    /// Applies `--strict`, then puts the snapshot in place of the output.
    fn finish(&self, writer: SnapshotWriter, summary: SyncSummary) -> anyhow::Result<SyncSummary> {
        if self.strict && !summary.gaps.is_empty() {
            bail!(
                "{} listing(s) could not be read and --strict is set; the previous output is unchanged: {}",
                summary.gaps.len(),
                summary.gap_lines().join("; ")
            );
        }
        let stats = self.gateway.stats();
        writer.complete(&crate::clock::now_rfc3339(), stats.requests(), stats.throttled())?;
        Ok(summary)
    }

    async fn metadata(&self) -> anyhow::Result<ConnectorMetadata> {
        self.runtime.instantiate(self.gateway.clone()).await?.metadata().await
    }

    async fn validate(&self) -> anyhow::Result<()> {
        self.runtime
            .instantiate(self.gateway.clone())
            .await?
            .validate_config(&self.config)
            .await?
            .map_err(|err| anyhow!("{}", describe(&err)))
    }

    /// Turns a connector error into the run's error, preferring the host's own explanation
    /// (a refused origin, a refused token) over the guest's view of it.
    fn fail(&self, what: &str, error: &ConnectorError) -> anyhow::Error {
        match self.gateway.take_first_failure() {
            Some(cause) => anyhow!("{what} failed: {cause}"),
            None => anyhow!("{what} failed: {}", describe(error)),
        }
    }

    async fn list_resources_of(
        &self,
        kind: &ResourceType,
        writer: &Mutex<SnapshotWriter>,
        progress: &mut SyncProgress,
        tally: &mut Tally,
    ) -> anyhow::Result<()> {
        let Some(parent_type) = &kind.listed_under else {
            return self.list_resource_pages(kind, None, writer, progress, tally).await;
        };
        let mut after = 0;
        loop {
            let parents = lock(writer)?.resources_after(parent_type, after, BATCH)?;
            let Some((last, _)) = parents.last() else { return Ok(()) };
            after = *last;
            for (_, parent) in parents {
                let parent = ResourceRef { resource_type: parent.resource_type, id: parent.id };
                self.list_resource_pages(kind, Some(&parent), writer, progress, tally).await?;
            }
        }
    }

    async fn list_resource_pages(
        &self,
        kind: &ResourceType,
        parent: Option<&ResourceRef>,
        writer: &Mutex<SnapshotWriter>,
        progress: &mut SyncProgress,
        tally: &mut Tally,
    ) -> anyhow::Result<()> {
        let mut token: Option<String> = None;
        loop {
            let call = self.runtime.instantiate(self.gateway.clone()).await?;
            let page = match call.list_resources(&self.config, &kind.id, parent, token.as_deref()).await? {
                Ok(page) => page,
                Err(error) => {
                    let what = match parent {
                        Some(parent) => format!("listing {} of {} {}", kind.id, parent.resource_type, parent.id),
                        None => format!("listing {}", kind.id),
                    };
                    return Err(self.fail(&what, &error));
                }
            };
            let notices: Vec<(Notice, Option<(&str, &str)>)> = page
                .notices
                .iter()
                .map(|notice| (notice.clone(), parent.map(|p| (p.resource_type.as_str(), p.id.as_str()))))
                .collect();
            lock(writer)?.write_page(&page.items, &[], &[], &notices)?;
            *tally.resources.entry(kind.id.clone()).or_default() += page.items.len() as u64;
            tally.add_notices(&page.notices);
            progress.page(page.items.len());
            match page.next_page_token {
                Some(next) if Some(&next) == token.as_ref() => {
                    bail!(
                        "the connector returned the same page token twice while listing {}: stopping to avoid a loop",
                        kind.id
                    )
                }
                Some(next) => token = Some(next),
                None => return Ok(()),
            }
        }
    }

    async fn list_access_of(
        &self,
        kind: &ResourceType,
        writer: &Mutex<SnapshotWriter>,
        progress: &mut SyncProgress,
        tally: &mut Tally,
    ) -> anyhow::Result<()> {
        if !carries_entitlements(kind) {
            return Ok(());
        }
        let mut after = 0;
        loop {
            let batch = lock(writer)?.resources_after(&kind.id, after, BATCH)?;
            let Some((last, _)) = batch.last() else { return Ok(()) };
            after = *last;
            let resources = batch.into_iter().map(|(_, resource)| resource).collect();
            self.list_access_of_resources(resources, AccessListing::BOTH, writer, progress, tally).await?;
        }
    }

    /// Entitlements and/or grants of several resources, `workers` at a time.
    async fn list_access_of_resources(
        &self,
        resources: Vec<Resource>,
        listings: &[AccessListing],
        writer: &Mutex<SnapshotWriter>,
        progress: &mut SyncProgress,
        tally: &mut Tally,
    ) -> anyhow::Result<()> {
        let results: Vec<anyhow::Result<ResourceAccess>> = futures::stream::iter(
            resources
                .into_iter()
                .map(|resource| async move { self.list_access_of_resource(&resource, listings, writer).await }),
        )
        .buffered(self.workers.max(1))
        .collect()
        .await;
        for access in results {
            let access = access?;
            tally.entitlements += access.entitlements;
            tally.grants += access.grants;
            tally.add_notices(&access.notices);
            progress.page(access.entitlements as usize + access.grants as usize);
        }
        Ok(())
    }

    /// Entitlements, then grants, of one resource, written page by page.
    async fn list_access_of_resource(
        &self,
        resource: &Resource,
        listings: &[AccessListing],
        writer: &Mutex<SnapshotWriter>,
    ) -> anyhow::Result<ResourceAccess> {
        let mut access = ResourceAccess::default();
        let about = Some((resource.resource_type.as_str(), resource.id.as_str()));
        for &listing in listings {
            let mut token: Option<String> = None;
            loop {
                match self.list_access_page(listing, resource, token.as_deref()).await? {
                    Ok(page) => {
                        let notices: Vec<_> = page.notices.iter().map(|n| (n.clone(), about)).collect();
                        lock(writer)?.write_page(&[], &page.entitlements, &page.grants, &notices)?;
                        access.entitlements += page.entitlements.len() as u64;
                        access.grants += page.grants.len() as u64;
                        access.notices.extend(page.notices);
                        token = next_token(token, page.next_page_token, resource, listing.name())?;
                    }
                    Err(error) => {
                        let notice = self.gap_or_fail(resource, listing.name(), &error)?;
                        lock(writer)?.write_page(&[], &[], &[], &[(notice.clone(), about)])?;
                        access.notices.push(notice);
                        token = None;
                    }
                }
                if token.is_none() {
                    break;
                }
            }
        }
        Ok(access)
    }

    /// One page of a resource's entitlements or grants, from a fresh sandbox.
    async fn list_access_page(
        &self,
        listing: AccessListing,
        resource: &Resource,
        token: Option<&str>,
    ) -> anyhow::Result<Result<AccessPage, ConnectorError>> {
        let call = self.runtime.instantiate(self.gateway.clone()).await?;
        Ok(match listing {
            AccessListing::Entitlements => {
                call.list_entitlements(&self.config, resource, token).await?.map(|page| AccessPage {
                    entitlements: page.items,
                    grants: Vec::new(),
                    notices: page.notices,
                    next_page_token: page.next_page_token,
                })
            }
            AccessListing::Grants => call.list_grants(&self.config, resource, token).await?.map(|page| AccessPage {
                entitlements: Vec::new(),
                grants: page.items,
                notices: page.notices,
                next_page_token: page.next_page_token,
            }),
        })
    }

    /// A refused or vanished listing of one resource's access becomes a visible gap; any other
    /// error ends the sync, because its results cannot be trusted.
    fn gap_or_fail(&self, resource: &Resource, listing: &str, error: &ConnectorError) -> anyhow::Result<Notice> {
        let subject = format!("{listing} of {}:{}", resource.resource_type, resource.id);
        match error {
            ConnectorError::Forbidden(forbidden) => Ok(Notice {
                kind: NoticeKind::Gap,
                subject,
                message: describe(error),
                missing_permission: forbidden.missing_permission.clone(),
            }),
            ConnectorError::NotFound(_) => Ok(Notice {
                kind: NoticeKind::Gap,
                subject,
                message: format!("the resource disappeared during the sync: {}", describe(error)),
                missing_permission: None,
            }),
            other => Err(self.fail(&format!("listing {subject}"), other)),
        }
    }
}

/// Principal types that cannot be granted (users, managed identities) carry no entitlements,
/// as the contract says; asking would cost one sandbox call per principal for nothing.
fn carries_entitlements(kind: &ResourceType) -> bool {
    !kind.is_principal || kind.capabilities.intersects(Capabilities::GRANT | Capabilities::REVOKE)
}

fn next_token(
    previous: Option<String>,
    next: Option<String>,
    resource: &Resource,
    listing: &str,
) -> anyhow::Result<Option<String>> {
    if next.is_some() && next == previous {
        bail!(
            "the connector returned the same page token twice while listing {listing} of {}:{}: stopping to avoid a loop",
            resource.resource_type,
            resource.id
        );
    }
    Ok(next)
}

fn lock(writer: &Mutex<SnapshotWriter>) -> anyhow::Result<std::sync::MutexGuard<'_, SnapshotWriter>> {
    writer.lock().map_err(|_| anyhow!("the snapshot writer was poisoned by a panic"))
}

/// Resource types that can be synced, parents before the types listed under them.
fn sync_order(types: &[ResourceType]) -> anyhow::Result<Vec<ResourceType>> {
    let syncable: Vec<&ResourceType> =
        types.iter().filter(|kind| kind.capabilities.contains(Capabilities::SYNC)).collect();
    let mut ordered: Vec<ResourceType> = Vec::new();
    let mut remaining = syncable;
    while !remaining.is_empty() {
        let before = remaining.len();
        let (ready, waiting): (Vec<&ResourceType>, Vec<&ResourceType>) =
            remaining.into_iter().partition(|kind| match &kind.listed_under {
                None => true,
                Some(parent) => ordered.iter().any(|done| &done.id == parent),
            });
        ordered.extend(ready.into_iter().cloned());
        remaining = waiting;
        if remaining.len() == before {
            let names: Vec<&str> = remaining.iter().map(|kind| kind.id.as_str()).collect();
            bail!(
                "the connector declares resource types listed under types it cannot sync (or in a cycle): {}",
                names.join(", ")
            );
        }
    }
    Ok(ordered)
}

#[derive(Clone, Copy)]
enum AccessListing {
    Entitlements,
    Grants,
}

impl AccessListing {
    const BOTH: &'static [AccessListing] = &[AccessListing::Entitlements, AccessListing::Grants];

    fn name(self) -> &'static str {
        match self {
            AccessListing::Entitlements => "entitlements",
            AccessListing::Grants => "grants",
        }
    }
}

/// A page of either listing, so both are written and counted the same way.
struct AccessPage {
    entitlements: Vec<crate::sandbox::Entitlement>,
    grants: Vec<crate::sandbox::Grant>,
    notices: Vec<Notice>,
    next_page_token: Option<String>,
}

#[derive(Default)]
struct ResourceAccess {
    entitlements: u64,
    grants: u64,
    notices: Vec<Notice>,
}

/// What the sync saw. Gaps are kept whole (they are few and each must be reported);
/// unsupported principals are counted (a large tenant can have many devices in groups).
#[derive(Default)]
struct Tally {
    resources: BTreeMap<String, u64>,
    entitlements: u64,
    grants: u64,
    gaps: Vec<Notice>,
    unsupported_principals: u64,
}

impl Tally {
    fn add_notices(&mut self, notices: &[Notice]) {
        for notice in notices {
            match notice.kind {
                NoticeKind::Gap => self.gaps.push(notice.clone()),
                NoticeKind::UnsupportedPrincipal => self.unsupported_principals += 1,
            }
        }
    }
}
