//! The seasonal scenarios: a trading week of order counts per minute, clean,
//! with anomalies, and noisy.

use chrono::TimeDelta;

use super::{Anomaly, AnomalyKind, Gaussian, Series, times};

pub(super) const MINUTES_PER_DAY: usize = 24 * 60;
pub(super) const MINUTES_PER_WEEK: usize = 7 * MINUTES_PER_DAY;
/// Weeks of the seasonal series before scoring: the seasonal detector's
/// default `min_seasons`.
const SEASONAL_WARMUP_WEEKS: usize = 2;
const SEASONAL_WEEKS: usize = 5;

/// Orders per minute expected at `minute` of the week (Monday 00:00 UTC = 0).
fn trading_week(minute: usize) -> f64 {
    let day = minute / MINUTES_PER_DAY;
    if day >= 5 {
        return 2.0;
    }
    match (minute % MINUTES_PER_DAY) / 60 {
        0..=6 => 4.0,
        7 => 15.0,
        8 => 120.0,
        9..=10 => 80.0,
        11 => 60.0,
        12 => 40.0,
        13..=14 => 60.0,
        15 => 90.0,
        16 => 110.0,
        17..=19 => 20.0,
        _ => 6.0,
    }
}

/// A Poisson-like sample around `level`: σ = √level, never negative.
fn count_like(g: &mut Gaussian, level: f64) -> f64 {
    (level + level.sqrt() * g.sample()).max(0.0)
}

/// How far a seasonal series strays from its weekly pattern.
#[derive(Debug, Clone, Copy)]
struct Nuisance {
    /// Share of samples drawn with 2.5 × the usual spread.
    heavy_tail: f64,
    /// The scored week (0-based) whose activity is 30 % higher, if any.
    busy_week: Option<usize>,
}

fn seasonal_series(name: &'static str, seed: u64, nuisance: Nuisance) -> (Series, Vec<f64>) {
    let mut g = Gaussian::new(seed);
    let len = SEASONAL_WEEKS * MINUTES_PER_WEEK;
    let levels: Vec<f64> = (0..len)
        .map(|m| {
            let busy = nuisance.busy_week == Some(m / MINUTES_PER_WEEK);
            trading_week(m % MINUTES_PER_WEEK) * if busy { 1.3 } else { 1.0 }
        })
        .collect();
    let values = levels
        .iter()
        .map(|&level| {
            let spread = if g.uniform() < nuisance.heavy_tail {
                2.5
            } else {
                1.0
            };
            (level + spread * level.sqrt() * g.sample()).max(0.0)
        })
        .collect();
    let series = Series {
        name,
        times: times(len, TimeDelta::minutes(1)),
        values,
        warmup: SEASONAL_WARMUP_WEEKS * MINUTES_PER_WEEK,
        anomalies: Vec::new(),
    };
    (series, levels)
}

/// Five weeks of a trading week's order count per minute, no anomaly; the
/// first two weeks are warm-up.
#[must_use]
pub fn seasonal(seed: u64) -> Series {
    let clean = Nuisance {
        heavy_tail: 0.0,
        busy_week: None,
    };
    seasonal_series("seasonal, clean", seed, clean).0
}

/// [`seasonal`] with 15 spikes of 8 σ on weekday afternoons, 4 opens that do
/// not come (08:00–08:30 stays at the pre-open 15/min), 4 night bursts
/// (02:00–02:15 at 40/min instead of 4) and 4 drop-outs (10:00–10:20 at
/// 2/min instead of 80), in the three scored weeks.
#[must_use]
pub fn seasonal_with_anomalies(seed: u64) -> Series {
    let clean = Nuisance {
        heavy_tail: 0.0,
        busy_week: None,
    };
    let (series, levels) = seasonal_series("seasonal + anomalies", seed, clean);
    inject_seasonal_anomalies(series, &levels, seed)
}

/// [`seasonal_with_anomalies`] made noisy: 5 % of samples with 2.5 × the
/// spread, and the fourth week 30 % busier than the weeks before (a busy
/// week is no anomaly, but the weekly baseline does not know it yet). Each
/// single detector false-alarms here for its own reasons.
#[must_use]
pub fn seasonal_noisy(seed: u64) -> Series {
    let noisy = Nuisance {
        heavy_tail: 0.05,
        busy_week: Some(SEASONAL_WARMUP_WEEKS + 1),
    };
    let (series, levels) = seasonal_series("seasonal, noisy + anomalies", seed, noisy);
    inject_seasonal_anomalies(series, &levels, seed)
}

fn inject_seasonal_anomalies(mut series: Series, levels: &[f64], seed: u64) -> Series {
    let mut g = Gaussian::new(seed ^ 0x5EA5_0A11);
    // weekdays of the scored weeks, shuffled: each sustained anomaly gets its own day
    let mut days: Vec<usize> = (SEASONAL_WARMUP_WEEKS * 7..SEASONAL_WEEKS * 7)
        .filter(|d| d % 7 < 5)
        .collect();
    for i in (1..days.len()).rev() {
        let j = g.below(i + 1);
        days.swap(i, j);
    }
    let mut anomalies = Vec::new();
    let mut sustained = |kind, day: usize, from_hour: usize, minutes: usize, level: f64| {
        let start = day * MINUTES_PER_DAY + from_hour * 60;
        for m in start..start + minutes {
            series.values[m] = count_like(&mut g, level);
        }
        anomalies.push(Anomaly {
            kind,
            start,
            len: minutes,
            settle: minutes,
        });
    };
    for k in 0..4 {
        sustained(AnomalyKind::MissedOpen, days[k], 8, 30, 15.0);
        sustained(AnomalyKind::NightBurst, days[4 + k], 2, 15, 40.0);
        sustained(AnomalyKind::Dropout, days[8 + k], 10, 20, 2.0);
    }
    // one spike every scored weekday afternoon (13:00–17:00), away from the above
    for &day in &days {
        let minute = day * MINUTES_PER_DAY + 13 * 60 + g.below(4 * 60);
        let level = levels[minute];
        let sign = if level > 64.0 { g.sign() } else { 1.0 };
        series.values[minute] = level + sign * 8.0 * level.sqrt();
        anomalies.push(Anomaly {
            kind: AnomalyKind::Spike,
            start: minute,
            len: 1,
            settle: 1,
        });
    }
    anomalies.sort_by_key(|a| a.start);
    series.anomalies = anomalies;
    series
}
