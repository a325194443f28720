//! Minimum quality of each detector where it is meant to work, on the seeded
//! synthetic series, and the check that `docs/detectors.md` shows the table
//! these runs produce.

use std::sync::OnceLock;

use super::eval::{self, Outcome, REPORT_SEED, Row, TOLERANCE};
use super::synthetic::{self, AnomalyKind, Series};
use super::{
    DetectorSpec, FusionConfig, IsolationForest, IsolationForestConfig, SeasonalConfig,
    ZScoreConfig,
};

/// The report's rows, computed once for all tests here.
fn rows() -> &'static [Row] {
    static ROWS: OnceLock<Vec<Row>> = OnceLock::new();
    ROWS.get_or_init(|| eval::quality_rows(REPORT_SEED).unwrap())
}

fn outcome(detector: &str, scenario: &str) -> Outcome {
    rows()
        .iter()
        .find(|r| r.detector == detector && r.scenario == scenario)
        .map(|r| r.outcome)
        .unwrap_or_else(|| panic!("no row for {detector} on {scenario}"))
}

fn run(spec: &DetectorSpec, series: &Series) -> Outcome {
    let mut detector = spec.build().unwrap();
    let flags = eval::flags(detector.as_mut(), series);
    eval::evaluate(&flags, series.warmup, &series.anomalies, TOLERANCE)
}

#[test]
fn zscore_ewma_and_mad_catch_spikes_precisely() {
    for seed in [REPORT_SEED, 1, 2] {
        let series = synthetic::spikes(seed);
        for (name, spec) in eval::lineup().into_iter().take(3) {
            let o = run(&spec, &series);
            assert!(o.recall().unwrap() >= 0.9, "{name}, seed {seed}: {o:?}");
            assert!(o.precision().unwrap() >= 0.8, "{name}, seed {seed}: {o:?}");
        }
    }
}

#[test]
fn level_shifts_are_caught_at_once() {
    for name in ["zscore", "ewma", "mad"] {
        let o = outcome(name, "level shifts");
        assert!(o.recall().unwrap() >= 0.9, "{name}: {o:?}");
        assert!(o.precision().unwrap() >= 0.5, "{name}: {o:?}");
    }
}

#[test]
fn seasonal_baseline_false_alarms_far_less_than_the_zscore_on_a_trading_week() {
    let seasonal = outcome("seasonal", "seasonal, clean");
    let zscore = outcome("zscore", "seasonal, clean");
    assert!(
        seasonal.false_alarms * 20 <= zscore.false_alarms,
        "seasonal {seasonal:?} vs zscore {zscore:?}"
    );
    assert!(seasonal.false_alarms_per_1k() < 0.2, "{seasonal:?}");
}

#[test]
fn seasonal_baseline_catches_what_a_rolling_window_cannot() {
    let o = outcome("seasonal", "seasonal + anomalies");
    assert!(
        o.recall().unwrap() >= 0.95 && o.precision().unwrap() >= 0.8,
        "{o:?}"
    );
    // an open that does not come looks like the quiet minutes before it
    let series = synthetic::seasonal_with_anomalies(REPORT_SEED);
    let missed_opens: Vec<_> = series
        .anomalies
        .iter()
        .copied()
        .filter(|a| a.kind == AnomalyKind::MissedOpen)
        .collect();
    let only = |spec: DetectorSpec| {
        let mut detector = spec.build().unwrap();
        let flags = eval::flags(detector.as_mut(), &series);
        eval::evaluate(&flags, series.warmup, &missed_opens, TOLERANCE).detected
    };
    assert_eq!(only(DetectorSpec::Seasonal(SeasonalConfig::default())), 4);
    assert_eq!(only(DetectorSpec::ZScore(ZScoreConfig::default())), 0);
}

#[test]
fn isolation_forest_flags_unusual_order_flow() {
    for seed in [REPORT_SEED, 1] {
        let flow = synthetic::order_flow(seed);
        let mut forest =
            IsolationForest::new(&IsolationForestConfig::default(), eval::FOREST_SEED).unwrap();
        let flags = eval::forest_flags(&mut forest, &flow);
        let all = eval::evaluate(&flags, flow.warmup, &flow.anomalies, TOLERANCE);
        assert!(all.recall().unwrap() >= 0.8, "seed {seed}: {all:?}");
        assert!(all.precision().unwrap() >= 0.8, "seed {seed}: {all:?}");
        // the bursts of large rejected orders and the cancel storms: every one
        let bursts: Vec<_> = flow
            .anomalies
            .iter()
            .copied()
            .filter(|a| a.kind != AnomalyKind::FatFinger)
            .collect();
        let caught = eval::evaluate(&flags, flow.warmup, &bursts, TOLERANCE);
        assert_eq!(caught.missed, 0, "seed {seed}: {caught:?}");
    }
    let o = outcome("isolation_forest", "order flow");
    assert!(o.recall().unwrap() >= 0.8, "{o:?}");
}

#[test]
fn fusion_is_more_precise_than_each_member_where_members_are_noisy() {
    let scenario = "seasonal, noisy + anomalies";
    let fused = outcome("fusion(zscore, seasonal; 2)", scenario);
    for member in ["zscore", "seasonal"] {
        let alone = outcome(member, scenario);
        assert!(
            fused.precision().unwrap() >= alone.precision().unwrap(),
            "fusion {fused:?} vs {member} {alone:?}"
        );
        assert!(
            fused.false_alarms * 3 <= alone.false_alarms,
            "{fused:?} vs {member} {alone:?}"
        );
    }
    assert!(fused.recall().unwrap() >= 0.7, "{fused:?}");
    // and on a second seed
    let series = synthetic::seasonal_noisy(7);
    let zscore = DetectorSpec::ZScore(ZScoreConfig::default());
    let seasonal = DetectorSpec::Seasonal(SeasonalConfig::default());
    let fusion = DetectorSpec::Fusion(FusionConfig {
        detectors: vec![zscore.clone(), seasonal.clone()],
        min_agree: 2,
    });
    let fused = run(&fusion, &series);
    for alone in [run(&zscore, &series), run(&seasonal, &series)] {
        assert!(fused.precision().unwrap() >= alone.precision().unwrap());
    }
}

#[test]
fn docs_show_the_current_table() {
    let table = eval::markdown(rows());
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/detectors.md");
    let doc = std::fs::read_to_string(path).unwrap();
    assert!(
        doc.contains(&table),
        "docs/detectors.md is out of date; run \
         `cargo run --release -p ordermon-application --example detector_report` \
         and paste its quality table:\n{table}"
    );
}
