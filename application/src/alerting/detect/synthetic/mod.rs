//! Seeded synthetic series with known, injected anomalies: what the detectors
//! are tested and tuned on, and what `docs/detectors.md` reports.
//!
//! Every generator is deterministic for its seed. Each series says where its
//! anomalies are and how long after its start a flag still belongs to it
//! (`settle`); flags elsewhere after the warm-up are false alarms. The
//! scenarios:
//!
//! - [`spikes`]: Gaussian noise around a level, with single-sample outliers of
//!   6–9 σ on either side;
//! - [`level_shifts`]: the level jumps by ±6 σ and stays;
//! - [`heavy_tails`]: heavy-tailed noise (5 % of samples drawn with 2.5 ×
//!   the spread) and spikes of 8–10 σ;
//! - [`seasonal`]: a trading week at one sample a minute (quiet nights, a
//!   jump at the 08:00 open, lunch dip, close auction, empty weekends) with
//!   Poisson-like noise and no anomaly: it measures false alarms;
//! - [`seasonal_with_anomalies`]: the same week with spikes, opens that do
//!   not come, night-time bursts and intraday drop-outs;
//! - [`seasonal_noisy`]: the same anomalies in a noisier week (heavy tails,
//!   and one week 30 % busier than the others): where each single detector
//!   false-alarms for its own reasons;
//! - [`order_flow`]: multivariate order-flow vectors ([`ORDER_FLOW_FEATURES`])
//!   every 10 s, with bursts of large rejected orders, cancel storms and
//!   fat-finger notionals.

mod flow;
mod week;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

pub use flow::order_flow;
pub use week::{seasonal, seasonal_noisy, seasonal_with_anomalies};

/// A seeded source of uniform and standard normal numbers (Box–Muller).
#[derive(Debug, Clone)]
pub struct Gaussian {
    rng: SmallRng,
    spare: Option<f64>,
}

impl Gaussian {
    /// A source that yields the same numbers for the same seed.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self {
            rng: SmallRng::seed_from_u64(seed),
            spare: None,
        }
    }

    /// A standard normal sample.
    pub fn sample(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        // 1 − u is in (0, 1]: its logarithm is finite
        let u = 1.0 - self.rng.random::<f64>();
        let v = self.rng.random::<f64>();
        let radius = (-2.0 * u.ln()).sqrt();
        let angle = std::f64::consts::TAU * v;
        self.spare = Some(radius * angle.sin());
        radius * angle.cos()
    }

    /// A uniform sample in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.rng.random::<f64>()
    }

    /// A uniform integer in [0, n) (0 when n is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            self.rng.random_range(0..n)
        }
    }

    /// +1 or −1 with equal odds.
    pub fn sign(&mut self) -> f64 {
        if self.rng.random::<bool>() { 1.0 } else { -1.0 }
    }
}

/// What was injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnomalyKind {
    /// One sample far from the level.
    Spike,
    /// The level moves and stays.
    LevelShift,
    /// A weekday's open does not come: the level stays at its pre-open value.
    MissedOpen,
    /// Activity in a quiet night hour.
    NightBurst,
    /// Activity collapses during trading hours (a strategy stopped).
    Dropout,
    /// Many large orders, many of them rejected.
    RejectedBurst,
    /// Orders placed and cancelled at a high rate, hardly any filled.
    CancelStorm,
    /// Orders of an unusually large notional, otherwise normal flow.
    FatFinger,
}

/// One injected anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anomaly {
    /// What it is.
    pub kind: AnomalyKind,
    /// Index of its first sample.
    pub start: usize,
    /// Samples it alters (a level shift alters all the rest; this is 1).
    pub len: usize,
    /// Flags in `start..start + settle` belong to this anomaly (the samples
    /// it alters and the time detectors take to settle after it); they are
    /// neither false alarms nor further detections.
    pub settle: usize,
}

