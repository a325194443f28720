//! The median/MAD detector: a robust z-score over the last `window` samples,
//! |x − median| / (1.4826 · MAD), where MAD is the median absolute deviation
//! from the median.
//!
//! Median and MAD ignore up to half the window being outliers, so spikes do
//! not widen the baseline (the z-score's weakness) and a burst of several bad
//! samples is flagged throughout. 1.4826 · MAD estimates the standard
//! deviation of Gaussian data, so thresholds read as sigmas.
//!
//! Counts that are mostly one value (an idle user's order count: 0, 0, 0, 1,
//! 0, …) have a MAD of 0; `min_mad` floors it, and for integer series it
//! should be about 0.5 or more, or every 1 would page.
//!
//! Besides the ring in arrival order the detector keeps the same values sorted
//! (one binary search and one `memmove` per sample); the median is then read
//! directly and the MAD found by merging the deviations on either side of the
//! median, which come out sorted: O(window) per sample, no scratch buffer.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::{Check, Judge, Ring, quantize, sanitize};
use super::{ConfigError, Detector, Direction, Verdict};

/// 1.4826 · MAD estimates σ for Gaussian data (1 / Φ⁻¹(3/4)).
const MAD_TO_SIGMA: f64 = 1.4826;

/// Configuration of a [`MedianMad`] detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MadConfig {
    /// Samples in the window (default 90: fifteen minutes at 10 s). The MAD
    /// estimates the spread less efficiently than a standard deviation, so it
    /// wants a longer window than the z-score for the same steadiness.
    pub window: usize,
    /// Samples the window must hold before the detector judges (default 20).
    pub min_samples: usize,
    /// Anomalous at a robust |z| ≥ `threshold` (default 4.5: the robust
    /// score's tails are heavier than the z-score's, and at 4 it false-alarms
    /// on Gaussian noise about six times as often; see `docs/detectors.md`).
    pub threshold: f64,
    /// Which side may be anomalous (default both).
    pub direction: Direction,
    /// Floor on the MAD, in the series' units (default 0: only a rounding-sized
    /// floor, so on a constant series any change is anomalous).
    pub min_mad: f64,
}

impl Default for MadConfig {
    fn default() -> Self {
        Self {
            window: 90,
            min_samples: 20,
            threshold: 4.5,
            direction: Direction::Both,
            min_mad: 0.0,
        }
    }
}

impl MadConfig {
    /// Checks every parameter.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] naming the first invalid parameter.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = Check("mad");
        check.window(self.window, self.min_samples)?;
        check.threshold(self.threshold)?;
        check.non_negative("min_mad", self.min_mad)
    }
}

/// The median/MAD detector over the last `window` samples.
#[derive(Debug, Clone)]
pub struct MedianMad {
    judge: Judge,
    min_samples: usize,
    min_mad: f64,
    arrivals: Ring<f32>,
    /// The ring's values in ascending order; never longer than its capacity,
    /// so inserting never reallocates.
    sorted: Vec<f32>,
}

impl MedianMad {
    /// A detector with an empty window.
    ///
    /// # Errors
    /// When the configuration is invalid (see [`MadConfig::validate`]).
    pub fn new(config: &MadConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            judge: Judge {
                threshold: config.threshold,
                direction: config.direction,
                min_delta: 0.0,
            },
            min_samples: config.min_samples,
            min_mad: config.min_mad,
            arrivals: Ring::new(config.window),
            sorted: Vec::with_capacity(config.window),
        })
    }

    /// The window's median and MAD (`None` when empty).
    #[must_use]
    pub fn median_and_mad(&self) -> Option<(f64, f64)> {
        let median = median_of(&self.sorted)?;
        Some((median, mad_of(&self.sorted, median)))
    }
}

/// The median of ascending values.
fn median_of(sorted: &[f32]) -> Option<f64> {
    let n = sorted.len();
    let upper = f64::from(*sorted.get(n / 2)?);
    if n % 2 == 1 {
        return Some(upper);
    }
    let lower = f64::from(sorted[n / 2 - 1]);
    Some(lower + (upper - lower) / 2.0)
}

/// The median absolute deviation of ascending values from their `median`.
///
/// Deviations of the values below the median, read leftward, and of those at
/// or above it, read rightward, are each ascending; merging them yields the
/// deviations in order, and the middle one (or two) is the MAD.
fn mad_of(sorted: &[f32], median: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return 0.0;
    }
    let split = sorted.partition_point(|&v| f64::from(v) < median);
    let mut left = sorted[..split].iter().rev().map(|&v| median - f64::from(v));
    let mut right = sorted[split..].iter().map(|&v| f64::from(v) - median);
    let (mut next_left, mut next_right) = (left.next(), right.next());
    let mut take = || match (next_left, next_right) {
        (Some(l), Some(r)) if l <= r => {
            next_left = left.next();
            l
        }
        (_, Some(r)) => {
            next_right = right.next();
            r
        }
        (Some(l), None) => {
            next_left = left.next();
            l
        }
        (None, None) => 0.0,
    };
    // Skip to the middle: the deviation of rank (n - 1) / 2, and for even n also the next.
    for _ in 0..(n - 1) / 2 {
        take();
    }
    let lower = take();
    if n % 2 == 1 {
        lower
    } else {
        lower + (take() - lower) / 2.0
    }
}

