use std::collections::VecDeque;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use ordermon_domain::ids::InstrumentId;
use ordermon_domain::market::{Bar, BarInterval, Quote};
use ordermon_domain::ports::{ManualClock, MarketDataError, MarketDataProvider};
use ordermon_domain::values::{Price, Quantity};
use parking_lot::Mutex;
use rust_decimal::Decimal;

use super::{LiveFeed, LiveFeedConfig, LiveFeedError, PollOutcome};
use crate::market::QuoteBook;

/// A provider answering from a script, per instrument.
#[derive(Debug, Default)]
struct Scripted {
    answers: Mutex<VecDeque<Result<Quote, MarketDataError>>>,
    asked: Mutex<Vec<InstrumentId>>,
}

#[async_trait]
impl MarketDataProvider for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }

    async fn quote(&self, instrument: &InstrumentId) -> Result<Quote, MarketDataError> {
        self.asked.lock().push(instrument.clone());
        self.answers
            .lock()
            .pop_front()
            .unwrap_or_else(|| Err(MarketDataError::Unavailable("script ran out".to_owned())))
    }

    async fn bars(
        &self,
        _: &InstrumentId,
        _: BarInterval,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
        _: u32,
    ) -> Result<Vec<Bar>, MarketDataError> {
        Ok(Vec::new())
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 3, 9, 30, 0)
        .single()
        .unwrap_or_default()
}

