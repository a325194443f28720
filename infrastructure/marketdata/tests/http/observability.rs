//! The breaker and the requests show in metrics, with low-cardinality labels
//! only (never an instrument).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use ordermon_domain::ids::InstrumentId;
use ordermon_domain::ports::MarketDataProvider;
use ordermon_marketdata::{BreakerState, ProviderKind, build, metrics as names};
use parking_lot::Mutex;

use crate::support::{Reply, Server, config};

/// Every series seen: `name{k=v,…}` → last gauge value or counter total.
#[derive(Debug, Default)]
struct Seen(Mutex<BTreeMap<String, f64>>);

struct Handle {
    seen: Arc<Seen>,
    series: String,
}

impl CounterFn for Handle {
    fn increment(&self, value: u64) {
        *self.seen.0.lock().entry(self.series.clone()).or_default() += value as f64;
    }
    fn absolute(&self, value: u64) {
        self.seen.0.lock().insert(self.series.clone(), value as f64);
    }
}

impl GaugeFn for Handle {
    fn increment(&self, value: f64) {
        *self.seen.0.lock().entry(self.series.clone()).or_default() += value;
    }
    fn decrement(&self, value: f64) {
        *self.seen.0.lock().entry(self.series.clone()).or_default() -= value;
    }
    fn set(&self, value: f64) {
        self.seen.0.lock().insert(self.series.clone(), value);
    }
}

impl HistogramFn for Handle {
    fn record(&self, _: f64) {
        *self.seen.0.lock().entry(self.series.clone()).or_default() += 1.0;
    }
}

struct Rec(Arc<Seen>);

impl Rec {
    fn handle(&self, key: &Key) -> Arc<Handle> {
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        Arc::new(Handle {
            seen: self.0.clone(),
            series: format!("{}{{{}}}", key.name(), labels.join(",")),
        })
    }
}

impl Recorder for Rec {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.handle(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.handle(key))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.handle(key))
    }
}

fn seen() -> Arc<Seen> {
    static SEEN: OnceLock<Arc<Seen>> = OnceLock::new();
    SEEN.get_or_init(|| {
        let seen = Arc::new(Seen::default());
        metrics::set_global_recorder(Rec(seen.clone())).unwrap();
        seen
    })
    .clone()
}

#[tokio::test]
async fn breaker_state_and_request_outcomes_are_exported() {
    let seen = seen();
    let server = Server::start(|_, _| Reply::json("{}").status(500)).await;
    let mut c = config(ProviderKind::Binance, &server.url);
    c.name = Some("metrics-probe".into());
    c.retry.max_attempts = 1;
    c.breaker.failures = 2;
    c.breaker.cool_down = Duration::from_secs(30);
    let p = build(&c, None).unwrap();
    let btc = InstrumentId::new("BTCUSDT.BINANCE").unwrap();
    for _ in 0..3 {
        assert!(p.quote(&btc).await.is_err());
    }
    assert_eq!(p.breaker_state(), BreakerState::Open);
    let all = seen.0.lock().clone();
    let value = |series: &str| all.get(series).copied();
    assert_eq!(
        value(&format!(
            "{}{{provider=metrics-probe}}",
            names::BREAKER_STATE
        )),
        Some(2.0)
    );
    assert_eq!(
        value(&format!(
            "{}{{provider=metrics-probe,state=open}}",
            names::BREAKER_TRANSITIONS
        )),
        Some(1.0)
    );
    assert_eq!(
        value(&format!(
            "{}{{endpoint=book_ticker,outcome=server_error,provider=metrics-probe}}",
            names::REQUESTS
        )),
        Some(2.0)
    );
    assert_eq!(
        value(&format!(
            "{}{{endpoint=book_ticker,provider=metrics-probe}}",
            names::SHORT_CIRCUITED
        )),
        Some(1.0)
    );
    let ours: Vec<&String> = all.keys().filter(|k| k.contains("metrics-probe")).collect();
    assert!(ours.len() >= 4, "{ours:?}");
    for series in ours {
        assert!(
            !series.contains("BTCUSDT"),
            "an instrument in a label: {series}"
        );
    }
}
