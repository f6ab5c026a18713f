//! Incremental sync: start from the previous complete snapshot, apply what the connector's
//! delta queries report for the types it tracks, and re-list everything else, so the result
//! equals a full sync (see docs/decisions.md, "Incremental sync").
//!
//! Used when the component exports `idgov:connector/incremental`, the output holds delta
//! tokens issued for the same connector version and configuration, and `--full` is not set.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use futures::TryStreamExt as _;
use sha2::{Digest, Sha256};

use super::checks::{PageTokens, check_types};
use super::{
    AccessListing, SyncJob, SyncMode, SyncProgress, SyncRun, SyncSummary, abandon_if_contradictory,
    carries_entitlements, lock,
};
use crate::cli::FullSyncInterval;
use crate::sandbox::{CallTimes, ConnectorError, ConnectorMetadata, GrantChanges, Resource, ResourceType, TrackedType};
use crate::store::{DeltaState, ListingProgress, PageProgress, SnapshotIdentity, SnapshotWriter, previous_delta_state};

/// What every run (full or incremental) starts from.
pub(super) struct RunStart<'a> {
    pub started: Instant,
    pub calls_before: CallTimes,
    pub started_at: &'a str,
    pub metadata: &'a ConnectorMetadata,
    /// Syncable resource types, parents first.
    pub order: &'a [ResourceType],
}

/// Which types the connector tracks, and the previous snapshot's tokens when they can be used.
pub(super) struct DeltaPlan {
    pub tracked: Vec<TrackedType>,
    connector: String,
    fingerprint: String,
    pub previous: Option<DeltaState>,
}

impl DeltaPlan {
    /// The state a run leaves for the next one: its tokens, and when the full sync the chain of
    /// incremental syncs started from began.
    pub fn state_with(&self, tokens: BTreeMap<String, String>, full_sync_started_at: &str) -> DeltaState {
        DeltaState {
            connector: self.connector.clone(),
            config_fingerprint: self.fingerprint.clone(),
            tokens,
            full_sync_started_at: full_sync_started_at.to_owned(),
        }
    }

    fn tracked(&self, kind: &ResourceType) -> Option<&TrackedType> {
        self.tracked.iter().find(|tracked| tracked.resource_type == kind.id)
    }

