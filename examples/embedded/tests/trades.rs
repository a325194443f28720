//! The embedding example runs and trades: its strategy type is registered
//! beside the built-in ones, its orders reach its own venue (not the paper
//! venue), and ordermon stores every fill that venue reported.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ordermon::config::{Config, ServiceUrl};
use ordermon_example_embedded::{INSTRUMENT, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_strategy_trades_through_its_own_venue() {
    let logs = tempfile_dir();
    let mut config = Config::default();
    config.database.url = ServiceUrl::new("memory");
    config.demo.users = false;
    config.logs.dir = logs.clone();
    config.auth.jwt_secret_file = logs.join("jwt.secret");
    let outcome = run(config, 3, Duration::from_secs(60)).await.unwrap();

    assert!(
        outcome.strategy_types.contains(&"momentum"),
        "{:?}",
        outcome.strategy_types
    );
    assert!(
        outcome.strategy_types.contains(&"twap"),
        "built-ins stay: {:?}",
        outcome.strategy_types
    );
    assert!(outcome.fills.len() >= 3, "{:?}", outcome.fills);
    // Every fill ordermon stored came from the touch venue, under its trade ids.
    for fill in &outcome.fills {
        assert!(fill.trade_id.as_str().starts_with("touch-"), "{fill:?}");
        assert_eq!(fill.instrument_id.as_str(), INSTRUMENT);
        assert_eq!(fill.quantity.get(), rust_decimal::Decimal::ONE);
    }
    assert!(outcome.venue_trades >= outcome.fills.len() as u64);
    // The strategy's limit holds: never more than `max_position` long, never short.
    assert!(
        outcome.position >= rust_decimal::Decimal::ZERO,
        "{}",
        outcome.position
    );
    assert!(
        outcome.position <= rust_decimal::Decimal::from(3),
        "{}",
        outcome.position
    );
    drop(std::fs::remove_dir_all(logs));
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ordermon-embedded-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