/// A univariate series with its injected anomalies.
#[derive(Debug, Clone)]
pub struct Series {
    /// The scenario's name, as in the report.
    pub name: &'static str,
    /// Sample times, at a regular cadence.
    pub times: Vec<DateTime<Utc>>,
    /// Sample values.
    pub values: Vec<f64>,
    /// Samples fed before scoring starts (detectors warm up on them, and no
    /// anomaly is injected there).
    pub warmup: usize,
    /// The anomalies, in order of `start`.
    pub anomalies: Vec<Anomaly>,
}

/// The features of an order-flow vector, in order.
pub const ORDER_FLOW_FEATURES: [&str; 5] = [
    "order_rate",
    "reject_rate",
    "cancel_ratio",
    "notional_per_order",
    "fill_rate",
];

/// A multivariate series of order-flow vectors with its injected anomalies.
#[derive(Debug, Clone)]
pub struct VectorSeries {
    /// The scenario's name, as in the report.
    pub name: &'static str,
    /// Sample times, at a regular cadence.
    pub times: Vec<DateTime<Utc>>,
    /// One vector per sample, features as in [`ORDER_FLOW_FEATURES`].
    pub vectors: Vec<[f64; 5]>,
    /// Samples fed before scoring starts.
    pub warmup: usize,
    /// The anomalies, in order of `start`.
    pub anomalies: Vec<Anomaly>,
}

/// Monday 2024-01-01 00:00 UTC: where every series starts.
fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

fn times(len: usize, cadence: TimeDelta) -> Vec<DateTime<Utc>> {
    let start = epoch();
    (0..len)
        .map(|i| start + cadence * i32::try_from(i).unwrap_or(i32::MAX))
        .collect()
}

/// `count` starts spread over `from..to`, at least `gap` apart, jittered.
fn spread_starts(g: &mut Gaussian, count: usize, from: usize, to: usize) -> Vec<usize> {
    let stride = (to.saturating_sub(from) / count.max(1)).max(1);
    (0..count)
        .map(|k| from + k * stride + stride / 4 + g.below(stride / 2))
        .collect()
}

/// Length of the plain (non-seasonal) series.
const PLAIN_LEN: usize = 10_000;
/// Warm-up of the plain series.
const PLAIN_WARMUP: usize = 200;
const LEVEL: f64 = 100.0;
const SIGMA: f64 = 5.0;

/// Gaussian noise around 100 (σ = 5) every 10 s, with 40 single-sample spikes
/// of 6–9 σ, up or down.
#[must_use]
pub fn spikes(seed: u64) -> Series {
    let mut g = Gaussian::new(seed);
    let mut values: Vec<f64> = (0..PLAIN_LEN).map(|_| LEVEL + SIGMA * g.sample()).collect();
    let anomalies = spread_starts(&mut g, 40, PLAIN_WARMUP, PLAIN_LEN)
        .into_iter()
        .map(|start| {
            values[start] = LEVEL + g.sign() * SIGMA * (6.0 + 3.0 * g.uniform());
            Anomaly {
                kind: AnomalyKind::Spike,
                start,
                len: 1,
                settle: 1,
            }
        })
        .collect();
    Series {
        name: "spikes",
        times: times(PLAIN_LEN, TimeDelta::seconds(10)),
        values,
        warmup: PLAIN_WARMUP,
        anomalies,
    }
}

/// Gaussian noise (σ = 5) every 10 s around a level that jumps by ±6 σ 16
/// times; flags within 120 samples (two default windows) of a jump belong to it.
#[must_use]
pub fn level_shifts(seed: u64) -> Series {
    let mut g = Gaussian::new(seed);
    let starts = spread_starts(&mut g, 16, PLAIN_WARMUP, PLAIN_LEN);
    let mut values = Vec::with_capacity(PLAIN_LEN);
    let mut level = LEVEL;
    let mut next = starts.iter().peekable();
    for i in 0..PLAIN_LEN {
        if next.next_if(|&&s| s == i).is_some() {
            // alternate around the starting level so the series stays in range
            level = if level > LEVEL {
                level - 6.0 * SIGMA
            } else {
                level + 6.0 * SIGMA
            };
        }
        values.push(level + SIGMA * g.sample());
    }
    Series {
        name: "level shifts",
        times: times(PLAIN_LEN, TimeDelta::seconds(10)),
        values,
        warmup: PLAIN_WARMUP,
        anomalies: starts
            .into_iter()
            .map(|start| Anomaly {
                kind: AnomalyKind::LevelShift,
                start,
                len: 1,
                settle: 120,
            })
            .collect(),
    }
}

