//! The sync engine: drives the connector's paged calls for every resource type and streams
//! the answers into a snapshot.
//!
//! Order: a resource type's resources are listed first; then, at once, their entitlements and
//! grants and the types listed under it. Types that do not depend on each other are synced at
//! the same time. Each call runs in a fresh sandbox instance; at most `workers` calls run at
//! once, across all listings, and each listing reads its resources from the snapshot a batch
//! at a time, so memory stays bounded by pages in flight, not by the tenant.
//!
//! When the output allows it, the run is incremental instead (see `incremental`): the same
//! primitives, applied to a copy of the previous snapshot.

mod checks;
mod incremental;
mod progress;
pub mod summary;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use futures::future::BoxFuture;
use futures::{FutureExt as _, Stream, TryStreamExt as _};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::cli::FullSyncInterval;
use crate::connector_error::describe;
use crate::outbound::gateway::TenantGateway;
use crate::sandbox::{
    Capabilities, ConfigValue, ConnectorError, ConnectorMetadata, ConnectorRuntime, GrantChanges, Notice, NoticeKind,
    Resource, ResourceRef, ResourceType,
};
use crate::store::{
    ConflictingDuplicate, ListingProgress, PageProgress, RecordedIdentity, SnapshotIdentity, SnapshotWriter,
    recorded_identity,
};
use checks::PageTokens;
use incremental::{DeltaPlan, Incremental, RunStart};
pub use progress::SyncProgress;
pub use summary::{SyncMode, SyncSummary};

pub struct SyncJob {
    pub runtime: Arc<ConnectorRuntime>,
    /// What the connector declared when `gateway` was built from it; never read again through
    /// a gateway that can reach the network.
    pub metadata: ConnectorMetadata,
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
    /// Re-read everything when the output's last full sync began longer ago than this.
    pub full_sync_interval: FullSyncInterval,
    /// Whose data this sync reads: part of every fingerprint, so no other tenant's snapshot or
    /// partial file is ever continued.
    pub identity: SnapshotIdentity,
    /// The longest a sync may run; past it, it stops and keeps the previous snapshot.
    pub deadline: Duration,
}

const BATCH: usize = 256;

impl SyncJob {
    /// Runs the sync within its deadline. Stopped at the deadline, it leaves the previous
    /// snapshot in place and its partial file to be resumed, like a killed sync.
    pub async fn run(self) -> anyhow::Result<SyncSummary> {
        match tokio::time::timeout(self.deadline, self.sync()).await {
            Ok(outcome) => outcome,
            Err(_) => bail!(
                "the sync ran longer than its deadline of {} (--sync-deadline) and was stopped; the previous \
                 snapshot is unchanged and the next sync resumes from the last checkpoint (raise the deadline \
                 if the tenant needs longer)",
                humantime::format_duration(self.deadline)
            ),
        }
    }

