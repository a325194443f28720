//! Failure prediction by linear trend: a least-squares line through the last
//! `window` samples (time in seconds, value), and when it will reach a limit.
//!
//! Used for "time until the position limit, the daily loss limit or a queue's
//! capacity is reached": the service alerts when the answer falls under a
//! threshold. The answer is `None` unless it means something: too few samples,
//! a fit too poor to extrapolate (r² under `min_r2`), a flat line, or a line
//! moving away from the limit. A line already past the limit and moving
//! further past it is also "moving away": a plain threshold rule covers a limit
//! already crossed; this predicts crossings still ahead.
//!
//! The fit is recomputed over the window on demand in two passes with centred
//! sums (times are taken relative to the latest sample), which keeps it exact
//! for epoch-sized timestamps. Samples are kept as (ms since the epoch, `f64`)
//! because positions and losses need their precision: 16 bytes per sample.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::common::{Check, MAX_WINDOW, Ring, sanitize};

/// Configuration of a [`LinearTrend`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrendConfig {
    /// Samples the line is fitted to (default 30: five minutes at 10 s).
    pub window: usize,
    /// Samples needed before there is a fit (default 10).
    pub min_samples: usize,
    /// Smallest r² for which [`LinearTrend::time_to`] extrapolates (default 0.6).
    pub min_r2: f64,
}

impl Default for TrendConfig {
    fn default() -> Self {
        Self {
            window: 30,
            min_samples: 10,
            min_r2: 0.6,
        }
    }
}

impl TrendConfig {
    /// Checks every parameter.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] naming the first invalid parameter.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = Check("trend");
        check.that(
            (2..=MAX_WINDOW).contains(&self.window),
            "window",
            self.window as f64,
            "between 2 and 100000",
        )?;
        check.that(
            (2..=self.window).contains(&self.min_samples),
            "min_samples",
            self.min_samples as f64,
            "between 2 and `window`",
        )?;
        check.that(
            (0.0..=1.0).contains(&self.min_r2),
            "min_r2",
            self.min_r2,
            "in [0, 1]",
        )
    }
}

/// A least-squares line through the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrendFit {
    /// Change per second.
    pub slope: f64,
    /// The line's value at `at` (the intercept, taken at the latest sample
    /// rather than at the epoch).
    pub level: f64,
    /// Coefficient of determination in [0, 1]: the share of the variance the
    /// line explains (1 for a perfectly straight or constant series).
    pub r2: f64,
    /// Samples fitted.
    pub samples: usize,
    /// Time of the latest sample.
    pub at: DateTime<Utc>,
}

impl TrendFit {
    /// The line's value at `t`.
    #[must_use]
    pub fn value_at(&self, t: DateTime<Utc>) -> f64 {
        let seconds = (t - self.at).num_milliseconds() as f64 / 1000.0;
        self.level + self.slope * seconds
    }

    /// How long after `at` the line reaches `limit`: zero when it is there
    /// now, `None` when it is flat or moving away from `limit` (this ignores
    /// r²; [`LinearTrend::time_to`] checks it).
    #[must_use]
    pub fn time_to(&self, limit: f64) -> Option<Duration> {
        let gap = limit - self.level;
        if gap == 0.0 {
            return Some(Duration::ZERO);
        }
        if self.slope == 0.0 || !gap.is_finite() {
            return None;
        }
        let seconds = gap / self.slope;
        // negative: moving away; too large for a Duration: never, in practice
        if seconds > 0.0 {
            Duration::try_from_secs_f64(seconds).ok()
        } else {
            None
        }
    }
}

/// A linear-trend predictor over the last `window` samples.
#[derive(Debug, Clone)]
pub struct LinearTrend {
    min_samples: usize,
    min_r2: f64,
    /// (milliseconds since the epoch, value).
    points: Ring<(i64, f64)>,
}

