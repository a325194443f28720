//! The embedding API: what an embedder registers through `AppBuilder` is what
//! runs — its market data provider drives the quote book, its notifier gets
//! the alerts a route sends it, its strategy type is offered by the API, its
//! clock stamps what the application writes — and a configuration naming
//! something that was not registered is refused before anything starts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ordermon::client;
use ordermon::config::{Config, ServiceUrl};
use ordermon::{AppBuilder, Registered};
use ordermon_application::FieldError;
use ordermon_application::strategy::{Strategy, StrategyFactory};
use ordermon_domain::alert::Notification;
use ordermon_domain::ids::InstrumentId;
use ordermon_domain::market::{Bar, BarInterval, Quote};
use ordermon_domain::ports::{Clock, MarketDataError, MarketDataProvider, Notifier, NotifyError};
use ordermon_domain::strategy::Strategy as StrategyConfig;
use ordermon_domain::user::Role;
use ordermon_domain::values::{Price, Quantity};
use parking_lot::Mutex;
use rust_decimal::Decimal;
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(10);
const SECRET: &str = "test-secret-0123456789abcdef";
const ACME: &str = "ACME.SIM";

/// The system's time, six hours ahead: anything stamped with it is
/// recognisably the registered clock's.
#[derive(Debug)]
struct AheadClock;

const AHEAD_HOURS: i64 = 6;

impl Clock for AheadClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::hours(AHEAD_HOURS)
    }
}

/// A provider quoting ACME at 99.00 / 99.10, counting its polls.
#[derive(Debug, Default)]
struct DeskFeed {
    polls: AtomicU64,
}

#[async_trait]
impl MarketDataProvider for DeskFeed {
    fn name(&self) -> &str {
        "desk-feed"
    }

    async fn quote(&self, instrument: &InstrumentId) -> Result<Quote, MarketDataError> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        Ok(Quote {
            instrument_id: instrument.clone(),
            bid: Price::new(Decimal::new(9_900, 2)).unwrap(),
            ask: Price::new(Decimal::new(9_910, 2)).unwrap(),
            bid_size: Quantity::new(Decimal::TEN).unwrap(),
            ask_size: Quantity::new(Decimal::TEN).unwrap(),
            ts: AheadClock.now(),
        })
    }

    async fn bars(
        &self,
        _instrument: &InstrumentId,
        _interval: BarInterval,
        _from: DateTime<Utc>,
        _to: DateTime<Utc>,
        _limit: u32,
    ) -> Result<Vec<Bar>, MarketDataError> {
        Ok(Vec::new())
    }
}

/// A notifier keeping what it was given.
#[derive(Debug)]
struct Recorder {
    name: &'static str,
    got: Mutex<Vec<Notification>>,
}

#[async_trait]
impl Notifier for Recorder {
    fn name(&self) -> &str {
        self.name
    }

    fn kind(&self) -> &'static str {
        "recorder"
    }

    async fn notify(&self, batch: &[Notification]) -> Result<(), NotifyError> {
        self.got.lock().extend_from_slice(batch);
        Ok(())
    }
}

fn recorder(name: &'static str) -> Arc<Recorder> {
    Arc::new(Recorder {
        name,
        got: Mutex::new(Vec::new()),
    })
}

/// A strategy type that does nothing, to be offered beside the built-ins.
#[derive(Debug)]
struct Idle;

impl Strategy for Idle {
    fn update_params(&mut self, _params: &Value) -> Result<(), Vec<FieldError>> {
        Ok(())
    }
}

#[derive(Debug)]
struct IdleFactory;

