//! The `connector-host` command line.

use std::process::ExitCode;

use clap::Parser;
use connector_host::cli::{Cli, Command, LogFormat};
use connector_host::tenant::TenantSettings;
use connector_host::{demo, export, run};
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
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Sync(args) => {
            let settings = TenantSettings::from_args(&args.azure)?;
            let summary = run::sync_tenant(&settings, &args.run, &args.output).await?;
            println!("Synced into {}", args.output.display());
            println!("{summary}");
            Ok(())
        }
        Command::Export(args) => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            export::export(&args.input, &mut out)
        }
        Command::Demo(args) => demo::run_demo(&args.run, &args.output).await,
    }
}

fn init_logging(level: &str, format: LogFormat) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(level).map_err(|err| {
        anyhow::anyhow!("--log-level {level:?} is not valid ({err}): use error, warn, info, debug or trace")
    })?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Console => builder.init(),
    }
    Ok(())
}