fn id(s: &str) -> InstrumentId {
    InstrumentId::new(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn quote(instrument: &str, bid: i64, ts: DateTime<Utc>) -> Quote {
    let p = |v: i64| Price::new(Decimal::new(v, 2)).unwrap_or_else(|e| panic!("{e}"));
    Quote {
        instrument_id: id(instrument),
        bid: p(bid),
        ask: p(bid + 1),
        bid_size: Quantity::new(Decimal::TEN).unwrap_or(Quantity::ZERO),
        ask_size: Quantity::new(Decimal::TEN).unwrap_or(Quantity::ZERO),
        ts,
    }
}

fn feed(
    script: Vec<Result<Quote, MarketDataError>>,
) -> (LiveFeed, Arc<QuoteBook>, Arc<ManualClock>) {
    let provider = Arc::new(Scripted {
        answers: Mutex::new(script.into()),
        asked: Mutex::new(Vec::new()),
    });
    let book = Arc::new(QuoteBook::new(16));
    let clock = Arc::new(ManualClock::new(t0()));
    let config = LiveFeedConfig {
        instruments: vec![id("BTCUSDT.BINANCE")],
        max_quote_age_ms: 10_000,
        ..LiveFeedConfig::default()
    };
    let feed = LiveFeed::new(provider, book.clone(), clock.clone(), config)
        .unwrap_or_else(|e| panic!("{e}"));
    (feed, book, clock)
}

#[tokio::test]
async fn fresh_quotes_are_published_once_and_stale_ones_never() {
    let btc = id("BTCUSDT.BINANCE");
    let (feed, book, clock) = feed(vec![
        Ok(quote("BTCUSDT.BINANCE", 100, t0())),
        Ok(quote("BTCUSDT.BINANCE", 100, t0())),
        // 20 s old on arrival: over the 10 s limit.
        Ok(quote("BTCUSDT.BINANCE", 105, t0() - Duration::seconds(19))),
        Err(MarketDataError::RateLimited {
            retry_after_secs: Some(3),
        }),
        Ok(quote("BTCUSDT.BINANCE", 102, t0() + Duration::seconds(1))),
    ]);
    let mut rx = book.subscribe();
    assert_eq!(feed.poll(&btc).await, PollOutcome::Published);
    assert_eq!(feed.poll(&btc).await, PollOutcome::Unchanged);
    clock.advance(Duration::seconds(1));
    assert_eq!(feed.poll(&btc).await, PollOutcome::Stale);
    assert!(matches!(
        feed.poll(&btc).await,
        PollOutcome::Failed(MarketDataError::RateLimited { .. })
    ));
    assert_eq!(feed.poll(&btc).await, PollOutcome::Published);

    // Exactly the two fresh quotes reached subscribers, in order.
    let first = rx.try_recv().unwrap_or_else(|e| panic!("{e}"));
    let second = rx.try_recv().unwrap_or_else(|e| panic!("{e}"));
    assert!(rx.try_recv().is_err());
    assert_eq!(first.bid.get(), Decimal::new(100, 2));
    assert_eq!(second.bid.get(), Decimal::new(102, 2));
    assert_eq!(
        book.latest(&btc).map(|q| q.bid.get()),
        Some(Decimal::new(102, 2))
    );

    let status = feed.status();
    let s = &status.instruments[&btc];
    assert_eq!(
        (s.published, s.stale, s.failures, s.consecutive_failures),
        (2, 1, 1, 0)
    );
    assert!(s.last_error.is_none());
    assert!(status.stale_instruments.is_empty());

    // No fresh quote for longer than the limit: the instrument is stale.
    clock.advance(Duration::seconds(11));
    assert_eq!(feed.status().stale_instruments, vec![btc.clone()]);
    // A failing provider keeps the error for the status, and counts the run.
    assert!(matches!(
        feed.poll(&btc).await,
        PollOutcome::Failed(MarketDataError::Unavailable(_))
    ));
    let status = feed.status();
    assert_eq!(status.instruments[&btc].consecutive_failures, 1);
    assert!(
        status.instruments[&btc]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("script ran out"))
    );
}

#[tokio::test]
async fn a_quote_for_another_instrument_is_refused() {
    let btc = id("BTCUSDT.BINANCE");
    let (feed, book, _) = feed(vec![Ok(quote("ETHUSDT.BINANCE", 100, t0()))]);
    assert!(matches!(
        feed.poll(&btc).await,
        PollOutcome::Failed(MarketDataError::BadResponse(_))
    ));
    assert!(book.latest(&id("ETHUSDT.BINANCE")).is_none());
}

#[tokio::test]
async fn a_round_polls_every_instrument_and_counts() {
    let provider = Arc::new(Scripted::default());
    {
        let mut answers = provider.answers.lock();
        for (n, i) in ["A.SIM", "B.SIM", "C.SIM"].iter().enumerate() {
            let bid = 100 + i64::try_from(n).unwrap_or(0);
            answers.push_back(Ok(quote(i, bid, t0())));
        }
    }
    let book = Arc::new(QuoteBook::new(16));
    let clock = Arc::new(ManualClock::new(t0()));
    let config = LiveFeedConfig {
        instruments: vec![id("A.SIM"), id("B.SIM"), id("C.SIM")],
        // One at a time so the script's order matches the instruments'.
        concurrency: 1,
        ..LiveFeedConfig::default()
    };
    let feed = LiveFeed::new(provider.clone(), book.clone(), clock, config)
        .unwrap_or_else(|e| panic!("{e}"));
    feed.round().await;
    assert_eq!(provider.asked.lock().len(), 3);
    for i in ["A.SIM", "B.SIM", "C.SIM"] {
        assert!(book.latest(&id(i)).is_some(), "{i} published");
    }
    assert_eq!(feed.status().rounds, 1);
}

#[test]
fn bad_settings_are_refused() {
    let bad = [
        LiveFeedConfig {
            interval_ms: 0,
            ..LiveFeedConfig::default()
        },
        LiveFeedConfig {
            max_quote_age_ms: 0,
            ..LiveFeedConfig::default()
        },
        LiveFeedConfig {
            concurrency: 0,
            ..LiveFeedConfig::default()
        },
        LiveFeedConfig {
            concurrency: 65,
            ..LiveFeedConfig::default()
        },
    ];
    for config in bad {
        assert!(
            matches!(config.validate(), Err(LiveFeedError::InvalidConfig(_))),
            "{config:?}"
        );
    }
    assert!(LiveFeedConfig::default().validate().is_ok());
    let parsed: Result<LiveFeedConfig, _> =
        toml::from_str("interval_ms = 500\ninstruments = [\"0700.HKEX\"]\nbogus = 1\n");
    assert!(parsed.is_err(), "unknown keys are refused");
}
