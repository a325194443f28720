//! What the detectors share: input clamping, the one place a deviation becomes
//! a score (so no detector divides by zero), a fixed-size ring, and the checks
//! their configurations use.

use super::{ConfigError, Direction, Side, Verdict};

/// Largest magnitude a sample keeps. Beyond it a sample is clamped: it still
/// fits an `f32` window and its square an `f64`, and it still scores as the
/// outlier it is.
pub(crate) const MAX_SAMPLE: f64 = 1e30;

/// Largest score reported, so a change on a constant series gives a big
/// finite number instead of ∞.
pub(crate) const MAX_SCORE: f64 = 1e12;

/// Spreads below this fraction of the baseline's magnitude are rounding, not
/// variation (the windows hold `f32`, whose relative precision is ~6·10⁻⁸).
const RELATIVE_FLOOR: f64 = 1e-7;

/// The spread used when everything else is zero, so a constant series at 0
/// never divides by zero.
const ABSOLUTE_FLOOR: f64 = 1e-12;

/// The sample to use, or `None` for NaN and ±∞ (which detectors ignore).
pub(crate) fn sanitize(x: f64) -> Option<f64> {
    x.is_finite().then(|| x.clamp(-MAX_SAMPLE, MAX_SAMPLE))
}

/// The sample as an `f32` window stores it, so a sample equal to the values
/// in the window compares equal to them.
pub(crate) fn quantize(x: f64) -> f64 {
    f64::from(x as f32)
}

/// How a univariate detector turns a deviation into a verdict.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Judge {
    pub(crate) threshold: f64,
    pub(crate) direction: Direction,
    /// The smallest absolute deviation that may be anomalous: the spread is
    /// floored at `min_delta / threshold`, so a constant (zero-variance) series
    /// flags a change only when it is at least `min_delta`.
    pub(crate) min_delta: f64,
}

impl Judge {
    /// The spread actually divided by: `spread` floored at `min_delta /
    /// threshold`, at a rounding-sized fraction of `center` and at a tiny
    /// constant. Never zero, never NaN (a NaN spread yields the floor).
    pub(crate) fn scale(&self, center: f64, spread: f64) -> f64 {
        let floor = (self.min_delta / self.threshold)
            .max(center.abs() * RELATIVE_FLOOR)
            .max(ABSOLUTE_FLOOR);
        spread.max(floor)
    }

    /// The verdict on `x` against a baseline at `center` with standard
    /// deviation (or robust equivalent) `spread`.
    pub(crate) fn verdict(&self, x: f64, center: f64, spread: f64) -> Verdict {
        let deviation = x - center;
        let score = (deviation.abs() / self.scale(center, spread)).min(MAX_SCORE);
        // NaN cannot reach here (inputs are sanitized), but a score must never be NaN.
        let score = if score.is_nan() { 0.0 } else { score };
        let side = if deviation >= 0.0 {
            Side::Up
        } else {
            Side::Down
        };
        Verdict {
            score,
            threshold: self.threshold,
            anomalous: score >= self.threshold && self.direction.admits(side),
            side,
        }
    }

    /// `x` pulled back to within `threshold` scales of `center`: what robust
    /// detectors learn from, so one spike does not inflate their variance and
    /// hide the next one, while a lasting level shift is still learned (each
    /// clamped step moves the baseline toward it).
    pub(crate) fn winsorize(&self, x: f64, center: f64, spread: f64) -> f64 {
        let reach = self.threshold * self.scale(center, spread);
        x.clamp(center - reach, center + reach)
    }
}

/// A fixed-capacity ring of the most recent values, oldest first.
#[derive(Debug, Clone)]
pub(crate) struct Ring<T> {
    buf: Box<[T]>,
    /// Index of the oldest value.
    head: usize,
    len: usize,
}

