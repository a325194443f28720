//! Progress of a `backfill` subcommand: an indicatif bar on a terminal, a plain
//! line every few seconds when stderr is a file or a pipe (logs, CI), and a
//! summary at the end.
//!
//! One [`Progress`] serves every subcommand: the work advances a position
//! (bytes of the input file, rows, events…) with [`Progress::inc`] or
//! [`Progress::set_position`], and the outcome of each row is counted with
//! [`Progress::read`], [`Progress::written`], [`Progress::skipped`] and
//! [`Progress::rejected`]. [`Progress::finish`] returns the [`Summary`].
//! Everything takes `&self`, so a shared reference can be handed to tasks.

use std::fmt;
use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What the position counts, for how it is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Bytes of an input (shown as KiB/MiB/GiB).
    Bytes,
    /// Rows, events or any other items.
    Items,
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A bar when stderr is a terminal, else plain lines.
    Auto,
    /// Always the bar.
    Bar,
    /// Always plain lines, every `every`.
    Plain {
        /// Time between two lines.
        every: Duration,
    },
    /// Nothing shown (tests, embedders); the counts are still kept.
    Hidden,
}

/// Time between two plain lines in [`Mode::Auto`].
const PLAIN_EVERY: Duration = Duration::from_secs(5);

enum Display {
    Bar(ProgressBar),
    Plain {
        every: Duration,
        last: Mutex<Instant>,
        message: Mutex<String>,
    },
    Hidden,
}

/// Progress of one long operation, with its row counts.
pub struct Progress {
    label: String,
    unit: Unit,
    total: Option<u64>,
    position: AtomicU64,
    read: AtomicU64,
    written: AtomicU64,
    skipped: AtomicU64,
    rejected: AtomicU64,
    started: Instant,
    display: Display,
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Progress")
            .field("label", &self.label)
            .field("position", &self.position.load(Ordering::Relaxed))
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

impl Progress {
    /// Starts showing progress of `label` towards `total` (when known).
    #[must_use]
    pub fn new(label: impl Into<String>, total: Option<u64>, unit: Unit, mode: Mode) -> Self {
        let label = label.into();
        let mode = match mode {
            Mode::Auto if std::io::stderr().is_terminal() => Mode::Bar,
            Mode::Auto => Mode::Plain { every: PLAIN_EVERY },
            m => m,
        };
        let display = match mode {
            Mode::Bar => Display::Bar(bar(&label, total, unit)),
            Mode::Plain { every } => Display::Plain {
                every,
                last: Mutex::new(Instant::now()),
                message: Mutex::new(String::new()),
            },
            Mode::Hidden | Mode::Auto => Display::Hidden,
        };
        Self {
            label,
            unit,
            total,
            position: AtomicU64::new(0),
            read: AtomicU64::new(0),
            written: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            started: Instant::now(),
            display,
        }
    }

    /// A progress that shows nothing (tests, embedders).
    #[must_use]
    pub fn hidden(label: impl Into<String>) -> Self {
        Self::new(label, None, Unit::Items, Mode::Hidden)
    }

    /// Advances the position by `n`.
    pub fn inc(&self, n: u64) {
        let pos = self.position.fetch_add(n, Ordering::Relaxed) + n;
        self.show(pos);
    }

    /// Moves the position to `pos` (e.g. the byte offset reached in a file).
    pub fn set_position(&self, pos: u64) {
        self.position.store(pos, Ordering::Relaxed);
        self.show(pos);
    }

    /// Sets the text shown beside the bar (or in the next plain line).
    pub fn set_message(&self, message: impl Into<String>) {
        let message = message.into();
        match &self.display {
            Display::Bar(b) => b.set_message(message),
            Display::Plain { message: m, .. } => {
                if let Ok(mut m) = m.lock() {
                    *m = message;
                }
            }
            Display::Hidden => {}
        }
    }