    async fn sync(&self) -> anyhow::Result<SyncSummary> {
        let started = Instant::now();
        let calls_before = self.runtime.stats().times();
        let started_at = crate::clock::now_rfc3339();
        SnapshotWriter::check_inputs(&self.output)?;
        let metadata = self.metadata.clone();
        self.validate().await?;
        self.gateway.preflight().await.map_err(|err| anyhow!("{err}"))?;

        let order = sync_order(&metadata.resource_types)?;
        let another_identity = self.explain_identity_change();
        let delta = self.delta_plan(&metadata, &order).await?;
        let run = RunStart { started, calls_before, started_at: &started_at, metadata: &metadata, order: &order };
        // An interrupted full sync is resumed before any incremental sync is considered.
        let resumable = SnapshotWriter::resumable(&self.output, &fingerprint(&metadata, &self.config, &self.identity));
        if let Some(previous) = delta.previous.as_ref().filter(|_| !self.full && !resumable) {
            if let Some(reason) = self.full_sync_due(previous) {
                tracing::info!("{reason}: re-reading everything");
                return self.run_full(&run, &delta, SyncMode::FullByInterval).await;
            }
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
        let mode = if another_identity { SyncMode::FullForAnotherIdentity } else { SyncMode::Full };
        self.run_full(&run, &delta, mode).await
    }

    /// Logs why the output's snapshot or partial file is not continued when it holds another
    /// tenant's data (or says nothing of whose); the fingerprints already see to it that it is
    /// not. True when the output's snapshot is of another tenant, app registration or login URL.
    fn explain_identity_change(&self) -> bool {
        if let Ok(partial) = SnapshotWriter::partial_file(&self.output)
            && let RecordedIdentity::Recorded(recorded) = recorded_identity(&partial)
            && recorded != self.identity
        {
            tracing::warn!(partial = %partial.display(), differences = %recorded.differences(&self.identity),
                "the interrupted sync in the partial file read another tenant: it is not resumed, the sync starts afresh");
        }
        match recorded_identity(&self.output) {
            RecordedIdentity::Recorded(recorded) if recorded != self.identity => {
                tracing::warn!(output = %self.output.display(), differences = %recorded.differences(&self.identity),
                    "the output holds a snapshot of another tenant: running a full sync, nothing of it is reused");
                true
            }
            RecordedIdentity::Unrecorded => {
                tracing::info!(output = %self.output.display(),
                    "the output's snapshot does not record which tenant it holds (an older version wrote it): running a full sync");
                false
            }
            _ => false,
        }
    }

    async fn run_full(&self, run: &RunStart<'_>, delta: &DeltaPlan, mode: SyncMode) -> anyhow::Result<SyncSummary> {
        let metadata = run.metadata;
        let mut writer = SnapshotWriter::open(&self.output, &fingerprint(metadata, &self.config, &self.identity))?;
        if writer.completed()? {
            tracing::info!(output = %self.output.display(), "the interrupted sync had completed: putting it in place");
            return self.finish(run, mode, writer);
        }
        if writer.resumed() {
            tracing::info!(output = %self.output.display(), "resuming the interrupted sync from its last checkpoint");
        } else if let Some(tokens) = self.start_tracking(&delta.tracked).await {
            // Tokens for "now" are taken before the listing (and kept in the partial file, so a
            // resumed run uses them too): changes made while it runs are reported again by the
            // next incremental sync (applying a change twice is harmless).
            writer.write_delta_state(&delta.state_with(tokens, run.started_at))?;
        }
        writer.record_run_start(&metadata.name, &metadata.version, run.started_at)?;
        writer.record_identity(&self.identity)?;
        writer.write_resource_types(&metadata.resource_types)?;
        let writer = Mutex::new(writer);
        let progress = SyncProgress::new(self.gateway.stats().clone(), self.show_progress);
        let sync = SyncRun::new(self, &writer, &progress, run.order, None);
        let roots = run.order.iter().filter(|kind| kind.listed_under.is_none()).map(|kind| sync.sync_type(kind));
        let listed = futures::future::try_join_all(roots).await;
        progress.finish();
        if let Err(error) = listed {
            return Err(abandon_if_contradictory(writer, error));
        }

        let writer = writer.into_inner().map_err(|_| anyhow!("the snapshot writer was poisoned by a panic"))?;
        self.finish(run, mode, writer)
    }

    /// Counts the snapshot, applies `--strict`, then puts the snapshot in place of the output.
    fn finish(&self, run: &RunStart<'_>, mode: SyncMode, writer: SnapshotWriter) -> anyhow::Result<SyncSummary> {
        let stats = self.gateway.stats();
        let counts = writer.counts()?;
        let summary = SyncSummary {
            mode,
            resumed: writer.resumed(),
            resources: counts.resources,
            entitlements: counts.entitlements,
            grants: counts.grants,
            gaps: counts.gaps,
            unsupported_principals: counts.unsupported_principals,
            requests: stats.requests(),
            throttled: stats.throttled(),
            resource_units: stats.resource_units(),
            sandbox: self.runtime.stats().times().since(&run.calls_before),
            duplicates: writer.duplicates(),
            elapsed: run.started.elapsed(),
        };
        if self.strict && !summary.gaps.is_empty() {
            writer.discard();
            bail!(
                "{} listing(s) could not be read and --strict is set; the previous output is unchanged: {}",
                summary.gaps.len(),
                summary.gap_lines().join("; ")
            );
        }
        writer.complete(&crate::clock::now_rfc3339(), stats.requests(), stats.throttled())?;
        Ok(summary)
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

/// One run of a sync job: the snapshot being written, progress, and the sandbox calls in flight.
struct SyncRun<'a> {
    job: &'a SyncJob,
    writer: &'a Mutex<SnapshotWriter>,
    progress: &'a SyncProgress,
    /// Sandbox calls at once, across every listing.
    calls: Semaphore,
    /// Syncable types, parents before the types listed under them.
    types: &'a [ResourceType],
    /// Set in an incremental run: what the delta queries already told.
    incremental: Option<&'a Incremental>,
}

impl<'a> SyncRun<'a> {
    fn new(
        job: &'a SyncJob,
        writer: &'a Mutex<SnapshotWriter>,
        progress: &'a SyncProgress,
        types: &'a [ResourceType],
        incremental: Option<&'a Incremental>,
    ) -> Self {
        SyncRun { job, writer, progress, calls: Semaphore::new(job.workers.max(1)), types, incremental }
    }

    /// Lists the resources of `kind`; then, at once, their entitlements and grants and the
    /// types listed under `kind`.
    fn sync_type<'s>(&'s self, kind: &'s ResourceType) -> BoxFuture<'s, anyhow::Result<()>> {
        async move {
            // An incremental run has applied the changes of a tracked type already.
            let tracked = self.incremental.and_then(|incremental| incremental.tracked(kind));
            if tracked.is_none() {
                let phase = format!("{} resources", kind.id);
                self.progress.start_phase(&phase);
                self.list_resources_of(kind, &phase).await?;
                self.progress.finish_phase(&phase);
            }
            let children = self.types.iter().filter(|child| child.listed_under.as_deref() == Some(kind.id.as_str()));
            let access = match (tracked, self.incremental) {
                (Some(tracked), Some(incremental)) if !matches!(tracked.grants, GrantChanges::RelistedForAll) => {
                    self.list_access_of_changed(kind, tracked.grants, incremental).boxed()
                }
                _ => self.list_access_of(kind).boxed(),
            };
            let mut work = vec![access];
            work.extend(children.map(|child| self.sync_type(child)));
            futures::future::try_join_all(work).await.map(|_| ())
        }
        .boxed()
    }

    /// A slot for one sandbox call.
    async fn call_slot(&self) -> anyhow::Result<SemaphorePermit<'_>> {
        self.calls.acquire().await.map_err(|_| anyhow!("the sync was stopped"))
    }

    /// The resources of a type in listing order, read from the snapshot a batch at a time.
    fn resources<'s>(&'s self, resource_type: &'s str) -> impl Stream<Item = anyhow::Result<Resource>> + Send + 's {
        futures::stream::try_unfold(0_i64, move |after| async move {
            let batch = lock(self.writer)?.resources_after(resource_type, after, BATCH)?;
            let Some((last, _)) = batch.last() else { return anyhow::Ok(None) };
            let last = *last;
            let resources: Vec<anyhow::Result<Resource>> =
                batch.into_iter().map(|(_, resource)| Ok(resource)).collect();
            Ok(Some((futures::stream::iter(resources), last)))
        })
        .try_flatten()
    }

    async fn list_resources_of(&self, kind: &ResourceType, phase: &str) -> anyhow::Result<()> {
        let Some(parent_type) = &kind.listed_under else {
            return self.list_resource_pages(kind, None, phase).await;
        };
        self.resources(parent_type)
            .try_for_each_concurrent(self.job.workers.max(1), |parent| async move {
                let parent = ResourceRef { resource_type: parent.resource_type, id: parent.id };
                self.list_resource_pages(kind, Some(&parent), phase).await
            })
            .await
    }

    async fn list_resource_pages(
        &self,
        kind: &ResourceType,
        parent: Option<&ResourceRef>,
        phase: &str,
    ) -> anyhow::Result<()> {
        let job = self.job;
        let listing = format!("resources:{}", kind.id);
        let scope = parent.map(|p| format!("{}:{}", p.resource_type, p.id)).unwrap_or_default();
        let mut token = match lock(self.writer)?.progress(&listing, &scope)? {
            ListingProgress::Done => return Ok(()),
            ListingProgress::Next(token) => Some(token),
            ListingProgress::NotStarted => None,
        };
        let what = match parent {
            Some(parent) => format!("listing {} of {} {}", kind.id, parent.resource_type, parent.id),
            None => format!("listing {}", kind.id),
        };
        let mut tokens = PageTokens::starting_at(token.as_deref());
        loop {
            let answer = {
                let _slot = self.call_slot().await?;
                let call = job.runtime.instantiate(job.gateway.clone()).await?;
                call.list_resources(&job.config, &kind.id, parent, token.as_deref()).await?
            };
            let page = match answer {
                Ok(page) => page,
                Err(error) => return Err(job.fail(&what, &error)),
            };
            checks::check_listed(&what, &kind.id, parent, &page.items)?;
            tokens.accept(page.next_page_token.as_deref(), &what)?;
            let notices: Vec<(Notice, Option<(&str, &str)>)> = page
                .notices
                .iter()
                .map(|notice| (notice.clone(), parent.map(|p| (p.resource_type.as_str(), p.id.as_str()))))
                .collect();
            let checkpoint =
                PageProgress { listing: &listing, scope: &scope, next_page_token: page.next_page_token.as_deref() };
            lock(self.writer)?.write_page(&page.items, &[], &[], &notices, &checkpoint)?;
            self.progress.page(phase, page.items.len());
            match page.next_page_token {
                Some(next) => token = Some(next),
                None => return Ok(()),
            }
        }
    }

    async fn list_access_of(&self, kind: &ResourceType) -> anyhow::Result<()> {
        if !carries_entitlements(kind) {
            return Ok(());
        }
        let phase = format!("{} entitlements and grants", kind.id);
        self.progress.start_phase(&phase);
        let phase_name = phase.as_str();
        self.resources(&kind.id)
            .try_for_each_concurrent(self.job.workers.max(1), |resource| async move {
                let written = self.list_access_of_resource(&resource, AccessListing::BOTH).await?;
                self.progress.page(phase_name, written as usize);
                Ok(())
            })
            .await?;
        self.progress.finish_phase(&phase);
        Ok(())
    }

    /// Entitlements, then grants, of one resource, written page by page, each page with its
    /// checkpoint. Returns how many objects were written.
    async fn list_access_of_resource(&self, resource: &Resource, listings: &[AccessListing]) -> anyhow::Result<u64> {
        let mut written = 0;
        let about = Some((resource.resource_type.as_str(), resource.id.as_str()));
        let scope = format!("{}:{}", resource.resource_type, resource.id);
        for &listing in listings {
            let checkpoint_name = listing.name();
            let mut token = match lock(self.writer)?.progress(checkpoint_name, &scope)? {
                ListingProgress::Done => continue,
                ListingProgress::Next(token) => Some(token),
                ListingProgress::NotStarted => None,
            };
            let what = format!("listing {checkpoint_name} of {scope}");
            let mut tokens = PageTokens::starting_at(token.as_deref());
            // Grants may only be of the entitlements the resource's own listing returned.
            let owned = match listing {
                AccessListing::Grants => lock(self.writer)?.entitlement_ids_of(resource)?,
                AccessListing::Entitlements => Default::default(),
            };
            loop {
                match self.list_access_page(listing, resource, token.as_deref()).await? {
                    Ok(page) => {
                        checks::check_entitlements(&what, resource, &page.entitlements)?;
                        checks::check_grants(&what, &page.grants, |id| owned.contains(id))?;
                        tokens.accept(page.next_page_token.as_deref(), &what)?;
                        let next = page.next_page_token;
                        let notices: Vec<_> = page.notices.iter().map(|n| (n.clone(), about)).collect();
                        let checkpoint =
                            PageProgress { listing: checkpoint_name, scope: &scope, next_page_token: next.as_deref() };
                        lock(self.writer)?.write_page(&[], &page.entitlements, &page.grants, &notices, &checkpoint)?;
                        written += (page.entitlements.len() + page.grants.len()) as u64;
                        token = next;
                    }
                    Err(error) => {
                        let notice = self.job.gap_or_fail(resource, listing.name(), &error)?;
                        let checkpoint =
                            PageProgress { listing: checkpoint_name, scope: &scope, next_page_token: None };
                        lock(self.writer)?.write_page(&[], &[], &[], &[(notice, about)], &checkpoint)?;
                        token = None;
                    }
                }
                if token.is_none() {
                    break;
                }
            }
        }
        Ok(written)
    }

    /// One page of a resource's entitlements or grants, from a fresh sandbox.
    async fn list_access_page(
        &self,
        listing: AccessListing,
        resource: &Resource,
        token: Option<&str>,
    ) -> anyhow::Result<Result<AccessPage, ConnectorError>> {
        let job = self.job;
        let _slot = self.call_slot().await?;
        let call = job.runtime.instantiate(job.gateway.clone()).await?;
        Ok(match listing {
            AccessListing::Entitlements => {
                call.list_entitlements(&job.config, resource, token).await?.map(|page| AccessPage {
                    entitlements: page.items,
                    grants: Vec::new(),
                    notices: page.notices,
                    next_page_token: page.next_page_token,
                })
            }
            AccessListing::Grants => call.list_grants(&job.config, resource, token).await?.map(|page| AccessPage {
                entitlements: Vec::new(),
                grants: page.items,
                notices: page.notices,
                next_page_token: page.next_page_token,
            }),
        })
    }
}

/// Principal types that cannot be granted (users, managed identities) carry no entitlements,
/// as the contract says; asking would cost one sandbox call per principal for nothing.
fn carries_entitlements(kind: &ResourceType) -> bool {
    !kind.is_principal || kind.capabilities.intersects(Capabilities::GRANT | Capabilities::REVOKE)
}

/// A listing that contradicted itself (an object twice, with different content) leaves a
/// partial file that resuming would only meet again: it is thrown away. Any other failure keeps
/// it, so the next run resumes.
fn abandon_if_contradictory(writer: Mutex<SnapshotWriter>, error: anyhow::Error) -> anyhow::Error {
    if error.chain().any(|cause| cause.is::<ConflictingDuplicate>())
        && let Ok(writer) = writer.into_inner()
    {
        writer.discard();
    }
    error
}

fn lock(writer: &Mutex<SnapshotWriter>) -> anyhow::Result<std::sync::MutexGuard<'_, SnapshotWriter>> {
    writer.lock().map_err(|_| anyhow!("the snapshot writer was poisoned by a panic"))
}

/// What identifies a sync for resuming: the tenant it reads, the connector, its version and
/// its configuration. A partial snapshot written under another fingerprint is not resumed.
fn fingerprint(metadata: &ConnectorMetadata, config: &[ConfigValue], identity: &SnapshotIdentity) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    identity.hash_into(&mut hash);
    for part in [&metadata.name, &metadata.version] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    for value in config {
        hash.update(value.key.as_bytes());
        hash.update([0]);
        hash.update(value.value.as_bytes());
        hash.update([0]);
    }
    hash.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
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
