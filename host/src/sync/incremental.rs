//! Incremental sync: start from the previous complete snapshot, apply what the connector's
//! delta queries report for the types it tracks, and re-list everything else, so the result
//! equals a full sync (see docs/decisions.md, "Incremental sync").
//!
//! Used when the component exports `idgov:connector/incremental`, the output holds delta
//! tokens issued for the same connector version and configuration, and `--full` is not set.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::anyhow;
use futures::TryStreamExt as _;
use sha2::{Digest, Sha256};

use super::{AccessListing, SyncJob, SyncMode, SyncProgress, SyncRun, SyncSummary, carries_entitlements, lock};
use crate::sandbox::{CallTimes, ConnectorError, ConnectorMetadata, Resource, ResourceType, TrackedType};
use crate::store::{DeltaState, PageProgress, SnapshotWriter, previous_delta_state};

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
    pub fn state_with(&self, tokens: BTreeMap<String, String>) -> DeltaState {
        DeltaState { connector: self.connector.clone(), config_fingerprint: self.fingerprint.clone(), tokens }
    }

    fn tracked(&self, kind: &ResourceType) -> Option<&TrackedType> {
        self.tracked.iter().find(|tracked| tracked.resource_type == kind.id)
    }
}

/// What the delta queries of an incremental run told: the types they track, and the
/// resources they reported changed (whose entitlements are listed again).
pub(super) struct Incremental {
    tracked: Vec<TrackedType>,
    changed: BTreeMap<String, Vec<Resource>>,
}

impl Incremental {
    pub fn tracked(&self, kind: &ResourceType) -> Option<&TrackedType> {
        self.tracked.iter().find(|tracked| tracked.resource_type == kind.id)
    }
}

