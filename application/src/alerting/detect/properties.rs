//! Properties every detector keeps on any input: it never panics, its scores
//! are finite and never negative, its evidence stays in [0, 1], and its memory
//! does not grow.

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;

use super::{
    DetectorSpec, Direction, EwmaConfig, FusionConfig, IsolationForest, IsolationForestConfig,
    LinearTrend, MadConfig, SeasonalConfig, TrendConfig, Verdict, ZScoreConfig,
};

/// Any f64 at all, with the awkward ones well represented.
fn sample() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -1e3f64..1e3,
        1 => any::<f64>(),
        1 => Just(0.0),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(f64::MAX),
        1 => Just(-f64::MAX),
        1 => Just(f64::MIN_POSITIVE),
        1 => Just(1e30),
    ]
}

/// A series: (seconds since the previous sample, possibly negative; value).
fn series() -> impl Strategy<Value = Vec<(i64, f64)>> {
    prop::collection::vec((-7_200i64..7_200, sample()), 0..300)
}

/// A constant stretch after some noise: zero variance at the end.
fn constant_series() -> impl Strategy<Value = Vec<(i64, f64)>> {
    (sample(), 0usize..50, 0usize..200).prop_map(|(x, noise, len)| {
        (0..noise)
            .map(|i| (600, i as f64))
            .chain(std::iter::repeat_n((600, x), len))
            .collect()
    })
}

fn direction() -> impl Strategy<Value = Direction> {
    prop_oneof![
        Just(Direction::Up),
        Just(Direction::Down),
        Just(Direction::Both)
    ]
}

fn window() -> impl Strategy<Value = (usize, usize)> {
    (2usize..80).prop_flat_map(|w| (Just(w), 2..=w))
}

fn leaf_spec() -> impl Strategy<Value = DetectorSpec> {
    let threshold = 0.1f64..10.0;
    let delta = prop_oneof![Just(0.0), 0.0f64..10.0];
    prop_oneof![
        (window(), threshold.clone(), direction(), delta.clone()).prop_map(
            |((window, min_samples), threshold, direction, min_delta)| {
                DetectorSpec::ZScore(ZScoreConfig {
                    window,
                    min_samples,
                    threshold,
                    direction,
                    min_delta,
                })
            }
        ),
        (
            0.001f64..=1.0,
            2usize..50,
            threshold.clone(),
            direction(),
            delta.clone()
        )
            .prop_map(|(alpha, min_samples, threshold, direction, min_delta)| {
                DetectorSpec::Ewma(EwmaConfig {
                    alpha,
                    min_samples,
                    threshold,
                    direction,
                    min_delta,
                })
            }),
        (window(), threshold.clone(), direction(), delta.clone()).prop_map(
            |((window, min_samples), threshold, direction, min_mad)| {
                DetectorSpec::Mad(MadConfig {
                    window,
                    min_samples,
                    threshold,
                    direction,
                    min_mad,
                })
            }
        ),
        (0.01f64..=1.0, 1u8..4, threshold, direction(), delta).prop_map(
            |(alpha, min_seasons, threshold, direction, min_delta)| {
                DetectorSpec::Seasonal(SeasonalConfig {
                    alpha,
                    min_seasons,
                    threshold,
                    direction,
                    min_delta,
                })
            }
        ),
    ]
}

fn spec() -> impl Strategy<Value = DetectorSpec> {
    prop_oneof![
        3 => leaf_spec(),
        1 => prop::collection::vec(leaf_spec(), 1..4).prop_flat_map(|detectors| {
            let n = detectors.len();
            (Just(detectors), 1..=n).prop_map(|(detectors, min_agree)| {
                DetectorSpec::Fusion(FusionConfig { detectors, min_agree })
            })
        }),
    ]
}

fn check(verdict: &Verdict) -> Result<(), TestCaseError> {
    prop_assert!(
        verdict.score.is_finite() && verdict.score >= 0.0,
        "{verdict:?}"
    );
    prop_assert!((0.0..=1.0).contains(&verdict.evidence()), "{verdict:?}");
    prop_assert!(verdict.threshold.is_finite() && verdict.threshold > 0.0);
    Ok(())
}

fn feed(spec: &DetectorSpec, series: &[(i64, f64)]) -> Result<(), TestCaseError> {
    let mut detector = spec.build().unwrap();
    let bytes = detector.memory_bytes();
    let mut t = DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(20_000);
    for &(step, x) in series {
        t += TimeDelta::seconds(step);
        let verdict = detector.observe(t, x);
        if !x.is_finite() {
            prop_assert!(verdict.is_none(), "non-finite input is ignored");
        }
        if let Some(v) = verdict {
            check(&v)?;
        }
    }
    prop_assert_eq!(detector.memory_bytes(), bytes);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn detectors_never_panic_nor_return_nan(spec in spec(), series in series()) {
        feed(&spec, &series)?;
    }

    #[test]
    fn detectors_survive_constant_series(spec in spec(), series in constant_series()) {
        feed(&spec, &series)?;
    }

    #[test]
    fn isolation_forest_never_panics_nor_returns_nan(
        dims in 1usize..6,
        vectors in prop::collection::vec(prop::collection::vec(sample(), 0..7), 0..120),
        seed in any::<u64>(),
    ) {
        let config = IsolationForestConfig {
            dimensions: dims,
            trees: 8,
            subsample: 16,
            history: 32,
            min_history: 8,
            ..IsolationForestConfig::default()
        };
        let mut forest = IsolationForest::new(&config, seed).unwrap();
        let bytes = forest.memory_bytes();
        for v in &vectors {
            let verdict = forest.observe(v);
            if v.len() != dims || v.iter().any(|x| !x.is_finite()) {
                prop_assert!(verdict.is_none());
            }
            if let Some(verdict) = verdict {
                check(&verdict)?;
                prop_assert!(verdict.score > 0.0 && verdict.score <= 1.0);
            }
        }
        prop_assert_eq!(forest.memory_bytes(), bytes);
    }

    #[test]
    fn trend_never_panics_nor_returns_nan(series in series(), limit in sample()) {
        let mut trend = LinearTrend::new(&TrendConfig::default()).unwrap();
        let mut t = DateTime::<Utc>::UNIX_EPOCH;
        for &(step, x) in &series {
            t += TimeDelta::seconds(step);
            trend.push(t, x);
            if let Some(fit) = trend.fit() {
                prop_assert!(fit.slope.is_finite() && fit.level.is_finite());
                prop_assert!((0.0..=1.0).contains(&fit.r2));
            }
            let _ = trend.time_to(limit);
            let _ = trend.reached_at(limit);
        }
    }
}
