//! The running service: the tenants this replica serves, their compiled connectors, and the
//! work done for a tenant (a sync, a grant, a revoke), each through the tenant's own gateway.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Instant, SystemTime};

use anyhow::{Context as _, anyhow};
use tokio::sync::{Notify, Semaphore, watch};

use super::config::TenantConfig;
use super::ops_token::OpsCredentials;
use super::shard::Shard;
use super::status::TenantRecord;
use crate::cli::RunArgs;
use crate::component::AZURE_CONNECTOR;
use crate::memory_budget::TenantBudget;
use crate::outbound::OutboundStats;
use crate::outbound::transport::HttpTransport;
use crate::provision::{Change, ChangeReport, ProvisioningContext, apply};
use crate::sandbox::{ConfigValue, ConnectorMetadata, ConnectorRuntime, RuntimeOptions, read_component_file};
use crate::sync::{SyncJob, SyncSummary};
use crate::tenant::{TenantSettings, offline_gateway};

/// A compiled connector and what it declared about itself.
pub struct LoadedConnector {
    pub runtime: Arc<ConnectorRuntime>,
    pub metadata: ConnectorMetadata,
}

/// One tenant: its configuration, what is known about it, and a way to ask for a sync now.
pub struct TenantSlot {
    pub config: TenantConfig,
    /// Charged by every call of the tenant's syncs and grants, so they share one budget.
    pub memory_budget: Arc<TenantBudget>,
    pub record: Mutex<TenantRecord>,
    pub trigger: Notify,
}

impl TenantSlot {
    /// The record; a panic while it was held leaves data that is still the best we have.
    pub fn record(&self) -> MutexGuard<'_, TenantRecord> {
        self.record.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `<data-dir>/<id>/sync.db`.
    pub fn snapshot_path(&self, data_dir: &Path) -> PathBuf {
        data_dir.join(&self.config.id).join("sync.db")
    }
}

pub struct Service {
    pub tenants: BTreeMap<String, Arc<TenantSlot>>,
    /// Every tenant of the file, served here or by another replica.
    pub all_tenant_ids: BTreeSet<String>,
    pub shard: Shard,
    pub data_dir: PathBuf,
    pub ops_credentials: OpsCredentials,
    pub run: RunArgs,
    /// Compiled connectors by component file (`None`: the default one). Set once: ready.
    connectors: OnceLock<BTreeMap<Option<PathBuf>, Arc<LoadedConnector>>>,
    transport: HttpTransport,
    pub sync_slots: Arc<Semaphore>,
    pub shutdown: watch::Sender<bool>,
}

pub struct ServiceParts {
    pub tenants: Vec<TenantConfig>,
    pub all_tenant_ids: BTreeSet<String>,
    pub shard: Shard,
    pub data_dir: PathBuf,
    pub ops_credentials: OpsCredentials,
    pub run: RunArgs,
    pub transport: HttpTransport,
    pub max_concurrent_syncs: usize,
}

impl Service {
    pub fn new(parts: ServiceParts) -> Service {
        let tenants = parts
            .tenants
            .into_iter()
            .map(|config| {
                let memory_budget =
                    TenantBudget::new(format!("tenant {}", config.id), config.sandbox.memory_budget_bytes);
                let slot = TenantSlot {
                    config,
                    memory_budget,
                    record: Mutex::new(TenantRecord::new()),
                    trigger: Notify::new(),
                };
                (slot.config.id.clone(), Arc::new(slot))
            })
            .collect();
        Service {
            tenants,
            all_tenant_ids: parts.all_tenant_ids,
            shard: parts.shard,
            data_dir: parts.data_dir,
            ops_credentials: parts.ops_credentials,
            run: parts.run,
            connectors: OnceLock::new(),
            transport: parts.transport,
            sync_slots: Arc::new(Semaphore::new(parts.max_concurrent_syncs.max(1))),
            shutdown: watch::channel(false).0,
        }
    }

