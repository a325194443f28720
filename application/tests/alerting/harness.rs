//! An engine and the alerting service sharing one manual clock, a recording
//! notifier, and helpers to move time and read alerts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use ordermon_application::alerting::{
    AlertFilter, AlertingConfig, AlertingDeps, AlertingService, SystemFigures, SystemProbe,
};
use ordermon_application::committer::CommitConfig;
use ordermon_application::market::QuoteBook;
use ordermon_application::persistence::Persistence;
use ordermon_application::{Engine, EngineConfig, Scope, VenueMode};
use ordermon_domain::alert::{Alert, AlertState, Notification};
use ordermon_domain::ports::{Clock, ManualClock, Notifier, NotifyError};
use ordermon_memory::MemoryStore;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::common::{Harness, add_acme};

/// A notifier that records what it is given, and can be told to fail.
#[derive(Debug, Default)]
pub struct Recorder {
    pub name: String,
    pub got: Mutex<Vec<Notification>>,
    /// Fail the next n calls with a transient error.
    pub fail_next: Mutex<u32>,
}

#[async_trait]
impl Notifier for Recorder {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "recorder"
    }

    async fn notify(&self, batch: &[Notification]) -> Result<(), NotifyError> {
        {
            let mut f = self.fail_next.lock();
            if *f > 0 {
                *f -= 1;
                return Err(NotifyError::transient("receiver down"));
            }
        }
        self.got.lock().extend(batch.iter().cloned());
        Ok(())
    }
}

impl Recorder {
    pub fn rules(&self) -> Vec<(String, AlertState)> {
        self.got
            .lock()
            .iter()
            .flat_map(|n| n.alerts.iter().map(|a| (a.rule.to_string(), a.state)))
            .collect()
    }
}

pub struct World {
    pub h: Harness,
    pub clock: Arc<ManualClock>,
    pub quotes: Arc<QuoteBook>,
    pub alerting: Arc<AlertingService>,
    pub ops: Arc<Recorder>,
    pub pager: Arc<Recorder>,
    pub cancel: CancellationToken,
    pub alerting_cancel: CancellationToken,
    pub tracker: TaskTracker,
}

impl Drop for World {
    fn drop(&mut self) {
        self.alerting_cancel.cancel();
        self.cancel.cancel();
    }
}

/// The alerting configuration tests start from: receivers `ops` (default
/// route, fast timings) and `pager` (escalation), a quick evaluation.
pub fn config() -> AlertingConfig<()> {
    let mut c: AlertingConfig<()> = toml::from_str(
        r#"
        evaluation_interval = "50ms"
        [route]
        receiver = "ops"
        group_wait = "1s"
        group_interval = "10s"
        repeat_interval = "1h"
        [escalation]
        receiver = "pager"
        after = "5m"
        severities = ["critical"]
        [delivery]
        min_backoff = "1s"
        max_backoff = "4s"
        "#,
    )
    .unwrap();
    c.receivers.insert("ops".to_owned(), ());
    c.receivers.insert("pager".to_owned(), ());
    c
}

pub async fn world() -> World {
    world_with(config(), VenueMode::External).await
}

/// Instance figures a test sets.
#[derive(Debug, Default)]
pub struct FakeProbe(Mutex<SystemFigures>);

impl FakeProbe {
    pub fn set(&self, dead_letters: u64, outbox_pending: u64) {
        *self.0.lock() = SystemFigures {
            outbox_pending: Some(outbox_pending),
            dead_letters: Some(dead_letters),
            queued_commands: Some(0),
            ..SystemFigures::default()
        };
    }
}

#[async_trait]
impl SystemProbe for FakeProbe {
    async fn figures(&self) -> SystemFigures {
        *self.0.lock()
    }
}

pub async fn world_with_probe(probe: Arc<FakeProbe>) -> World {
    world_full(config(), VenueMode::External, Some(probe)).await
}

pub async fn world_with(config: AlertingConfig<()>, mode: VenueMode) -> World {
    world_full(config, mode, None).await
}

async fn world_full(
    config: AlertingConfig<()>,
    mode: VenueMode,
    probe: Option<Arc<FakeProbe>>,
) -> World {
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(),
    ));
    let store = Arc::new(MemoryStore::new());
    let quotes = Arc::new(QuoteBook::new(1024));
    let cancel = CancellationToken::new();
    let engine = Engine::start(
        Persistence::from_backend(store.clone()),
        quotes.clone(),
        clock.clone(),
        EngineConfig {
            venue_mode: mode,
            ..EngineConfig::default()
        },
        CommitConfig::default(),
        cancel.child_token(),
    )
    .await
    .unwrap();
    let h = Harness { engine, store };
    add_acme(&h).await;
    start_alerting_with(h, clock, quotes, cancel, &config, probe).await
}