impl LinearTrend {
    /// A predictor with no samples.
    ///
    /// # Errors
    /// When the configuration is invalid (see [`TrendConfig::validate`]).
    pub fn new(config: &TrendConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            min_samples: config.min_samples,
            min_r2: config.min_r2,
            points: Ring::new(config.window),
        })
    }

    /// Adds a sample; NaN and ±∞ are ignored.
    pub fn push(&mut self, t: DateTime<Utc>, x: f64) {
        if let Some(x) = sanitize(x) {
            self.points.push((t.timestamp_millis(), x));
        }
    }

    /// The least-squares line, or `None` with fewer than `min_samples`
    /// samples or when they were all taken at the same instant.
    #[must_use]
    pub fn fit(&self) -> Option<TrendFit> {
        let n = self.points.len();
        if n < self.min_samples {
            return None;
        }
        let latest = self.points.iter().map(|(t, _)| t).max()?;
        let seconds = |t: i64| t.saturating_sub(latest) as f64 / 1000.0;
        let count = n as f64;
        let mean_t = self.points.iter().map(|(t, _)| seconds(t)).sum::<f64>() / count;
        let mean_x = self.points.iter().map(|(_, x)| x).sum::<f64>() / count;
        let (mut stt, mut stx, mut sxx) = (0.0, 0.0, 0.0);
        for (t, x) in self.points.iter() {
            let (dt, dx) = (seconds(t) - mean_t, x - mean_x);
            stt += dt * dt;
            stx += dt * dx;
            sxx += dx * dx;
        }
        if stt <= 0.0 || !stt.is_finite() {
            return None;
        }
        let slope = stx / stt;
        let r2 = if sxx > 0.0 {
            (stx * stx / (stt * sxx)).clamp(0.0, 1.0)
        } else {
            1.0
        };
        let level = mean_x - slope * mean_t;
        if !slope.is_finite() || !level.is_finite() {
            return None;
        }
        Some(TrendFit {
            slope,
            level,
            r2,
            samples: n,
            at: DateTime::<Utc>::from_timestamp_millis(latest)?,
        })
    }

    /// How long until the fitted line reaches `limit`, counted from the latest
    /// sample; `None` when there is no fit, r² is under `min_r2`, or the line
    /// is flat or moving away from `limit`.
    #[must_use]
    pub fn time_to(&self, limit: f64) -> Option<Duration> {
        let fit = self.fit()?;
        if fit.r2 < self.min_r2 {
            return None;
        }
        fit.time_to(limit)
    }

    /// When the line reaches `limit`, as a point in time.
    #[must_use]
    pub fn reached_at(&self, limit: f64) -> Option<DateTime<Utc>> {
        let fit = self.fit()?;
        let wait = TimeDelta::from_std(self.time_to(limit)?).ok()?;
        fit.at.checked_add_signed(wait)
    }

    /// The bytes this predictor holds: its inline size plus its window.
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(self) + self.points.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::detect::synthetic::Gaussian;
    use chrono::TimeZone;

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 1, 9, 0, 0).unwrap()
    }

    fn trend() -> LinearTrend {
        LinearTrend::new(&TrendConfig::default()).unwrap()
    }

    #[test]
    fn exact_on_a_straight_line() {
        let mut tr = trend();
        // 2 per second, sampled every 10 s: 100, 120, ..., 380
        for i in 0..15 {
            tr.push(
                start() + TimeDelta::seconds(10 * i),
                100.0 + 20.0 * i as f64,
            );
        }
        let fit = tr.fit().unwrap();
        assert!((fit.slope - 2.0).abs() < 1e-12 && (fit.level - 380.0).abs() < 1e-9);
        assert!((fit.r2 - 1.0).abs() < 1e-12);
        assert_eq!(tr.time_to(1000.0), Some(Duration::from_secs(310)));
        assert_eq!(
            tr.reached_at(1000.0),
            Some(start() + TimeDelta::seconds(140 + 310))
        );
        assert_eq!(tr.time_to(380.0), Some(Duration::ZERO));
        assert!((fit.value_at(start()) - 100.0).abs() < 1e-9);
    }

    #[test]
    fn none_when_flat_or_moving_away() {
        let mut flat = trend();
        let mut falling = trend();
        for i in 0..20 {
            let t = start() + TimeDelta::seconds(10 * i);
            flat.push(t, 50.0);
            falling.push(t, 50.0 - i as f64);
        }
        assert_eq!(flat.fit().unwrap().slope, 0.0);
        assert_eq!(flat.time_to(100.0), None);
        assert_eq!(falling.time_to(100.0), None);
        // already past a lower limit and still falling: moving away from it
        assert_eq!(falling.time_to(40.0), None);
        assert!(falling.time_to(0.0).is_some());
    }

    #[test]
    fn none_with_too_few_samples_or_a_poor_fit() {
        let mut tr = trend();
        for i in 0..9 {
            tr.push(start() + TimeDelta::seconds(i), i as f64);
        }
        assert!(tr.fit().is_none() && tr.time_to(100.0).is_none());
        let mut noise = trend();
        let mut g = Gaussian::new(5);
        for i in 0..30 {
            noise.push(start() + TimeDelta::seconds(10 * i), 10.0 + g.sample());
        }
        let fit = noise.fit().unwrap();
        assert!(fit.r2 < 0.6, "{fit:?}");
        assert_eq!(noise.time_to(1e6), None);
    }

    #[test]
    fn noisy_line_within_tolerance() {
        // a loss growing 0.5 per second with noise sd 3, last sampled at 290 s
        let mut tr = trend();
        let mut g = Gaussian::new(9);
        for i in 0..30 {
            let x = 0.5 * (10 * i) as f64 + 3.0 * g.sample();
            tr.push(start() + TimeDelta::seconds(10 * i), x);
        }
        let fit = tr.fit().unwrap();
        assert!(fit.r2 > 0.95, "{fit:?}");
        let eta = tr.time_to(1000.0).unwrap().as_secs_f64();
        let truth = (1000.0 - 0.5 * 290.0) / 0.5;
        assert!((eta - truth).abs() / truth < 0.1, "{eta} vs {truth}");
    }

    #[test]
    fn degenerate_input() {
        let mut tr = trend();
        for _ in 0..20 {
            tr.push(start(), 1.0);
            tr.push(start(), f64::NAN);
        }
        assert!(tr.fit().is_none(), "all at one instant");
        let mut tr = trend();
        for i in 0..20 {
            tr.push(
                start() + TimeDelta::seconds(i),
                if i % 2 == 0 { 1e300 } else { -1e300 },
            );
        }
        if let Some(fit) = tr.fit() {
            assert!(fit.slope.is_finite() && fit.r2.is_finite());
        }
        assert!(
            TrendFit {
                slope: 1e-300,
                level: 0.0,
                r2: 1.0,
                samples: 10,
                at: start()
            }
            .time_to(1e300)
            .is_none()
        );
    }
}
