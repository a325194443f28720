//! Prints the anomaly detectors' report: precision and recall on the seeded
//! synthetic series, bytes per detector and the cost of one sample.
//!
//! ```text
//! cargo run --release -p ordermon-application --example detector_report
//! ```
//!
//! The quality table is deterministic (seeded series, seeded forest) and is
//! what `docs/detectors.md` must show (a unit test checks it); the cost table
//! depends on the machine and how busy it is.

use std::hint::black_box;
use std::time::Instant;

use ordermon_application::alerting::detect::eval::{self, FOREST_SEED, REPORT_SEED};
use ordermon_application::alerting::detect::synthetic;
use ordermon_application::alerting::detect::{
    ConfigError, IsolationForest, IsolationForestConfig, LinearTrend, TrendConfig,
};

/// Times `run` `rounds` times and returns the best round's nanoseconds per
/// item: the least disturbed by other work on the machine.
fn best_ns_per_item(rounds: usize, items: usize, mut run: impl FnMut()) -> f64 {
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_nanos() as f64 / items as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() -> Result<(), ConfigError> {
    println!(
        "## Quality (seed {REPORT_SEED}, tolerance {} samples)\n",
        eval::TOLERANCE
    );
    println!("{}", eval::markdown(&eval::quality_rows(REPORT_SEED)?));

    println!("## Cost\n");
    println!("| detector | bytes | ns per observe |");
    println!("| --- | ---: | ---: |");
    // the clean trading week: every detector warm for most of its 50,400 samples
    let week = synthetic::seasonal(REPORT_SEED);
    for (name, spec) in eval::lineup() {
        let bytes = spec.build()?.memory_bytes();
        let mut outcome = Ok(());
        let ns = best_ns_per_item(5, week.values.len(), || match spec.build() {
            Ok(mut detector) => {
                for (&t, &x) in week.times.iter().zip(&week.values) {
                    black_box(detector.observe(t, x));
                }
            }
            Err(e) => outcome = Err(e),
        });
        outcome?;
        println!("| {name} | {bytes} | {ns:.0} |");
    }

    // the forest: only scored samples are timed (build of the trees + score)
    let flow = synthetic::order_flow(REPORT_SEED);
    let configs = [
        (
            "isolation_forest (defaults: 32 trees, ψ 64, history 128)",
            IsolationForestConfig::default(),
        ),
        (
            "isolation_forest (64 trees, ψ 64, history 256)",
            IsolationForestConfig {
                trees: 64,
                history: 256,
                ..IsolationForestConfig::default()
            },
        ),
        (
            "isolation_forest (100 trees, ψ 256, history 512)",
            IsolationForestConfig {
                trees: 100,
                subsample: 256,
                history: 512,
                min_history: 256,
                ..IsolationForestConfig::default()
            },
        ),
    ];
    for (name, config) in configs {
        let warm = config.history;
        let mut forest = IsolationForest::new(&config, FOREST_SEED)?;
        for v in &flow.vectors[..warm] {
            forest.observe(v);
        }
        let scored = &flow.vectors[warm..];
        let ns = best_ns_per_item(5, scored.len(), || {
            let mut f = forest.clone();
            for v in scored {
                black_box(f.observe(v));
            }
        });
        println!("| {name} | {} | {ns:.0} |", forest.memory_bytes());
    }

    let mut trend = LinearTrend::new(&TrendConfig::default())?;
    for (&t, &x) in week.times.iter().zip(&week.values).take(30) {
        trend.push(t, x);
    }
    let ns = best_ns_per_item(5, 100_000, || {
        for _ in 0..100_000 {
            black_box(black_box(&trend).time_to(1e6));
        }
    });
    println!(
        "| linear_trend (window 30; one fit + time_to) | {} | {ns:.0} |",
        trend.memory_bytes()
    );
    Ok(())
}