impl Detector for MedianMad {
    fn observe(&mut self, _t: DateTime<Utc>, x: f64) -> Option<Verdict> {
        let x = quantize(sanitize(x)?);
        let verdict = if self.arrivals.len() >= self.min_samples {
            self.median_and_mad().map(|(median, mad)| {
                self.judge
                    .verdict(x, median, MAD_TO_SIGMA * mad.max(self.min_mad))
            })
        } else {
            None
        };
        let value = x as f32;
        if let Some(evicted) = self.arrivals.push(value)
            && let Ok(at) = self.sorted.binary_search_by(|v| v.total_cmp(&evicted))
        {
            self.sorted.remove(at);
        }
        let at = self.sorted.partition_point(|v| v.total_cmp(&value).is_lt());
        self.sorted.insert(at, value);
        verdict
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(self)
            + self.arrivals.heap_bytes()
            + self.sorted.capacity() * std::mem::size_of::<f32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH
    }

    fn naive(values: &[f32]) -> (f64, f64) {
        let mut v: Vec<f64> = values.iter().map(|&x| f64::from(x)).collect();
        v.sort_by(f64::total_cmp);
        let med = |v: &[f64]| {
            let n = v.len();
            if n % 2 == 1 {
                v[n / 2]
            } else {
                (v[n / 2 - 1] + v[n / 2]) / 2.0
            }
        };
        let m = med(&v);
        let mut d: Vec<f64> = v.iter().map(|x| (x - m).abs()).collect();
        d.sort_by(f64::total_cmp);
        (m, med(&d))
    }

    proptest! {
        #[test]
        fn median_and_mad_match_a_sort(values in prop::collection::vec(-1e3f32..1e3, 1..80)) {
            let mut sorted = values.clone();
            sorted.sort_by(f32::total_cmp);
            let median = median_of(&sorted).unwrap();
            let (m, mad) = naive(&values);
            prop_assert!((median - m).abs() < 1e-9);
            prop_assert!((mad_of(&sorted, median) - mad).abs() < 1e-9);
        }

        #[test]
        fn the_sorted_copy_tracks_the_window(values in prop::collection::vec(-50i32..50, 1..200)) {
            let mut d = MedianMad::new(&MadConfig { window: 7, min_samples: 2, ..MadConfig::default() }).unwrap();
            for &v in &values {
                d.observe(t0(), f64::from(v));
            }
            let mut window: Vec<f32> = d.arrivals.iter().collect();
            window.sort_by(f32::total_cmp);
            prop_assert_eq!(window, d.sorted.clone());
        }
    }

    #[test]
    fn robust_to_outliers_in_the_window() {
        let mut d = MedianMad::new(&MadConfig {
            window: 21,
            min_samples: 10,
            ..MadConfig::default()
        })
        .unwrap();
        for i in 0..21 {
            // alternating 9/11 with three huge outliers
            let x = if i % 7 == 3 {
                1000.0
            } else if i % 2 == 0 {
                9.0
            } else {
                11.0
            };
            d.observe(t0(), x);
        }
        let (median, mad) = d.median_and_mad().unwrap();
        // ten 9s, eight 11s and three 1000s: the outliers move neither much
        assert_eq!((median, mad), (11.0, 2.0));
        assert!(d.observe(t0(), 30.0).unwrap().anomalous);
    }

    #[test]
    fn mad_floor_keeps_mostly_zero_counts_quiet() {
        let mut d = MedianMad::new(&MadConfig {
            min_mad: 0.5,
            ..MadConfig::default()
        })
        .unwrap();
        let mut flagged = 0;
        for i in 0..500 {
            let x = if i % 9 == 0 { 1.0 } else { 0.0 };
            if d.observe(t0(), x).is_some_and(|v| v.anomalous) {
                flagged += 1;
            }
        }
        assert_eq!(flagged, 0);
        assert!(d.observe(t0(), 5.0).unwrap().anomalous);
    }

    #[test]
    fn constant_series_and_bad_input() {
        let mut d = MedianMad::new(&MadConfig::default()).unwrap();
        for _ in 0..60 {
            d.observe(t0(), 3.0);
        }
        assert_eq!(d.observe(t0(), 3.0).unwrap().score, 0.0);
        let v = d.observe(t0(), 3.001).unwrap();
        assert!(v.anomalous && v.score.is_finite());
        assert!(d.observe(t0(), f64::NAN).is_none());
        assert!(d.observe(t0(), -1e308).unwrap().score.is_finite());
    }
}
