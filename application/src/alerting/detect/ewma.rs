//! The EWMA detector: an exponentially weighted mean and variance (EWMV) and
//! the score |x − mean| / sd.
//!
//! Two numbers of state instead of a window, so it is the cheapest detector
//! to hold per user. `alpha` is the weight of the newest sample: the baseline
//! remembers roughly the last 2/alpha samples. While warming up it uses
//! `max(alpha, 1/n)`, which makes its first estimates the plain running mean
//! and variance instead of values biased toward the first sample.
//!
//! Once warm it learns from the sample *winsorized* to `threshold` standard
//! deviations: a spike moves the baseline no more than a sample at the
//! threshold would, so it cannot inflate the variance and mask the next spike
//! (a plain EWMV with alpha 0.05 hit by a 10σ spike has its sd at 2.4σ for
//! dozens of samples). A lasting level shift is still learned, in steps of
//! `alpha · threshold` standard deviations that also widen the variance.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::{Check, Judge, sanitize};
use super::{ConfigError, Detector, Direction, Verdict};

/// Configuration of an [`Ewma`] detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EwmaConfig {
    /// Weight of the newest sample, in (0, 1] (default 0.05: about 40 samples
    /// of memory).
    pub alpha: f64,
    /// Samples seen before the detector judges (default 30).
    pub min_samples: usize,
    /// Anomalous at |x − mean| / sd ≥ `threshold` (default 4).
    pub threshold: f64,
    /// Which side may be anomalous (default both).
    pub direction: Direction,
    /// Smallest absolute deviation that may be anomalous (default 0).
    pub min_delta: f64,
}

impl Default for EwmaConfig {
    fn default() -> Self {
        Self {
            alpha: 0.05,
            min_samples: 30,
            threshold: 4.0,
            direction: Direction::Both,
            min_delta: 0.0,
        }
    }
}

impl EwmaConfig {
    /// Checks every parameter.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] naming the first invalid parameter.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = Check("ewma");
        check.that(
            self.alpha > 0.0 && self.alpha <= 1.0,
            "alpha",
            self.alpha,
            "in (0, 1]",
        )?;
        check.that(
            (2..=1_000_000).contains(&self.min_samples),
            "min_samples",
            self.min_samples as f64,
            "between 2 and 1000000",
        )?;
        check.threshold(self.threshold)?;
        check.non_negative("min_delta", self.min_delta)
    }
}

/// The exponentially weighted mean/variance detector.
#[derive(Debug, Clone)]
pub struct Ewma {
    judge: Judge,
    alpha: f64,
    min_samples: u32,
    /// Samples learned from, saturating.
    seen: u32,
    mean: f64,
    variance: f64,
}

impl Ewma {
    /// A detector that has seen nothing.
    ///
    /// # Errors
    /// When the configuration is invalid (see [`EwmaConfig::validate`]).
    pub fn new(config: &EwmaConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            judge: Judge {
                threshold: config.threshold,
                direction: config.direction,
                min_delta: config.min_delta,
            },
            alpha: config.alpha,
            min_samples: u32::try_from(config.min_samples).unwrap_or(u32::MAX),
            seen: 0,
            mean: 0.0,
            variance: 0.0,
        })
    }

    /// The current baseline: mean and standard deviation.
    #[must_use]
    pub fn baseline(&self) -> (f64, f64) {
        (self.mean, self.variance.max(0.0).sqrt())
    }
}

impl Detector for Ewma {
    fn observe(&mut self, _t: DateTime<Utc>, x: f64) -> Option<Verdict> {
        let x = sanitize(x)?;
        let (mean, deviation) = self.baseline();
        let warm = self.seen >= self.min_samples;
        let verdict = warm.then(|| self.judge.verdict(x, mean, deviation));
        let learned = if warm {
            self.judge.winsorize(x, mean, deviation)
        } else {
            x
        };
        // 1/n while warming up: the running mean and variance, unbiased by the start.
        let alpha = self.alpha.max(1.0 / (f64::from(self.seen) + 1.0));
        let diff = learned - self.mean;
        let step = alpha * diff;
        self.mean += step;
        self.variance = (1.0 - alpha) * (self.variance + diff * step);
        self.seen = self.seen.saturating_add(1);
        verdict
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH
    }

    #[test]
    fn warm_up_estimates_are_the_running_mean_and_variance() {
        let mut e = Ewma::new(&EwmaConfig {
            alpha: 0.01,
            min_samples: 4,
            ..EwmaConfig::default()
        })
        .unwrap();
        for x in [2.0, 4.0, 4.0, 6.0] {
            assert!(e.observe(t0(), x).is_none());
        }
        let (mean, sd) = e.baseline();
        assert!((mean - 4.0).abs() < 1e-12);
        // population variance of 2, 4, 4, 6 is 2
        assert!((sd - 2f64.sqrt()).abs() < 1e-12, "{sd}");
        let v = e.observe(t0(), 4.0 + 3.0 * 2f64.sqrt()).unwrap();
        assert!((v.score - 3.0).abs() < 1e-9 && !v.anomalous, "{v:?}");
    }

    #[test]
    fn a_spike_does_not_mask_the_next_one() {
        let mut e = Ewma::new(&EwmaConfig::default()).unwrap();
        for i in 0..200 {
            e.observe(t0(), if i % 2 == 0 { 9.0 } else { 11.0 });
        }
        assert!(e.observe(t0(), 30.0).unwrap().anomalous);
        let v = e.observe(t0(), 20.0).unwrap();
        assert!(v.anomalous, "the second spike is still seen: {v:?}");
    }

    #[test]
    fn constant_series_and_bad_input() {
        let mut e = Ewma::new(&EwmaConfig {
            min_delta: 1.0,
            ..EwmaConfig::default()
        })
        .unwrap();
        for _ in 0..100 {
            if let Some(v) = e.observe(t0(), 5.0) {
                assert_eq!(v.score, 0.0);
            }
        }
        assert!(!e.observe(t0(), 5.5).unwrap().anomalous);
        assert!(e.observe(t0(), 7.0).unwrap().anomalous);
        assert!(e.observe(t0(), f64::NEG_INFINITY).is_none());
        let v = e.observe(t0(), f64::MAX).unwrap();
        assert!(v.score.is_finite() && v.anomalous);
        let (mean, sd) = e.baseline();
        assert!(mean.is_finite() && sd.is_finite());
    }

    #[test]
    fn rejects_invalid_alpha() {
        for alpha in [0.0, -0.1, 1.5, f64::NAN] {
            let err = EwmaConfig {
                alpha,
                ..EwmaConfig::default()
            }
            .validate()
            .unwrap_err();
            assert!(err.to_string().contains("alpha"), "{err}");
        }
    }
}