/// Delta tokens are only valid for the queries they were issued for: a new connector version
/// or another configuration (page size, filters, endpoints) needs a full sync.
fn delta_fingerprint(metadata: &ConnectorMetadata, config: &[crate::sandbox::ConfigValue]) -> String {
    let mut pairs: Vec<(&str, &str)> = config.iter().map(|value| (value.key.as_str(), value.value.as_str())).collect();
    pairs.sort();
    let mut hash = Sha256::new();
    hash.update(metadata.name.as_bytes());
    hash.update([0]);
    hash.update(metadata.version.as_bytes());
    for (key, value) in pairs {
        hash.update([0]);
        hash.update(key.as_bytes());
        hash.update([0]);
        hash.update(value.as_bytes());
    }
    hash.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
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
            fingerprint: delta_fingerprint(metadata, &self.config),
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

    /// Delta tokens for "now", one per tracked type. Failing here only costs the next sync its
    /// incrementality, so it is logged, not fatal.
    pub(super) async fn start_tracking(&self, tracked: &[TrackedType]) -> Option<BTreeMap<String, String>> {
        if tracked.is_empty() {
            return None;
        }
        let mut tokens = BTreeMap::new();
        for kind in tracked {
            let mut page_token: Option<String> = None;
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
                match (page.next_page_token, page.delta_token) {
                    (Some(next), _) if Some(&next) != page_token.as_ref() => page_token = Some(next),
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
        let mut writer = SnapshotWriter::continue_from(&self.output)?;
        writer.record_run_start(&metadata.name, &metadata.version, run.started_at)?;
        writer.write_resource_types(&metadata.resource_types)?;
        writer.clear_listing_notices()?;
        let writer = Mutex::new(writer);
        let progress = SyncProgress::new(self.gateway.stats().clone(), self.show_progress);

        // 1. Changes of the tracked types.
        let mut tokens = BTreeMap::new();
        let mut incremental = Incremental { tracked: delta.tracked.clone(), changed: BTreeMap::new() };
        let mut expired = false;
        {
            let sync = SyncRun::new(self, &writer, &progress, run.order, None);
            for kind in run.order {
                if delta.tracked(kind).is_none() {
                    continue;
                }
                let applied = match previous.tokens.get(&kind.id) {
                    Some(token) => sync.apply_changes(kind, token).await?,
                    None => None,
                };
                let Some((next_token, changed)) = applied else {
                    expired = true;
                    break;
                };
                tokens.insert(kind.id.clone(), next_token);
                incremental.changed.insert(kind.id.clone(), changed);
            }
        }
        if expired {
            progress.finish();
            writer.into_inner().map_err(|_| anyhow!("the snapshot writer was poisoned by a panic"))?.discard();
            return Ok(None);
        }
        // 2. Untracked types are listed again from scratch; tracked types whose grants the
        // changes do not tell have their access listed again.
        {
            let mut writer = lock(&writer)?;
            for kind in run.order {
                match incremental.tracked(kind) {
                    None => writer.clear_type(&kind.id)?,
                    Some(tracked) if !tracked.grants_tracked && carries_entitlements(kind) => {
                        writer.clear_access_of_type(&kind.id)?
                    }
                    Some(_) => {}
                }
            }
        }
        // 3. The same concurrent engine as a full sync, skipping what the changes told.
        let sync = SyncRun::new(self, &writer, &progress, run.order, Some(&incremental));
        let roots = run.order.iter().filter(|kind| kind.listed_under.is_none()).map(|kind| sync.sync_type(kind));
        futures::future::try_join_all(roots).await?;
        progress.finish();

        let mut writer = writer.into_inner().map_err(|_| anyhow!("the snapshot writer was poisoned by a panic"))?;
        writer.write_delta_state(&delta.state_with(tokens))?;
        // The snapshot holds more than this run saw: `finish` counts it from the snapshot itself.
        self.finish(run, SyncMode::Incremental, writer).map(Some)
    }
}

impl SyncRun<'_> {
    /// Applies every page of changes of one type. Returns the new delta token and the
    /// resources upserted, or `None` when the token has expired.
    async fn apply_changes(
        &self,
        kind: &ResourceType,
        delta_token: &str,
    ) -> anyhow::Result<Option<(String, Vec<Resource>)>> {
        let job = self.job;
        let phase = format!("{} changes", kind.id);
        self.progress.start_phase(&phase);
        let listing = format!("changes:{}", kind.id);
        let mut page_token: Option<String> = None;
        let mut upserted = Vec::new();
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
                Err(error) => return Err(job.fail(&format!("listing changes of {}", kind.id), &error)),
            };
            if page.next_page_token.is_some() && page.next_page_token == page_token {
                anyhow::bail!(
                    "the connector returned the same page token twice while listing changes of {}: stopping to avoid a loop",
                    kind.id
                )
            }
            let notices: Vec<_> = page.notices.iter().map(|notice| (notice.clone(), None)).collect();
            let removals: Vec<(String, String)> = page
                .grants_removed
                .iter()
                .map(|removal| (removal.entitlement_id.clone(), removal.principal_id.clone()))
                .collect();
            {
                let mut writer = lock(self.writer)?;
                writer.remove_resources(&kind.id, &page.removed)?;
                writer.upsert_resources(&page.upserted)?;
                writer.remove_grants(&removals)?;
                writer.add_grants(&page.grants_added)?;
                let checkpoint =
                    PageProgress { listing: &listing, scope: "", next_page_token: page.next_page_token.as_deref() };
                writer.write_page(&[], &[], &[], &notices, &checkpoint)?;
            }
            self.progress
                .page(&phase, page.upserted.len() + page.removed.len() + page.grants_added.len() + removals.len());
            upserted.extend(page.upserted);
            match (page.next_page_token, page.delta_token) {
                (Some(next), _) => page_token = Some(next),
                (None, Some(next_delta_token)) => {
                    self.progress.finish_phase(&phase);
                    return Ok(Some((next_delta_token, upserted)));
                }
                (None, None) => {
                    anyhow::bail!("the connector ended the changes of {} without a delta token", kind.id)
                }
            }
        }
    }

    /// Entitlements of the resources the changes reported (new or changed): their grants came
    /// with the changes.
    pub(super) async fn list_entitlements_of_changed(
        &self,
        kind: &ResourceType,
        incremental: &Incremental,
    ) -> anyhow::Result<()> {
        let Some(changed) = incremental.changed.get(&kind.id).filter(|changed| !changed.is_empty()) else {
            return Ok(());
        };
        if !carries_entitlements(kind) {
            return Ok(());
        }
        let phase = format!("{} entitlements of changed resources", kind.id);
        self.progress.start_phase(&phase);
        let phase_name = phase.as_str();
        futures::stream::iter(changed.iter().map(anyhow::Ok))
            .try_for_each_concurrent(self.job.workers.max(1), |resource| async move {
                lock(self.writer)?.clear_entitlements_of(resource)?;
                let written = self.list_access_of_resource(resource, &[AccessListing::Entitlements]).await?;
                self.progress.page(phase_name, written as usize);
                Ok(())
            })
            .await?;
        self.progress.finish_phase(&phase);
        Ok(())
    }
}
