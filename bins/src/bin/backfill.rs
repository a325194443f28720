//! `backfill`: parse the command line, start telemetry, run one batch
//! command of the `ordermon` crate.

use std::process::ExitCode;

use clap::Parser as _;
use ordermon::backfill::{Cli, run};
use ordermon_telemetry::{LogFormat, TelemetryConfig};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Results go to stdout; logs (to stderr) are kept to warnings.
    let telemetry = ordermon_telemetry::init_with_layers(
        &TelemetryConfig {
            format: LogFormat::Pretty,
            filter: Some("warn".to_owned()),
            service: "backfill".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            otlp: None,
        },
        Vec::new(),
    );
    let _telemetry = match telemetry {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: starting telemetry: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            // The cause chain on one line, without a backtrace.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
