//! The alerting service: what the API and the composition root use. Reads go
//! to the store; changes to alerts go through the worker (the only writer of
//! alerts), silences and overrides are stored here and then handed to it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use ordermon_domain::Decimal;
use ordermon_domain::alert::matcher::{Matcher, all_match};
use ordermon_domain::alert::{Alert, AlertState, NewSilence, RuleOverride, Severity, Silence};
use ordermon_domain::event::DomainEvent;
use ordermon_domain::ids::{AlertId, RuleName, SilenceId, UserId};
use ordermon_domain::ports::{
    AlertQuery, ChangeSet, Clock, Notifier, Page, SilenceQuery, StateChange,
};
use ordermon_domain::risk::TradingState;
use serde::Serialize;
use tokio::sync::{Notify, broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::SystemProbe;
use super::book::{AlertBook, BookError};
use super::config::AlertingConfig;
use super::deliver::{Deliverer, DeliveryStats};
use super::dispatch::Dispatcher;
use super::eval::RuleSet;
use super::observed::Observed;
use super::route::RouteTree;
use super::rule::Rule;
use super::sampled::Sampled;
use super::status::{AlertingStatus, StatusCells};
use super::worker::{Command, Env, Inputs, Worker, WorkerSettings};
use crate::catalog::InstrumentCatalog;
use crate::committer::GroupCommitter;
use crate::engine::Scope;
use crate::error::AppError;
use crate::market::QuoteBook;
use crate::persistence::Persistence;

/// Longest page of a listing.
pub const MAX_PAGE: u32 = 500;

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

/// Filters of `GET /api/v1/alerts`.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    /// States (empty = any).
    pub states: Vec<AlertState>,
    /// Severities (empty = any).
    pub severities: Vec<Severity>,
    /// One rule.
    pub rule: Option<RuleName>,
    /// Label matchers, all of which must match.
    pub labels: Vec<Matcher>,
    /// Admins: one user's alerts.
    pub user: Option<UserId>,
    /// Alerts older than this one.
    pub cursor: Option<AlertId>,
    /// Page size (1–500, default 100).
    pub limit: Option<u32>,
}

/// What may change in a user's override of a rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OverridePatch {
    /// On or off for the user.
    pub enabled: Option<bool>,
    /// Threshold.
    pub threshold: Option<Decimal>,
    /// `for` duration.
    pub for_duration: Option<std::time::Duration>,
    /// Severity.
    pub severity: Option<Severity>,
}

/// A rule as listed by `GET /api/v1/alert-rules`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleView {
    /// Name.
    pub name: String,
    /// Built in or configured.
    pub builtin: bool,
    /// On or off (for this user, when one is asked about).
    pub enabled: bool,
    /// Signal.
    pub signal: String,
    /// What the signal means.
    pub signal_description: String,
    /// Scope of its series.
    pub scope: String,
    /// Window (windowed signals), e.g. `1m`.
    pub window: Option<String>,
    /// The condition, e.g. `>= 0.5`.
    pub condition: String,
    /// Threshold, when it has one.
    pub threshold: Option<String>,
    /// `for` duration.
    #[serde(rename = "for")]
    pub for_duration: String,
    /// Severity.
    pub severity: Severity,
    /// Extra labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Annotation templates.
    pub annotations: std::collections::BTreeMap<String, String>,
    /// The user's override applied, if any.
    pub override_applied: Option<RuleOverride>,
}

impl RuleView {
    fn of(rule: &Rule, o: Option<&RuleOverride>) -> Self {
        let effective = o.map_or_else(|| rule.clone(), |o| rule.overridden(o));
        Self {
            name: effective.name.to_string(),
            builtin: effective.builtin,
            enabled: effective.enabled,
            signal: effective.signal.as_str().to_owned(),
            signal_description: effective.signal.describe().to_owned(),
            scope: effective.scope().as_str().to_owned(),
            window: effective
                .signal
                .windowed()
                .then(|| ordermon_domain::duration::format(effective.window)),
            condition: effective.condition.describe(),
            threshold: effective.condition.threshold().map(|t| t.to_string()),
            for_duration: ordermon_domain::duration::format(effective.for_duration),
            severity: effective.severity,
            labels: effective.labels.clone(),
            annotations: effective.annotations.clone(),
            override_applied: o.cloned(),
        }
    }
}

