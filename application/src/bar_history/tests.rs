use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use ordermon_domain::ids::InstrumentId;
use ordermon_domain::instrument::Instrument;
use ordermon_domain::market::{Bar, BarInterval, Quote};
use ordermon_domain::ports::{BarRepository, ManualClock, MarketDataError, MarketDataProvider};
use ordermon_domain::values::{Currency, Price, Quantity};
use ordermon_memory::MemoryStore;
use parking_lot::Mutex;
use rust_decimal_macros::dec;

use super::{BarHistory, BarQuery, MAX_BARS};
use crate::AppError;
use crate::catalog::InstrumentCatalog;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 1, 30, 0)
        .single()
        .unwrap_or_default()
}

fn hk() -> InstrumentId {
    InstrumentId::new("0700.HKEX").unwrap_or_else(|e| panic!("{e}"))
}

fn catalog() -> Arc<InstrumentCatalog> {
    let lot = Quantity::new(dec!(100)).unwrap_or(Quantity::ZERO);
    Arc::new(InstrumentCatalog::new([Instrument {
        id: hk(),
        quote_currency: Currency::new("HKD").unwrap_or_else(|e| panic!("{e}")),
        tick_size: Price::new(dec!(0.2)).unwrap_or_else(|e| panic!("{e}")),
        lot_size: lot,
        min_quantity: lot,
        max_quantity: None,
        min_notional: None,
        multiplier: dec!(1),
        version: 1,
    }]))
}

fn bar(minute: i64, close: rust_decimal::Decimal) -> Bar {
    let p = Price::new(close).unwrap_or_else(|e| panic!("{e}"));
    Bar {
        instrument_id: hk(),
        interval: BarInterval::M1,
        open_time: t0() + Duration::minutes(minute),
        open: p,
        high: p,
        low: p,
        close: p,
        volume: dec!(1000),
    }
}

/// A provider that answers a fixed list (out of order, with a duplicate and a
/// bar outside the window) and counts calls.
#[derive(Debug, Default)]
struct Fixed {
    calls: Mutex<u32>,
    fail: bool,
}

#[async_trait]
impl MarketDataProvider for Fixed {
    fn name(&self) -> &str {
        "fixed"
    }
    async fn quote(&self, i: &InstrumentId) -> Result<Quote, MarketDataError> {
        Err(MarketDataError::UnknownInstrument(i.clone()))
    }
    async fn bars(
        &self,
        _: &InstrumentId,
        _: BarInterval,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
        _: u32,
    ) -> Result<Vec<Bar>, MarketDataError> {
        *self.calls.lock() += 1;
        if self.fail {
            return Err(MarketDataError::Unavailable("circuit open".to_owned()));
        }
        Ok(vec![
            bar(2, dec!(381.2)),
            bar(0, dec!(380.0)),
            bar(1, dec!(380.4)),
            bar(1, dec!(380.4)),
            bar(90, dec!(1)),
        ])
    }
}

fn query(limit: Option<u32>) -> BarQuery {
    BarQuery {
        instrument: hk(),
        interval: BarInterval::M1,
        from: Some(t0()),
        to: Some(t0() + Duration::minutes(60)),
        limit,
    }
}

#[tokio::test]
async fn provider_answers_when_the_store_has_nothing_then_the_store_wins() {
    let store = Arc::new(MemoryStore::new());
    let provider = Arc::new(Fixed::default());
    let history = BarHistory::new(
        store.clone(),
        Some(provider.clone()),
        catalog(),
        Arc::new(ManualClock::new(t0())),
    );

    let answer = history
        .bars(&query(None))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.source, "fixed");
    let minutes: Vec<i64> = answer
        .bars
        .iter()
        .map(|b| (b.open_time - t0()).num_minutes())
        .collect();
    assert_eq!(
        minutes,
        [0, 1, 2],
        "sorted, deduplicated, inside the window"
    );
    let limited = history
        .bars(&query(Some(2)))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(limited.bars.len(), 2);

    store
        .upsert_bars(&[bar(5, dec!(379.8))])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let answer = history
        .bars(&query(None))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.source, "store");
    assert_eq!(answer.bars.len(), 1);
    assert_eq!(answer.bars[0].close.get(), dec!(379.8));
    assert_eq!(
        *provider.calls.lock(),
        2,
        "the store answered the third request"
    );
}

#[tokio::test]
async fn bad_requests_unknown_instruments_and_failing_providers() {
    let store = Arc::new(MemoryStore::new());
    let history = BarHistory::new(
        store.clone(),
        Some(Arc::new(Fixed {
            fail: true,
            ..Fixed::default()
        })),
        catalog(),
        Arc::new(ManualClock::new(t0())),
    );
    for limit in [0, MAX_BARS + 1] {
        let e = history.bars(&query(Some(limit))).await.err();
        assert!(
            matches!(e, Some(AppError::Validation(_))),
            "limit {limit}: {e:?}"
        );
    }
    let backwards = BarQuery {
        from: Some(t0()),
        to: Some(t0()),
        ..query(None)
    };
    assert!(matches!(
        history.bars(&backwards).await,
        Err(AppError::Validation(_))
    ));
    let unknown = BarQuery {
        instrument: InstrumentId::new("NOPE.HKEX").unwrap_or_else(|e| panic!("{e}")),
        ..query(None)
    };
    assert!(matches!(
        history.bars(&unknown).await,
        Err(AppError::NotFound("instrument"))
    ));
    match history.bars(&query(None)).await {
        Err(AppError::Unavailable(m)) => assert!(m.contains("circuit open"), "{m}"),
        other => panic!("expected unavailable, got {other:?}"),
    }
    // Without a provider an empty store is an empty answer, not an error.
    let bare = BarHistory::new(store, None, catalog(), Arc::new(ManualClock::new(t0())));
    let answer = bare
        .bars(&query(None))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(answer.bars.is_empty());
}

#[test]
fn the_window_defaults_to_limit_bars_before_now() {
    let q = BarQuery {
        from: None,
        to: None,
        limit: Some(60),
        ..query(None)
    };
    let (from, to, limit) = BarHistory::window(&q, t0()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((to, limit), (t0(), 60));
    assert_eq!(to - from, Duration::hours(1));
}
