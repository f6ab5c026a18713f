//! The command line. Flag and environment names follow the Go connector's, so existing
//! Kubernetes manifests keep working.

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::cloud::AzureCloud;

#[derive(Parser, Debug)]
#[command(
    name = "connector-host",
    version,
    about = "Sync Azure identities and access into SQLite, inside a WebAssembly sandbox"
)]
pub struct Cli {
    /// Log filter: error, warn, info, debug, trace (or a tracing filter expression).
    #[arg(long, env = "BATON_LOG_LEVEL", default_value = "info", global = true)]
    pub log_level: String,
    /// Log format on stderr.
    #[arg(long, env = "BATON_LOG_FORMAT", value_enum, default_value = "console", global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Json,
    Console,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Sync a tenant into a SQLite snapshot.
    Sync(SyncArgs),
    /// Print a snapshot as one JSON document.
    Export(ExportArgs),
    /// Start the bundled sample tenant on loopback, sync it and print a summary.
    Demo(DemoArgs),
    /// Give a principal an entitlement (needs --provisioning). Prints one JSON line.
    Grant(GrantArgs),
    /// Take an entitlement from a principal (needs --provisioning). Prints one JSON line.
    Revoke(RevokeArgs),
    /// Run many tenants on their schedules, with an operations API (see README).
    Serve(crate::serve::ServeArgs),
}

/// What a grant or revoke runs against: the tenant, and the snapshot whose audit trail records it.
#[derive(Args, Debug)]
pub struct ProvisionTarget {
    /// The snapshot file whose audit trail records the change.
    #[arg(short = 'f', long = "file", visible_alias = "output", env = "BATON_FILE", default_value = "sync.db")]
    pub audit_file: PathBuf,
    #[command(flatten)]
    pub azure: AzureArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Args, Debug)]
pub struct GrantArgs {
    /// The entitlement id, e.g. group:<id>:members.
    #[arg(long)]
    pub entitlement: String,
    /// user, group, enterprise_application or managed_identity.
    #[arg(long)]
    pub principal_type: String,
    /// The principal's object id.
    #[arg(long)]
    pub principal_id: String,
    #[command(flatten)]
    pub target: ProvisionTarget,
}

#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// The entitlement id, e.g. group:<id>:members.
    #[arg(long, required_unless_present = "grant", conflicts_with = "grant", requires_all = ["principal_type", "principal_id"])]
    pub entitlement: Option<String>,
    #[arg(long)]
    pub principal_type: Option<String>,
    #[arg(long)]
    pub principal_id: Option<String>,
    /// The grant id instead: <entitlement_id>:<principal_type>:<principal_id>.
    #[arg(long)]
    pub grant: Option<String>,
    #[command(flatten)]
    pub target: ProvisionTarget,
}

#[derive(Args, Debug)]
pub struct SyncArgs {
    /// The snapshot to write; replaced only when the sync completes. A name ending in .c1z
    /// writes the snapshot beside it (<name>.db) and the c1z from it.
    #[arg(short = 'f', long = "file", visible_alias = "output", env = "BATON_FILE", default_value = "sync.db")]
    pub output: PathBuf,
    /// Also write the sync's figures (counts, requests, resource units, sandbox time) as JSON here.
    #[arg(long)]
    pub stats_json: Option<PathBuf>,
    #[command(flatten)]
    pub azure: AzureArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The snapshot to read.
    #[arg(short = 'i', long = "input", env = "BATON_FILE", default_value = "sync.db")]
    pub input: PathBuf,
    /// json (our document) or c1z (ConductorOne's file, read by the `baton` CLI; needs --output).
    #[arg(long, value_enum, default_value = "json")]
    pub format: ExportFormat,
    /// The file to write (json: printed when absent). A c1z already there keeps its latest
    /// sync as the previous one, so `baton diff` compares the two.
    #[arg(short = 'o', long, required_if_eq("format", "c1z"))]
    pub output: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Json,
    C1z,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// The snapshot to write. A name ending in .c1z writes the snapshot beside it (<name>.db)
    /// and the c1z from it, as `sync` does.
    #[arg(short = 'f', long = "file", visible_alias = "output", default_value = "sync.db")]
    pub output: PathBuf,
    #[command(flatten)]
    pub run: RunArgs,
}

