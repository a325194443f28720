//! `backfill bars`: historical bars from a market data provider into the
//! `bars` table, page by page, through the provider's own rate budget, with a
//! checkpoint after every page so that an interrupted run resumes where it
//! stopped — no gap (pages are written in time order and the checkpoint only
//! moves past a page once it is stored) and no duplicate (bars are upserted
//! on instrument, interval and open time).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, Utc};
use ordermon_domain::ids::InstrumentId;
use ordermon_domain::market::{Bar, BarInterval};
use ordermon_domain::ports::{BarRepository, MarketDataError, MarketDataProvider};
use serde::{Deserialize, Serialize};

use super::BarsArgs;
use crate::Config;
use crate::config::DatabaseKind;
use crate::store;

/// Bars asked for per request (Binance's largest kline page).
pub(crate) const PAGE: u32 = 1000;
/// Attempts at one page when the provider is rate limited or unavailable
/// (each attempt already carries the provider's own retries).
const PAGE_ATTEMPTS: u32 = 5;
/// Longest wait between two attempts at a page.
const MAX_PAGE_WAIT: Duration = Duration::from_secs(60);

/// One download: which bars.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BarsJob {
    /// The provider's configured name.
    pub(crate) provider: String,
    /// The instrument.
    pub(crate) instrument: InstrumentId,
    /// Bar width.
    pub(crate) interval: BarInterval,
    /// First open time wanted (inclusive).
    pub(crate) from: DateTime<Utc>,
    /// End (exclusive).
    pub(crate) to: DateTime<Utc>,
}

/// What a checkpoint file holds: the job and where it got to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    /// The job it belongs to (a checkpoint of another job is ignored).
    pub(crate) job: BarsJob,
    /// The next open time to ask for: every bar before it is stored.
    pub(crate) next: DateTime<Utc>,
    /// Bars stored so far.
    pub(crate) written: u64,
    /// Pages stored so far.
    pub(crate) pages: u64,
}

/// The figures of a finished (or resumed and finished) download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BarsSummary {
    /// Bars stored by this run.
    pub(crate) written: u64,
    /// Pages stored by this run.
    pub(crate) pages: u64,
    /// Where this run started (after a checkpoint, past `from`).
    pub(crate) resumed_at: Option<DateTime<Utc>>,
    /// Wall time of this run.
    pub(crate) elapsed: Duration,
}

impl std::fmt::Display for BarsSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        #[allow(clippy::cast_precision_loss)]
        let rate = if secs > 0.0 {
            self.written as f64 / secs
        } else {
            0.0
        };
        if let Some(at) = self.resumed_at {
            writeln!(f, "resumed at   {}", at.to_rfc3339())?;
        }
        writeln!(f, "pages        {}", self.pages)?;
        writeln!(f, "bars written {}", self.written)?;
        writeln!(f, "elapsed      {secs:.1} s")?;
        writeln!(f, "bars/s       {rate:.0}")
    }
}

/// Parses `--from` / `--to`: RFC 3339, or a date (midnight UTC).
///
/// # Errors
/// Neither form.
pub(crate) fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| format!("`{text}` is neither an RFC 3339 time nor a YYYY-MM-DD date"))
}

impl BarsJob {
    /// The job the command line asks for, checked.
    ///
    /// # Errors
    /// A bad instrument, interval or time, or an empty window.
    pub(crate) fn from_args(args: &BarsArgs, now: DateTime<Utc>) -> anyhow::Result<Self> {
        let instrument = InstrumentId::new(&args.instrument)
            .map_err(|e| anyhow::anyhow!("--instrument {}: {e}", args.instrument))?;
        let interval: BarInterval = args.interval.parse().map_err(|_| {
            anyhow::anyhow!(
                "--interval {}: must be one of 1m, 5m, 15m, 1h, 1d",
                args.interval
            )
        })?;
        let from = parse_time(&args.from).map_err(|e| anyhow::anyhow!("--from: {e}"))?;
        let to = match &args.to {
            Some(t) => parse_time(t).map_err(|e| anyhow::anyhow!("--to: {e}"))?,
            None => now,
        };
        if from >= to {
            anyhow::bail!("--from must be before --to");
        }
        Ok(Self {
            provider: args.provider.clone(),
            instrument,
            interval,
            from,
            to,
        })
    }

    /// The default checkpoint file: in the current directory, named after
    /// the job.
    #[must_use]
    pub(crate) fn default_checkpoint(&self) -> PathBuf {
        let clean = |s: &str| {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        };
        PathBuf::from(format!(
            "backfill-bars-{}-{}-{}.checkpoint.json",
            clean(&self.provider),
            clean(self.instrument.as_str()),
            self.interval.as_str()
        ))
    }
}

/// Reads a checkpoint; `None` when there is none or it belongs to another job.
fn load_checkpoint(path: &Path, job: &BarsJob) -> anyhow::Result<Option<Checkpoint>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(e).with_context(|| format!("reading checkpoint {}", path.display()));
        }
    };
    let checkpoint: Checkpoint = serde_json::from_str(&text)
        .with_context(|| format!("checkpoint {} is not readable", path.display()))?;
    if &checkpoint.job != job {
        tracing::warn!(checkpoint = %path.display(), "the checkpoint belongs to another job; starting from --from");
        return Ok(None);
    }
    Ok(Some(checkpoint))
}

