//! ordermon embedded as a crate, with a strategy type and a venue adapter of
//! its own, trading on the simulated feed.
//!
//! [`run`] builds the application through [`ordermon::AppBuilder`] with
//! [`strategy::MomentumFactory`] and [`venue::TouchVenue`] registered, runs it
//! headless (no HTTP), creates a funded trader with one `momentum` strategy
//! on `ACME.SIM` and waits until the strategy has traded. Everything in
//! between is ordermon's: pre-trade risk, the durable order flow, positions,
//! the event log. `cargo run -p ordermon-example-embedded` runs it on the
//! in-memory store; its test runs it in CI.

pub mod strategy;
pub mod venue;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use ordermon::AppBuilder;
use ordermon::config::Config;
use ordermon_application::CreateUser;
use ordermon_domain::fill::Fill;
use ordermon_domain::ids::{InstrumentId, StrategyId, UserId};
use ordermon_domain::ports::{Clock, FillQuery, SystemClock};
use ordermon_domain::strategy::{Strategy, StrategyStatus};
use ordermon_domain::values::{Currency, Money};
use rust_decimal::Decimal;
use tokio_util::sync::CancellationToken;

use crate::strategy::{MOMENTUM, MomentumFactory};
use crate::venue::TouchVenue;

/// The instrument the example trades: one of the demo instruments the
/// simulated feed quotes.
pub const INSTRUMENT: &str = "ACME.SIM";

/// What a [`run`] did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The strategy types the application knew (built-in and registered).
    pub strategy_types: Vec<&'static str>,
    /// The trader's fills, as ordermon stored them, newest first.
    pub fills: Vec<Fill>,
    /// Trades the touch venue reported.
    pub venue_trades: u64,
    /// The trader's position in [`INSTRUMENT`] at the end.
    pub position: Decimal,
}

/// Builds ordermon from `config` with the example's strategy type and venue,
/// lets a `momentum` strategy trade until it has `trades` fills (or `within`
/// has passed), then shuts the application down.
///
/// # Errors
/// The application cannot be built or set up, or the strategy did not trade
/// `trades` times within `within`.
pub async fn run(config: Config, trades: usize, within: Duration) -> anyhow::Result<Outcome> {
    let built = Arc::new(OnceLock::new());
    let slot = built.clone();
    // The application's clock; the strategy's timestamps read it too.
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let app = AppBuilder::new()
        .clock(clock.clone())
        .strategy(MomentumFactory)
        .venue(move |ctx| {
            let venue = TouchVenue::new(ctx);
            let _ = slot.set(venue.clone());
            Ok(Arc::new(venue))
        })
        .build(config)
        .await
        .context("building ordermon")?;
    let venue: TouchVenue = built.get().cloned().context("the venue was not built")?;
    let engine = app.engine().clone();
    let monitoring = app.monitoring().clone();
    let strategy_types = engine
        .strategies
        .registry()
        .describe()
        .into_iter()
        .map(|(name, _)| name)
        .collect();

    let stop = CancellationToken::new();
    let matching = venue.spawn(stop.clone());
    let stopped = stop.clone();
    let running = tokio::spawn(app.run_headless(async move { stopped.cancelled().await }));

    let traded = trade(&engine, &monitoring, clock.as_ref(), trades, within).await;
    stop.cancel();
    let shut = running.await.context("the application's task")?;
    drop(matching.await);
    let (user, fills) = traded?;
    shut.context("shutting down")?;
    let position = fills.iter().map(|f| f.side.sign() * f.quantity.get()).sum();
    tracing::info!(%user, fills = fills.len(), %position, "the strategy traded");
    Ok(Outcome {
        strategy_types,
        fills,
        venue_trades: venue.trades(),
        position,
    })
}

/// Sets up a funded trader with one `momentum` strategy and waits for its fills.
async fn trade(
    engine: &ordermon_application::Engine,
    monitoring: &ordermon_application::Monitoring,
    clock: &dyn Clock,
    trades: usize,
    within: Duration,
) -> anyhow::Result<(UserId, Vec<Fill>)> {
    let user = UserId::new("embedder")?;
    let instrument = InstrumentId::new(INSTRUMENT)?;
    engine
        .users
        .create(CreateUser {
            id: user.clone(),
            name: "Embedded trader".to_owned(),
            status: Default::default(),
            role: Default::default(),
            account_type: Default::default(),
            limits: Default::default(),
        })
        .await
        .context("creating the trader")?;
    engine
        .accounts
        .adjust_cash(
            &user,
            Money::new(Decimal::from(1_000_000), Currency::new("USD")?)?,
            "deposit".to_owned(),
        )
        .await
        .context("funding the trader")?;
    let now = clock.now();
    engine
        .strategies
        .create(Strategy {
            id: StrategyId::new("momentum-acme")?,
            user_id: user.clone(),
            strategy_type: MOMENTUM.to_owned(),
            name: "Momentum on ACME".to_owned(),
            instruments: vec![instrument],
            params: serde_json::json!({"quantity": "1", "run": 2, "max_position": "3"}),
            status: StrategyStatus::Enabled,
            stats: Default::default(),
            created_at: now,
            updated_at: now,
            version: 0,
            sequence: 0,
        })
        .await
        .context("creating the strategy")?;
    // Start the trader's monitor now rather than at the next scan.
    monitoring.scan().await.context("starting the monitor")?;

    let query = FillQuery {
        user_id: Some(user.clone()),
        limit: 1000,
        ..FillQuery::default()
    };
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let fills: Vec<Fill> = engine
            .orders
            .fills(&query)
            .await
            .context("reading the fills")?
            .into_iter()
            .map(|(_, fill)| fill)
            .collect();
        if fills.len() >= trades {
            return Ok((user, fills));
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the strategy traded {} times in {within:?}, {trades} wanted",
            fills.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
