//! Scoring detectors on the synthetic series: event-level precision and
//! recall, and the quality table of `docs/detectors.md`.
//!
//! Counting is per anomaly, not per flagged sample, so a detector that keeps
//! flagging a level shift is not rewarded for each sample:
//!
//! - an anomaly is *detected* when a flag falls within `tolerance` samples of
//!   its start (for a level shift: the first flag after the shift counts);
//! - a flag after the warm-up is a *false alarm* unless it falls within an
//!   anomaly's span (`settle` samples from its start, and at least the
//!   tolerance window);
//! - precision = detected / (detected + false alarms), recall = detected /
//!   anomalies, F1 their harmonic mean.
//!
//! Precision is undefined when nothing was flagged, recall when nothing was
//! injected (the clean seasonal series): the table prints "—" and the false
//! alarms per 1,000 scored samples say what remains.

use std::fmt::Write as _;

use super::synthetic::{self, Anomaly, Series, VectorSeries};
use super::{
    Detector, DetectorSpec, EwmaConfig, FusionConfig, IsolationForest, IsolationForestConfig,
    MadConfig, SeasonalConfig, ZScoreConfig,
};

/// Samples after an anomaly's start within which a flag detects it.
pub const TOLERANCE: usize = 3;

/// The seed of the series in the report (and in the quality tests).
pub const REPORT_SEED: u64 = 2024;

/// The per-series seed given to the isolation forest in the report.
pub const FOREST_SEED: u64 = 0x0F0E_5700;

/// How a detector did on one series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Anomalies flagged within the tolerance of their start.
    pub detected: usize,
    /// Anomalies not flagged in time.
    pub missed: usize,
    /// Flags outside every anomaly's span, after the warm-up.
    pub false_alarms: usize,
    /// Samples scored (after the warm-up).
    pub scored: usize,
}

impl Outcome {
    /// detected / (detected + false alarms); `None` when nothing was flagged.
    #[must_use]
    pub fn precision(&self) -> Option<f64> {
        let flagged = self.detected + self.false_alarms;
        (flagged > 0).then(|| self.detected as f64 / flagged as f64)
    }

    /// detected / anomalies; `None` when there were none.
    #[must_use]
    pub fn recall(&self) -> Option<f64> {
        let injected = self.detected + self.missed;
        (injected > 0).then(|| self.detected as f64 / injected as f64)
    }

    /// The harmonic mean of precision and recall, when both are defined.
    #[must_use]
    pub fn f1(&self) -> Option<f64> {
        let (p, r) = (self.precision()?, self.recall()?);
        Some(if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        })
    }

    /// False alarms per 1,000 scored samples.
    #[must_use]
    pub fn false_alarms_per_1k(&self) -> f64 {
        if self.scored == 0 {
            0.0
        } else {
            1000.0 * self.false_alarms as f64 / self.scored as f64
        }
    }
}

/// Scores `flags` (one per sample) against the injected `anomalies`.
#[must_use]
pub fn evaluate(flags: &[bool], warmup: usize, anomalies: &[Anomaly], tolerance: usize) -> Outcome {
    let len = flags.len();
    let mut owned = vec![false; len];
    let mut detected = 0;
    for anomaly in anomalies {
        let span = anomaly.settle.max(tolerance + 1);
        let end = (anomaly.start + span).min(len);
        owned
            .get_mut(anomaly.start..end)
            .into_iter()
            .flatten()
            .for_each(|o| *o = true);
        let window = anomaly.start..(anomaly.start + tolerance + 1).min(len);
        if flags.get(window).is_some_and(|w| w.contains(&true)) {
            detected += 1;
        }
    }
    let false_alarms = (warmup..len).filter(|&i| flags[i] && !owned[i]).count();
    Outcome {
        detected,
        missed: anomalies.len() - detected,
        false_alarms,
        scored: len.saturating_sub(warmup),
    }
}

/// Feeds the whole series to `detector`; one flag per sample.
pub fn flags(detector: &mut dyn Detector, series: &Series) -> Vec<bool> {
    series
        .times
        .iter()
        .zip(&series.values)
        .map(|(&t, &x)| detector.observe(t, x).is_some_and(|v| v.anomalous))
        .collect()
}

/// Feeds the whole vector series to `forest`; one flag per sample.
pub fn forest_flags(forest: &mut IsolationForest, series: &VectorSeries) -> Vec<bool> {
    series
        .vectors
        .iter()
        .map(|v| forest.observe(v).is_some_and(|v| v.anomalous))
        .collect()
}

