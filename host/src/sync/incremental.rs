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
use sha2::{Digest, Sha256};

use super::{AccessListing, SyncJob, SyncMode, SyncProgress, SyncSummary, Tally, carries_entitlements, lock};
use crate::sandbox::{CallTimes, ConnectorError, ConnectorMetadata, Resource, ResourceType, TrackedType};
use crate::snapshot_changes::{DeltaState, previous_delta_state};
use crate::store::SnapshotWriter;

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

/// Delta tokens are only valid for the queries they were issued for: a new connector version
/// or another configuration (page size, filters, endpoints) needs a full sync.
fn fingerprint(metadata: &ConnectorMetadata, config: &[crate::sandbox::ConfigValue]) -> String {
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
            fingerprint: fingerprint(metadata, &self.config),
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
        let mut progress = SyncProgress::new(self.gateway.stats().clone(), self.show_progress);
        let mut tally = Tally::default();

        // 1. Changes of the tracked types.
        let mut tokens = BTreeMap::new();
        let mut upserted: BTreeMap<String, Vec<Resource>> = BTreeMap::new();
        for kind in run.order {
            let Some(tracked) = delta.tracked(kind) else { continue };
            progress.start_phase(format!("{} changes", kind.id));
            let Some(token) = previous.tokens.get(&tracked.resource_type) else { return Ok(None) };
            match self.apply_changes(kind, token, &writer, &mut progress, &mut tally).await? {
                Some((next_token, changed)) => {
                    tokens.insert(kind.id.clone(), next_token);
                    upserted.insert(kind.id.clone(), changed);
                }
                None => return Ok(None),
            }
        }
        // 2. Untracked types are listed again from scratch.
        for kind in run.order.iter().filter(|kind| delta.tracked(kind).is_none()) {
            lock(&writer)?.clear_type(&kind.id)?;
        }
        for kind in run.order.iter().filter(|kind| delta.tracked(kind).is_none()) {
            progress.start_phase(format!("{} resources", kind.id));
            self.list_resources_of(kind, &writer, &mut progress, &mut tally).await?;
        }
        // 3. Access: re-listed where changes do not tell it, entitlements of changed resources.
        for kind in run.order {
            if !carries_entitlements(kind) {
                continue;
            }
            match delta.tracked(kind) {
                Some(tracked) if tracked.grants_tracked => {
                    let changed = upserted.remove(&kind.id).unwrap_or_default();
                    if changed.is_empty() {
                        continue;
                    }
                    progress.start_phase(format!("{} entitlements of changed resources", kind.id));
                    for resource in &changed {
                        lock(&writer)?.clear_entitlements_of(resource)?;
                    }
                    let listings = &[AccessListing::Entitlements];
                    self.list_access_of_resources(changed, listings, &writer, &mut progress, &mut tally).await?;
                }
                Some(_) => {
                    lock(&writer)?.clear_access_of_type(&kind.id)?;
                    progress.start_phase(format!("{} entitlements and grants", kind.id));
                    self.list_access_of(kind, &writer, &mut progress, &mut tally).await?;
                }
                None => {
                    progress.start_phase(format!("{} entitlements and grants", kind.id));
                    self.list_access_of(kind, &writer, &mut progress, &mut tally).await?;
                }
            }
        }
        progress.finish();

        let mut writer = writer.into_inner().map_err(|_| anyhow!("the snapshot writer was poisoned by a panic"))?;
        writer.write_delta_state(&delta.state_with(tokens))?;
        // The snapshot holds more than this run saw (`tally` only counted what was re-listed):
        // its figures come from the snapshot itself.
        let counts = writer.counts()?;
        let seen = Tally {
            resources: counts.resources,
            entitlements: counts.entitlements,
            grants: counts.grants,
            gaps: counts.gaps,
            unsupported_principals: counts.unsupported_principals,
        };
        let summary = self.summary(run, SyncMode::Incremental, seen, writer.duplicates());
        self.finish(writer, summary).map(Some)
    }

    /// Applies every page of changes of one type. Returns the new delta token and the
    /// resources upserted, or `None` when the token has expired.
    async fn apply_changes(
        &self,
        kind: &ResourceType,
        delta_token: &str,
        writer: &Mutex<SnapshotWriter>,
        progress: &mut SyncProgress,
        tally: &mut Tally,
    ) -> anyhow::Result<Option<(String, Vec<Resource>)>> {
        let mut page_token: Option<String> = None;
        let mut upserted = Vec::new();
        loop {
            let call = self.runtime.instantiate(self.gateway.clone()).await?;
            let page = match call.list_changes(&self.config, &kind.id, Some(delta_token), page_token.as_deref()).await?
            {
                Ok(page) => page,
                Err(ConnectorError::Upstream(upstream)) if upstream.status == 410 => {
                    tracing::warn!(resource_type = %kind.id, code = %upstream.code, message = %upstream.message,
                        "the delta token of the previous sync is no longer valid");
                    return Ok(None);
                }
                Err(error) => return Err(self.fail(&format!("listing changes of {}", kind.id), &error)),
            };
            let notices: Vec<_> = page.notices.iter().map(|notice| (notice.clone(), None)).collect();
            let removals: Vec<(String, String)> = page
                .grants_removed
                .iter()
                .map(|removal| (removal.entitlement_id.clone(), removal.principal_id.clone()))
                .collect();
            {
                let mut writer = lock(writer)?;
                writer.remove_resources(&kind.id, &page.removed)?;
                writer.upsert_resources(&page.upserted)?;
                writer.remove_grants(&removals)?;
                writer.add_grants(&page.grants_added)?;
                writer.write_page(&[], &[], &[], &notices)?;
            }
            tally.add_notices(&page.notices);
            progress.page(page.upserted.len() + page.removed.len() + page.grants_added.len() + removals.len());
            upserted.extend(page.upserted);
            match (page.next_page_token, page.delta_token) {
                (Some(next), _) if Some(&next) == page_token.as_ref() => {
                    anyhow::bail!(
                        "the connector returned the same page token twice while listing changes of {}: stopping to avoid a loop",
                        kind.id
                    )
                }
                (Some(next), _) => page_token = Some(next),
                (None, Some(next_delta_token)) => return Ok(Some((next_delta_token, upserted))),
                (None, None) => {
                    anyhow::bail!("the connector ended the changes of {} without a delta token", kind.id)
                }
            }
        }
    }
}
