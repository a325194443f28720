//! The rolling z-score: how many standard deviations a sample lies from the
//! mean of the last `window` samples.
//!
//! The textbook detector and the baseline the others are measured against: it
//! learns from every sample, spikes included, so a large spike widens the
//! window's standard deviation until it leaves the window. Mean and variance
//! are recomputed over the window for every sample (two passes over at most
//! `window` values in `f64`) rather than updated incrementally: a sliding
//! Welford update drifts as values leave, a bounded recomputation cannot, and
//! at the default 60 samples it costs well under a microsecond.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::{Check, Judge, Ring, quantize, sanitize};
use super::{ConfigError, Detector, Direction, Verdict};

/// Configuration of a [`RollingZScore`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZScoreConfig {
    /// Samples in the window (default 60: ten minutes at 10 s).
    pub window: usize,
    /// Samples the window must hold before the detector judges (default 20).
    pub min_samples: usize,
    /// Anomalous at |z| ≥ `threshold` (default 4).
    pub threshold: f64,
    /// Which side may be anomalous (default both).
    pub direction: Direction,
    /// Smallest absolute deviation that may be anomalous (default 0). On a
    /// constant series any change is anomalous only when at least this large.
    pub min_delta: f64,
}

impl Default for ZScoreConfig {
    fn default() -> Self {
        Self {
            window: 60,
            min_samples: 20,
            threshold: 4.0,
            direction: Direction::Both,
            min_delta: 0.0,
        }
    }
}

impl ZScoreConfig {
    /// Checks every parameter.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] naming the first invalid parameter.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = Check("zscore");
        check.window(self.window, self.min_samples)?;
        check.threshold(self.threshold)?;
        check.non_negative("min_delta", self.min_delta)
    }
}

/// The rolling z-score detector over the last `window` samples.
#[derive(Debug, Clone)]
pub struct RollingZScore {
    judge: Judge,
    min_samples: usize,
    window: Ring<f32>,
}

impl RollingZScore {
    /// A detector with an empty window.
    ///
    /// # Errors
    /// When the configuration is invalid (see [`ZScoreConfig::validate`]).
    pub fn new(config: &ZScoreConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            judge: Judge {
                threshold: config.threshold,
                direction: config.direction,
                min_delta: config.min_delta,
            },
            min_samples: config.min_samples,
            window: Ring::new(config.window),
        })
    }

    /// Mean and sample standard deviation of the window (two passes).
    fn mean_and_deviation(&self) -> (f64, f64) {
        let n = self.window.len() as f64;
        let mean = self.window.iter().map(f64::from).sum::<f64>() / n;
        let squares: f64 = self
            .window
            .iter()
            .map(|v| (f64::from(v) - mean).powi(2))
            .sum();
        (mean, (squares / (n - 1.0)).max(0.0).sqrt())
    }
}

impl Detector for RollingZScore {
    fn observe(&mut self, _t: DateTime<Utc>, x: f64) -> Option<Verdict> {
        let x = quantize(sanitize(x)?);
        let verdict = (self.window.len() >= self.min_samples).then(|| {
            let (mean, deviation) = self.mean_and_deviation();
            self.judge.verdict(x, mean, deviation)
        });
        self.window.push(x as f32);
        verdict
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(self) + self.window.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::detect::Side;

    fn t0() -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH
    }

    fn detector(min_delta: f64) -> RollingZScore {
        RollingZScore::new(&ZScoreConfig {
            window: 10,
            min_samples: 5,
            min_delta,
            ..ZScoreConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn warms_up_then_scores_against_the_window() {
        let mut z = detector(0.0);
        for (i, x) in [1.0, 2.0, 3.0, 4.0, 5.0].into_iter().enumerate() {
            assert!(z.observe(t0(), x).is_none(), "sample {i} is warm-up");
        }
        // mean 3, sample sd sqrt(2.5)
        let v = z.observe(t0(), 3.0 + 2.5f64.sqrt() * 2.0).unwrap();
        assert!((v.score - 2.0).abs() < 1e-6, "{v:?}");
        assert_eq!(v.side, Side::Up);
        assert!(!v.anomalous);
    }

    #[test]
    fn constant_series_flags_only_changes_of_at_least_min_delta() {
        let mut z = detector(0.5);
        for _ in 0..10 {
            if let Some(v) = z.observe(t0(), 7.25) {
                assert_eq!(v.score, 0.0);
                assert!(!v.anomalous);
            }
        }
        let small = z.observe(t0(), 7.5).unwrap();
        assert!(!small.anomalous && small.score.is_finite(), "{small:?}");
        let big = z.observe(t0(), 8.0).unwrap();
        assert!(big.anomalous && big.score.is_finite(), "{big:?}");
    }

    #[test]
    fn constant_series_without_min_delta_flags_any_change_finitely() {
        let mut z = detector(0.0);
        for _ in 0..10 {
            z.observe(t0(), 0.0);
        }
        let v = z.observe(t0(), 1e-3).unwrap();
        assert!(v.anomalous && v.score.is_finite());
        // a large constant level is not flagged for its own rounding
        let mut z = detector(0.0);
        for _ in 0..10 {
            z.observe(t0(), 123_456.789);
        }
        assert!(!z.observe(t0(), 123_456.789).unwrap().anomalous);
    }

    #[test]
    fn ignores_non_finite_samples_and_survives_huge_ones() {
        let mut z = detector(0.0);
        for i in 0..10 {
            z.observe(t0(), f64::from(i % 3));
        }
        assert!(z.observe(t0(), f64::NAN).is_none());
        assert!(z.observe(t0(), f64::INFINITY).is_none());
        let v = z.observe(t0(), 1e300).unwrap();
        assert!(v.anomalous && v.score.is_finite());
        let v = z.observe(t0(), -f64::MAX).unwrap();
        assert!(v.score.is_finite());
    }

    #[test]
    fn rejects_invalid_configurations() {
        let bad = ZScoreConfig {
            min_samples: 100,
            ..ZScoreConfig::default()
        };
        let err = RollingZScore::new(&bad).unwrap_err();
        assert!(err.to_string().contains("min_samples"), "{err}");
        assert!(
            ZScoreConfig {
                threshold: f64::NAN,
                ..ZScoreConfig::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            ZScoreConfig {
                window: 1,
                min_samples: 1,
                ..ZScoreConfig::default()
            }
            .validate()
            .is_err()
        );
    }
}
