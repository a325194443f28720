//! `cargo run -p ordermon-example-embedded`: ordermon embedded with its own
//! strategy type and venue, on the in-memory store and the simulated feed,
//! until the strategy has traded five times.

use std::time::Duration;

use ordermon::config::{Config, ServiceUrl};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let mut config = Config::default();
    config.database.url = ServiceUrl::new("memory");
    // The demo instruments, without the demo users and their strategies.
    config.demo.users = false;
    let outcome = ordermon_example_embedded::run(config, 5, Duration::from_secs(60)).await?;
    println!("strategy types: {}", outcome.strategy_types.join(", "));
    for fill in outcome.fills.iter().rev() {
        println!(
            "{} {} {} @ {} ({})",
            fill.ts_event.format("%H:%M:%S%.3f"),
            fill.side.as_str(),
            fill.quantity,
            fill.price,
            fill.trade_id
        );
    }
    println!(
        "{} fills, {} reported by the touch venue; position {} {}",
        outcome.fills.len(),
        outcome.venue_trades,
        outcome.position,
        ordermon_example_embedded::INSTRUMENT
    );
    Ok(())
}
