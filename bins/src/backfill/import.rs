//! `backfill orders|fills --file F.csv|F.jsonl`: imports historical orders or
//! fills through the domain, as the engine would have recorded them, in
//! bounded batches and constant memory.
//!
//! The file is read one row at a time ([`read`]); each row is decoded with the
//! API's own types and checks ([`rows`]) and applied to an in-memory model of
//! the users it touches with the domain's methods ([`ledger`], [`orders`],
//! [`fills`]); every `batch_size` rows the batch's state rows, events and
//! outbox rows are committed as one change set (one transaction, written with
//! multi-row statements) while the next batch is prepared. Bad rows go to the
//! rejects file ([`rejects`]) and the import goes on. Rows already imported
//! (same client order id of the user, same trade id of the order) are counted
//! as skipped, so a re-run changes nothing. A dry run does everything but the
//! commits.
//!
//! Run it while the users it imports for are idle: the store's version checks
//! refuse a batch (and stop the import) if a running server changed one of
//! them meanwhile, and that server's owner reloads on its next refused commit.
//! Re-running after such a stop is safe.

mod fills;
mod ledger;
mod orders;
pub mod read;
pub mod rejects;
mod rows;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use ordermon_application::persistence::Persistence;
use ordermon_domain::ports::{ChangeSet, StoreError};
use ordermon_domain::risk::RiskParams;
use tokio::task::JoinHandle;

use super::progress::Progress;
use crate::config::Config;
use crate::store::OpenStore;
use ledger::Ledger;
use read::{Format, Item, RowReader};
use rejects::Rejects;

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    /// Order rows (`backfill orders`).
    Orders,
    /// Fill rows (`backfill fills`); their orders must be imported first.
    Fills,
}

impl ImportKind {
    /// `orders` or `fills`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Orders => "orders",
            Self::Fills => "fills",
        }
    }
}

/// How to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// Where refused rows go; default [`rejects::default_path`]
    /// (`orders.csv` → `orders.rejects.csv`, beside the input).
    pub rejects: Option<PathBuf>,
    /// Check every row and write the rejects file, but change nothing in the
    /// database. Keeps the orders it touched in memory (about 1 KiB each).
    pub dry_run: bool,
    /// Rows per committed batch (default 5,000; at least 1).
    pub batch_size: usize,
    /// Also queue every event on the outbox, for the relay to publish on the
    /// bus. Off by default: imported history is not news, and the bus's
    /// consumers (WebSocket streams, other instances' caches) would take it
    /// for live activity. The event log holds it either way.
    pub publish: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            rejects: None,
            dry_run: false,
            batch_size: DEFAULT_BATCH,
            publish: false,
        }
    }
}

/// The default [`ImportOptions::batch_size`].
pub const DEFAULT_BATCH: usize = 5_000;

/// What an import needs: the store's ports and the reservation pricing of
/// the engine's configuration (open orders reserve as the engine would).
#[derive(Debug, Clone)]
pub struct ImportContext {
    persistence: Persistence,
    risk: RiskParams,
    store: Option<OpenStore>,
}

impl ImportContext {
    /// A context over ports the caller built (tests, embedders).
    #[must_use]
    pub fn new(persistence: Persistence, risk: RiskParams) -> Self {
        Self {
            persistence,
            risk,
            store: None,
        }
    }

    /// Opens the configured database (`database.url`, migrated) and takes
    /// the reservation pricing from `[engine.risk]`.
    ///
    /// # Errors
    /// [`ImportError::Database`] when the database cannot be opened.
    pub async fn open(config: &Config) -> Result<Self, ImportError> {
        let store = crate::store::open(&config.database, true)
            .await
            .map_err(|e| ImportError::Database(e.to_string()))?;
        Ok(Self {
            persistence: store.persistence(),
            risk: RiskParams::from(&config.engine.risk),
            store: Some(store),
        })
    }

    /// The ports it writes through.
    #[must_use]
    pub fn persistence(&self) -> &Persistence {
        &self.persistence
    }

    /// Closes the database pool it opened (nothing for [`ImportContext::new`]).
    pub async fn close(&self) {
        if let Some(store) = &self.store {
            store.close().await;
        }
    }
}