impl StrategyFactory for IdleFactory {
    fn type_name(&self) -> &'static str {
        "idle"
    }

    fn description(&self) -> &'static str {
        "does nothing"
    }

    fn validate(
        &self,
        _params: &Value,
        _instruments: &[InstrumentId],
    ) -> Result<(), Vec<FieldError>> {
        Ok(())
    }

    fn create(&self, _config: &StrategyConfig) -> Result<Box<dyn Strategy>, Vec<FieldError>> {
        Ok(Box::new(Idle))
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ordermon-embedding-{name}-{}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn config(logs: &std::path::Path) -> Config {
    let mut c = Config::from_sources(
        None,
        [("ORDERMON_AUTH__JWT_SECRET".to_owned(), SECRET.to_owned())],
    )
    .unwrap();
    c.database.url = ServiceUrl::new("memory");
    c.demo.users = false;
    c.logs.dir = logs.join("logs");
    c.auth.bootstrap_admin = Some("root".to_owned());
    c.shutdown.timeout = Duration::from_secs(5);
    c
}

async fn call(
    base: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let body = body.map(|b| b.to_string());
    let r = client::send(
        method,
        &format!("{base}{path}"),
        Some(token),
        body.as_deref(),
        TIMEOUT,
    )
    .await
    .unwrap();
    (
        r.status,
        serde_json::from_str(&r.body).unwrap_or(Value::String(r.body)),
    )
}

async fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not happen within {TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_an_embedder_registers_is_what_runs() {
    ordermon_telemetry::test_subscriber();
    let dir = temp_dir("runs");
    let mut c = config(&dir);
    c.feed.provider = "desk-feed".to_owned();
    c.feed.poll.instruments = vec![InstrumentId::new(ACME).unwrap()];
    c.feed.poll.interval_ms = 50;
    c.alerting.evaluation_interval = Duration::from_millis(100);
    c.alerting.route.receiver = Some("desk".to_owned());
    c.alerting.route.group_wait = Some(Duration::from_millis(100));
    let feed = Arc::new(DeskFeed::default());
    let desk = recorder("desk");
    let app = AppBuilder::new()
        .clock(Arc::new(AheadClock))
        .market_data(feed.clone())
        .notifier(desk.clone())
        .strategy(IdleFactory)
        .build(c)
        .await
        .unwrap();
    let app = app
        .spawn(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
        .unwrap();
    let base = app.base_url();
    let admin = app
        .mint_token("root", Role::Admin, Duration::from_secs(600))
        .unwrap();

    // The registered provider, not the simulated walk, quotes ACME.
    let acme = InstrumentId::new(ACME).unwrap();
    let quotes = app.engine().instruments.quotes();
    let quote = eventually("a quote from the registered provider", || {
        quotes
            .latest(&acme)
            .filter(|q| q.bid.get() == Decimal::new(9_900, 2))
    })
    .await;
    assert_eq!(quote.ask.get(), Decimal::new(9_910, 2));
    assert!(feed.polls.load(Ordering::SeqCst) > 0);

    // The route naming the registered notifier delivers to it (the
    // watchdog fires from the start).
    let delivered = eventually("a notification to the registered receiver", || {
        desk.got.lock().first().cloned()
    })
    .await;
    assert_eq!(delivered.receiver, "desk");
    assert!(!delivered.alerts.is_empty());

    // The registered strategy type is offered beside the built-in ones.
    let (status, types) = call(&base, "GET", "/api/v1/strategies/types", &admin, None).await;
    assert_eq!(status, 200, "{types}");
    let names: Vec<&str> = types
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["type"].as_str())
        .collect();
    assert!(
        names.contains(&"idle") && names.contains(&"twap"),
        "{types}"
    );

    // The registered clock stamps what the application writes.
    let wall = Utc::now();
    let ahead = chrono::Duration::hours(AHEAD_HOURS - 1);
    let (status, report) = call(&base, "GET", "/status", &admin, None).await;
    assert_eq!(status, 200, "{report}");
    assert!(
        at(&report["started_at"]) > wall + ahead - chrono::Duration::minutes(5),
        "{report}"
    );
    assert_eq!(
        report["components"]["feed"]["provider"]["registered"], true,
        "{report}"
    );
    let (status, user) = call(
        &base,
        "POST",
        "/api/v1/users",
        &admin,
        Some(json!({"id": "emb", "name": "emb", "status": "active", "role": "trader"})),
    )
    .await;
    assert_eq!(status, 201, "{user}");
    let (status, strategy) = call(
        &base,
        "POST",
        "/api/v1/strategies?user_id=emb",
        &admin,
        Some(json!({"id": "idle-1", "type": "idle", "name": "idle", "instruments": [ACME], "params": {}})),
    )
    .await;
    assert_eq!(status, 201, "{strategy}");
    assert!(at(&strategy["created_at"]) > wall + ahead, "{strategy}");
    assert!(at(&user["created_at"]) > wall + ahead, "{user}");

    app.stop().await.unwrap();
    drop(std::fs::remove_dir_all(dir));
}

#[tokio::test]
async fn a_configuration_naming_what_was_not_registered_is_refused() {
    let dir = temp_dir("refused");
    let mut c = config(&dir);
    c.alerting.route.receiver = Some("desk".to_owned());

    let e = AppBuilder::new().build(c.clone()).await.unwrap_err();
    assert!(
        format!("{e:#}").contains("unknown receiver `desk`"),
        "{e:#}"
    );
    assert!(c.validate().is_err());
    let registered = AppBuilder::new().notifier(recorder("desk")).registered();
    assert_eq!(registered.receivers, ["desk"]);
    c.validate_with(&registered).unwrap();

    let e = AppBuilder::new()
        .notifier(recorder("desk"))
        .notifier(recorder("desk"))
        .build(c.clone())
        .await
        .unwrap_err();
    assert!(
        format!("{e:#}").contains("two notifiers are called `desk`"),
        "{e:#}"
    );

    let mut plain = config(&dir);
    plain.feed.provider = "desk-feed".to_owned();
    plain.feed.poll.instruments = vec![InstrumentId::new(ACME).unwrap()];
    let e = AppBuilder::new().build(plain.clone()).await.unwrap_err();
    assert!(format!("{e:#}").contains("feed.provider"), "{e:#}");
    plain
        .validate_with(&Registered {
            market_data: vec!["desk-feed".to_owned()],
            receivers: Vec::new(),
        })
        .unwrap();

    #[derive(Debug)]
    struct Simulated;
    #[async_trait]
    impl MarketDataProvider for Simulated {
        fn name(&self) -> &str {
            "simulated"
        }
        async fn quote(&self, _: &InstrumentId) -> Result<Quote, MarketDataError> {
            Err(MarketDataError::Unavailable("never".to_owned()))
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
    let e = AppBuilder::new()
        .market_data(Arc::new(Simulated))
        .build(config(&dir))
        .await
        .unwrap_err();
    assert!(
        format!("{e:#}").contains("may not be called `simulated`"),
        "{e:#}"
    );

    let mut external = config(&dir);
    external.engine.venue = ordermon_application::VenueMode::External;
    let e = AppBuilder::new()
        .venue(|_| anyhow::bail!("never built"))
        .build(external)
        .await
        .unwrap_err();
    assert!(
        format!("{e:#}").contains("engine.venue = \"external\""),
        "{e:#}"
    );

    // A venue that cannot be built fails the build, naming it.
    let e = AppBuilder::new()
        .venue(|_| anyhow::bail!("the gateway refused the login"))
        .build(config(&dir))
        .await
        .unwrap_err();
    assert!(
        format!("{e:#}").contains("the gateway refused the login"),
        "{e:#}"
    );

    // A file naming a registered receiver loads with the registered names.
    let file = dir.join("ordermon.toml");
    std::fs::write(&file, "[alerting.route]\nreceiver = \"desk\"\n").unwrap();
    assert!(Config::load(Some(&file)).is_err());
    let loaded = Config::load_with(Some(&file), &registered).unwrap();
    assert_eq!(loaded.alerting.route.receiver.as_deref(), Some("desk"));
    drop(std::fs::remove_dir_all(dir));
}
