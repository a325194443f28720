use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use ordermon_domain::ids::InstrumentId;
use ordermon_domain::market::{Bar, BarInterval, Quote};
use ordermon_domain::ports::{BarRepository, MarketDataError, MarketDataProvider};
use ordermon_domain::values::Price;
use ordermon_memory::MemoryStore;
use rust_decimal::Decimal;

use super::{BarsJob, PAGE, download, parse_time};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

fn btc() -> InstrumentId {
    InstrumentId::new("BTCUSDT.BINANCE").unwrap_or_else(|e| panic!("{e}"))
}

/// An exchange with one bar a minute from `t0` for `minutes` minutes, except
/// a hole (an exchange outage) of ten minutes at minute 1500; it fails for
/// good on the `fail_on`th request.
#[derive(Debug)]
struct Exchange {
    minutes: i64,
    requests: AtomicU32,
    fail_on: Option<u32>,
}

#[async_trait]
impl MarketDataProvider for Exchange {
    fn name(&self) -> &str {
        "exchange"
    }
    async fn quote(&self, i: &InstrumentId) -> Result<Quote, MarketDataError> {
        Err(MarketDataError::UnknownInstrument(i.clone()))
    }
    async fn bars(
        &self,
        instrument: &InstrumentId,
        interval: BarInterval,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Bar>, MarketDataError> {
        let n = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail_on == Some(n) {
            return Err(MarketDataError::Refused("HTTP 401".to_owned()));
        }
        let first = (from - t0()).num_minutes().max(0);
        Ok((first..self.minutes)
            .filter(|m| !(1500..1510).contains(m))
            .map(|m| t0() + Duration::minutes(m))
            .filter(|t| *t >= from && *t < to)
            .take(limit as usize)
            .map(|open_time| {
                let p = Price::new(Decimal::new(6_500_000, 2)).unwrap_or_else(|e| panic!("{e}"));
                Bar {
                    instrument_id: instrument.clone(),
                    interval,
                    open_time,
                    open: p,
                    high: p,
                    low: p,
                    close: p,
                    volume: Decimal::ONE,
                }
            })
            .collect())
    }
}

fn job(minutes: i64) -> BarsJob {
    BarsJob {
        provider: "exchange".to_owned(),
        instrument: btc(),
        interval: BarInterval::M1,
        from: t0(),
        to: t0() + Duration::minutes(minutes),
    }
}

async fn stored(store: &MemoryStore, job: &BarsJob) -> Vec<DateTime<Utc>> {
    let mut all = Vec::new();
    let mut from = job.from;
    loop {
        let page = store
            .bars(&job.instrument, job.interval, from, job.to, 1000)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let Some(last) = page.last() else { break };
        from = last.open_time + Duration::minutes(1);
        all.extend(page.iter().map(|b| b.open_time));
    }
    all
}

#[tokio::test]
async fn an_interrupted_download_resumes_without_gap_or_duplicate() {
    let dir = std::env::temp_dir().join(format!("ordermon-bars-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let checkpoint = dir.join("job.checkpoint.json");
    let store = Arc::new(MemoryStore::new());
    let job = job(3500);
    // The third request fails for good: two pages are stored.
    let failing = Exchange {
        minutes: 3500,
        requests: AtomicU32::new(0),
        fail_on: Some(3),
    };
    let err = download(&job, &failing, store.as_ref(), &checkpoint, &|_| {})
        .await
        .err()
        .unwrap_or_else(|| panic!("the third page fails"));
    assert!(format!("{err:#}").contains("401"), "{err:#}");
    assert_eq!(stored(&store, &job).await.len(), 2 * PAGE as usize);
    assert!(checkpoint.exists(), "the checkpoint says where to resume");

    let healthy = Exchange {
        minutes: 3500,
        requests: AtomicU32::new(0),
        fail_on: None,
    };
    let summary = download(&job, &healthy, store.as_ref(), &checkpoint, &|_| {})
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    // The second page spanned the hole: it ended at minute 2009.
    assert_eq!(summary.resumed_at, Some(t0() + Duration::minutes(2010)));
    // 3500 minutes less the ten-minute hole, 1490 of them in this run.
    assert_eq!(summary.written, 1490);
    assert_eq!(
        healthy.requests.load(Ordering::SeqCst),
        2,
        "pages 3 and 4 reach the end"
    );
    let times = stored(&store, &job).await;
    assert_eq!(times.len(), 3490);
    let mut expected: Vec<DateTime<Utc>> = (0..3500)
        .filter(|m| !(1500..1510).contains(m))
        .map(|m| t0() + Duration::minutes(m))
        .collect();
    expected.sort();
    assert_eq!(times, expected, "every bar once, in order");
    assert!(!checkpoint.exists(), "a finished job leaves no checkpoint");

    // Running it again from scratch stores the same bars: nothing doubles.
    let again = Exchange {
        minutes: 3500,
        requests: AtomicU32::new(0),
        fail_on: None,
    };
    download(&job, &again, store.as_ref(), &checkpoint, &|_| {})
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(stored(&store, &job).await.len(), 3490);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_checkpoint_of_another_job_is_ignored_and_a_bad_one_refused() {
    let dir = std::env::temp_dir().join(format!("ordermon-bars-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let checkpoint = dir.join("job.checkpoint.json");
    let store = Arc::new(MemoryStore::new());
    let other = super::Checkpoint {
        job: job(10),
        next: t0() + Duration::minutes(9),
        written: 9,
        pages: 1,
    };
    std::fs::write(&checkpoint, serde_json::to_vec(&other).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    let exchange = Exchange {
        minutes: 60,
        requests: AtomicU32::new(0),
        fail_on: None,
    };
    let summary = download(&job(60), &exchange, store.as_ref(), &checkpoint, &|_| {})
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!((summary.written, summary.resumed_at), (60, None));

    std::fs::write(&checkpoint, b"{ not json").unwrap_or_else(|e| panic!("{e}"));
    let err = download(&job(60), &exchange, store.as_ref(), &checkpoint, &|_| {})
        .await
        .err();
    assert!(err.is_some_and(|e| format!("{e:#}").contains("not readable")));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn times_are_rfc3339_or_dates() {
    assert_eq!(parse_time("2026-11-02"), Ok(t0()));
    assert_eq!(parse_time("2026-11-02T00:00:00Z"), Ok(t0()));
    assert_eq!(parse_time("2026-11-02T08:00:00+08:00"), Ok(t0()));
    assert!(parse_time("yesterday").is_err());
    assert!(parse_time("2026-13-01").is_err());
}
