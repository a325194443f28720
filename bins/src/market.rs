//! Demo instruments and the simulated feed's coverage of the catalog.
//!
//! On the embedded default the catalog starts with a few instruments (one per
//! kind of market), and every instrument in the catalog is quoted by the
//! simulated feed, including those an admin adds later through the API.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ordermon_application::Engine;
use ordermon_domain::Decimal;
use ordermon_domain::ids::InstrumentId;
use ordermon_domain::instrument::Instrument;
use ordermon_domain::values::{Currency, Price, Quantity};
use ordermon_sim::feed::{FeedInstrument, SimulatedFeed};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often the feed looks for instruments added to the catalog.
const CATALOG_SYNC_EVERY: Duration = Duration::from_secs(1);

/// One demo instrument: id, quote currency, tick, lot, start price.
struct Demo {
    id: &'static str,
    currency: &'static str,
    tick: Decimal,
    lot: Decimal,
    start: Decimal,
}

fn demos() -> [Demo; 4] {
    [
        Demo {
            id: "ACME.SIM",
            currency: "USD",
            tick: Decimal::new(1, 2),
            lot: Decimal::ONE,
            start: Decimal::new(10_000, 2),
        },
        Demo {
            id: "AAPL.XNAS",
            currency: "USD",
            tick: Decimal::new(1, 2),
            lot: Decimal::ONE,
            start: Decimal::new(19_000, 2),
        },
        Demo {
            id: "0700.HKEX",
            currency: "HKD",
            tick: Decimal::new(2, 1),
            lot: Decimal::ONE_HUNDRED,
            start: Decimal::new(3_800, 1),
        },
        Demo {
            id: "BTCUSDT.BINANCE",
            currency: "USDT",
            tick: Decimal::new(1, 2),
            lot: Decimal::new(1, 5),
            start: Decimal::new(6_500_000, 2),
        },
    ]
}

fn demo_instrument(d: &Demo) -> Option<Instrument> {
    let lot = Quantity::new(d.lot).ok()?;
    Some(Instrument {
        id: InstrumentId::new(d.id).ok()?,
        quote_currency: Currency::new(d.currency).ok()?,
        tick_size: Price::new(d.tick).ok()?,
        lot_size: lot,
        min_quantity: lot,
        max_quantity: None,
        min_notional: None,
        multiplier: Decimal::ONE,
        version: 0,
    })
}

/// Adds the demo instruments when the catalog is empty; returns how many.
///
/// # Errors
/// The engine refusing an instrument (a store failure).
pub(crate) async fn seed_demo_instruments(
    engine: &Engine,
) -> Result<usize, ordermon_application::AppError> {
    if !engine.instruments.catalog().all().is_empty() {
        return Ok(0);
    }
    let mut n = 0;
    for d in &demos() {
        if let Some(instrument) = demo_instrument(d) {
            engine.instruments.upsert(instrument).await?;
            n += 1;
        }
    }
    tracing::info!(instruments = n, "seeded demo instruments");
    Ok(n)
}

/// Where the walk of an instrument starts: the demo price for demo instruments,
/// else 100 rounded down to the tick (at least one tick).
pub(crate) fn start_price(instrument: &Instrument) -> Price {
    let tick = instrument.tick_size.get();
    let wanted = demos()
        .iter()
        .find(|d| d.id == instrument.id.as_str())
        .map_or(Decimal::ONE_HUNDRED, |d| d.start);
    let on_tick = ((wanted / tick).floor() * tick).max(tick);
    Price::new(on_tick).unwrap_or(instrument.tick_size)
}

/// Adds every catalog instrument the feed does not quote yet.
pub(crate) fn cover_catalog(engine: &Engine, feed: &SimulatedFeed) {
    let quoted: HashSet<InstrumentId> = feed.instruments().into_iter().collect();
    for instrument in engine.instruments.catalog().all() {
        if quoted.contains(&instrument.id) {
            continue;
        }
        let start = start_price(&instrument);
        match feed.add_instrument(FeedInstrument::from_instrument(&instrument, start)) {
            Ok(true) => {
                tracing::debug!(instrument = %instrument.id, %start, "feed quotes instrument")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(instrument = %instrument.id, error = %e, "feed cannot quote instrument")
            }
        }
    }
}

/// Keeps the feed's coverage in step with the catalog until `cancel` fires.
pub(crate) fn spawn_catalog_sync(
    engine: Arc<Engine>,
    feed: Arc<SimulatedFeed>,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(CATALOG_SYNC_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                _ = every.tick() => cover_catalog(&engine, &feed),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn demo_instruments_are_valid_and_start_on_tick() {
        for d in &demos() {
            let i = demo_instrument(d).expect(d.id);
            i.validate().unwrap();
            let p = start_price(&i);
            assert_eq!(p.get(), d.start, "{}", d.id);
            assert!((p.get() % i.tick_size.get()).is_zero());
        }
    }

    #[test]
    fn other_instruments_start_near_100_on_tick() {
        let mut i = demo_instrument(&demos()[0]).unwrap();
        i.id = InstrumentId::new("XYZ.SIM").unwrap();
        i.tick_size = Price::new(dec!(0.3)).unwrap();
        assert_eq!(start_price(&i).get(), dec!(99.9));
        i.tick_size = Price::new(dec!(500)).unwrap();
        assert_eq!(start_price(&i).get(), dec!(500));
    }
}