/// The running alerting service.
pub struct AlertingService {
    tx: mpsc::Sender<Command>,
    persistence: Persistence,
    committer: GroupCommitter,
    clock: Arc<dyn Clock>,
    rules: Vec<Arc<Rule>>,
    silence_max: chrono::Duration,
    receivers: Vec<String>,
    enabled: bool,
    status: Arc<StatusCells>,
    delivery: Arc<DeliveryStats>,
    wake_delivery: Arc<Notify>,
}

impl std::fmt::Debug for AlertingService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertingService")
            .field("rules", &self.rules.len())
            .field("receivers", &self.receivers)
            .finish_non_exhaustive()
    }
}

fn limit(l: Option<u32>) -> Result<u32, AppError> {
    match l {
        None => Ok(100),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(AppError::field("limit", "must be between 1 and 500")),
    }
}

fn visible(scope: &Scope, user: Option<&UserId>) -> bool {
    match (scope, user) {
        (Scope::All, _) => true,
        (Scope::User(me), Some(u)) => me == u,
        (Scope::User(_), None) => false,
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
                if a.state == AlertState::Firing && !active.contains(&a.fingerprint) {
                    if let Some(stored) = deps.persistence.alerts.get_alert(a.id).await? {
                        if stored.state == AlertState::Resolved {
                            dispatcher.observe(&stored, now);
                        }
                    }
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
                system: super::eval::SystemFigures::default(),
            },
            wake_delivery: wake_delivery.clone(),
            status: status.clone(),
            unsaved: Vec::new(),
            seeded: false,
            last_bucket: i64::MIN,
            last_sweep: None,
            deadlines: super::worker::Deadlines::default(),
        };
        let seeds = super::seed::spawn(deps.persistence.clone(), tracker, cancel.clone());
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

    async fn ask(&self, cmd: Command) -> Result<(), AppError> {
        self.tx
            .send(cmd)
            .await
            .map_err(|_| AppError::Unavailable("alerting is stopped".to_owned()))
    }

    /// A page of alerts the caller may see, newest first.
    ///
    /// # Errors
    /// A bad limit; store failures.
    pub async fn list_alerts(
        &self,
        scope: &Scope,
        f: AlertFilter,
    ) -> Result<Page<Alert>, AppError> {
        let limit = limit(f.limit)?;
        let user = match scope {
            Scope::All => f.user.clone(),
            Scope::User(me) => {
                if f.user.as_ref().is_some_and(|u| u != me) {
                    return Err(AppError::Forbidden);
                }
                Some(me.clone())
            }
        };
        let mut items = Vec::new();
        let mut before = f.cursor;
        let mut scanned = 0u32;
        // Labels are filtered here: read pages until the page is full, the
        // store is exhausted, or ten pages were scanned (the cursor then
        // resumes where the scan stopped).
        loop {
            let page = self
                .persistence
                .alerts
                .list_alerts(&AlertQuery {
                    user_id: user.clone(),
                    states: f.states.clone(),
                    severities: f.severities.clone(),
                    rule: f.rule.clone(),
                    before,
                    limit,
                })
                .await?;
            let exhausted = page.len() < limit as usize;
            for a in page {
                before = Some(a.id);
                scanned += 1;
                if visible(scope, a.user_id.as_ref()) && all_match(&f.labels, &a.labels) {
                    items.push(a);
                    if items.len() == limit as usize {
                        break;
                    }
                }
            }
            if exhausted && items.len() < limit as usize {
                return Ok(Page {
                    items,
                    next_cursor: None,
                });
            }
            if items.len() == limit as usize || scanned >= limit.saturating_mul(10) {
                return Ok(Page {
                    items,
                    next_cursor: before.map(|b| b.to_string()),
                });
            }
        }
    }

    /// One alert the caller may see.
    ///
    /// # Errors
    /// NotFound (unknown or not the caller's); store failures.
    pub async fn get_alert(&self, scope: &Scope, id: AlertId) -> Result<Alert, AppError> {
        match self.persistence.alerts.get_alert(id).await? {
            Some(a) if visible(scope, a.user_id.as_ref()) => Ok(a),
            _ => Err(AppError::NotFound("alert")),
        }
    }

    async fn change(
        &self,
        scope: &Scope,
        id: AlertId,
        by: &str,
        resolve: bool,
    ) -> Result<Alert, AppError> {
        let stored = self.get_alert(scope, id).await?;
        if stored.state == AlertState::Resolved {
            return Err(AppError::Conflict {
                code: "alert_resolved",
                message: "the alert is resolved".to_owned(),
            });
        }
        let (reply, rx) = oneshot::channel();
        let cmd = if resolve {
            Command::Resolve {
                id,
                by: by.to_owned(),
                reply,
            }
        } else {
            Command::Ack {
                id,
                by: by.to_owned(),
                reply,
            }
        };
        self.ask(cmd).await?;
        let outcome = rx
            .await
            .map_err(|_| AppError::Unavailable("alerting is stopped".to_owned()))?;
        let alert = match outcome {
            Ok(a) => a,
            Err(BookError::Alert(_)) => {
                return Err(AppError::Conflict {
                    code: "alert_resolved",
                    message: "the alert is resolved".to_owned(),
                });
            }
            Err(BookError::NotFound) => {
                // Resolved meanwhile, or not this instance's.
                return Err(AppError::Conflict {
                    code: "alert_not_active",
                    message: "the alert is not active on this instance".to_owned(),
                });
            }
        };
        self.sync().await;
        Ok(alert)
    }

    /// Acknowledges an alert: no more repeats, no escalation.
    ///
    /// # Errors
    /// NotFound; Conflict when it is resolved.
    pub async fn acknowledge(
        &self,
        scope: &Scope,
        id: AlertId,
        by: &str,
    ) -> Result<Alert, AppError> {
        self.change(scope, id, by, false).await
    }

    /// Resolves an alert by hand (it is not raised again until its condition
    /// has cleared once).
    ///
    /// # Errors
    /// NotFound; Conflict when it is resolved already.
    pub async fn resolve(&self, scope: &Scope, id: AlertId, by: &str) -> Result<Alert, AppError> {
        self.change(scope, id, by, true).await
    }

    /// Waits until the worker has evaluated and stored everything before this
    /// call (tests and the benchmark use it; the API after its changes).
    pub async fn sync(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Sync(reply)).await.is_ok() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), rx).await;
        }
    }

    /// Evaluates every rule now and waits until what follows is stored (tests
    /// with a manual clock and the benchmark drive time with it).
    pub async fn evaluate_now(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Evaluate(reply)).await.is_ok() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), rx).await;
        }
    }

    /// Records an execution report the engine refused (a disagreement with
    /// the venue); counted by the `reconciliation_mismatch` rule.
    pub fn report_mismatch(&self, user: UserId) {
        let at = self.clock.now();
        if self.tx.try_send(Command::Mismatch { user, at }).is_err() {
            tracing::warn!("alerting is busy; a reconciliation mismatch was not counted");
        }
    }

    /// Creates a silence. A trader's silence only ever covers their own alerts.
    ///
    /// # Errors
    /// Validation (matchers, window, size); store failures.
    pub async fn create_silence(
        &self,
        scope: &Scope,
        mut new: NewSilence,
    ) -> Result<Silence, AppError> {
        if let Scope::User(me) = scope {
            new.user_id = Some(me.clone());
        }
        let now = self.clock.now();
        let s = Silence::create(new, self.silence_max, now)
            .map_err(|e| AppError::field("silence", e))?;
        self.store_silence(&s, 0).await?;
        tracing::info!(silence = %s.id, by = %s.created_by, matchers = s.matchers.len(), "silence created");
        Ok(s)
    }

    async fn store_silence(&self, s: &Silence, expected: u64) -> Result<(), AppError> {
        let mut cs = ChangeSet::default();
        cs.changes.push(StateChange::Silence {
            silence: Box::new(s.clone()),
            expected,
        });
        self.committer.commit(cs).await?;
        if self.enabled {
            self.ask(Command::Silence(Box::new(s.clone()))).await?;
            self.sync().await;
        }
        Ok(())
    }

    /// One silence the caller may see.
    ///
    /// # Errors
    /// NotFound; store failures.
    pub async fn get_silence(&self, scope: &Scope, id: SilenceId) -> Result<Silence, AppError> {
        match self.persistence.silences.get_silence(id).await? {
            Some(s) if matches!(scope, Scope::All) || visible(scope, s.user_id.as_ref()) => Ok(s),
            _ => Err(AppError::NotFound("silence")),
        }
    }

    /// Silences the caller may see, newest first; expired ones only when asked.
    ///
    /// # Errors
    /// A bad limit; store failures.
    pub async fn list_silences(
        &self,
        scope: &Scope,
        include_expired: bool,
        cursor: Option<SilenceId>,
        page_size: Option<u32>,
    ) -> Result<Page<Silence>, AppError> {
        let limit = limit(page_size)?;
        let now = self.clock.now();
        let items = self
            .persistence
            .silences
            .list_silences(&SilenceQuery {
                user_id: scope.user().cloned(),
                ending_after: (!include_expired).then_some(now),
                before: cursor,
                limit,
            })
            .await?;
        let next_cursor = (items.len() == limit as usize)
            .then(|| items.last().map(|s| s.id.to_string()))
            .flatten();
        Ok(Page { items, next_cursor })
    }

    /// Expires a silence now.
    ///
    /// # Errors
    /// NotFound; Conflict when it has ended already; store failures.
    pub async fn expire_silence(
        &self,
        scope: &Scope,
        id: SilenceId,
        by: &str,
    ) -> Result<Silence, AppError> {
        let mut s = self.get_silence(scope, id).await?;
        if matches!(scope, Scope::User(_)) && s.user_id.is_none() {
            return Err(AppError::Forbidden);
        }
        let expected = s.version;
        if !s.expire(self.clock.now()) {
            return Err(AppError::Conflict {
                code: "silence_expired",
                message: "the silence has ended already".to_owned(),
            });
        }
        s.version += 1;
        self.store_silence(&s, expected).await?;
        tracing::info!(silence = %s.id, by, "silence expired");
        Ok(s)
    }

    /// Every rule, as it applies to `user` when given.
    ///
    /// # Errors
    /// Store failures.
    pub async fn rules(&self, user: Option<&UserId>) -> Result<Vec<RuleView>, AppError> {
        let overrides = match user {
            Some(u) => {
                self.persistence
                    .alert_rules
                    .list_rule_overrides(Some(u))
                    .await?
            }
            None => Vec::new(),
        };
        Ok(self
            .rules
            .iter()
            .map(|r| RuleView::of(r, overrides.iter().find(|o| o.rule == r.name)))
            .collect())
    }

    fn rule(&self, name: &RuleName) -> Result<&Arc<Rule>, AppError> {
        self.rules
            .iter()
            .find(|r| &r.name == name)
            .ok_or(AppError::NotFound("alert rule"))
    }

    /// Sets (or changes) a user's override of a rule.
    ///
    /// # Errors
    /// NotFound rule; Validation when the override does not fit the rule.
    pub async fn set_override(
        &self,
        rule: &RuleName,
        user: &UserId,
        patch: OverridePatch,
        by: &str,
    ) -> Result<RuleView, AppError> {
        let r = self.rule(rule)?.clone();
        if self.persistence.users.get_user(user).await?.is_none() {
            return Err(AppError::NotFound("user"));
        }
        let existing = self
            .persistence
            .alert_rules
            .get_rule_override(rule, user)
            .await?;
        let expected = existing.as_ref().map_or(0, |o| o.version);
        let mut o = existing.unwrap_or(RuleOverride {
            rule: rule.clone(),
            user_id: user.clone(),
            enabled: None,
            threshold: None,
            for_duration: None,
            severity: None,
            updated_by: String::new(),
            updated_at: self.clock.now(),
            version: 0,
        });
        if patch.enabled.is_some() {
            o.enabled = patch.enabled;
        }
        if patch.threshold.is_some() {
            o.threshold = patch.threshold;
        }
        if patch.for_duration.is_some() {
            o.for_duration = patch.for_duration;
        }
        if patch.severity.is_some() {
            o.severity = patch.severity;
        }
        r.check_override(&o)
            .map_err(|e| AppError::field(e.field.clone(), e.message))?;
        o.updated_by = by.to_owned();
        o.updated_at = self.clock.now();
        o.version = expected + 1;
        let mut cs = ChangeSet::default();
        cs.changes.push(StateChange::RuleOverride {
            rule_override: Box::new(o.clone()),
            expected,
        });
        self.committer.commit(cs).await?;
        self.reload_overrides().await?;
        tracing::info!(rule = %rule, user = %user, by, "alert rule override set");
        Ok(RuleView::of(&r, Some(&o)))
    }

    /// Removes a user's override of a rule.
    ///
    /// # Errors
    /// NotFound (rule or override); store failures.
    pub async fn delete_override(&self, rule: &RuleName, user: &UserId) -> Result<(), AppError> {
        self.rule(rule)?;
        let o = self
            .persistence
            .alert_rules
            .get_rule_override(rule, user)
            .await?
            .ok_or(AppError::NotFound("alert rule override"))?;
        let mut cs = ChangeSet::default();
        cs.changes.push(StateChange::DeleteRuleOverride {
            rule: rule.clone(),
            user_id: user.clone(),
            expected: o.version,
        });
        self.committer.commit(cs).await?;
        self.reload_overrides().await
    }

    async fn reload_overrides(&self) -> Result<(), AppError> {
        if !self.enabled {
            return Ok(());
        }
        let all = self
            .persistence
            .alert_rules
            .list_rule_overrides(None)
            .await?;
        self.ask(Command::Overrides(all)).await?;
        self.sync().await;
        Ok(())
    }

    /// Figures for `/status`.
    #[must_use]
    pub fn status(&self) -> AlertingStatus {
        let s = &self.status;
        let d = &self.delivery;
        AlertingStatus {
            enabled: self.enabled,
            rules: self.rules.len(),
            receivers: self.receivers.clone(),
            active_alerts: s.active.load(Ordering::Relaxed),
            events: s.events.load(Ordering::Relaxed),
            events_lagged: s.lagged.load(Ordering::Relaxed),
            evaluations: s.sweeps.load(Ordering::Relaxed),
            last_evaluation_ms: s.last_sweep_us.load(Ordering::Relaxed) as f64 / 1000.0,
            max_evaluation_ms: s.max_sweep_us.load(Ordering::Relaxed) as f64 / 1000.0,
            evaluation_seconds_total: s.busy_us.load(Ordering::Relaxed) as f64 / 1e6,
            sampled_series: s.sampled_series.load(Ordering::Relaxed),
            ready: s.seeded.load(Ordering::Relaxed),
            notifications_sent: d.sent.load(Ordering::Relaxed),
            notifications_retried: d.retried.load(Ordering::Relaxed),
            notifications_failed: d.failed.load(Ordering::Relaxed),
        }
    }

    /// Wakes the deliverer (a receiver is known to be back).
    pub fn wake_delivery(&self) {
        self.wake_delivery.notify_one();
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
