//! The `connector-host` command line.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use connector_host::cli::{Cli, Command, ExportFormat, LogFormat};
use connector_host::provision::{Action, Change, apply_from_cli};
use connector_host::sandbox::ResourceRef;
use connector_host::tenant::TenantSettings;
use connector_host::{c1z, demo, export, run};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(err) = init_logging(&cli.log_level, cli.log_format) {
        eprintln!("error: {err}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line, whatever Azure put in its messages, so scripts and log scrapers can rely on it.
            let reason = format!("{err:#}").split_whitespace().collect::<Vec<_>>().join(" ");
            eprintln!("error: {reason}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Sync(args) => {
            let settings = TenantSettings::from_args(&args.azure)?;
            let outputs = SyncOutputs::of(&args.output);
            let summary = run::sync_tenant(&settings, &args.run, &outputs.snapshot).await?;
            if let Some(path) = &args.stats_json {
                std::fs::write(path, summary.stats_json().to_string())
                    .with_context(|| format!("cannot write the sync's figures to {}", path.display()))?;
            }
            println!("Synced into {}", outputs.snapshot.display());
            outputs.write_c1z()?;
            println!("{summary}");
            Ok(())
        }
        Command::Export(args) => match (args.format, &args.output) {
            (ExportFormat::C1z, Some(output)) => write_c1z_from(&args.input, output),
            (ExportFormat::C1z, None) => anyhow::bail!("--format c1z needs --output <file>.c1z"),
            (ExportFormat::Json, Some(output)) => {
                let file = std::fs::File::create(output).with_context(|| {
                    format!("cannot create {}: check that its directory exists and is writable", output.display())
                })?;
                export::export(&args.input, &mut std::io::BufWriter::new(file))
            }
            (ExportFormat::Json, None) => {
                let stdout = std::io::stdout();
                export::export(&args.input, &mut std::io::BufWriter::new(stdout.lock()))
            }
        },
        Command::Demo(args) => {
            let outputs = SyncOutputs::of(&args.output);
            demo::run_demo(&args.run, &outputs.snapshot).await?;
            outputs.write_c1z()
        }
        Command::Grant(args) => {
            let change = Change {
                action: Action::Grant,
                entitlement_id: args.entitlement,
                principal: ResourceRef { resource_type: args.principal_type, id: args.principal_id },
            };
            provision(&args.target, &change).await
        }
        Command::Revoke(args) => {
            let change = match (args.grant, args.entitlement, args.principal_type, args.principal_id) {
                (Some(grant), _, _, _) => Change::revoke_grant(&grant)?,
                (None, Some(entitlement_id), Some(resource_type), Some(id)) => {
                    Change { action: Action::Revoke, entitlement_id, principal: ResourceRef { resource_type, id } }
                }
                _ => anyhow::bail!("revoke needs --grant, or --entitlement with --principal-type and --principal-id"),
            };
            provision(&args.target, &change).await
        }
        Command::Serve(args) => connector_host::serve::serve(args).await,
    }
}

/// Where a sync writes its snapshot, and the c1z it writes from it afterwards: `-f x.c1z` (the
/// Go connector's kind of output) means the snapshot `x.db` beside it and the c1z from that.
struct SyncOutputs {
    snapshot: std::path::PathBuf,
    c1z: Option<std::path::PathBuf>,
}

impl SyncOutputs {
    fn of(output: &std::path::Path) -> SyncOutputs {
        match c1z::snapshot_beside(output) {
            Some(snapshot) => SyncOutputs { snapshot, c1z: Some(output.to_owned()) },
            None => SyncOutputs { snapshot: output.to_owned(), c1z: None },
        }
    }

    fn write_c1z(&self) -> anyhow::Result<()> {
        match &self.c1z {
            Some(c1z) => write_c1z_from(&self.snapshot, c1z),
            None => Ok(()),
        }
    }
}

/// Writes the c1z of a snapshot and says so (and which previous sync it kept for `baton diff`).
fn write_c1z_from(snapshot: &std::path::Path, output: &std::path::Path) -> anyhow::Result<()> {
    let written = c1z::write_c1z(snapshot, output)
        .with_context(|| format!("cannot write the c1z {} from {}", output.display(), snapshot.display()))?;
    match &written.previous_sync_id {
        Some(previous) => println!("Wrote {} (sync {}, after sync {previous})", output.display(), written.sync_id),
        None => println!("Wrote {} (sync {})", output.display(), written.sync_id),
    }
    Ok(())
}

/// Runs a grant or revoke and prints its one JSON line; an error outcome also fails the command.
async fn provision(target: &connector_host::cli::ProvisionTarget, change: &Change) -> anyhow::Result<()> {
    let settings = TenantSettings::from_args(&target.azure)?;
    let report = apply_from_cli(&settings, &target.run, &target.audit_file, change).await?;
    println!("{}", serde_json::to_string(&report)?);
    match report.error {
        Some(error) => anyhow::bail!("{} of {} failed: {error}", report.action, report.entitlement_id),
        None => Ok(()),
    }
}

fn init_logging(level: &str, format: LogFormat) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(level).map_err(|err| {
        anyhow::anyhow!("--log-level {level:?} is not valid ({err}): use error, warn, info, debug or trace")
    })?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        // Text from components and Azure reaches these fields: one event stays one line.
        LogFormat::Console => builder.fmt_fields(connector_host::log_text::escaping_fields()).init(),
    }
    Ok(())
}
