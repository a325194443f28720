//! Anomaly detection and failure prediction over the alerting service's time
//! series: pure, synchronous code with no I/O and no allocation per sample.
//!
//! The alerting service feeds every detector one sample per series per bucket
//! (every 10 s per user: order count, reject ratio, ack latency, fill ratio, …).
//! A detector judges each sample against the history *before* it and only then
//! learns from it, so a sample never hides itself. It answers `None` while it
//! warms up, and for input it cannot use (NaN or ±∞, which it ignores: its
//! state is left as it was). Finite samples beyond ±10³⁰ are clamped to that
//! bound so they still fit the `f32` windows and their squares an `f64`; such a
//! sample then scores as the outlier it is.
//!
//! | detector | judges a sample against | bytes (defaults) |
//! | --- | --- | ---: |
//! | [`RollingZScore`] | mean and standard deviation of the last `window` samples | 304 |
//! | [`Ewma`] | exponentially weighted mean and variance | 56 |
//! | [`MedianMad`] | median and MAD of the last `window` samples | 816 |
//! | [`Seasonal`] | its hour-of-week slot's mean and variance over past weeks | 1,600 |
//! | [`Fusion`] | `min_agree` of its members agreeing on the same side | its members + 16 each |
//! | [`IsolationForest`] | a small isolation forest grown from its own recent history (multivariate) | 3,064 |
//! | [`LinearTrend`] (a predictor) | — | 528 |
//!
//! The byte counts are [`Detector::memory_bytes`] (inline size plus heap) at
//! the default configurations: 10,000 users with a z-score and a seasonal
//! detector on each of five series hold about 95 MB. `docs/detectors.md` has
//! precision and recall on synthetic series and the cost of one sample.
//! [`LinearTrend`] is not a detector but a predictor: when will a series reach
//! a limit, if it goes on as it went.
//!
//! The isolation forest follows F. T. Liu, K. M. Ting and Z.-H. Zhou,
//! "Isolation Forest", *Proc. ICDM 2008*, pp. 413–422.
//!
//! [`synthetic`] makes seeded test series with injected anomalies and
//! [`eval`] scores detectors on them; both are public so tests, the
//! `detector_report` example and the docs use the same numbers.

mod common;
mod ewma;
mod fusion;
mod iforest;
mod mad;
mod seasonal;
mod spec;
mod trend;
mod zscore;

pub mod eval;
pub mod synthetic;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod quality_tests;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use ewma::{Ewma, EwmaConfig};
pub use fusion::{Fusion, FusionConfig};
pub use iforest::{IsolationForest, IsolationForestConfig};
pub use mad::{MadConfig, MedianMad};
pub use seasonal::{Seasonal, SeasonalConfig};
pub use spec::DetectorSpec;
pub use trend::{LinearTrend, TrendConfig, TrendFit};
pub use zscore::{RollingZScore, ZScoreConfig};

/// Which deviations a detector may call anomalous.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Only samples above the baseline (a burst of rejects, a latency spike).
    Up,
    /// Only samples below the baseline (a fill rate collapsing, a feed going quiet).
    Down,
    /// Either side.
    #[default]
    Both,
}

impl Direction {
    /// True when a deviation to `side` may be called anomalous.
    #[must_use]
    pub fn admits(self, side: Side) -> bool {
        match (self, side) {
            (Self::Both, _) | (Self::Up, Side::Up) | (Self::Down, Side::Down) => true,
            (Self::Up, Side::Down) | (Self::Down, Side::Up) => false,
        }
    }
}

/// The side of its baseline a sample fell on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// At or above the baseline.
    Up,
    /// Below the baseline.
    Down,
}

/// A detector's verdict on one sample, computed against the history before it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// The detector's standardized score: finite and never negative (|z| for
    /// the z-score, EWMA and seasonal detectors, the robust |z| for the MAD,
    /// the anomaly score s ∈ (0, 1] for the isolation forest, the mean
    /// evidence ∈ [0, 1] for a fusion).
    pub score: f64,
    /// The score at or above which the detector calls a sample anomalous.
    pub threshold: f64,
    /// Whether the detector calls the sample anomalous: its score reached the
    /// threshold on a side its [`Direction`] admits (a fusion: enough of its
    /// members agree).
    pub anomalous: bool,
    /// Which side of the baseline the sample fell on (always `Up` for the
    /// isolation forest, whose score has no side).
    pub side: Side,
}

impl Verdict {
    /// The score relative to the threshold, capped: `min(score / threshold, 2) / 2`,
    /// so 0.5 is exactly at the threshold and 1 is twice it or more. This is
    /// what a [`Fusion`] averages, so detectors with different scales compare.
    #[must_use]
    pub fn evidence(&self) -> f64 {
        if self.threshold > 0.0 {
            (self.score / self.threshold).clamp(0.0, 2.0) / 2.0
        } else {
            0.0
        }
    }
}

/// One univariate detector over one series sampled at a regular cadence.
pub trait Detector: Send + Sync + std::fmt::Debug {
    /// Feeds the next sample, taken at `t`, and returns the verdict on it, or
    /// `None` while the detector warms up or when `x` is NaN or infinite (then
    /// ignored: the state is unchanged).
    fn observe(&mut self, t: DateTime<Utc>, x: f64) -> Option<Verdict>;

    /// The bytes this detector holds: its inline size plus its heap buffers.
    /// Constant after construction (no detector grows with the samples it sees).
    fn memory_bytes(&self) -> usize;
}

/// Why a detector's configuration is invalid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A parameter is outside its range.
    #[error("{detector}: `{field}` must be {expected}, got {got}")]
    OutOfRange {
        /// The detector kind (`zscore`, `ewma`, …).
        detector: &'static str,
        /// The parameter's name as written in configuration.
        field: &'static str,
        /// The accepted range, in words.
        expected: &'static str,
        /// The value given.
        got: f64,
    },
    /// A fusion names no detector.
    #[error("fusion: `detectors` is empty")]
    EmptyFusion,
    /// A fusion asks for more agreeing detectors than it has (or for none).
    #[error("fusion: `min_agree` is {min_agree} but must be between 1 and its {members} detectors")]
    Agreement {
        /// The `min_agree` given.
        min_agree: usize,
        /// How many detectors the fusion has.
        members: usize,
    },
    /// One of a fusion's detectors is invalid.
    #[error("fusion: detector {index}: {source}")]
    Member {
        /// The detector's position in `detectors`, from 0.
        index: usize,
        /// What is wrong with it.
        source: Box<ConfigError>,
    },
}