/// Writes a checkpoint atomically (a temporary file renamed over it).
fn save_checkpoint(path: &Path, checkpoint: &Checkpoint) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_vec_pretty(checkpoint).context("encoding the checkpoint")?;
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// One page, asked again while the provider is rate limited or unavailable.
async fn page(
    provider: &dyn MarketDataProvider,
    job: &BarsJob,
    from: DateTime<Utc>,
) -> Result<Vec<Bar>, MarketDataError> {
    let mut attempt = 1;
    loop {
        match provider
            .bars(&job.instrument, job.interval, from, job.to, PAGE)
            .await
        {
            Ok(bars) => return Ok(bars),
            Err(e @ (MarketDataError::RateLimited { .. } | MarketDataError::Unavailable(_)))
                if attempt < PAGE_ATTEMPTS =>
            {
                let wait = match &e {
                    MarketDataError::RateLimited {
                        retry_after_secs: Some(s),
                    } => Duration::from_secs(*s),
                    _ => Duration::from_secs(1 << attempt.min(5)),
                }
                .min(MAX_PAGE_WAIT);
                tracing::warn!(error = %e, attempt, wait_secs = wait.as_secs(), "page failed; waiting");
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Downloads the job's bars into `store`, resuming from `checkpoint` and
/// moving it past every stored page; removes it when done. `progress` is
/// told the bars stored so far.
///
/// # Errors
/// The provider fails for good, the store refuses, or the checkpoint cannot
/// be written (the checkpoint then still says where to resume).
pub(crate) async fn download(
    job: &BarsJob,
    provider: &dyn MarketDataProvider,
    store: &dyn BarRepository,
    checkpoint: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> anyhow::Result<BarsSummary> {
    let started = Instant::now();
    let resumed = load_checkpoint(checkpoint, job)?;
    let mut state = resumed.clone().unwrap_or(Checkpoint {
        job: job.clone(),
        next: job.from,
        written: 0,
        pages: 0,
    });
    let (written_before, pages_before) = (state.written, state.pages);
    let step = chrono::Duration::seconds(job.interval.seconds());
    while state.next < job.to {
        let cursor = state.next;
        let mut bars: Vec<Bar> = page(provider, job, cursor)
            .await
            .with_context(|| {
                format!(
                    "fetching bars of {} from {}",
                    job.instrument,
                    cursor.to_rfc3339()
                )
            })?
            .into_iter()
            .filter(|b| {
                b.instrument_id == job.instrument
                    && b.interval == job.interval
                    && b.open_time >= cursor
                    && b.open_time < job.to
            })
            .collect();
        bars.sort_by_key(|b| b.open_time);
        bars.dedup_by_key(|b| b.open_time);
        let Some(last) = bars.last().map(|b| b.open_time) else {
            // Nothing from the cursor to the end: the provider has no more.
            break;
        };
        store.upsert_bars(&bars).await.context("storing bars")?;
        state.next = last + step;
        state.written += bars.len() as u64;
        state.pages += 1;
        save_checkpoint(checkpoint, &state)?;
        progress(state.written);
    }
    match std::fs::remove_file(checkpoint) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e).with_context(|| format!("removing {}", checkpoint.display()));
        }
    }
    Ok(BarsSummary {
        written: state.written - written_before,
        pages: state.pages - pages_before,
        resumed_at: resumed.map(|c| c.next),
        elapsed: started.elapsed(),
    })
}

/// `backfill bars`: the command.
///
/// # Errors
/// A bad argument or provider, the database, or the download.
pub(crate) async fn run(config: &Config, args: &BarsArgs) -> anyhow::Result<ExitCode> {
    let job = BarsJob::from_args(args, Utc::now())?;
    if config.database.kind()? == DatabaseKind::Memory {
        anyhow::bail!(
            "database.url = memory: bars would vanish with this process; point it at the server's database"
        );
    }
    let provider_config = config
        .provider(&job.provider)
        .map_err(anyhow::Error::msg)
        .context("--provider")?;
    // No cache: every page is new, and a backfill must not fill the cache.
    let mut provider_config = provider_config;
    provider_config.cache.enabled = false;
    let provider = ordermon_marketdata::build(&provider_config, None)
        .with_context(|| format!("building market data provider `{}`", job.provider))?;
    let checkpoint = args
        .checkpoint
        .clone()
        .unwrap_or_else(|| job.default_checkpoint());
    let url = config.database.url.to_string();
    let open = store::open(&config.database, true)
        .await
        .with_context(|| format!("opening {url}"))?;
    let persistence = open.persistence();
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg}: {pos} bars ({per_sec})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.set_message(format!("{} {}", job.instrument, job.interval.as_str()));
    let plain = !std::io::IsTerminal::is_terminal(&std::io::stderr());
    let last_line = std::sync::Mutex::new(Instant::now());
    let progress = |n: u64| {
        bar.set_position(n);
        if plain
            && let Ok(mut at) = last_line.lock()
            && at.elapsed() >= Duration::from_secs(5)
        {
            eprintln!("bars: {n} stored");
            *at = Instant::now();
        }
    };
    let outcome = download(
        &job,
        provider.as_ref(),
        persistence.bars.as_ref(),
        &checkpoint,
        &progress,
    )
    .await;
    bar.finish_and_clear();
    open.close().await;
    let summary = outcome.with_context(|| {
        format!(
            "backfill bars stopped; run it again to resume from {}",
            checkpoint.display()
        )
    })?;
    println!(
        "bars of {} ({}) from {} into {url}",
        job.instrument,
        job.interval.as_str(),
        job.provider
    );
    print!("{summary}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests;