impl<T: Copy + Default> Ring<T> {
    /// An empty ring holding at most `capacity` values (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            buf: vec![T::default(); capacity.max(1)].into_boxed_slice(),
            head: 0,
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Appends `value`, returning the oldest value when the ring was full and
    /// had to let it go.
    pub(crate) fn push(&mut self, value: T) -> Option<T> {
        let capacity = self.buf.len();
        if self.len < capacity {
            let slot = (self.head + self.len) % capacity;
            self.buf[slot] = value;
            self.len += 1;
            None
        } else {
            let evicted = std::mem::replace(&mut self.buf[self.head], value);
            self.head = (self.head + 1) % capacity;
            Some(evicted)
        }
    }

    /// The values, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = T> + '_ {
        let (tail, front) = self.buf.split_at(self.head);
        front.iter().chain(tail.iter()).take(self.len).copied()
    }

    /// Bytes held on the heap.
    pub(crate) fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.buf)
    }
}

/// Checks on one detector's configuration, naming the detector in errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Check(pub(crate) &'static str);

impl Check {
    /// `Ok` when `ok`, else an [`ConfigError::OutOfRange`] for `field`.
    pub(crate) fn that(
        self,
        ok: bool,
        field: &'static str,
        got: f64,
        expected: &'static str,
    ) -> Result<(), ConfigError> {
        if ok {
            Ok(())
        } else {
            Err(ConfigError::OutOfRange {
                detector: self.0,
                field,
                expected,
                got,
            })
        }
    }

    /// A threshold: finite and positive.
    pub(crate) fn threshold(self, threshold: f64) -> Result<(), ConfigError> {
        self.that(
            threshold.is_finite() && threshold > 0.0,
            "threshold",
            threshold,
            "a finite number above 0",
        )
    }

    /// A minimum deviation or spread: finite and not negative.
    pub(crate) fn non_negative(self, field: &'static str, value: f64) -> Result<(), ConfigError> {
        self.that(
            value.is_finite() && value >= 0.0,
            field,
            value,
            "a finite number at least 0",
        )
    }

    /// A window of samples and the warm-up within it.
    pub(crate) fn window(self, window: usize, min_samples: usize) -> Result<(), ConfigError> {
        self.that(
            (2..=MAX_WINDOW).contains(&window),
            "window",
            window as f64,
            "between 2 and 100000",
        )?;
        self.that(
            (2..=window).contains(&min_samples),
            "min_samples",
            min_samples as f64,
            "between 2 and `window`",
        )
    }
}

/// Longest window a configuration may ask for: bounds a detector's memory.
pub(crate) const MAX_WINDOW: usize = 100_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_the_newest_values_in_order() {
        let mut ring = Ring::<u32>::new(3);
        assert_eq!(ring.push(1), None);
        assert_eq!(ring.push(2), None);
        assert_eq!(ring.push(3), None);
        assert_eq!(ring.push(4), Some(1));
        assert_eq!(ring.push(5), Some(2));
        assert_eq!(ring.iter().collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(ring.len(), 3);
    }

    #[test]
    fn zero_spread_never_divides_by_zero() {
        let judge = Judge {
            threshold: 4.0,
            direction: Direction::Both,
            min_delta: 0.0,
        };
        let v = judge.verdict(1.0, 0.0, 0.0);
        assert!(v.score.is_finite() && v.anomalous);
        assert_eq!(judge.verdict(0.0, 0.0, 0.0).score, 0.0);
        assert!(!judge.verdict(3.0, 0.0, f64::NAN).score.is_nan());
    }

    #[test]
    fn min_delta_gates_changes_on_a_constant_series() {
        let judge = Judge {
            threshold: 4.0,
            direction: Direction::Both,
            min_delta: 5.0,
        };
        assert!(!judge.verdict(104.9, 100.0, 0.0).anomalous);
        assert!(judge.verdict(105.0, 100.0, 0.0).anomalous);
    }

    #[test]
    fn direction_filters_the_side() {
        let judge = Judge {
            threshold: 2.0,
            direction: Direction::Up,
            min_delta: 0.0,
        };
        assert!(judge.verdict(10.0, 0.0, 1.0).anomalous);
        let down = judge.verdict(-10.0, 0.0, 1.0);
        assert!(!down.anomalous);
        assert_eq!(down.side, Side::Down);
    }
}