/// The univariate detectors of the report, named, at their defaults.
#[must_use]
pub fn lineup() -> Vec<(&'static str, DetectorSpec)> {
    let zscore = DetectorSpec::ZScore(ZScoreConfig::default());
    let ewma = DetectorSpec::Ewma(EwmaConfig::default());
    let mad = DetectorSpec::Mad(MadConfig::default());
    let seasonal = DetectorSpec::Seasonal(SeasonalConfig::default());
    vec![
        ("zscore", zscore.clone()),
        ("ewma", ewma.clone()),
        ("mad", mad.clone()),
        ("seasonal", seasonal.clone()),
        (
            "fusion(zscore, ewma, mad; 2)",
            DetectorSpec::Fusion(FusionConfig {
                detectors: vec![zscore.clone(), ewma, mad],
                min_agree: 2,
            }),
        ),
        (
            "fusion(zscore, seasonal; 2)",
            DetectorSpec::Fusion(FusionConfig {
                detectors: vec![zscore, seasonal],
                min_agree: 2,
            }),
        ),
    ]
}

/// One line of the quality table.
#[derive(Debug, Clone)]
pub struct Row {
    /// The detector's name in [`lineup`] (or `isolation_forest`).
    pub detector: &'static str,
    /// The scenario's name.
    pub scenario: &'static str,
    /// How it did.
    pub outcome: Outcome,
}

/// Runs every detector of [`lineup`] on every univariate scenario, and the
/// isolation forest on the order flow, all at their defaults.
///
/// # Errors
/// Never with the built-in line-up; a detector that fails to build is
/// reported as its configuration error.
pub fn quality_rows(seed: u64) -> Result<Vec<Row>, super::ConfigError> {
    let scenarios = synthetic::univariate_scenarios(seed);
    let mut rows = Vec::new();
    for (name, spec) in lineup() {
        for series in &scenarios {
            let mut detector = spec.build()?;
            let flags = flags(detector.as_mut(), series);
            rows.push(Row {
                detector: name,
                scenario: series.name,
                outcome: evaluate(&flags, series.warmup, &series.anomalies, TOLERANCE),
            });
        }
    }
    let flow = synthetic::order_flow(seed);
    let mut forest = IsolationForest::new(&IsolationForestConfig::default(), FOREST_SEED)?;
    let flags = forest_flags(&mut forest, &flow);
    rows.push(Row {
        detector: "isolation_forest",
        scenario: flow.name,
        outcome: evaluate(&flags, flow.warmup, &flow.anomalies, TOLERANCE),
    });
    Ok(rows)
}

fn cell(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v:.2}"))
}

/// The quality table in markdown, as `docs/detectors.md` shows it.
#[must_use]
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| detector | scenario | precision | recall | F1 | false alarms / 1k samples |\n\
         | --- | --- | ---: | ---: | ---: | ---: |\n",
    );
    for row in rows {
        let o = &row.outcome;
        // writing to a String cannot fail
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.2} |",
            row.detector,
            row.scenario,
            cell(o.precision()),
            cell(o.recall()),
            cell(o.f1()),
            o.false_alarms_per_1k(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::detect::synthetic::AnomalyKind;

    fn anomaly(start: usize, settle: usize) -> Anomaly {
        Anomaly {
            kind: AnomalyKind::Spike,
            start,
            len: 1,
            settle,
        }
    }

    #[test]
    fn counts_detections_misses_and_false_alarms() {
        let mut flags = vec![false; 100];
        flags[5] = true; // in the warm-up: ignored
        flags[22] = true; // detects the anomaly at 20 (within 3)
        flags[23] = true; // still that anomaly's
        flags[50] = true; // false alarm
        flags[64] = true; // too late for the anomaly at 60, and outside its span
        let outcome = evaluate(&flags, 10, &[anomaly(20, 1), anomaly(60, 1)], 3);
        assert_eq!(
            outcome,
            Outcome {
                detected: 1,
                missed: 1,
                false_alarms: 2,
                scored: 90
            }
        );
        assert_eq!(outcome.precision(), Some(1.0 / 3.0));
        assert_eq!(outcome.recall(), Some(0.5));
        assert!((outcome.f1().unwrap() - 0.4).abs() < 1e-12);
    }

    #[test]
    fn a_long_span_absorbs_repeated_flags() {
        let flags: Vec<bool> = (0..200).map(|i| (100..150).contains(&i)).collect();
        let outcome = evaluate(&flags, 0, &[anomaly(100, 120)], 3);
        assert_eq!((outcome.detected, outcome.false_alarms), (1, 0));
    }

    #[test]
    fn undefined_ratios_are_none() {
        let outcome = evaluate(&[false; 10], 0, &[], 3);
        assert_eq!(
            (outcome.precision(), outcome.recall(), outcome.f1()),
            (None, None, None)
        );
        assert_eq!(outcome.false_alarms_per_1k(), 0.0);
    }
}