    /// Identifies an incremental run: same connector and configuration, starting from the
    /// same previous snapshot (its delta tokens). Only such a run's partial file is resumed.
    fn incremental_fingerprint(&self, previous: &DeltaState) -> String {
        let mut hash = Sha256::new();
        hash.update(b"incremental\0");
        hash.update(self.fingerprint.as_bytes());
        for (resource_type, token) in &previous.tokens {
            hash.update([0]);
            hash.update(resource_type.as_bytes());
            hash.update([0]);
            hash.update(token.as_bytes());
        }
        hex(&hash.finalize())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// What the delta queries of an incremental run told: the types they track, and the
/// resources they reported changed (whose access is listed again), by type.
pub(super) struct Incremental {
    tracked: Vec<TrackedType>,
    changed: BTreeMap<String, Vec<Resource>>,
}

/// The checkpoint that says step 2 of an incremental run (clearing what is listed again) is done.
const CLEARED: &str = "incremental:cleared";

impl Incremental {
    pub fn tracked(&self, kind: &ResourceType) -> Option<&TrackedType> {
        self.tracked.iter().find(|tracked| tracked.resource_type == kind.id)
    }
}

/// Delta tokens are only valid for the tenant and the queries they were issued for: another
/// tenant, app registration or login endpoint, a new connector version or another
/// configuration (page size, filters, endpoints) needs a full sync.
fn delta_fingerprint(
    metadata: &ConnectorMetadata,
    config: &[crate::sandbox::ConfigValue],
    identity: &SnapshotIdentity,
) -> String {
    let mut pairs: Vec<(&str, &str)> = config.iter().map(|value| (value.key.as_str(), value.value.as_str())).collect();
    pairs.sort();
    let mut hash = Sha256::new();
    identity.hash_into(&mut hash);
    hash.update(metadata.name.as_bytes());
    hash.update([0]);
    hash.update(metadata.version.as_bytes());
    for (key, value) in pairs {
        hash.update([0]);
        hash.update(key.as_bytes());
        hash.update([0]);
        hash.update(value.as_bytes());
    }
    hex(&hash.finalize())
}

impl SyncJob {
    pub(super) async fn delta_plan(
        &self,
        metadata: &ConnectorMetadata,
        order: &[ResourceType],
    ) -> anyhow::Result<DeltaPlan> {
        let mut tracked = Vec::new();
        if self.runtime.supports_incremental() {
            let offered = self.runtime.instantiate(self.gateway.clone()).await?.tracked_types(&self.config).await?;
            // Only types this sync lists; a tracked type the connector does not declare is ignored.
            tracked = offered.into_iter().filter(|t| order.iter().any(|kind| kind.id == t.resource_type)).collect();
        }
        let mut plan = DeltaPlan {
            tracked,
            connector: metadata.name.clone(),
            fingerprint: delta_fingerprint(metadata, &self.config, &self.identity),
            previous: None,
        };
        if !plan.tracked.is_empty() {
            plan.previous = previous_delta_state(&self.output).filter(|previous| {
                previous.connector == plan.connector
                    && previous.config_fingerprint == plan.fingerprint
                    && plan.tracked.iter().all(|tracked| previous.tokens.contains_key(&tracked.resource_type))
            });
        }
        Ok(plan)
    }

    /// Why the previous snapshot's chain of incremental syncs must end with a full one now, if
    /// it must: its full sync began longer ago than `--full-sync-interval` (or at an unreadable time).
    pub(super) fn full_sync_due(&self, previous: &DeltaState) -> Option<String> {
        let FullSyncInterval::Every(interval) = self.full_sync_interval else { return None };
        let Ok(began) = humantime::parse_rfc3339(&previous.full_sync_started_at) else {
            return Some(format!("the last full sync's start {:?} is unreadable", previous.full_sync_started_at));
        };
        let age = std::time::SystemTime::now().duration_since(began).unwrap_or_default();
        (age > interval).then(|| {
            format!(
                "the last full sync began at {} ({} ago), longer ago than --full-sync-interval {}",
                previous.full_sync_started_at,
                humantime::format_duration(Duration::from_secs(age.as_secs())),
                humantime::format_duration(interval)
            )
        })
    }

    /// Delta tokens for "now", one per tracked type. Failing here only costs the next sync its
    /// incrementality, so it is logged, not fatal.
    pub(super) async fn start_tracking(&self, tracked: &[TrackedType]) -> Option<BTreeMap<String, String>> {
        if tracked.is_empty() {
            return None;
        }
        let mut tokens = BTreeMap::new();
        for kind in tracked {
            let mut page_token: Option<String> = None;
            let mut seen = PageTokens::starting_at(None);
            loop {
                let answer = async {
                    let call = self.runtime.instantiate(self.gateway.clone()).await?;
                    call.list_changes(&self.config, &kind.resource_type, None, page_token.as_deref()).await
                }
                .await;
                let page = match answer {
                    Ok(Ok(page)) => page,
                    Ok(Err(error)) => {
                        tracing::warn!(resource_type = %kind.resource_type, error = %crate::connector_error::describe(&error),
                            "cannot start tracking changes: the next sync will be full");
                        return None;
                    }
                    Err(error) => {
                        tracing::warn!(resource_type = %kind.resource_type, error = %format!("{error:#}"),
                            "cannot start tracking changes: the next sync will be full");
                        return None;
                    }
                };
                let what = format!("taking a delta token for {}", kind.resource_type);
                if let Err(error) = seen.accept(page.next_page_token.as_deref(), &what) {
                    tracing::warn!(error = %format!("{error:#}"), "cannot start tracking changes: the next sync will be full");
                    return None;
                }
                match (page.next_page_token, page.delta_token) {
                    (Some(next), _) => page_token = Some(next),
                    (_, Some(delta_token)) => {
                        tokens.insert(kind.resource_type.clone(), delta_token);
                        break;
                    }
                    _ => {
                        tracing::warn!(resource_type = %kind.resource_type,
                            "the connector gave no delta token: the next sync will be full");
                        return None;
                    }
                }
            }
        }
        Some(tokens)
    }

    /// `Ok(None)` when a delta token has expired: the caller runs a full sync instead.
    pub(super) async fn run_incremental(
        &self,
        run: &RunStart<'_>,
        delta: &DeltaPlan,
        previous: &DeltaState,
    ) -> anyhow::Result<Option<SyncSummary>> {
        let metadata = run.metadata;
        let writer = SnapshotWriter::continue_from(&self.output, &delta.incremental_fingerprint(previous))?;
        if writer.completed()? {
            tracing::info!(output = %self.output.display(), "the interrupted incremental sync had completed: putting it in place");
            return self.finish(run, SyncMode::Incremental, writer).map(Some);
        }
        if writer.resumed() {
            tracing::info!(output = %self.output.display(), "resuming the interrupted incremental sync from its last checkpoint");
        }
        writer.record_run_start(&metadata.name, &metadata.version, run.started_at)?;
        writer.record_identity(&self.identity)?;
        writer.write_resource_types(&metadata.resource_types)?;
        let writer = Mutex::new(writer);
        let progress = SyncProgress::new(self.gateway.stats().clone(), self.show_progress);

        // 1. Changes of the tracked types (a resumed run skips those it applied already).
        let mut tokens = BTreeMap::new();
        {
            let sync = SyncRun::new(self, &writer, &progress, run.order, None);
            for kind in run.order.iter().filter(|kind| delta.tracked(kind).is_some()) {
                let applied = match previous.tokens.get(&kind.id) {
                    Some(token) => sync.apply_changes(kind, token).await?,
                    None => None,
                };
                let Some(next_token) = applied else {
                    progress.finish();
                    writer.into_inner().map_err(|_| anyhow!("the snapshot writer was poisoned by a panic"))?.discard();
                    return Ok(None);
                };
                tokens.insert(kind.id.clone(), next_token);
            }
        }
        // 2. Untracked types are listed again from scratch; tracked types whose grants the
        // changes do not tell have their access listed again. Once: a resumed run keeps what
        // it listed since.
        let incremental = {
            let mut writer = lock(&writer)?;
            if !matches!(writer.progress(CLEARED, "")?, ListingProgress::Done) {
                for kind in run.order {
                    match delta.tracked(kind) {
                        None => writer.clear_type(&kind.id)?,
                        Some(tracked)
                            if matches!(tracked.grants, GrantChanges::RelistedForAll) && carries_entitlements(kind) =>
                        {
                            writer.clear_access_of_type(&kind.id)?
                        }
                        Some(_) => {}
                    }
                }
                writer.write_page(
                    &[],
                    &[],
                    &[],
                    &[],
                    &PageProgress { listing: CLEARED, scope: "", next_page_token: None },
                )?;
            }
            let mut changed = BTreeMap::new();
            for tracked in &delta.tracked {
                changed.insert(tracked.resource_type.clone(), writer.changed_resources(&tracked.resource_type)?);
            }
            Incremental { tracked: delta.tracked.clone(), changed }
        };
        // 3. The same concurrent engine as a full sync, skipping what the changes told.
        let sync = SyncRun::new(self, &writer, &progress, run.order, Some(&incremental));
        let roots = run.order.iter().filter(|kind| kind.listed_under.is_none()).map(|kind| sync.sync_type(kind));
        let listed = futures::future::try_join_all(roots).await;
        progress.finish();
        if let Err(error) = listed {
            return Err(abandon_if_contradictory(writer, error));
        }

        let mut writer = writer.into_inner().map_err(|_| anyhow!("the snapshot writer was poisoned by a panic"))?;
        writer.write_delta_state(&delta.state_with(tokens, &previous.full_sync_started_at))?;
        // The snapshot holds more than this run saw: `finish` counts it from the snapshot itself.
        self.finish(run, SyncMode::Incremental, writer).map(Some)
    }
}

impl SyncRun<'_> {
    /// Applies every page of changes of one type, from its checkpoint when the run is resumed.
    /// Returns the new delta token, or `None` when the previous one has expired.
    async fn apply_changes(&self, kind: &ResourceType, delta_token: &str) -> anyhow::Result<Option<String>> {
        let job = self.job;
        let listing = format!("changes:{}", kind.id);
        let checkpoint = lock(self.writer)?.progress(&listing, "")?;
        let mut page_token = match checkpoint {
            ListingProgress::Done => {
                let staged = lock(self.writer)?.staged_delta_token(&kind.id)?;
                return staged.map(Some).ok_or_else(|| {
                    anyhow!("the checkpoint of the changes of {} lost its delta token: run with --full", kind.id)
                });
            }
            ListingProgress::Next(token) => Some(token),
            ListingProgress::NotStarted => None,
        };
        let phase = format!("{} changes", kind.id);
        let what = format!("listing changes of {}", kind.id);
        let mut tokens = PageTokens::starting_at(page_token.as_deref());
        self.progress.start_phase(&phase);
        loop {
            let answer = {
                let _slot = self.call_slot().await?;
                let call = job.runtime.instantiate(job.gateway.clone()).await?;
                call.list_changes(&job.config, &kind.id, Some(delta_token), page_token.as_deref()).await?
            };
            let page = match answer {
                Ok(page) => page,
                Err(ConnectorError::Upstream(upstream)) if upstream.status == 410 => {
                    tracing::warn!(resource_type = %kind.id, code = %upstream.code, message = %upstream.message,
                        "the delta token of the previous sync is no longer valid");
                    return Ok(None);
                }
                Err(error) => return Err(job.fail(&what, &error)),
            };
            tokens.accept(page.next_page_token.as_deref(), &what)?;
            if page.next_page_token.is_none() && page.delta_token.is_none() {
                anyhow::bail!("the connector ended the changes of {} without a delta token", kind.id)
            }
            check_types(&what, &kind.id, &page.upserted)?;
            let notices: Vec<_> = page.notices.iter().map(|notice| (notice.clone(), None)).collect();
            let removals: Vec<(String, String)> = page
                .grants_removed
                .iter()
                .map(|removal| (removal.entitlement_id.clone(), removal.principal_id.clone()))
                .collect();
            {
                // Applying a page twice (killed before its checkpoint) is harmless: upserts,
                // deletes and INSERT OR IGNORE. The checkpoint is written last.
                let mut writer = lock(self.writer)?;
                writer.remove_resources(&kind.id, &page.removed)?;
                writer.upsert_resources(&page.upserted)?;
                writer.remove_grants(&removals)?;
                writer.add_grants(&page.grants_added)?;
                if let Some(next_delta_token) = &page.delta_token {
                    writer.stage_delta_token(&kind.id, next_delta_token)?;
                }
                let checkpoint =
                    PageProgress { listing: &listing, scope: "", next_page_token: page.next_page_token.as_deref() };
                writer.write_page(&[], &[], &[], &notices, &checkpoint)?;
            }
            self.progress
                .page(&phase, page.upserted.len() + page.removed.len() + page.grants_added.len() + removals.len());
            match (page.next_page_token, page.delta_token) {
                (Some(next), _) => page_token = Some(next),
                (None, next_delta_token) => {
                    self.progress.finish_phase(&phase);
                    return Ok(next_delta_token);
                }
            }
        }
    }

    /// Access of the resources the changes reported (new or changed): their entitlements, and
    /// their grants too unless the changes carried them (`GrantChanges::Reported`).
    pub(super) async fn list_access_of_changed(
        &self,
        kind: &ResourceType,
        grants: GrantChanges,
        incremental: &Incremental,
    ) -> anyhow::Result<()> {
        let Some(changed) = incremental.changed.get(&kind.id).filter(|changed| !changed.is_empty()) else {
            return Ok(());
        };
        if !carries_entitlements(kind) {
            return Ok(());
        }
        let (what, listings): (&str, &[AccessListing]) = match grants {
            GrantChanges::Reported => ("entitlements", &[AccessListing::Entitlements]),
            _ => ("entitlements and grants", AccessListing::BOTH),
        };
        let phase = format!("{} {what} of changed resources", kind.id);
        self.progress.start_phase(&phase);
        let phase_name = phase.as_str();
        futures::stream::iter(changed.iter().map(anyhow::Ok))
            .try_for_each_concurrent(self.job.workers.max(1), |resource| async move {
                {
                    // A resumed run keeps the pages it listed already.
                    let mut writer = lock(self.writer)?;
                    let scope = format!("{}:{}", resource.resource_type, resource.id);
                    if matches!(
                        writer.progress(AccessListing::Entitlements.name(), &scope)?,
                        ListingProgress::NotStarted
                    ) {
                        match grants {
                            GrantChanges::Reported => writer.clear_entitlements_of(resource)?,
                            _ => writer.clear_access_of(resource)?,
                        }
                    }
                }
                let written = self.list_access_of_resource(resource, listings).await?;
                self.progress.page(phase_name, written as usize);
                Ok(())
            })
            .await?;
        self.progress.finish_phase(&phase);
        Ok(())
    }
}