    pub fn is_ready(&self) -> bool {
        self.connectors.get().is_some() && !self.is_shutting_down()
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Compiles (or loads from the cache) every component the tenants use, once each, and asks
    /// each for its metadata. Until this is done the service is not ready.
    pub async fn load_connectors(&self, options: RuntimeOptions) -> anyhow::Result<()> {
        let mut components: BTreeSet<Option<PathBuf>> =
            self.tenants.values().map(|slot| slot.config.component.clone()).collect();
        if components.is_empty() {
            components.insert(None);
        }
        let mut loaded = BTreeMap::new();
        for component in components {
            let file = component.clone().or_else(|| self.run.component.clone());
            let options = options.clone();
            let runtime = tokio::task::spawn_blocking(move || -> anyhow::Result<ConnectorRuntime> {
                let started = Instant::now();
                let runtime = match &file {
                    Some(path) => ConnectorRuntime::load(&read_component_file(path)?, &options)?,
                    None => ConnectorRuntime::load(AZURE_CONNECTOR, &options)?,
                };
                let name = file.as_ref().map_or("the built-in Azure connector".into(), |path| path.display().to_string());
                tracing::info!(component = %name, from = ?runtime.compiled_from(), elapsed_ms = started.elapsed().as_millis() as u64, "connector ready");
                Ok(runtime)
            })
            .await
            .context("compiling a connector component panicked")??;
            let metadata =
                runtime.instantiate(Arc::new(offline_gateway(self.transport.clone()))).await?.metadata().await?;
            loaded.insert(component, Arc::new(LoadedConnector { runtime: Arc::new(runtime), metadata }));
        }
        self.connectors.set(loaded).map_err(|_| anyhow!("the connectors were loaded twice"))
    }

    fn connector_for(&self, config: &TenantConfig) -> anyhow::Result<Arc<LoadedConnector>> {
        self.connectors
            .get()
            .and_then(|connectors| connectors.get(&config.component))
            .cloned()
            .ok_or_else(|| anyhow!("the connector of tenant {} is not loaded yet", config.id))
    }

    /// The tenant's settings with its credentials read now (a rotated secret is used at once).
    fn settings_of(config: &TenantConfig) -> anyhow::Result<TenantSettings> {
        Ok(TenantSettings {
            credentials: config.credentials.resolve(&config.id)?,
            endpoints: config.endpoints.clone(),
            mailbox_settings: config.mailbox_settings,
            skip_ad_groups: config.skip_ad_groups,
            page_size: config.page_size,
            provisioning: config.provisioning,
        })
    }

    fn connector_config(settings: &TenantSettings, config: &TenantConfig) -> Vec<ConfigValue> {
        let mut values = settings.connector_config();
        values.extend(config.connector_options.iter().cloned());
        values
    }

    /// One sync of one tenant into `<data-dir>/<id>/sync.db`, through a gateway of its own.
    pub async fn sync(&self, slot: &TenantSlot) -> anyhow::Result<SyncSummary> {
        let config = &slot.config;
        let stats = Arc::new(OutboundStats::default());
        let started = SystemTime::now();
        let clock = Instant::now();
        slot.record().running_stats = Some(stats.clone());
        let outcome = self.run_sync(slot, stats.clone()).await;
        slot.record().finish_sync(started, clock.elapsed(), &stats, &outcome);
        match &outcome {
            Ok(summary) => {
                tracing::info!(tenant = %config.id, resources = summary.resources.values().sum::<u64>(), grants = summary.grants, gaps = summary.gaps.len(), "sync finished")
            }
            Err(error) => {
                tracing::warn!(tenant = %config.id, error = %format!("{error:#}"), "sync failed; the previous snapshot is kept")
            }
        }
        outcome
    }

    async fn run_sync(&self, slot: &TenantSlot, stats: Arc<OutboundStats>) -> anyhow::Result<SyncSummary> {
        let config = &slot.config;
        let connector = self.connector_for(config)?;
        let settings = Self::settings_of(config)?;
        let connector_config = Self::connector_config(&settings, config);
        let gateway = settings
            .read_gateway(&connector.metadata, self.transport.clone(), stats)?
            .with_caps(config.caps)
            .with_sandbox_limits(slot.memory_budget.clone(), config.sandbox.call_limits);
        let output = slot.snapshot_path(&self.data_dir);
        if let Some(directory) = output.parent() {
            crate::store::create_private_dir(directory)
                .with_context(|| format!("cannot create the tenant's data directory {}", directory.display()))?;
        }
        SyncJob {
            runtime: connector.runtime.clone(),
            metadata: connector.metadata.clone(),
            gateway: Arc::new(gateway),
            config: connector_config,
            output,
            strict: config.strict.unwrap_or(self.run.strict),
            workers: usize::from(self.run.workers),
            show_progress: false,
            full: self.run.full,
            full_sync_interval: self.run.full_sync_interval,
            identity: settings.snapshot_identity(),
            deadline: self.run.sync_deadline,
        }
        .run()
        .await
    }

    /// A grant or revoke for a tenant with provisioning on, recorded in its snapshot's audit
    /// trail by the provisioning module.
    pub async fn provision(&self, slot: &TenantSlot, change: &Change) -> anyhow::Result<ChangeReport> {
        let config = &slot.config;
        let connector = self.connector_for(config)?;
        let settings = Self::settings_of(config)?;
        let connector_config = Self::connector_config(&settings, config);
        let gateway = settings
            .provisioning_gateway(&connector.metadata, self.transport.clone(), Arc::new(OutboundStats::default()))?
            .with_caps(config.caps)
            .with_sandbox_limits(slot.memory_budget.clone(), config.sandbox.call_limits);
        let output = slot.snapshot_path(&self.data_dir);
        if let Some(directory) = output.parent() {
            crate::store::create_private_dir(directory)
                .with_context(|| format!("cannot create the tenant's data directory {}", directory.display()))?;
        }
        let context =
            ProvisioningContext { runtime: &connector.runtime, gateway: Arc::new(gateway), config: &connector_config };
        apply(&settings, &context, &output, change).await
    }
}
