//! Tests of the simulated feed: the walk's invariants, determinism, and the task.

use super::*;
use chrono::TimeZone;
use ordermon_domain::ports::ManualClock;
use rust_decimal_macros::dec;

fn id(s: &str) -> InstrumentId {
    InstrumentId::new(s).unwrap()
}

fn instrument(name: &str, start: Decimal, tick: Decimal) -> FeedInstrument {
    FeedInstrument {
        instrument_id: id(name),
        start_price: Price::new(start).unwrap(),
        tick_size: Price::new(tick).unwrap(),
        size: None,
    }
}

fn config(seed: u64) -> FeedConfig {
    FeedConfig {
        seed: Some(seed),
        instruments: vec![
            instrument("ACME.SIM", dec!(100.00), dec!(0.01)),
            // Starts near zero with a coarse tick so the floor is exercised.
            instrument("PENNY.SIM", dec!(0.10), dec!(0.05)),
            instrument("BTCUSDT.SIM", dec!(65000.5), dec!(0.5)),
        ],
        volatility: 0.02,
        spread_ticks: 3,
        ..FeedConfig::default()
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 9, 30, 0).unwrap()
}

#[test]
fn defaults() {
    let c = FeedConfig::default();
    assert_eq!(c.interval_ms, 250);
    assert_eq!(c.spread_ticks, 1);
    assert_eq!(c.size.get(), dec!(1000));
    assert!(c.seed.is_none() && c.instruments.is_empty());
    assert!(c.validate().is_ok());
}

#[test]
fn config_from_json() {
    let c: FeedConfig = serde_json::from_str(
        r#"{"interval_ms": 100, "seed": 7, "size": "50",
            "instruments": [{"instrument_id": "ACME.SIM", "start_price": "10.00",
                             "tick_size": "0.01", "size": "5"}]}"#,
    )
    .unwrap();
    assert_eq!(c.interval_ms, 100);
    assert_eq!(c.spread_ticks, 1);
    assert_eq!(c.instruments[0].size.unwrap().get(), dec!(5));
    assert!(serde_json::from_str::<FeedConfig>(r#"{"interval": 1}"#).is_err());
    let json = serde_json::to_string(&c).unwrap();
    assert_eq!(serde_json::from_str::<FeedConfig>(&json).unwrap(), c);
    let json = serde_json::to_string(&FeedConfig::default()).unwrap();
    assert!(!json.contains("seed"), "{json}");
}

#[test]
fn invalid_configs_are_refused() {
    let mut c = config(1);
    c.interval_ms = 0;
    assert!(QuoteGenerator::new(&c).is_err());
    let mut c = config(1);
    c.volatility = f64::NAN;
    assert!(QuoteGenerator::new(&c).is_err());
    let mut c = config(1);
    c.spread_ticks = 0;
    assert!(QuoteGenerator::new(&c).is_err());
    let mut c = config(1);
    c.instruments
        .push(instrument("ODD.SIM", dec!(10.005), dec!(0.01)));
    assert!(matches!(
        QuoteGenerator::new(&c),
        Err(FeedError::OffTick { .. })
    ));
}

#[test]
fn prices_stay_on_tick_and_positive() {
    let c = config(42);
    let mut g = QuoteGenerator::new(&c).unwrap();
    let ticks: Vec<Decimal> = c.instruments.iter().map(|i| i.tick_size.get()).collect();
    let mut moved = vec![false; ticks.len()];
    let mut first: Option<Vec<Quote>> = None;
    for _ in 0..10_000 {
        let quotes = g.next_quotes(t0());
        assert_eq!(quotes.len(), ticks.len());
        for (k, q) in quotes.iter().enumerate() {
            let tick = ticks[k];
            assert!(q.bid.get() > Decimal::ZERO, "{q:?}");
            assert_eq!(q.ask.get() - q.bid.get(), tick * dec!(3), "{q:?}");
            assert!((q.bid.get() % tick).is_zero(), "{q:?}");
            assert!((q.ask.get() % tick).is_zero(), "{q:?}");
            assert_eq!(q.bid_size.get(), dec!(1000));
            if let Some(f) = &first {
                moved[k] |= f[k].bid != q.bid;
            }
        }
        first.get_or_insert(quotes);
    }
    assert!(moved.iter().all(|m| *m), "every walk moves");
}

#[test]
fn same_seed_same_walk() {
    let mut a = QuoteGenerator::new(&config(7)).unwrap();
    let mut b = QuoteGenerator::new(&config(7)).unwrap();
    let mut c = QuoteGenerator::new(&config(8)).unwrap();
    let run = |g: &mut QuoteGenerator| -> Vec<Quote> {
        (0..200).flat_map(|_| g.next_quotes(t0())).collect()
    };
    let (ra, rb, rc) = (run(&mut a), run(&mut b), run(&mut c));
    assert_eq!(ra, rb);
    assert_ne!(ra, rc);
}

#[test]
fn small_volatility_still_moves_through_the_carry() {
    let mut c = config(3);
    c.volatility = 0.000_01; // 0.1 cent per step on 100.00: below one tick
    c.instruments.truncate(1);
    let mut g = QuoteGenerator::new(&c).unwrap();
    let quotes: Vec<Quote> = (0..2_000).flat_map(|_| g.next_quotes(t0())).collect();
    assert!(quotes.iter().any(|q| q.bid != quotes[0].bid));
}

#[test]
fn instruments_can_be_added_once() {
    let mut g = QuoteGenerator::new(&config(1)).unwrap();
    assert!(!g.add(instrument("ACME.SIM", dec!(5), dec!(1))).unwrap());
    assert!(g.add(instrument("NEW.SIM", dec!(5), dec!(1))).unwrap());
    assert_eq!(g.instruments().len(), 4);
    assert_eq!(g.next_quotes(t0()).len(), 4);
}

fn feed(seed: u64) -> (Arc<SimulatedFeed>, Arc<QuoteBook>) {
    let book = Arc::new(QuoteBook::new(64));
    let clock = Arc::new(ManualClock::new(t0()));
    let f = SimulatedFeed::new(&config(seed), Arc::clone(&book), clock).unwrap();
    (Arc::new(f), book)
}

#[tokio::test]
async fn step_publishes_to_the_book_and_serves_quotes() {
    let (f, book) = feed(5);
    let acme = id("ACME.SIM");
    assert_eq!(
        f.quote(&acme).await,
        Err(MarketDataError::UnknownInstrument(acme.clone()))
    );
    let quotes = f.step();
    assert_eq!(book.latest(&acme).as_ref(), quotes.first());
    assert_eq!(f.quote(&acme).await.unwrap().ts, t0());
    assert_eq!(f.name(), "simulated");
    assert_eq!(f.instruments().len(), 3);
    let bars = f.bars(&acme, BarInterval::M1, t0(), t0(), 10).await;
    assert!(matches!(bars, Err(MarketDataError::Unavailable(_))));
}

#[tokio::test(start_paused = true)]
async fn spawned_feed_publishes_every_interval_until_cancelled() {
    let (f, book) = feed(9);
    let mut rx = book.subscribe();
    let cancel = CancellationToken::new();
    let task = f.spawn(cancel.clone());
    // First step at once, then one per 250 ms: 3 instruments per step.
    tokio::time::sleep(Duration::from_millis(260)).await;
    let mut n = 0;
    while rx.try_recv().is_ok() {
        n += 1;
    }
    assert_eq!(n, 6);
    cancel.cancel();
    task.await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(rx.try_recv().is_err());
}
