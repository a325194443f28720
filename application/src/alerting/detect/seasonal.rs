//! The hour-of-week seasonal baseline: each sample is compared with what the
//! same hour of the week looked like in past weeks.
//!
//! Order flow follows the trading week: quiet nights, a jump at the open, a
//! lunch dip, a close auction, empty weekends. A rolling detector pages at
//! every open because the open is unlike the last ten minutes; this one knows
//! that 08:00 on a Tuesday is busy, and pages when the open does *not* come.
//!
//! There are 168 slots, one per hour of the week (UTC). Samples of the current
//! hour accumulate in a single *visit* (count, mean, variance); when the hour
//! ends, the visit is folded into its slot as an exponentially weighted
//! mixture, giving the newest week weight `alpha`:
//! mean ← mean + α·d, var ← (1 − α)·var + α·var_visit + α(1 − α)·d², with d
//! the visit mean minus the slot mean. The slot's variance therefore holds both
//! the spread within the hour and how much the hour differs from week to week.
//! Folding per visit rather than per sample makes the baseline independent of
//! the cadence (a per-sample EWMA at 10 s would remember only the last minutes
//! of last week's hour). A sample is judged against its slot once the slot
//! has `min_seasons` folded visits; once judged, it is learned winsorized
//! (see the EWMA detector) so a spike barely moves its week's mean.
//!
//! State: 168 × (f32 mean, f32 variance, u8 seasons) plus the visit, about
//! 1.6 KB. Slots are UTC hours: an exchange that follows daylight saving time
//! moves by an hour twice a year, and the slots around its open and close
//! relearn over the next weeks (wider variance, fewer pages, meanwhile).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::{Check, Judge, sanitize};
use super::{ConfigError, Detector, Direction, Verdict};

/// Hours in a week: the number of slots.
pub(crate) const SLOTS: usize = 168;

/// Configuration of a [`Seasonal`] detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeasonalConfig {
    /// Weight of the newest week in a slot's baseline, in (0, 1] (default 0.3).
    pub alpha: f64,
    /// Weeks a slot must have seen before its samples are judged (default 2).
    pub min_seasons: u8,
    /// Anomalous at |x − slot mean| / slot sd ≥ `threshold` (default 4).
    pub threshold: f64,
    /// Which side may be anomalous (default both).
    pub direction: Direction,
    /// Smallest absolute deviation that may be anomalous (default 0).
    pub min_delta: f64,
}

impl Default for SeasonalConfig {
    fn default() -> Self {
        Self {
            alpha: 0.3,
            min_seasons: 2,
            threshold: 4.0,
            direction: Direction::Both,
            min_delta: 0.0,
        }
    }
}

impl SeasonalConfig {
    /// Checks every parameter.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] naming the first invalid parameter.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = Check("seasonal");
        check.that(
            self.alpha > 0.0 && self.alpha <= 1.0,
            "alpha",
            self.alpha,
            "in (0, 1]",
        )?;
        check.that(
            self.min_seasons >= 1,
            "min_seasons",
            f64::from(self.min_seasons),
            "between 1 and 255",
        )?;
        check.threshold(self.threshold)?;
        check.non_negative("min_delta", self.min_delta)
    }
}

/// One hour of the week's baseline.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    mean: f32,
    variance: f32,
}

/// The 168 slots, boxed so the detector itself stays small to move.
#[derive(Debug, Clone)]
struct Slots {
    stats: [Slot; SLOTS],
    /// Visits folded into each slot, saturating at 255.
    seasons: [u8; SLOTS],
}

/// The samples of the hour in progress (Welford's running mean and variance).
#[derive(Debug, Clone, Copy)]
struct Visit {
    /// Hours since the Unix epoch; `None` before the first sample.
    hour: Option<i64>,
    count: u32,
    mean: f64,
    /// Sum of squared deviations from `mean`.
    m2: f64,
}

/// The hour-of-week seasonal detector.
#[derive(Debug, Clone)]
pub struct Seasonal {
    judge: Judge,
    alpha: f64,
    min_seasons: u8,
    slots: Box<Slots>,
    visit: Visit,
}

/// The slot of an hour since the Unix epoch: hours since Monday 00:00 UTC.
/// The epoch fell on a Thursday, three days after a Monday.
pub(crate) fn slot_of(hour: i64) -> usize {
    let day = hour.div_euclid(24);
    let weekday = (day + 3).rem_euclid(7);
    // both factors are small and non-negative: the cast cannot truncate
    (weekday * 24 + hour.rem_euclid(24)) as usize
}

