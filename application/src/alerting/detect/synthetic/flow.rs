//! The multivariate scenario: order-flow vectors with injected behaviours.

use chrono::TimeDelta;

use super::{Anomaly, AnomalyKind, Gaussian, VectorSeries, spread_starts, times};

/// Samples of the order-flow series, and of its warm-up.
const FLOW_LEN: usize = 6_300;
const FLOW_WARMUP: usize = 300;

/// One ordinary order-flow vector at sample `i` (10 s buckets).
fn ordinary_flow(g: &mut Gaussian, i: usize) -> [f64; 5] {
    // a slow intraday swing of ±30 % in activity, period 6 h
    let phase = std::f64::consts::TAU * i as f64 / 2160.0;
    let rate = 20.0 * (1.0 + 0.3 * phase.sin());
    let orders = (rate + rate.sqrt() * g.sample()).max(0.0);
    let rejects = (0.02 + 0.008 * g.sample()).clamp(0.0, 1.0);
    let cancels = (0.30 + 0.05 * g.sample()).clamp(0.0, 1.0);
    let notional = (10_000f64.ln() + 0.3 * g.sample()).exp();
    // fills and cancels move against each other
    let fills = (0.65 - 0.5 * (cancels - 0.30) + 0.04 * g.sample()).clamp(0.0, 1.0);
    [orders, rejects, cancels, notional, fills]
}

/// 300 + 6,000 order-flow vectors every 10 s (about 17 hours) with 30
/// injected behaviours of 1–6 samples: bursts of large rejected orders (3×
/// the orders, 35 % rejected, 8× the notional), cancel storms (2.5× the
/// orders, 90 % cancelled, 5 % filled) and fat fingers (15× the notional).
#[must_use]
pub fn order_flow(seed: u64) -> VectorSeries {
    let mut g = Gaussian::new(seed);
    let mut vectors: Vec<[f64; 5]> = (0..FLOW_LEN).map(|i| ordinary_flow(&mut g, i)).collect();
    let kinds = [
        AnomalyKind::RejectedBurst,
        AnomalyKind::CancelStorm,
        AnomalyKind::FatFinger,
    ];
    let anomalies = spread_starts(&mut g, 30, FLOW_WARMUP, FLOW_LEN)
        .into_iter()
        .enumerate()
        .map(|(k, start)| {
            let kind = kinds[k % kinds.len()];
            let len = match kind {
                AnomalyKind::FatFinger => 1 + g.below(2),
                _ => 3 + g.below(4),
            };
            for v in &mut vectors[start..start + len] {
                match kind {
                    AnomalyKind::RejectedBurst => {
                        v[0] *= 3.0;
                        v[1] = (0.35 + 0.05 * g.sample()).clamp(0.0, 1.0);
                        v[3] *= 8.0;
                    }
                    AnomalyKind::CancelStorm => {
                        v[0] *= 2.5;
                        v[2] = (0.90 + 0.03 * g.sample()).clamp(0.0, 1.0);
                        v[4] = (0.05 + 0.02 * g.sample()).clamp(0.0, 1.0);
                    }
                    _ => v[3] *= 15.0,
                }
            }
            Anomaly {
                kind,
                start,
                len,
                settle: len,
            }
        })
        .collect();
    VectorSeries {
        name: "order flow",
        times: times(FLOW_LEN, TimeDelta::seconds(10)),
        vectors,
        warmup: FLOW_WARMUP,
        anomalies,
    }
}