/// The app registration, the cloud and the connector's options.
#[derive(Args, Debug, Clone)]
pub struct AzureArgs {
    /// Application (client) id of the app registration.
    #[arg(long, env = "BATON_AZURE_CLIENT_ID")]
    pub azure_client_id: Option<String>,
    /// Client secret value of the app registration.
    #[arg(long, env = "BATON_AZURE_CLIENT_SECRET", hide_env_values = true)]
    pub azure_client_secret: Option<crate::credentials::Secret>,
    /// Directory (tenant) id.
    #[arg(long, env = "BATON_AZURE_TENANT_ID")]
    pub azure_tenant_id: Option<String>,
    /// The Azure cloud: sets login, Graph, ARM and the token scopes together.
    #[arg(long, env = "BATON_AZURE_CLOUD", value_enum, default_value = "public")]
    pub azure_cloud: AzureCloud,
    /// Override the login endpoint (keeps the cloud's token scopes).
    #[arg(long, env = "BATON_AZURE_LOGIN_URL")]
    pub login_url: Option<String>,
    /// Override the Microsoft Graph endpoint (keeps the cloud's token scopes).
    #[arg(long, env = "BATON_AZURE_GRAPH_URL")]
    pub graph_url: Option<String>,
    /// Override the Azure Resource Manager endpoint (keeps the cloud's token scopes).
    #[arg(long, env = "BATON_AZURE_ARM_URL")]
    pub arm_url: Option<String>,
    /// Read each user's mailbox settings to tell people from rooms, shared and equipment mailboxes.
    #[arg(long = "mailboxSettings", env = "BATON_MAILBOXSETTINGS", value_parser = BoolishValueParser::new(),
          num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub mailbox_settings: bool,
    /// Leave out groups synced from on-premises Active Directory (groups only, never memberships).
    #[arg(long, env = "BATON_SKIP_AD_GROUPS", value_parser = BoolishValueParser::new(),
          num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub skip_ad_groups: bool,
    /// Items per Graph page ($top, 1-999). Smaller pages mean more requests; 999 is the fastest.
    #[arg(long, env = "BATON_PAGE_SIZE", default_value_t = 999, value_parser = clap::value_parser!(u16).range(1..=999))]
    pub page_size: u16,
    /// Allow grants and revokes. Off by default: no write leaves the sandbox.
    #[arg(long, env = "BATON_PROVISIONING", value_parser = BoolishValueParser::new(),
          num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub provisioning: bool,
}

/// How the host runs the connector.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Run this connector component instead of the embedded Azure one.
    #[arg(long, env = "CONNECTOR_HOST_COMPONENT")]
    pub component: Option<PathBuf>,
    /// Fail the sync (keeping the previous output) when any listing could not be read.
    #[arg(long, env = "BATON_STRICT", value_parser = BoolishValueParser::new(),
          num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub strict: bool,
    /// Resources worked on at once, each in its own sandbox.
    #[arg(long, env = "CONNECTOR_HOST_WORKERS", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,
    /// Re-read everything, even when the output holds delta tokens for an incremental sync.
    #[arg(long, env = "BATON_FULL_SYNC", value_parser = BoolishValueParser::new(),
          num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub full: bool,
    /// Re-read everything when the last full sync of the output began longer ago than this
    /// (e.g. "24h", "7d"), so whatever a change feed missed is corrected; "never" turns it off.
    #[arg(long, env = "BATON_FULL_SYNC_INTERVAL", default_value = "24h", value_parser = parse_full_sync_interval)]
    pub full_sync_interval: FullSyncInterval,
    /// The longest one sync may run (e.g. "6h"); past it, it stops, keeps the previous snapshot
    /// and leaves its checkpoint for the next run. `serve` applies it to every tenant's sync.
    #[arg(long, env = "BATON_SYNC_DEADLINE", default_value = "6h", value_parser = parse_sync_deadline)]
    pub sync_deadline: std::time::Duration,
    /// Also trust the CA certificates (PEM) in this file, e.g. a TLS-inspecting proxy's; added to
    /// the built-in roots, like SSL_CERT_FILE and SSL_CERT_DIR. See docs/security.md.
    #[arg(long, env = "BATON_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Tests only: honour CONNECTOR_HOST_CONNECT_TO (host:port=127.0.0.1:port,...), which sends
    /// connections for those names to loopback. Deliberately without an environment variable.
    #[arg(long, hide = true)]
    pub insecure_test_routing: bool,
}

impl RunArgs {
    /// The network settings the outbound transport takes from the command line.
    pub fn network_options(&self) -> crate::outbound::transport::NetworkOptions {
        crate::outbound::transport::NetworkOptions {
            ca_file: self.ca_file.clone(),
            insecure_test_routing: self.insecure_test_routing,
        }
    }
}

/// `--full-sync-interval`: how old the last full sync may be before the next sync is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FullSyncInterval {
    Every(std::time::Duration),
    Never,
}

fn parse_full_sync_interval(text: &str) -> Result<FullSyncInterval, String> {
    if text.trim().eq_ignore_ascii_case("never") {
        return Ok(FullSyncInterval::Never);
    }
    humantime::parse_duration(text.trim())
        .map(FullSyncInterval::Every)
        .map_err(|error| format!("{text:?} is not a duration ({error}): write it like \"24h\" or \"7d\", or \"never\""))
}

fn parse_sync_deadline(text: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(text.trim()) {
        Ok(deadline) if !deadline.is_zero() => Ok(deadline),
        Ok(_) => Err("a sync deadline of zero would stop every sync at once: write it like \"6h\"".to_owned()),
        Err(error) => Err(format!("{text:?} is not a duration ({error}): write it like \"6h\" or \"90m\"")),
    }
}
