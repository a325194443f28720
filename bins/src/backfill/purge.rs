//! `backfill purge --older-than D [--dry-run]`: deletes what may go once old —
//! bars, sent outbox rows, delivered notification records, expired sign-in
//! sessions and log files — and never the event log (the audit trail).

use std::fmt;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use ordermon_domain::ports::{PurgeCounts, UserLogSink as _};
use ordermon_telemetry::user_logs::FileLogSink;

use crate::Config;
use crate::config::DatabaseKind;
use crate::store;

/// The shortest cutoff accepted: anything younger may still be in use.
pub const MIN_AGE: Duration = Duration::from_secs(86_400);

/// What a purge deleted (or would delete, with `--dry-run`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeOutcome {
    /// Everything older than this went.
    pub cutoff: DateTime<Utc>,
    /// Nothing was deleted.
    pub dry_run: bool,
    /// Rows of the database.
    pub rows: PurgeCounts,
    /// Log files under `logs.dir`.
    pub log_files: u64,
}

impl fmt::Display for PurgeOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        writeln!(f, "cutoff: {} ({verb})", self.cutoff.to_rfc3339())?;
        writeln!(f, "bars:                     {}", self.rows.bars)?;
        writeln!(f, "outbox rows (sent):       {}", self.rows.outbox)?;
        writeln!(f, "notification records:     {}", self.rows.notifications)?;
        writeln!(f, "sign-in sessions:         {}", self.rows.sessions)?;
        writeln!(f, "log files:                {}", self.log_files)?;
        writeln!(
            f,
            "events:                   0 (the event log is never purged)"
        )
    }
}

/// Purges what is older than `older_than` (at least [`MIN_AGE`]).
///
/// # Errors
/// A cutoff under a day; the database or the log folder cannot be read or
/// changed.
pub async fn purge(
    config: &Config,
    older_than: Duration,
    dry_run: bool,
) -> anyhow::Result<PurgeOutcome> {
    if older_than < MIN_AGE {
        anyhow::bail!(
            "--older-than {} is under 1 day; refusing to purge data that may still be in use",
            ordermon_domain::duration::format(older_than)
        );
    }
    let age = chrono::Duration::from_std(older_than)
        .ok()
        .filter(|a| *a < chrono::Duration::days(365 * 1000))
        .context("--older-than is too large")?;
    let cutoff = Utc::now() - age;
    let rows = if config.database.kind()? == DatabaseKind::Memory {
        // The in-process store lives inside the running server.
        PurgeCounts::default()
    } else {
        let url = config.database.url.to_string();
        let open = store::open(&config.database, true)
            .await
            .with_context(|| format!("opening {url}"))?;
        let p = open.persistence();
        let counted = p.retention.purgeable(cutoff).await;
        let rows = match counted {
            Ok(counts) if dry_run => Ok(counts),
            Ok(_) => {
                async {
                    Ok::<_, ordermon_domain::ports::StoreError>(PurgeCounts {
                        bars: p.retention.purge_bars(cutoff).await?,
                        outbox: p.outbox.purge_sent(cutoff).await?,
                        notifications: p.notifications.purge_notifications(cutoff).await?,
                        sessions: p.credentials.purge_sessions(cutoff).await?,
                    })
                }
                .await
            }
            Err(e) => Err(e),
        };
        open.close().await;
        rows.with_context(|| format!("purging {url}"))?
    };
    let sink = FileLogSink::new(&config.logs.dir, 1);
    let day = cutoff.date_naive();
    let log_files = if dry_run {
        sink.files_before(day).map(|f| f.len())
    } else {
        sink.purge_before(day)
    }
    .with_context(|| format!("purging log files under {}", config.logs.dir.display()))?;
    Ok(PurgeOutcome {
        cutoff,
        dry_run,
        rows,
        log_files: log_files as u64,
    })
}
