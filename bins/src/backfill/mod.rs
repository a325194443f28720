//! `backfill`: the batch binary's command line and commands — imports of
//! orders and fills, historical bars, rebuilding the projections from the
//! event log (`replay`), and retention (`purge`). The binary
//! (`src/bin/backfill.rs`) parses the command line and calls [`run`].
//!
//! Every command reads the same configuration as `monitor-server` (defaults →
//! TOML file → `ORDERMON_*` environment) and exits non-zero on failure.

mod bars;
pub mod import;
pub mod progress;
mod purge;
mod replay;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use crate::Config;
use crate::config::duration;

pub use import::{ImportContext, ImportKind, ImportOptions};
pub use progress::Progress;
pub use purge::{MIN_AGE, PurgeOutcome, purge};
pub use replay::replay;

/// Batch jobs against the ordermon database: imports, historical market data,
/// replaying the event log, and retention.
#[derive(Debug, Parser)]
#[command(name = "backfill", version, about)]
pub struct Cli {
    /// TOML configuration file (keys in docs/configuration.md); `ORDERMON_*`
    /// environment variables override it.
    #[arg(
        long,
        short,
        global = true,
        env = "ORDERMON_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import orders from a CSV or JSON-lines file (streaming, every row
    /// validated, bad rows to a rejects file, idempotent re-runs).
    Orders(ImportArgs),
    /// Import fills from a CSV or JSON-lines file (streaming, every row
    /// validated, bad rows to a rejects file, idempotent re-runs).
    Fills(ImportArgs),
    /// Download historical bars from a market-data provider (rate limited,
    /// resumable from a checkpoint).
    Bars(BarsArgs),
    /// Rebuild orders, accounts, positions and strategy statistics from the
    /// event log and compare them with the stored rows. Without --verify the
    /// rows that differ are rewritten from the replay (stop the server
    /// first); with --verify nothing is written and any difference exits
    /// non-zero.
    Replay {
        /// Only report differences (one line each) and exit non-zero on any.
        #[arg(long)]
        verify: bool,
        /// Rows per transaction when rewriting.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        batch: u32,
    },
    /// Delete what may be deleted once old: bars, sent outbox rows, delivered
    /// notification records and log files under `logs.dir`. The event log is
    /// never touched.
    Purge {
        /// Age cutoff, e.g. 90d, 12h, 2d12h (at least 1 day).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        older_than: Duration,
        /// Report what would be deleted, deleting nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Arguments of `orders` and `fills`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file to import: `.csv` or `.jsonl`.
    #[arg(long, value_name = "F.csv|F.jsonl")]
    pub file: PathBuf,
    /// Where rejected rows go, with their line numbers and reasons
    /// (default: next to the input, `<file>.rejects.csv`).
    #[arg(long, value_name = "FILE")]
    pub rejects: Option<PathBuf>,
    /// Validate every row and report, writing nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also queue the imported events on the outbox, so the relay publishes
    /// them on the bus (by default they go to the event log only: history is
    /// not live activity).
    #[arg(long)]
    pub publish: bool,
    /// Rows per committed batch (each batch is one transaction).
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,
}

/// Arguments of `bars`.
#[derive(Debug, Args)]
pub struct BarsArgs {
    /// The market-data provider (e.g. `binance`, `yahoo`, `simulated`).
    #[arg(long, value_name = "P")]
    pub provider: String,
    /// The instrument, `SYMBOL.VENUE`.
    #[arg(long, value_name = "I")]
    pub instrument: String,
    /// Bar width: 1m, 5m, 15m, 1h or 1d.
    #[arg(long, default_value = "1m")]
    pub interval: String,
    /// First bar's open time (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    pub from: String,
    /// End (exclusive), same formats (default: now).
    #[arg(long)]
    pub to: Option<String>,
    /// Where progress is recorded after every stored page, so that a re-run
    /// resumes there (default: `backfill-bars-<provider>-<instrument>-<interval>.checkpoint.json`
    /// in the current directory; removed when the job completes).
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    duration::parse(s).map_err(|e| e.to_string())
}

/// Runs one command; what the process should exit with.
///
/// # Errors
/// Loading the configuration, reaching the database, or the command itself
/// failed (the message says which; database passwords are masked).
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = Config::load(cli.config.as_deref()).context("loading the configuration")?;
    match cli.command {
        Command::Orders(args) => run_import(&config, ImportKind::Orders, &args).await,
        Command::Fills(args) => run_import(&config, ImportKind::Fills, &args).await,
        Command::Bars(args) => bars::run(&config, &args).await,
        Command::Replay { verify, batch } => replay(&config, verify, batch as usize).await,
        Command::Purge {
            older_than,
            dry_run,
        } => {
            let outcome = purge(&config, older_than, dry_run).await?;
            print!("{outcome}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `backfill orders|fills`: streams the file through the domain into the
/// store, then prints the summary.
async fn run_import(
    config: &Config,
    kind: ImportKind,
    args: &ImportArgs,
) -> anyhow::Result<ExitCode> {
    let opts = ImportOptions {
        rejects: args.rejects.clone(),
        dry_run: args.dry_run,
        publish: args.publish,
        batch_size: args.batch_size as usize,
    };
    let ctx = ImportContext::open(config)
        .await
        .with_context(|| format!("opening {}", config.database.url))?;
    let progress = Progress::new(
        format!("backfill {}", kind.as_str()),
        import::file_size(&args.file),
        progress::Unit::Bytes,
        progress::Mode::Auto,
    );
    let outcome = import::import(kind, &args.file, &opts, &ctx, &progress).await;
    let _shown = progress.finish();
    ctx.close().await;
    let summary = outcome.with_context(|| format!("importing {}", args.file.display()))?;
    println!("{summary}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn commands_parse() {
        let cli = Cli::try_parse_from(["backfill", "replay", "--verify"]).unwrap_or_else(|e| {
            panic!("{e}");
        });
        assert!(matches!(cli.command, Command::Replay { verify: true, .. }));
        let cli = Cli::try_parse_from(["backfill", "purge", "--older-than", "90d", "--dry-run"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            cli.command,
            Command::Purge { older_than, dry_run: true } if older_than == Duration::from_secs(90 * 86_400)
        ));
        assert!(Cli::try_parse_from(["backfill", "purge", "--older-than", "soon"]).is_err());
        assert!(Cli::try_parse_from(["backfill", "replay", "--batch", "0"]).is_err());
        let cli = Cli::try_parse_from([
            "backfill",
            "bars",
            "--provider",
            "binance",
            "--instrument",
            "BTCUSDT.BINANCE",
            "--from",
            "2026-01-01",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(cli.command, Command::Bars(ref b) if b.interval == "1m"));
        let cli = Cli::try_parse_from(["backfill", "orders", "--file", "o.csv", "--dry-run"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(cli.command, Command::Orders(ref a) if a.dry_run));
    }
}
