//! `backfill replay [--verify]`: opens the configured database, replays the
//! event log over the projections (`ordermon_application::replay`), prints
//! every difference and a summary.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ordermon_application::replay::{self, ReplayMode, ReplayReport};

use crate::Config;
use crate::config::DatabaseKind;
use crate::store;

/// Runs the replay; exits non-zero when a difference is found (`--verify`)
/// or is left after the rewrite.
///
/// # Errors
/// The database cannot be opened or read, or a rewrite conflicts.
pub async fn replay(config: &Config, verify: bool, batch: usize) -> anyhow::Result<ExitCode> {
    if config.database.kind()? == DatabaseKind::Memory {
        anyhow::bail!(
            "database.url = memory: the in-process store lives inside the running server; nothing to replay"
        );
    }
    let url = config.database.url.to_string();
    let open = store::open(&config.database, true)
        .await
        .with_context(|| format!("opening {url}"))?;
    let persistence = open.persistence();
    // A spinner on a terminal only (hidden when stderr is redirected).
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} replaying the event log: {pos} events ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let mode = if verify {
        ReplayMode::Verify
    } else {
        ReplayMode::Rewrite { batch }
    };
    let outcome = replay::replay(&persistence, mode, &|n| bar.set_position(n)).await;
    bar.finish_and_clear();
    open.close().await;
    let report = outcome.with_context(|| format!("replaying {url}"))?;
    let mut out = std::io::stdout().lock();
    for d in &report.differences {
        writeln!(out, "{d}").context("writing the report")?;
    }
    write!(out, "{}", summary(&report, verify)).context("writing the report")?;
    let failed = if verify {
        !report.differences.is_empty()
    } else {
        !report.unrepaired.is_empty()
    };
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The summary block printed after the differences.
#[must_use]
pub(crate) fn summary(r: &ReplayReport, verify: bool) -> String {
    let c = &r.checked;
    let mut s = format!(
        "events read:        {}\n\
         aggregates checked: {} (orders {}, accounts {}, positions {}, strategies {}, high-water marks {})\n\
         differences:        {}\n",
        r.events,
        c.total(),
        c.orders,
        c.accounts,
        c.positions,
        c.strategies,
        c.high_water_marks,
        r.differences.len(),
    );
    if !verify {
        s.push_str(&format!(
            "rows rewritten:     {}\nnot repairable:     {}\n",
            r.rewritten,
            r.unrepaired.len()
        ));
    }
    s.push_str(&format!(
        "elapsed:            {:.3} s (log replayed in {:.3} s)\n\
         events/s:           {:.0}\n",
        r.elapsed.as_secs_f64(),
        r.replay_time.as_secs_f64(),
        r.events_per_second()
    ));
    s
}
