//! A sync of one tenant from start to finish: load the component, build the tenant's gateway,
//! run the engine. Shared by `sync` and `demo`.

use std::path::Path;
use std::sync::Arc;

use crate::cli::RunArgs;
use crate::component::load_runtime;
use crate::outbound::OutboundStats;
use crate::outbound::transport::{HttpTransport, TransportLimits};
use crate::sandbox::SandboxLimits;
use crate::sync::{SyncJob, SyncSummary};
use crate::tenant::{TenantSettings, offline_gateway};

pub async fn sync_tenant(settings: &TenantSettings, run: &RunArgs, output: &Path) -> anyhow::Result<SyncSummary> {
    let runtime = Arc::new(load_runtime(run.component.as_deref(), SandboxLimits::default())?);
    let transport = HttpTransport::from_environment(TransportLimits::default(), &run.network_options())?;
    let metadata = runtime.instantiate(Arc::new(offline_gateway(transport.clone()))).await?.metadata().await?;
    let config = settings.connector_config();
    let gateway = settings.read_gateway(&metadata, transport, Arc::new(OutboundStats::default()))?;
    tracing::info!(
        connector = %metadata.name,
        version = %metadata.version,
        origins = %gateway.policy().origins().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        "starting sync"
    );
    SyncJob {
        runtime,
        metadata,
        gateway: Arc::new(gateway),
        config,
        output: output.to_path_buf(),
        strict: run.strict,
        workers: usize::from(run.workers),
        show_progress: true,
        full: run.full,
        full_sync_interval: run.full_sync_interval,
        identity: settings.snapshot_identity(),
        deadline: run.sync_deadline,
    }
    .run()
    .await
}