impl Seasonal {
    /// A detector with no history: every slot starts cold.
    ///
    /// # Errors
    /// When the configuration is invalid (see [`SeasonalConfig::validate`]).
    pub fn new(config: &SeasonalConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            judge: Judge {
                threshold: config.threshold,
                direction: config.direction,
                min_delta: config.min_delta,
            },
            alpha: config.alpha,
            min_seasons: config.min_seasons,
            slots: Box::new(Slots {
                stats: [Slot::default(); SLOTS],
                seasons: [0; SLOTS],
            }),
            visit: Visit {
                hour: None,
                count: 0,
                mean: 0.0,
                m2: 0.0,
            },
        })
    }

    /// Folds the finished visit into its slot.
    fn fold_visit(&mut self) {
        let Some(hour) = self.visit.hour else { return };
        if self.visit.count == 0 {
            return;
        }
        let slot = slot_of(hour);
        let visit_mean = self.visit.mean;
        let visit_variance = self.visit.m2 / f64::from(self.visit.count);
        let stats = &mut self.slots.stats[slot];
        let seasons = &mut self.slots.seasons[slot];
        if *seasons == 0 {
            stats.mean = visit_mean as f32;
            stats.variance = visit_variance as f32;
        } else {
            let a = self.alpha;
            let d = visit_mean - f64::from(stats.mean);
            let mean = f64::from(stats.mean) + a * d;
            let variance =
                (1.0 - a) * f64::from(stats.variance) + a * visit_variance + a * (1.0 - a) * d * d;
            stats.mean = mean as f32;
            stats.variance = variance as f32;
        }
        *seasons = seasons.saturating_add(1);
    }

    /// The baseline of the slot `t` falls in: mean, standard deviation and
    /// weeks seen.
    #[must_use]
    pub fn baseline(&self, t: DateTime<Utc>) -> (f64, f64, u8) {
        let slot = slot_of(t.timestamp().div_euclid(3600));
        let stats = self.slots.stats[slot];
        (
            f64::from(stats.mean),
            f64::from(stats.variance).max(0.0).sqrt(),
            self.slots.seasons[slot],
        )
    }
}

impl Detector for Seasonal {
    fn observe(&mut self, t: DateTime<Utc>, x: f64) -> Option<Verdict> {
        let x = sanitize(x)?;
        let hour = t.timestamp().div_euclid(3600);
        if self.visit.hour != Some(hour) {
            // A new hour (or time went back): the visit in progress is over.
            self.fold_visit();
            self.visit = Visit {
                hour: Some(hour),
                count: 0,
                mean: 0.0,
                m2: 0.0,
            };
        }
        let (mean, deviation, seasons) = self.baseline(t);
        let verdict = (seasons >= self.min_seasons).then(|| self.judge.verdict(x, mean, deviation));
        let learned = if verdict.is_some() {
            self.judge.winsorize(x, mean, deviation)
        } else {
            x
        };
        let visit = &mut self.visit;
        visit.count = visit.count.saturating_add(1);
        let diff = learned - visit.mean;
        visit.mean += diff / f64::from(visit.count);
        visit.m2 += diff * (learned - visit.mean);
        verdict
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(self) + std::mem::size_of::<Slots>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Duration, TimeZone, Timelike};

    #[test]
    fn slots_are_hours_since_monday_utc() {
        let mut t = Utc.with_ymd_and_hms(1969, 12, 1, 0, 0, 0).unwrap();
        let end = Utc.with_ymd_and_hms(1970, 2, 1, 0, 0, 0).unwrap();
        while t < end {
            let expected = t.weekday().num_days_from_monday() * 24 + t.hour();
            assert_eq!(slot_of(t.timestamp().div_euclid(3600)), expected as usize);
            t += Duration::minutes(37);
        }
    }

    /// Monday 2024-01-01 00:00 UTC plus `minutes`.
    fn at(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + Duration::minutes(minutes)
    }

    /// A weekly square wave: 100 between 09:00 and 17:00 on every day, 10 otherwise,
    /// with a ±1 wiggle.
    fn pattern(minute: i64) -> f64 {
        let hour = (minute / 60) % 24;
        let base = if (9..17).contains(&hour) { 100.0 } else { 10.0 };
        base + if minute % 2 == 0 { 1.0 } else { -1.0 }
    }

    #[test]
    fn learns_each_hour_of_the_week_and_flags_a_missing_open() {
        let mut s = Seasonal::new(&SeasonalConfig::default()).unwrap();
        let week = 7 * 24 * 60;
        for m in 0..2 * week {
            assert!(
                s.observe(at(m), pattern(m)).is_none(),
                "cold in the first two weeks"
            );
        }
        let mut flagged = 0;
        for m in 2 * week..3 * week {
            let v = s.observe(at(m), pattern(m)).unwrap();
            flagged += usize::from(v.anomalous);
        }
        assert_eq!(flagged, 0, "the pattern itself is never anomalous");
        let (mean, sd, seasons) = s.baseline(at(9 * 60));
        assert!((mean - 100.0).abs() < 1e-3 && (sd - 1.0).abs() < 0.05 && seasons == 3);
        // week 4, Monday 09:05: the open did not come
        let v = s.observe(at(3 * week + 9 * 60 + 5), 10.0).unwrap();
        assert!(v.anomalous && v.side == crate::alerting::detect::Side::Down);
    }

    #[test]
    fn bad_input_and_time_going_back() {
        let mut s = Seasonal::new(&SeasonalConfig {
            min_seasons: 1,
            ..SeasonalConfig::default()
        })
        .unwrap();
        assert!(s.observe(at(0), f64::NAN).is_none());
        for m in (0..200).rev() {
            if let Some(v) = s.observe(at(m * 30), 5.0) {
                assert!(v.score.is_finite());
            }
        }
        // a week later, hour 0's slot has one season (folded when the hour changed)
        let v = s.observe(at(7 * 24 * 60), 1e300).unwrap();
        assert!(v.anomalous && v.score.is_finite());
    }
}