/// Why an import stopped. Rows committed before the error stay; re-running
/// the same file skips them.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The extension is neither `.csv` nor `.jsonl`.
    #[error("{path}: unsupported file type: use .csv or .jsonl")]
    Format {
        /// The file.
        path: String,
    },
    /// The file cannot be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The CSV header is missing or wrong.
    #[error("bad header: {0}")]
    Header(String),
    /// Reading the file failed.
    #[error("cannot read line {line}: {message}")]
    Read {
        /// Where (0 when unknown).
        line: u64,
        /// Why.
        message: String,
    },
    /// The rejects file cannot be written.
    #[error("cannot write the rejects file {path}: {source}")]
    Rejects {
        /// The rejects file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The database cannot be opened.
    #[error("{0}")]
    Database(String),
    /// The store refused or failed a read or a batch.
    #[error("store error (rows committed before stay; re-running skips them): {0}")]
    Store(#[from] StoreError),
    /// Anything else.
    #[error("unexpected: {0}")]
    Unexpected(String),
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    /// Orders or fills.
    pub kind: ImportKind,
    /// Rows read.
    pub read: u64,
    /// Rows written (in a dry run: that would have been).
    pub written: u64,
    /// Rows already there.
    pub skipped: u64,
    /// Rows refused (see the rejects file).
    pub rejected: u64,
    /// The rejects file, when rows were refused.
    pub rejects: Option<PathBuf>,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Time taken.
    pub elapsed: Duration,
}

impl ImportSummary {
    /// Rows read per second.
    #[must_use]
    pub fn rows_per_second(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.read as f64 / s } else { 0.0 }
    }
}

impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "backfill {}{}: read {} rows, written {}, skipped {}, rejected {} in {:.1} s ({:.0} rows/s)",
            self.kind.as_str(),
            if self.dry_run { " (dry run)" } else { "" },
            self.read,
            self.written,
            self.skipped,
            self.rejected,
            self.elapsed.as_secs_f64(),
            self.rows_per_second()
        )?;
        if let Some(p) = &self.rejects {
            write!(f, "; rejected rows in {}", p.display())?;
        }
        Ok(())
    }
}

/// What became of one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Written,
    Skipped,
    Rejected(String),
}

/// Imports `file` (`.csv` or `.jsonl`) of `kind` rows.
///
/// `progress` advances with the bytes read and counts every row; build it
/// with the file's size as total (see [`file_size`]).
///
/// # Errors
/// See [`ImportError`]: a bad extension, an unreadable file or CSV header, a
/// rejects file that cannot be written, or a store failure. Bad rows are not
/// errors: they go to the rejects file.
pub async fn import(
    kind: ImportKind,
    file: &Path,
    opts: &ImportOptions,
    ctx: &ImportContext,
    progress: &Progress,
) -> Result<ImportSummary, ImportError> {
    let format = Format::of(file)?;
    let columns = match kind {
        ImportKind::Orders => rows::ORDER_COLUMNS,
        ImportKind::Fills => rows::FILL_COLUMNS,
    };
    let mut reader = RowReader::open(file, format, columns)?;
    let rejects_path = opts
        .rejects
        .clone()
        .unwrap_or_else(|| rejects::default_path(file, format));
    if same_file(&rejects_path, file) {
        return Err(ImportError::Rejects {
            path: rejects_path.display().to_string(),
            source: std::io::Error::other("that is the input file"),
        });
    }
    let mut rejects = Rejects::new(rejects_path, format, reader.header().to_vec());
    let mut ledger = Ledger::new(
        ctx.persistence.clone(),
        ctx.risk.clone(),
        opts.dry_run,
        opts.publish,
    )
    .await?;
    let batch_size = opts.batch_size.max(1);
    let started = std::time::Instant::now();
    let mut counts = Counts::default();
    let mut in_flight: Option<(JoinHandle<Result<(), StoreError>>, u64)> = None;
    let mut items = Vec::with_capacity(batch_size);
    loop {
        items.clear();
        while items.len() < batch_size {
            match reader.next_item()? {
                Some(item) => items.push(item),
                None => break,
            }
        }
        if items.is_empty() {
            break;
        }
        progress.read(items.len() as u64);
        counts.read += items.len() as u64;
        let batch = prepare(kind, &mut ledger, &mut items, &mut rejects, progress).await?;
        counts.skipped += batch.skipped;
        counts.rejected += batch.rejected;
        // The previous batch must be durable before this one is sent: its
        // versions are this one's expectations.
        if let Some((handle, written)) = in_flight.take() {
            finish_commit(handle, &mut ledger).await?;
            counts.written += written;
            progress.written(written);
        }
        ledger.committed_before_current();
        if opts.dry_run || batch.changes.is_empty() {
            counts.written += batch.written;
            progress.written(batch.written);
        } else {
            let store = ctx.persistence.store.clone();
            let changes = batch.changes;
            let handle = tokio::spawn(async move {
                let mut results = store.commit_group(vec![changes]).await;
                results
                    .pop()
                    .unwrap_or_else(|| Err(StoreError::Unexpected("no commit result".to_owned())))
                    .map(|_| ())
            });
            in_flight = Some((handle, batch.written));
        }
        progress.set_position(reader.offset());
    }
    if let Some((handle, written)) = in_flight.take() {
        finish_commit(handle, &mut ledger).await?;
        counts.written += written;
        progress.written(written);
    }
    let rejects = rejects.finish()?;
    Ok(ImportSummary {
        kind,
        read: counts.read,
        written: counts.written,
        skipped: counts.skipped,
        rejected: counts.rejected,
        rejects,
        dry_run: opts.dry_run,
        elapsed: started.elapsed(),
    })
}

