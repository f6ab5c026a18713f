//! `serve`: many tenants in one long-running process.
//!
//! Each tenant syncs on its own schedule into `<data-dir>/<id>/sync.db`, through its own
//! gateway (allow-list, credentials, caps), in sandboxes of one shared pre-linked component.
//! An operations API on a separate listener serves probes, metrics, status, sync triggers and
//! (for tenants with provisioning on) grants and revokes. SIGTERM stops new work and waits a
//! bounded time for running syncs; an unfinished sync leaves the previous snapshot in place.

mod config;
mod metrics;
mod ops;
mod ops_listener;
mod ops_token;
mod scheduler;
mod secrets;
mod service;
mod shard;
mod status;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::cli::RunArgs;
use crate::memory_budget::MIB;
use crate::outbound::transport::{HttpTransport, TransportLimits};
use crate::sandbox::{InstanceAllocator, RuntimeOptions, SandboxLimits, TenantCallLimits};
use ops_listener::ListenerLimits;
use ops_token::{OPERATOR_TOKEN, OpsCredentials, OpsToken, READ_TOKEN};
use service::{Service, ServiceParts};
use shard::Shard;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The tenants file (TOML): one [[tenant]] table per tenant, see README.
    #[arg(long, env = "CONNECTOR_HOST_CONFIG")]
    pub config: PathBuf,
    /// Where each tenant's snapshot goes: <data-dir>/<tenant id>/sync.db.
    #[arg(long, env = "CONNECTOR_HOST_DATA_DIR", default_value = "/var/lib/connector-host")]
    pub data_dir: PathBuf,
    /// Where compiled components are kept across restarts [default: <data-dir>/cache].
    #[arg(long, env = "CONNECTOR_HOST_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Address of the operations API (health, metrics, status, triggers, grants).
    #[arg(long, env = "CONNECTOR_HOST_OPS_LISTEN", default_value = "127.0.0.1:9090")]
    pub ops_listen: SocketAddr,
    /// File holding the operator token of the operations API: everything, grants and revokes
    /// included (or set CONNECTOR_HOST_OPS_TOKEN).
    #[arg(long, env = "CONNECTOR_HOST_OPS_TOKEN_FILE")]
    pub ops_token_file: Option<PathBuf>,
    /// File holding the read token of the operations API: metrics and status only, for
    /// Prometheus and dashboards (or set CONNECTOR_HOST_OPS_READ_TOKEN).
    #[arg(long, env = "CONNECTOR_HOST_OPS_READ_TOKEN_FILE")]
    pub ops_read_token_file: Option<PathBuf>,
    #[command(flatten)]
    pub ops_limits: ListenerLimits,
    /// This replica's share of the tenants: a number, or a StatefulSet pod name ending in one.
    #[arg(long, env = "CONNECTOR_HOST_SHARD_INDEX", default_value = "0")]
    pub shard_index: String,
    /// How many replicas share the tenants.
    #[arg(long, env = "CONNECTOR_HOST_SHARD_COUNT", default_value_t = 1)]
    pub shard_count: u32,
    /// On SIGTERM/SIGINT, how long running syncs may take to finish before the process exits.
    #[arg(long, env = "CONNECTOR_HOST_SHUTDOWN_GRACE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
    /// Tenants syncing at the same time.
    #[arg(long, env = "CONNECTOR_HOST_MAX_CONCURRENT_SYNCS", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub max_concurrent_syncs: u16,
    /// The wall-clock limit of one call into the connector.
    #[arg(long, env = "CONNECTOR_HOST_CALL_TIMEOUT", default_value = "5m", value_parser = humantime::parse_duration)]
    pub call_timeout: Duration,
    /// What one call into the connector may hold, in MiB: its memories and tables, and what the
    /// host buffers for it. A tenant's `call_memory_mib` overrides it.
    #[arg(long, env = "CONNECTOR_HOST_CALL_MEMORY_MIB", default_value_t = 256,
          value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub call_memory_mib: u16,
    /// How sandbox memory is allocated; on-demand where the address space is limited.
    #[arg(long, env = "CONNECTOR_HOST_INSTANCE_ALLOCATOR", value_enum, default_value = "pooling")]
    pub instance_allocator: InstanceAllocator,
    #[command(flatten)]
    pub run: RunArgs,
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut termination = Termination::watch()?;
    let shard = Shard::parse(&args.shard_index, args.shard_count)?;
    let mut all_tenants = config::load(&args.config)?;
    let call_defaults = TenantCallLimits {
        memory_bytes: Some(usize::from(args.call_memory_mib) * MIB),
        call_timeout: Some(args.call_timeout),
    };
    for tenant in &mut all_tenants {
        let limits = &mut tenant.sandbox.call_limits;
        limits.memory_bytes = limits.memory_bytes.or(call_defaults.memory_bytes);
        limits.call_timeout = limits.call_timeout.or(call_defaults.call_timeout);
    }
    let all_tenant_ids = all_tenants.iter().map(|tenant| tenant.id.clone()).collect();
    let tenants: Vec<_> = all_tenants.into_iter().filter(|tenant| shard.owns(&tenant.id)).collect();
    let ops_credentials = OpsCredentials::new(
        OpsToken::configured(
            OPERATOR_TOKEN,
            args.ops_token_file.as_deref(),
            std::env::var(OPERATOR_TOKEN.variable).ok(),
        )?,
        OpsToken::configured(READ_TOKEN, args.ops_read_token_file.as_deref(), std::env::var(READ_TOKEN.variable).ok())?,
    )?;
    if ops_credentials.is_empty() {
        tracing::warn!(
            "no ops token configured: only /healthz and /readyz answer; set {} or {}",
            OPERATOR_TOKEN.flag,
            OPERATOR_TOKEN.variable
        );
    }
    crate::store::create_private_dir(&args.data_dir)
        .with_context(|| format!("cannot create the data directory {}: check --data-dir", args.data_dir.display()))?;
    let workers = usize::from(args.run.workers);
    let max_concurrent_syncs = usize::from(args.max_concurrent_syncs);
    // Each call is held to its tenant's limit; the pool's slots must fit the largest.
    let largest_call_memory = tenants
        .iter()
        .filter_map(|tenant| tenant.sandbox.call_limits.memory_bytes)
        .chain(call_defaults.memory_bytes)
        .max()
        .unwrap_or(SandboxLimits::default().memory_bytes);
    let runtime_options = RuntimeOptions {
        limits: SandboxLimits {
            call_timeout: args.call_timeout,
            memory_bytes: largest_call_memory,
            ..SandboxLimits::default()
        },
        allocator: args.instance_allocator,
        // Every running sync has at most `workers` calls in flight; the margin serves grants.
        max_concurrent_calls: max_concurrent_syncs * workers + 4,
        artifact_cache: Some(args.cache_dir.clone().unwrap_or_else(|| args.data_dir.join("cache"))),
    };
    let service = Arc::new(Service::new(ServiceParts {
        tenants,
        all_tenant_ids,
        shard,
        data_dir: args.data_dir.clone(),
        ops_credentials,
        run: args.run.clone(),
        transport: HttpTransport::from_environment(TransportLimits::default(), &args.run.network_options())?,
        max_concurrent_syncs,
    }));
    tracing::info!(tenants = service.tenants.len(), shard = shard.index, shards = shard.count, "serving");

    let listener = tokio::net::TcpListener::bind(args.ops_listen)
        .await
        .with_context(|| format!("cannot listen on {} for the ops API: check --ops-listen", args.ops_listen))?;
    let ops_address = listener.local_addr().context("reading the ops API address")?;
    tracing::info!(address = %ops_address, "ops API listening");
    // The ops API outlives the schedules, so probes and metrics answer during the grace period
    // and a grant in progress completes.
    let (stop_ops, ops_stopped) = tokio::sync::watch::channel(false);
    let ops_server = tokio::spawn(ops_listener::serve(
        listener,
        ops::router(service.clone()),
        args.ops_limits,
        ops_stopped,
        Duration::from_secs(1),
    ));

    let work = async {
        service.load_connectors(runtime_options).await?;
        let schedules: Vec<_> = service
            .tenants
            .values()
            .map(|slot| tokio::spawn(scheduler::run_tenant(service.clone(), slot.clone())))
            .collect();
        anyhow::Ok(schedules)
    };
    let started = tokio::select! {
        schedules = work => Some(schedules?),
        signal = termination.received() => {
            tracing::info!(signal, "stopping before any sync started");
            None
        }
    };
    let schedules = match started {
        Some(schedules) => {
            let signal = termination.received().await;
            tracing::info!(signal, grace = ?args.shutdown_grace, "stopping: no new syncs; waiting for running ones");
            schedules
        }
        None => Vec::new(),
    };
    let _ = service.shutdown.send(true);
    let deadline = tokio::time::Instant::now() + args.shutdown_grace;
    if tokio::time::timeout_at(deadline, futures::future::join_all(schedules)).await.is_err() {
        tracing::warn!(
            "syncs still running after {:?} are abandoned; their previous snapshots stay in place",
            args.shutdown_grace
        );
    }
    let _ = stop_ops.send(true);
    let _ = tokio::time::timeout_at(deadline + Duration::from_secs(1), ops_server).await;
    Ok(())
}

/// SIGTERM (Kubernetes) and SIGINT (a terminal), watched from the start so a signal that comes
/// early still stops the process cleanly.
struct Termination {
    terminate: Signal,
    interrupt: Signal,
}

impl Termination {
    fn watch() -> anyhow::Result<Termination> {
        Ok(Termination {
            terminate: signal(SignalKind::terminate()).context("cannot watch SIGTERM")?,
            interrupt: signal(SignalKind::interrupt()).context("cannot watch SIGINT")?,
        })
    }

    /// Waits for either and names it.
    async fn received(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}