/// A new alerting service over the same engine and store, as after a
/// restart (stop the old one first with [`World::stop_alerting`]).
pub async fn restart(w: &World) -> World {
    let h = Harness {
        engine: w.h.engine.clone(),
        store: w.h.store.clone(),
    };
    // The engine belongs to the first world; this one never cancels it.
    start_alerting(
        h,
        w.clock.clone(),
        w.quotes.clone(),
        CancellationToken::new(),
        &config(),
    )
    .await
}

async fn start_alerting(
    h: Harness,
    clock: Arc<ManualClock>,
    quotes: Arc<QuoteBook>,
    cancel: CancellationToken,
    config: &AlertingConfig<()>,
) -> World {
    start_alerting_with(h, clock, quotes, cancel, config, None).await
}

async fn start_alerting_with(
    h: Harness,
    clock: Arc<ManualClock>,
    quotes: Arc<QuoteBook>,
    cancel: CancellationToken,
    config: &AlertingConfig<()>,
    probe: Option<Arc<FakeProbe>>,
) -> World {
    let alerting_cancel = CancellationToken::new();
    let ops = Arc::new(Recorder {
        name: "ops".to_owned(),
        ..Recorder::default()
    });
    let pager = Arc::new(Recorder {
        name: "pager".to_owned(),
        ..Recorder::default()
    });
    let mut notifiers: HashMap<String, Arc<dyn Notifier>> = HashMap::new();
    notifiers.insert("ops".to_owned(), ops.clone());
    notifiers.insert("pager".to_owned(), pager.clone());
    let tracker = TaskTracker::new();
    let alerting = AlertingService::start(
        config,
        AlertingDeps {
            persistence: h.engine.persistence().clone(),
            committer: h.engine.committer(),
            events: h.engine.events.subscribe(),
            quotes: quotes.clone(),
            catalog: h.engine.instruments.catalog(),
            clock: clock.clone(),
            notifiers,
            probe: probe.map(|p| p as Arc<dyn SystemProbe>),
            instance: "test".to_owned(),
            global_state: h.engine.status().trading_state,
        },
        &tracker,
        alerting_cancel.clone(),
    )
    .await
    .unwrap();
    let w = World {
        h,
        clock,
        quotes,
        alerting,
        ops,
        pager,
        cancel,
        alerting_cancel,
        tracker,
    };
    w.ready().await;
    w
}

impl World {
    /// Stops the alerting service (it stores what it decided first).
    pub async fn stop_alerting(&self) {
        self.alerting_cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// Waits until the service has read the store.
    pub async fn ready(&self) {
        for _ in 0..200 {
            if self.alerting.status().ready {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("alerting never got ready");
    }

    /// Moves the clock and evaluates every rule.
    pub async fn advance(&self, secs: i64) {
        self.clock.advance(chrono::Duration::seconds(secs));
        self.alerting.evaluate_now().await;
    }

    /// Moves the clock in steps of at most 10 s (one sample per bucket).
    pub async fn run_for(&self, secs: i64) {
        let mut left = secs;
        while left > 0 {
            let step = left.min(10);
            self.advance(step).await;
            left -= step;
        }
    }

    /// Every alert, newest first.
    pub async fn alerts(&self) -> Vec<Alert> {
        self.alerting
            .list_alerts(
                &Scope::All,
                AlertFilter {
                    limit: Some(500),
                    ..AlertFilter::default()
                },
            )
            .await
            .unwrap()
            .items
    }

    /// The unresolved alerts of a rule.
    pub async fn active(&self, rule: &str) -> Vec<Alert> {
        self.alerts()
            .await
            .into_iter()
            .filter(|a| a.rule.as_str() == rule && a.state != AlertState::Resolved)
            .collect()
    }

    /// The alerts of a rule in any state.
    pub async fn of_rule(&self, rule: &str) -> Vec<Alert> {
        self.alerts()
            .await
            .into_iter()
            .filter(|a| a.rule.as_str() == rule)
            .collect()
    }

    /// Waits (real time) until the recorder got `n` notifications.
    pub async fn delivered(&self, r: &Recorder, n: usize) -> Vec<Notification> {
        for _ in 0..300 {
            {
                let got = r.got.lock();
                if got.len() >= n {
                    return got.clone();
                }
            }
            self.alerting.wake_delivery();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{} got {:?}", r.name, r.rules());
    }

    /// Waits (real time) until a notification about `rule` arrived at `r`;
    /// returns it.
    pub async fn notified(&self, r: &Recorder, rule: &str) -> Notification {
        for _ in 0..300 {
            if let Some(n) = r
                .got
                .lock()
                .iter()
                .find(|n| n.alerts.iter().any(|a| a.rule.as_str() == rule))
            {
                return n.clone();
            }
            self.alerting.wake_delivery();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{} never got {rule}: {:?}", r.name, r.rules());
    }

    pub fn now(&self) -> chrono::DateTime<Utc> {
        self.clock.now()
    }
}
