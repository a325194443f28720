//! A development driver of the backfill import, wired as the `backfill`
//! binary's `orders` and `fills` subcommands are: configuration (defaults →
//! `--config` file → `ORDERMON_*` environment), the configured database, a
//! progress display, the summary, a non-zero exit on failure.
//!
//! ```sh
//! cargo run -p ordermon --example backfill_import -- orders data/orders.csv
//! cargo run -p ordermon --example backfill_import -- fills data/fills.jsonl --dry-run
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use ordermon::backfill::import::{ImportContext, ImportKind, ImportOptions, file_size, import};
use ordermon::backfill::progress::{Mode, Progress, Unit};
use ordermon::config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let kind = match args.next().as_deref() {
        Some("orders") => ImportKind::Orders,
        Some("fills") => ImportKind::Fills,
        _ => {
            eprintln!(
                "usage: backfill_import orders|fills FILE [--dry-run] [--rejects PATH] [--config FILE]"
            );
            return ExitCode::from(2);
        }
    };
    let Some(file) = args.next().map(PathBuf::from) else {
        eprintln!("a file is required");
        return ExitCode::from(2);
    };
    let mut opts = ImportOptions::default();
    let mut config_file = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dry-run" => opts.dry_run = true,
            "--rejects" => opts.rejects = args.next().map(PathBuf::from),
            "--config" => config_file = args.next().map(PathBuf::from),
            other => {
                eprintln!("unknown argument {other:?}");
                return ExitCode::from(2);
            }
        }
    }
    let config = match Config::load(config_file.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ctx = match ImportContext::open(&config).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let progress = Progress::new(
        format!("backfill {}", kind.as_str()),
        file_size(&file),
        Unit::Bytes,
        Mode::Auto,
    );
    let result = import(kind, &file, &opts, &ctx, &progress).await;
    let _ = progress.finish();
    ctx.close().await;
    match result {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