/// The size of `file` in bytes (the progress total), if it can be read.
#[must_use]
pub fn file_size(file: &Path) -> Option<u64> {
    std::fs::metadata(file).ok().map(|m| m.len())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[derive(Debug, Default)]
struct Counts {
    read: u64,
    written: u64,
    skipped: u64,
    rejected: u64,
}

/// One prepared batch.
struct Prepared {
    changes: ChangeSet,
    written: u64,
    skipped: u64,
    rejected: u64,
}

async fn finish_commit(
    handle: JoinHandle<Result<(), StoreError>>,
    ledger: &mut Ledger,
) -> Result<(), ImportError> {
    let result = handle
        .await
        .map_err(|e| ImportError::Unexpected(format!("commit task failed: {e}")))?;
    if let Err(e) = result {
        // Memory is ahead of the store now; nothing more is written.
        ledger.forget();
        return Err(e.into());
    }
    Ok(())
}

/// Decodes, checks and applies a batch of rows; writes its rejects.
async fn prepare(
    kind: ImportKind,
    ledger: &mut Ledger,
    items: &mut [Item],
    rejects: &mut Rejects,
    progress: &Progress,
) -> Result<Prepared, ImportError> {
    let now = Utc::now();
    let mut outcomes: Vec<Option<Outcome>> = vec![None; items.len()];
    match kind {
        ImportKind::Orders => {
            let mut parsed = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item
                    .row
                    .as_ref()
                    .map_err(Clone::clone)
                    .and_then(|r| rows::order_row(r, now))
                {
                    Ok(row) => parsed.push((i, row)),
                    Err(e) => outcomes[i] = Some(Outcome::Rejected(e)),
                }
            }
            let rows_only: Vec<rows::OrderRow> = parsed.iter().map(|(_, r)| r.clone()).collect();
            let (ids, keys) = orders::lookups(&rows_only);
            ledger.load_orders(ids, keys).await?;
            ledger
                .load_users(rows_only.iter().map(|r| r.new.user_id.clone()))
                .await?;
            for (i, row) in parsed {
                outcomes[i] = Some(orders::import(ledger, row));
            }
        }
        ImportKind::Fills => {
            let mut parsed = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item
                    .row
                    .as_ref()
                    .map_err(Clone::clone)
                    .and_then(|r| rows::fill_row(r, now))
                {
                    Ok(row) => parsed.push((i, row)),
                    Err(e) => outcomes[i] = Some(Outcome::Rejected(e)),
                }
            }
            let rows_only: Vec<rows::FillRow> = parsed.iter().map(|(_, r)| r.clone()).collect();
            let (ids, keys) = fills::lookups(&rows_only);
            ledger.load_orders(ids, keys).await?;
            let users = fills::users(ledger, &rows_only);
            ledger.load_users(users).await?;
            for (i, row) in parsed {
                outcomes[i] = Some(fills::import(ledger, row));
            }
        }
    }
    let changes = ledger.take_batch().map_err(ImportError::Unexpected)?;
    let (mut written, mut skipped, mut rejected) = (0, 0, 0);
    for (item, outcome) in items.iter().zip(outcomes) {
        match outcome {
            Some(Outcome::Written) => written += 1,
            Some(Outcome::Skipped) => skipped += 1,
            Some(Outcome::Rejected(reason)) => {
                rejected += 1;
                rejects.write(item.line, &reason, &item.raw)?;
            }
            None => {
                rejected += 1;
                rejects.write(item.line, "not processed", &item.raw)?;
            }
        }
    }
    progress.skipped(skipped);
    progress.rejected(rejected);
    Ok(Prepared {
        changes,
        written,
        skipped,
        rejected,
    })
}
