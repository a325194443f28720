//! Starting the service: the configuration is validated, what earlier runs
//! left (silences, overrides, unresolved alerts, what each notification group
//! was last told) is read back into the worker, and the worker, the
//! deliverer and the hourly purge of old notifications are spawned.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ordermon_domain::alert::{Alert, AlertState, Silence};
use ordermon_domain::event::DomainEvent;
use ordermon_domain::ports::{AlertQuery, Clock, Notifier, SilenceQuery};
use ordermon_domain::risk::TradingState;
use tokio::sync::{Notify, broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{AlertingService, MAX_PAGE};
use crate::alerting::SystemProbe;
use crate::alerting::book::AlertBook;
use crate::alerting::config::AlertingConfig;
use crate::alerting::deliver::{Deliverer, DeliveryStats};
use crate::alerting::dispatch::Dispatcher;
use crate::alerting::eval::RuleSet;
use crate::alerting::observed::Observed;
use crate::alerting::route::RouteTree;
use crate::alerting::rule::Rule;
use crate::alerting::sampled::Sampled;
use crate::alerting::status::StatusCells;
use crate::alerting::worker::{Env, Inputs, Worker, WorkerSettings};
use crate::catalog::InstrumentCatalog;
use crate::committer::GroupCommitter;
use crate::error::AppError;
use crate::market::QuoteBook;
use crate::persistence::Persistence;

/// What the service is built from.
pub struct AlertingDeps {
    /// The store's ports.
    pub persistence: Persistence,
    /// Writes (alerts with their events, notifications, silences, overrides).
    pub committer: GroupCommitter,
    /// Every event this instance commits.
    pub events: broadcast::Receiver<Arc<DomainEvent>>,
    /// Latest quotes (marks, market-data age).
    pub quotes: Arc<QuoteBook>,
    /// Instruments.
    pub catalog: Arc<InstrumentCatalog>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// One notifier per receiver, by receiver name: the configured ones and
    /// any an embedder registered (routes may name either).
    pub notifiers: HashMap<String, Arc<dyn Notifier>>,
    /// Figures of the instance (relay, dead letters, owners).
    pub probe: Option<Arc<dyn SystemProbe>>,
    /// This instance's name.
    pub instance: String,
    /// The global kill switch at start.
    pub global_state: TradingState,
}

impl std::fmt::Debug for AlertingDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertingDeps")
            .field("instance", &self.instance)
            .field("receivers", &self.notifiers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl AlertingService {
    /// Builds the service and starts its worker, deliverer and housekeeping
    /// under `tracker`; they stop when `cancel` fires.
    ///
    /// # Errors
    /// A configuration that does not validate (a bad rule, an unknown receiver).
    pub async fn start<R>(
        config: &AlertingConfig<R>,
        deps: AlertingDeps,
        tracker: &TaskTracker,
        cancel: CancellationToken,
    ) -> Result<Arc<Self>, AppError> {
        let bad = |e: &dyn std::fmt::Display| AppError::field("alerting", e);
        // Receivers: the configured ones and any notifier registered in code.
        let mut receivers: Vec<String> = config.receivers.keys().cloned().collect();
        let mut registered: Vec<&String> = deps
            .notifiers
            .keys()
            .filter(|n| !config.receivers.contains_key(*n))
            .collect();
        registered.sort();
        receivers.extend(registered.into_iter().cloned());
        let names: Vec<&str> = receivers.iter().map(String::as_str).collect();
        config.validate_with(&names).map_err(|e| bad(&e))?;
        let rules: Vec<Arc<Rule>> = config
            .rules()
            .map_err(|e| bad(&e))?
            .into_iter()
            .map(Arc::new)
            .collect();
        let tree = RouteTree::new(&config.route, &names).map_err(|e| bad(&e))?;
        let status = Arc::new(StatusCells::default());
        let delivery = Arc::new(DeliveryStats::default());
        let wake_delivery = Arc::new(Notify::new());
        let (tx, commands) = mpsc::channel(4096);
        let service = Arc::new(Self {
            tx,
            persistence: deps.persistence.clone(),
            committer: deps.committer.clone(),
            clock: deps.clock.clone(),
            rules: rules.clone(),
            silence_max: chrono::Duration::from_std(config.silence_max_duration)
                .unwrap_or(chrono::Duration::days(30)),
            receivers: receivers.clone(),
            enabled: config.enabled,
            status: status.clone(),
            delivery: delivery.clone(),
            wake_delivery: wake_delivery.clone(),
        });
        if !config.enabled {
            tracing::info!("alerting is off (alerting.enabled = false)");
            return Ok(service);
        }
        let now = deps.clock.now();
        // What earlier runs left: silences, overrides, unresolved alerts and
        // what each notification group was last told.
        let silences = service.active_silences(now).await?;
        let overrides = deps
            .persistence
            .alert_rules
            .list_rule_overrides(None)
            .await?;
        let unresolved = service.unresolved().await?;
        let latest = deps.persistence.notifications.latest_per_group().await?;
        let mut rule_set = RuleSet {
            rules: rules.clone(),
            per_user: HashMap::new(),
        };
        rule_set.set_overrides(&overrides);
        let mut dispatcher = Dispatcher::new(
            tree,
            config.max_alerts_per_notification,
            config.escalation.clone(),
        );
        dispatcher.restore(&latest);
        let mut book = AlertBook::default();
        let for_of = |a: &Alert| {
            rules
                .iter()
                .find(|r| r.name == a.rule)
                .and_then(|r| chrono::Duration::from_std(r.for_duration).ok())
                .unwrap_or_default()
        };
        let active: std::collections::HashSet<_> =
            unresolved.iter().map(|a| a.fingerprint).collect();
        for a in &unresolved {
            dispatcher.observe(a, now);
        }
        // Reported firing, resolved since: their groups report the resolution.
        for r in &latest {
            for a in &r.notification.alerts {
                if a.state == AlertState::Firing
                    && !active.contains(&a.fingerprint)
                    && let Some(stored) = deps.persistence.alerts.get_alert(a.id).await?
                    && stored.state == AlertState::Resolved
                {
                    dispatcher.observe(&stored, now);
                }
            }
        }
        dispatcher.forget_unrouted();
        book.restore(unresolved, for_of);
        let observed = Observed {
            global_state: deps.global_state,
            system_dirty: true,
            ..Observed::default()
        };
        tracing::info!(
            rules = rules.len(),
            receivers = receivers.len(),
            unresolved = book.len(),
            silences = silences.len(),
            overrides = overrides.len(),
            "alerting started"
        );
        let worker = Worker {
            rules: rule_set,
            observed,
            sampled: Sampled::default(),
            book,
            dispatcher,
            silences,
            inhibit: config.inhibit_rules.clone(),
            committer: deps.committer.clone(),
            clock: deps.clock.clone(),
            env: Env {
                quotes: deps.quotes.clone(),
                catalog: deps.catalog.clone(),
                instance: deps.instance.clone(),
                started_at: now,
                settings: WorkerSettings {
                    evaluation_interval: config.evaluation_interval,
                    venue_stuck_after: config.venue_stuck_after,
                    strategy_alert_hold: config.strategy_alert_hold,
                },
                system: crate::alerting::eval::SystemFigures::default(),
            },
            wake_delivery: wake_delivery.clone(),
            status: status.clone(),
            unsaved: Vec::new(),
            seeded: false,
            last_bucket: i64::MIN,
            last_sweep: None,
            deadlines: crate::alerting::worker::Deadlines::default(),
        };
        let seeds = crate::alerting::seed::spawn(deps.persistence.clone(), tracker, cancel.clone());
        let inputs = Inputs {
            events: deps.events,
            commands,
            seeds,
            probe: deps.probe,
        };
        tracker.spawn(worker.run(inputs, cancel.clone()));
        let deliverer = Deliverer::new(
            deps.persistence.notifications.clone(),
            deps.committer.clone(),
            deps.notifiers,
            config.delivery.clone(),
            deps.instance,
            deps.clock.clone(),
            wake_delivery,
            delivery,
        );
        tracker.spawn(deliverer.run(cancel.clone()));
        tracker.spawn(purge(
            deps.persistence.clone(),
            deps.clock,
            config.notification_retention,
            cancel,
        ));
        Ok(service)
    }

    async fn active_silences(&self, now: DateTime<Utc>) -> Result<Vec<Silence>, AppError> {
        let mut out = Vec::new();
        let mut before = None;
        loop {
            let page = self
                .persistence
                .silences
                .list_silences(&SilenceQuery {
                    user_id: None,
                    ending_after: Some(now),
                    before,
                    limit: MAX_PAGE,
                })
                .await?;
            let done = page.len() < MAX_PAGE as usize;
            before = page.last().map(|s| s.id);
            out.extend(page);
            if done {
                return Ok(out);
            }
        }
    }

    async fn unresolved(&self) -> Result<Vec<Alert>, AppError> {
        let mut out = Vec::new();
        let mut before = None;
        loop {
            let page = self
                .persistence
                .alerts
                .list_alerts(&AlertQuery {
                    states: vec![AlertState::Pending, AlertState::Firing],
                    before,
                    limit: MAX_PAGE,
                    ..AlertQuery::default()
                })
                .await?;
            let done = page.len() < MAX_PAGE as usize;
            before = page.last().map(|a| a.id);
            out.extend(page);
            if done {
                return Ok(out);
            }
        }
    }
}

/// Deletes old delivered notifications hourly.
async fn purge(
    persistence: Persistence,
    clock: Arc<dyn Clock>,
    retention: std::time::Duration,
    cancel: CancellationToken,
) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = every.tick() => {}
        }
        let cutoff = clock.now() - chrono::Duration::from_std(retention).unwrap_or_default();
        match persistence.notifications.purge_notifications(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "old notifications deleted"),
            Err(e) => tracing::warn!(error = %e, "notification retention failed"),
        }
    }
}