/// Heavy-tailed noise around 100: 95 % of samples with σ = 5, 5 % with
/// σ = 12.5, and 30 spikes of 8–10 σ, up or down.
#[must_use]
pub fn heavy_tails(seed: u64) -> Series {
    let mut g = Gaussian::new(seed);
    let mut values: Vec<f64> = (0..PLAIN_LEN)
        .map(|_| {
            let spread = if g.uniform() < 0.05 {
                2.5 * SIGMA
            } else {
                SIGMA
            };
            LEVEL + spread * g.sample()
        })
        .collect();
    let anomalies = spread_starts(&mut g, 30, PLAIN_WARMUP, PLAIN_LEN)
        .into_iter()
        .map(|start| {
            values[start] = LEVEL + g.sign() * SIGMA * (8.0 + 2.0 * g.uniform());
            Anomaly {
                kind: AnomalyKind::Spike,
                start,
                len: 1,
                settle: 1,
            }
        })
        .collect();
    Series {
        name: "heavy tails",
        times: times(PLAIN_LEN, TimeDelta::seconds(10)),
        values,
        warmup: PLAIN_WARMUP,
        anomalies,
    }
}

/// Every univariate scenario, in report order.
#[must_use]
pub fn univariate_scenarios(seed: u64) -> Vec<Series> {
    vec![
        spikes(seed),
        level_shifts(seed),
        heavy_tails(seed),
        seasonal(seed),
        seasonal_with_anomalies(seed),
        seasonal_noisy(seed),
    ]
}

#[cfg(test)]
mod tests {
    use super::week::{MINUTES_PER_DAY, MINUTES_PER_WEEK};
    use super::*;

    #[test]
    fn deterministic_for_a_seed() {
        assert_eq!(spikes(1).values, spikes(1).values);
        assert_ne!(spikes(1).values, spikes(2).values);
        assert_eq!(order_flow(4).vectors, order_flow(4).vectors);
    }

    #[test]
    fn gaussian_has_unit_spread() {
        let mut g = Gaussian::new(42);
        let n = 20_000;
        let xs: Vec<f64> = (0..n).map(|_| g.sample()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }

    #[test]
    fn anomalies_are_after_warm_up_and_apart() {
        let all = univariate_scenarios(7);
        for series in &all {
            assert_eq!(series.times.len(), series.values.len());
            for pair in series.anomalies.windows(2) {
                assert!(
                    pair[0].start + pair[0].settle <= pair[1].start,
                    "{}: {pair:?}",
                    series.name
                );
            }
            assert!(series.anomalies.iter().all(|a| a.start >= series.warmup));
        }
        let flow = order_flow(7);
        assert!(flow.anomalies.iter().all(|a| a.start >= flow.warmup));
        assert!(flow.vectors.iter().flatten().all(|v| v.is_finite()));
    }

    #[test]
    fn the_week_starts_on_a_monday() {
        use chrono::Datelike;
        assert_eq!(epoch().weekday(), chrono::Weekday::Mon);
        let s = seasonal(1);
        assert_eq!(s.values.len(), 5 * MINUTES_PER_WEEK);
        // Monday 08:30 is busy, Saturday noon is quiet
        assert!(s.values[8 * 60 + 30] > 80.0 && s.values[5 * MINUTES_PER_DAY + 720] < 10.0);
    }
}