    /// Counts rows read from the input.
    pub fn read(&self, n: u64) {
        self.read.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts rows written (or, in a dry run, that would be written).
    pub fn written(&self, n: u64) {
        self.written.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts rows skipped because they were already there.
    pub fn skipped(&self, n: u64) {
        self.skipped.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts rows rejected.
    pub fn rejected(&self, n: u64) {
        self.rejected.fetch_add(n, Ordering::Relaxed);
    }

    /// The counts so far.
    #[must_use]
    pub fn snapshot(&self) -> Summary {
        Summary {
            label: self.label.clone(),
            read: self.read.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            elapsed: self.started.elapsed(),
        }
    }

    /// Stops showing progress (the bar is cleared) and returns the summary.
    #[must_use]
    pub fn finish(&self) -> Summary {
        if let Display::Bar(b) = &self.display {
            b.finish_and_clear();
        }
        self.snapshot()
    }

    fn show(&self, pos: u64) {
        match &self.display {
            Display::Bar(b) => b.set_position(pos),
            Display::Plain {
                every,
                last,
                message,
            } => {
                let Ok(mut last) = last.lock() else { return };
                if last.elapsed() < *every {
                    return;
                }
                *last = Instant::now();
                drop(last);
                let message = message.lock().map(|m| m.clone()).unwrap_or_default();
                eprintln!("{}", self.plain_line(pos, &message));
            }
            Display::Hidden => {}
        }
    }

    fn plain_line(&self, pos: u64, message: &str) -> String {
        let s = self.snapshot();
        let done = match (self.total, self.unit) {
            (Some(t), Unit::Bytes) if t > 0 => format!(
                "{} / {} ({:.1} %)",
                bytes(pos),
                bytes(t),
                100.0 * pos as f64 / t as f64
            ),
            (Some(t), Unit::Items) if t > 0 => format!("{pos} / {t}"),
            (_, Unit::Bytes) => bytes(pos),
            (_, Unit::Items) => pos.to_string(),
        };
        let mut line = format!(
            "{}: {done}; read {}, written {}, skipped {}, rejected {}; {:.0} rows/s",
            self.label,
            s.read,
            s.written,
            s.skipped,
            s.rejected,
            s.rows_per_second()
        );
        if !message.is_empty() {
            line.push_str("; ");
            line.push_str(message);
        }
        line
    }
}

fn bar(label: &str, total: Option<u64>, unit: Unit) -> ProgressBar {
    let template = match (total, unit) {
        (Some(_), Unit::Bytes) => {
            "{prefix} [{elapsed_precise}] [{bar:30}] {bytes}/{total_bytes} ({binary_bytes_per_sec}, eta {eta}) {wide_msg}"
        }
        (Some(_), Unit::Items) => {
            "{prefix} [{elapsed_precise}] [{bar:30}] {pos}/{len} ({per_sec}, eta {eta}) {wide_msg}"
        }
        (None, Unit::Bytes) => "{prefix} {spinner} [{elapsed_precise}] {bytes} {wide_msg}",
        (None, Unit::Items) => "{prefix} {spinner} [{elapsed_precise}] {pos} {wide_msg}",
    };
    let b = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        b.set_style(style.progress_chars("=> "));
    }
    b.set_prefix(label.to_owned());
    b.enable_steady_tick(Duration::from_millis(200));
    b
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// What a finished operation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// What ran (`backfill fills`, …).
    pub label: String,
    /// Rows read from the input.
    pub read: u64,
    /// Rows written (would be written, in a dry run).
    pub written: u64,
    /// Rows already there (idempotent re-runs).
    pub skipped: u64,
    /// Rows refused.
    pub rejected: u64,
    /// Time from start to finish.
    pub elapsed: Duration,
}

impl Summary {
    /// Rows read per second of elapsed time.
    #[must_use]
    pub fn rows_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.read as f64 / secs
        } else {
            0.0
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: read {} rows, written {}, skipped {}, rejected {} in {:.1} s ({:.0} rows/s)",
            self.label,
            self.read,
            self.written,
            self.skipped,
            self.rejected,
            self.elapsed.as_secs_f64(),
            self.rows_per_second()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_summary() {
        let p = Progress::new("backfill fills", Some(100), Unit::Bytes, Mode::Hidden);
        p.inc(10);
        p.set_position(50);
        p.read(4);
        p.written(2);
        p.skipped(1);
        p.rejected(1);
        p.set_message("batch 1");
        let s = p.finish();
        assert_eq!((s.read, s.written, s.skipped, s.rejected), (4, 2, 1, 1));
        let text = s.to_string();
        assert!(
            text.starts_with("backfill fills: read 4 rows, written 2, skipped 1, rejected 1 in ")
        );
        assert!(text.ends_with(" rows/s)"));
    }

    #[test]
    fn plain_lines_name_the_counts() {
        let p = Progress::new(
            "backfill orders",
            Some(2048),
            Unit::Bytes,
            Mode::Plain {
                every: Duration::from_secs(3600),
            },
        );
        p.read(3);
        let line = p.plain_line(1024, "user alice");
        assert!(line.starts_with("backfill orders: 1.0 KiB / 2.0 KiB (50.0 %); read 3,"));
        assert!(line.ends_with("; user alice"));
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(bytes(12), "12 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
