//! The engine: the composition of owners, committer, catalog and quotes, and the
//! use cases the API calls.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ordermon_domain::Decimal;
use ordermon_domain::account::{Account, AccountType};
use ordermon_domain::event::{
    AccountEvent, AggregateType, DomainEvent, EventPayload, InstrumentEvent, SystemEvent, UserEvent,
};
use ordermon_domain::ids::{InstrumentId, OrderId, UserId};
use ordermon_domain::instrument::Instrument;
use ordermon_domain::market::Quote;
use ordermon_domain::order::{NewOrder, Order};
use ordermon_domain::ports::{
    ChangeSet, Clock, ExecutionReport, ExecutionReportSink, ExecutionVenue, FillQuery, OrderChange,
    OrderQuery, ReservationWrite, StateChange, StoredEvent,
};
use ordermon_domain::position::Position;
use ordermon_domain::risk::{RiskLimits, TradingState};
use ordermon_domain::user::{Role, User, UserStatus};
use ordermon_domain::values::Money;
use serde::Deserialize;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cache::ReadCache;
use crate::catalog::InstrumentCatalog;
use crate::committer::{CommitConfig, GroupCommitter};
use crate::error::AppError;
use crate::market::QuoteBook;
use crate::owner::{
    Command, Context, EngineConfig, MonitorConfig, MonitorCounters, Owners, Snapshot,
    StrategyPatch, SubmitOutcome, UserPatch,
};
use crate::persistence::Persistence;
use crate::strategy::StrategyRegistry;
use crate::trading_switch::GlobalSwitch;
use crate::validate::{check_new_order, same_request};
use crate::views::{self, PortfolioView, PositionView};

/// Who is asking: an admin sees everything, others only their own data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every user.
    All,
    /// One user.
    User(UserId),
}

impl Scope {
    /// True when the scope may see `user`'s data.
    #[must_use]
    pub fn covers(&self, user: &UserId) -> bool {
        match self {
            Self::All => true,
            Self::User(u) => u == user,
        }
    }

    /// The user to filter by, `None` for all.
    #[must_use]
    pub fn user(&self) -> Option<&UserId> {
        match self {
            Self::All => None,
            Self::User(u) => Some(u),
        }
    }
}

/// `POST /api/v1/users`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Id.
    pub id: UserId,
    /// Display name.
    pub name: String,
    /// Monitored or not (default active).
    #[serde(default)]
    pub status: UserStatus,
    /// Role (default trader).
    #[serde(default)]
    pub role: Role,
    /// Cash or margin (default cash).
    #[serde(default)]
    pub account_type: AccountType,
    /// Limits (default none).
    #[serde(default)]
    pub limits: RiskLimits,
}

/// Figures for `/status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EngineStatus {
    /// Owner tasks running.
    pub owners: usize,
    /// Commands queued in owners' mailboxes.
    pub queued_commands: usize,
    /// Global trading state.
    pub trading_state: TradingState,
    /// Instruments known.
    pub instruments: usize,
}

/// The running engine.
pub struct Engine {
    ctx: Arc<Context>,
    owners: Arc<Owners>,
    tracker: TaskTracker,
    cancel: CancellationToken,
    /// The owners run apart from the committer, so that on shutdown they can
    /// commit their last batches (monitor stops) before the committer goes.
    owner_tracker: TaskTracker,
    owner_cancel: CancellationToken,
    high_water: crate::high_water::HighWaterMarks,
    user_logs: std::sync::OnceLock<Arc<dyn ordermon_domain::ports::UserLogSink>>,
    /// Read-through cache, invalidated by the committer on every write.
    cache: Arc<ReadCache>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("owners", &self.owners)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Starts the engine: loads instruments and the global kill switch, starts
    /// the group committer. Set the venue with [`Engine::set_venue`] (paper mode).
    ///
    /// # Errors
    /// Store failures while loading.
    pub async fn start(
        persistence: Persistence,
        quotes: Arc<QuoteBook>,
        clock: Arc<dyn Clock>,
        config: EngineConfig,
        commit: CommitConfig,
        cancel: CancellationToken,
    ) -> Result<Arc<Self>, AppError> {
        Self::start_with_registry(
            persistence,
            quotes,
            clock,
            config,
            commit,
            cancel,
            StrategyRegistry::with_builtins(),
        )
        .await
    }

    /// Like [`Engine::start`], with a custom strategy registry.
    ///
    /// # Errors
    /// Store failures while loading.
    pub async fn start_with_registry(
        persistence: Persistence,
        quotes: Arc<QuoteBook>,
        clock: Arc<dyn Clock>,
        config: EngineConfig,
        commit: CommitConfig,
        cancel: CancellationToken,
        registry: StrategyRegistry,
    ) -> Result<Arc<Self>, AppError> {
        let cache = Arc::new(ReadCache::off());
        Self::start_with_cache(
            persistence,
            quotes,
            clock,
            config,
            commit,
            cancel,
            registry,
            cache,
        )
        .await
    }

    /// Like [`Engine::start_with_registry`], reading orders, account and
    /// portfolio state, users, strategies, instruments and shared quotes through
    /// `cache` (see [`crate::cache`]); the committer invalidates it on every write.
    ///
    /// # Errors
    /// Store failures while loading.
    #[allow(clippy::too_many_arguments)]
    pub async fn start_with_cache(
        persistence: Persistence,
        quotes: Arc<QuoteBook>,
        clock: Arc<dyn Clock>,
        config: EngineConfig,
        commit: CommitConfig,
        cancel: CancellationToken,
        registry: StrategyRegistry,
        cache: Arc<ReadCache>,
    ) -> Result<Arc<Self>, AppError> {
        let tracker = TaskTracker::new();
        let instruments = persistence.instruments.list_instruments().await?;
        let committer = GroupCommitter::spawn_with_cache(
            persistence.store.clone(),
            commit,
            &tracker,
            cancel.child_token(),
            cache.clone(),
        );
        let global = Arc::new(
            GlobalSwitch::load(persistence.events.clone(), committer.clone(), clock.clone())
                .await?,
        );
        cache.spawn_quote_mirror(quotes.clone(), &tracker, cancel.child_token());
        let config_lanes = config.monitor.lane_count();
        let loads = crate::state_loads::StateLoads::spawn(
            persistence.clone(),
            crate::state_loads::STATE_LOAD_WORKERS,
            crate::state_loads::MAX_STATE_BATCH,
        );
        let ctx = Arc::new(Context {
            persistence,
            loads,
            committer,
            venue: std::sync::OnceLock::new(),
            quotes,
            catalog: Arc::new(InstrumentCatalog::new(instruments)),
            clock,
            config,
            global,
            ownership: std::sync::OnceLock::new(),
            registry: Arc::new(registry),
            lanes: crate::owner::QuoteLanes::new(config_lanes),
            monitored: dashmap::DashSet::new(),
            counters: crate::owner::MonitorCounters::default(),
        });
        let high_water =
            crate::high_water::HighWaterMarks::new(ctx.persistence.clone(), ctx.committer.clone());
        let owner_tracker = TaskTracker::new();
        let owner_cancel = cancel.child_token();
        let owners = Owners::new(ctx.clone(), owner_tracker.clone(), owner_cancel.clone());
        Ok(Arc::new(Self {
            ctx,
            owners,
            tracker,
            cancel,
            owner_tracker,
            owner_cancel,
            high_water,
            user_logs: std::sync::OnceLock::new(),
            cache,
        }))
    }

    /// Where venues send their reports.
    #[must_use]
    pub fn report_sink(&self) -> Arc<dyn ExecutionReportSink> {
        self.owners.sink()
    }

    /// Sets where per-user log lines are kept (once; later calls are ignored).
    pub fn set_user_logs(&self, sink: Arc<dyn ordermon_domain::ports::UserLogSink>) {
        let _ = self.user_logs.set(sink);
    }

    /// One user's log lines of one day.
    ///
    /// # Errors
    /// Unavailable when no log sink is configured or it fails.
    pub async fn user_log(
        &self,
        user: &UserId,
        date: chrono::NaiveDate,
        from: u64,
        limit: usize,
    ) -> Result<ordermon_domain::ports::LogPage, AppError> {
        let sink =
            self.user_logs.get().cloned().ok_or_else(|| {
                AppError::Unavailable("per-user logs are not configured".to_owned())
            })?;
        let user = user.clone();
        // File reads stay off the async workers.
        tokio::task::spawn_blocking(move || sink.read_page(&user, date, from, limit))
            .await
            .map_err(|e| AppError::Unexpected(e.to_string()))?
            .map_err(|e| AppError::Unavailable(e.to_string()))
    }

    /// Sets the venue (once; later calls are ignored).
    pub fn set_venue(&self, venue: Arc<dyn ExecutionVenue>) {
        let _ = self.ctx.venue.set(venue);
    }

    /// The instrument catalog.
    #[must_use]
    pub fn catalog(&self) -> Arc<InstrumentCatalog> {
        self.ctx.catalog.clone()
    }

    /// The quote book.
    #[must_use]
    pub fn quotes(&self) -> Arc<QuoteBook> {
        self.ctx.quotes.clone()
    }

    /// Every event committed from now on (the live stream).
    #[must_use]
    pub fn subscribe_events(&self) -> tokio::sync::broadcast::Receiver<Arc<DomainEvent>> {
        self.ctx.committer.subscribe()
    }

    /// The group committer, for services that write through it beside the
    /// owners (alerting); their commits are on the same commit feed.
    #[must_use]
    pub fn committer(&self) -> GroupCommitter {
        self.ctx.committer.clone()
    }

    /// Shares users with other instances: from now on only users `ownership`
    /// owns have owners here, and their commits carry its fences. Set once,
    /// before serving.
    pub fn set_ownership(&self, ownership: Arc<crate::ownership::UserOwnership>) {
        if self.ctx.ownership.set(ownership).is_err() {
            tracing::warn!("ownership set twice; the first stays");
        }
    }

    /// Whether `user`'s owner may run here (always, unless users are shared
    /// and another instance owns this one).
    pub(crate) fn may_own(&self, user: &UserId) -> bool {
        self.ctx.ownership.get().is_none_or(|o| o.owns(user))
    }

    /// Ends `user`'s owner here once its queued commands ran.
    pub(crate) fn evict_owner(&self, user: &UserId) {
        self.owners.evict(user);
    }

    /// The global kill switch, shared by the instances on one database.
    #[must_use]
    pub fn global_switch(&self) -> &Arc<GlobalSwitch> {
        &self.ctx.global
    }

    /// The persistence ports.
    #[must_use]
    pub fn persistence(&self) -> &Persistence {
        &self.ctx.persistence
    }

    /// Resolves once the engine has begun shutting down (live streams close then).
    pub async fn stopping(&self) {
        // Cancelled by `shutdown` first, and with the engine's own token.
        self.owner_cancel.cancelled().await;
    }

    /// Stops owners and the committer and waits for them (bounded by the caller).
    pub async fn shutdown(&self) {
        // Owners first: each stops its monitor and commits what it holds,
        // through the committer, which is still running.
        self.owner_cancel.cancel();
        self.owner_tracker.close();
        self.owner_tracker.wait().await;
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// Figures for `/status`.
    #[must_use]
    pub fn status(&self) -> EngineStatus {
        EngineStatus {
            owners: self.owners.running(),
            queued_commands: self.owners.queued(),
            trading_state: self.ctx.global.state(),
            instruments: self.ctx.catalog.all().len(),
        }
    }

    async fn ask<T>(
        &self,
        user: &UserId,
        make: impl FnOnce(oneshot::Sender<Result<T, AppError>>) -> Command,
    ) -> Result<T, AppError> {
        let (tx, rx) = oneshot::channel();
        self.owners.send(user, make(tx)).await?;
        rx.await
            .map_err(|_| AppError::Unavailable("owner stopped".to_owned()))?
    }

    // ----- users and accounts -----

    /// Creates a user and opens the account.
    ///
    /// # Errors
    /// Conflict when the id exists.
    #[tracing::instrument(skip_all, fields(user_id = %req.id), err)]
    pub async fn create_user(&self, req: CreateUser) -> Result<User, AppError> {
        let (user, cs) = new_user(req, self.ctx.clock.now())?;
        let id = user.id.clone();
        match self.ctx.committer.commit(cs).await {
            Ok(_) => {
                // An owner that answered "not found" earlier must not linger.
                self.owners.forget_ended(&id);
                Ok(user)
            }
            Err(ordermon_domain::ports::StoreError::Conflict { .. })
            | Err(ordermon_domain::ports::StoreError::Duplicate { .. }) => {
                Err(AppError::Conflict {
                    code: "user_exists",
                    message: format!("user {id} already exists"),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// One user.
    ///
    /// # Errors
    /// NotFound.
    pub async fn get_user(&self, id: &UserId) -> Result<User, AppError> {
        let (users, key) = (self.ctx.persistence.users.clone(), id.clone());
        self.cache
            .user(id, || async move { Ok(users.get_user(&key).await?) })
            .await?
            .ok_or(AppError::NotFound("user"))
    }

    /// Users by id after a cursor.
    ///
    /// # Errors
    /// Store failures.
    pub async fn list_users(
        &self,
        after: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<User>, AppError> {
        Ok(self.ctx.persistence.users.list_users(after, limit).await?)
    }

    /// Changes a user's status, limits or kill switch.
    ///
    /// # Errors
    /// NotFound, or the store failing.
    #[tracing::instrument(skip_all, fields(user_id = %id), err)]
    pub async fn update_user(&self, id: &UserId, patch: UserPatch) -> Result<User, AppError> {
        self.ask(id, |reply| Command::UpdateUser {
            patch: Box::new(patch),
            reply,
        })
        .await
    }

    /// An audited deposit or withdrawal.
    ///
    /// # Errors
    /// NotFound; Conflict `insufficient_funds` for a withdrawal beyond free cash.
    #[tracing::instrument(skip_all, fields(user_id = %id), err)]
    pub async fn adjust_cash(
        &self,
        id: &UserId,
        amount: Money,
        reason: String,
    ) -> Result<Account, AppError> {
        if reason.trim().is_empty() || reason.len() > 500 {
            return Err(AppError::field("reason", "must be 1-500 characters"));
        }
        self.ask(id, |reply| Command::AdjustCash {
            amount: Box::new(amount),
            reason,
            reply,
        })
        .await
    }

    /// A consistent snapshot of a user's state from its owner.
    ///
    /// # Errors
    /// NotFound.
    pub async fn snapshot(&self, id: &UserId) -> Result<Snapshot, AppError> {
        self.ask(id, |reply| Command::Snapshot { reply }).await
    }

    /// Account and positions valued at the latest marks.
    ///
    /// # Errors
    /// NotFound.
    pub async fn portfolio(&self, id: &UserId) -> Result<PortfolioView, AppError> {
        // The owner's state is cached; the valuation uses the latest marks.
        let today = self.ctx.clock.now().date_naive();
        let snap = self.cache.snapshot(id, today, || self.snapshot(id)).await?;
        let mut view = views::portfolio(&snap, &self.ctx.quotes, Decimal::MIN);
        // The stored mark (shared by every instance, kept across restarts).
        self.high_water
            .observe(id, &mut view, self.ctx.clock.now())
            .await;
        Ok(view)
    }

    /// A user's positions (open and closed), valued.
    ///
    /// # Errors
    /// Store failures.
    pub async fn positions(&self, id: &UserId) -> Result<Vec<PositionView>, AppError> {
        let positions: Vec<Position> = self.ctx.persistence.positions.list_positions(id).await?;
        Ok(positions
            .iter()
            .map(|p| PositionView::of(p, &self.ctx.quotes))
            .collect())
    }

    // ----- instruments and market data -----

    /// Creates or replaces an instrument.
    ///
    /// # Errors
    /// Validation of the definition; store failures.
    pub async fn upsert_instrument(
        &self,
        mut instrument: Instrument,
    ) -> Result<Instrument, AppError> {
        instrument
            .validate()
            .map_err(|e| AppError::field("instrument", e))?;
        let current = self
            .ctx
            .persistence
            .instruments
            .get_instrument(&instrument.id)
            .await?;
        let expected = current.map_or(0, |i| i.version);
        instrument.version = expected + 1;
        let mut cs = ChangeSet::default();
        cs.changes.push(StateChange::Instrument {
            instrument: Box::new(instrument.clone()),
            expected,
        });
        cs.push_events([DomainEvent::new(
            instrument.id.to_string(),
            instrument.version,
            None,
            self.ctx.clock.now(),
            None,
            EventPayload::Instrument(InstrumentEvent::Upserted {
                instrument: Box::new(instrument.clone()),
            }),
        )])
        .map_err(|e| AppError::Unexpected(e.to_string()))?;
        self.ctx.committer.commit(cs).await?;
        self.ctx.catalog.put(instrument.clone());
        Ok(instrument)
    }

    /// The latest quote.
    ///
    /// # Errors
    /// NotFound when the instrument is unknown or has no quote yet.
    pub fn quote(&self, id: &InstrumentId) -> Result<Quote, AppError> {
        if self.ctx.catalog.get(id).is_none() {
            return Err(AppError::NotFound("instrument"));
        }
        self.ctx
            .quotes
            .latest(id)
            .ok_or(AppError::NotFound("quote"))
    }

    // ----- orders -----

    /// Submits an order (idempotent on the client order id).
    ///
    /// # Errors
    /// Validation (422), idempotency mismatch (409), NotFound user, Unavailable.
    #[tracing::instrument(skip_all, fields(user_id = %new.user_id, client_order_id = %new.client_order_id), err(level = "debug"))]
    pub async fn submit(&self, new: NewOrder) -> Result<SubmitOutcome, AppError> {
        self.precheck(&new).await?;
        if let Some(existing) = self
            .ctx
            .persistence
            .orders
            .get_order_by_client_id(&new.user_id, new.client_order_id.as_str())
            .await?
        {
            return replay(existing, &new);
        }
        let user = new.user_id.clone();
        self.ask(&user, |reply| Command::Submit {
            new: Box::new(new),
            reply,
        })
        .await
    }

    async fn precheck(&self, new: &NewOrder) -> Result<(), AppError> {
        let instrument = self
            .ctx
            .catalog
            .get(&new.instrument_id)
            .ok_or_else(|| AppError::field("instrument_id", "unknown instrument"))?;
        new.validate(self.ctx.clock.now())?;
        check_new_order(new, &instrument)
    }

    /// Submits several orders: `atomic` = all or none, otherwise per-item results.
    ///
    /// # Errors
    /// For atomic batches, a validation error listing the failing items.
    pub async fn submit_batch(
        &self,
        user: &UserId,
        orders: Vec<NewOrder>,
        atomic: bool,
    ) -> Result<Vec<Result<SubmitOutcome, AppError>>, AppError> {
        if orders.is_empty() || orders.len() > 500 {
            return Err(AppError::field("orders", "must hold 1-500 orders"));
        }
        let mut checked = Vec::with_capacity(orders.len());
        let mut early: Vec<Option<Result<SubmitOutcome, AppError>>> =
            Vec::with_capacity(orders.len());
        let mut errors = Vec::new();
        for (i, new) in orders.into_iter().enumerate() {
            if &new.user_id != user {
                return Err(AppError::Forbidden);
            }
            match self.precheck(&new).await {
                Err(e) => {
                    // Name each failing field under its item (`orders[2].price`).
                    match &e {
                        AppError::Validation(inner) => {
                            errors.extend(inner.iter().map(|f| {
                                crate::error::FieldError::new(
                                    format!("orders[{i}].{}", f.field),
                                    &f.message,
                                )
                            }));
                        }
                        other => {
                            errors
                                .push(crate::error::FieldError::new(format!("orders[{i}]"), other));
                        }
                    }
                    early.push(Some(Err(e)));
                }
                Ok(()) => {
                    match self
                        .ctx
                        .persistence
                        .orders
                        .get_order_by_client_id(user, new.client_order_id.as_str())
                        .await?
                    {
                        Some(existing) => early.push(Some(replay(existing, &new))),
                        None => {
                            early.push(None);
                            checked.push(new);
                        }
                    }
                }
            }
        }
        if atomic && !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let mut results = if checked.is_empty() {
            Vec::new()
        } else {
            self.ask(user, |reply| Command::SubmitBatch {
                orders: checked,
                atomic,
                reply,
            })
            .await?
        }
        .into_iter();
        Ok(early
            .into_iter()
            .map(|e| match e {
                Some(r) => r,
                None => results.next().unwrap_or_else(|| {
                    Err(AppError::Unexpected("missing batch result".to_owned()))
                }),
            })
            .collect())
    }

    /// Modifies an open order.
    ///
    /// # Errors
    /// NotFound, Conflict (illegal transition, insufficient funds), Validation.
    pub async fn modify(
        &self,
        user: &UserId,
        id: OrderId,
        change: OrderChange,
    ) -> Result<Order, AppError> {
        self.ask(user, |reply| Command::Modify {
            order_id: id,
            change: Box::new(change),
            reply,
        })
        .await
    }

    /// Cancels an order.
    ///
    /// # Errors
    /// NotFound, Conflict (already terminal).
    pub async fn cancel(&self, user: &UserId, id: OrderId) -> Result<Order, AppError> {
        self.ask(user, |reply| Command::Cancel {
            order_id: id,
            reply,
        })
        .await
    }

    /// Cancels every open order of a user (optionally of one instrument).
    ///
    /// # Errors
    /// NotFound user.
    pub async fn cancel_all(
        &self,
        user: &UserId,
        instrument: Option<InstrumentId>,
    ) -> Result<Vec<Order>, AppError> {
        self.ask(user, |reply| Command::CancelAll { instrument, reply })
            .await
    }

    /// Applies an external execution report (gateway).
    ///
    /// # Errors
    /// NotFound, Conflict (illegal transition), Validation.
    pub async fn execution_report(&self, report: ExecutionReport) -> Result<Order, AppError> {
        let user = report.user_id.clone();
        self.ask(&user, |reply| Command::Report {
            report: Box::new(report),
            reply: Some(reply),
        })
        .await
    }

    /// One order, if the scope may see it.
    ///
    /// # Errors
    /// NotFound.
    pub async fn get_order(&self, scope: &Scope, id: OrderId) -> Result<Order, AppError> {
        let orders = self.ctx.persistence.orders.clone();
        self.cache
            .order(scope.user(), id, || async move {
                Ok(orders.get_order(id).await?)
            })
            .await?
            .filter(|o| scope.covers(&o.user_id))
            .ok_or(AppError::NotFound("order"))
    }

    /// One order by client id.
    ///
    /// # Errors
    /// NotFound.
    pub async fn get_order_by_client_id(
        &self,
        user: &UserId,
        cid: &str,
    ) -> Result<Order, AppError> {
        if cid.len() > 64 {
            // Longer than any client order id: nothing to look up (or cache).
            return Err(AppError::NotFound("order"));
        }
        let orders = self.ctx.persistence.orders.clone();
        let (owner, key) = (user.clone(), cid.to_owned());
        let id = self
            .cache
            .order_id_by_client_id(user, cid, || async move {
                Ok(orders
                    .get_order_by_client_id(&owner, &key)
                    .await?
                    .map(|o| o.id))
            })
            .await?
            .ok_or(AppError::NotFound("order"))?;
        self.get_order(&Scope::User(user.clone()), id).await
    }

    /// A page of orders.
    ///
    /// # Errors
    /// Store failures.
    pub async fn list_orders(&self, query: &OrderQuery) -> Result<Vec<Order>, AppError> {
        Ok(self.ctx.persistence.orders.list_orders(query).await?)
    }

    /// An order's full event history.
    ///
    /// # Errors
    /// NotFound.
    pub async fn order_events(
        &self,
        scope: &Scope,
        id: OrderId,
    ) -> Result<Vec<StoredEvent>, AppError> {
        self.get_order(scope, id).await?;
        Ok(self
            .ctx
            .persistence
            .events
            .aggregate_events(AggregateType::Order, &id.to_string())
            .await?)
    }

    /// A page of fills with their cursors.
    ///
    /// # Errors
    /// Store failures.
    pub async fn list_fills(
        &self,
        query: &FillQuery,
    ) -> Result<Vec<(i64, ordermon_domain::fill::Fill)>, AppError> {
        Ok(self.ctx.persistence.fills.list_fills(query).await?)
    }

    /// The event feed after a position.
    ///
    /// # Errors
    /// Store failures.
    pub async fn events_after(
        &self,
        scope: &Scope,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, AppError> {
        Ok(self
            .ctx
            .persistence
            .events
            .events_after(after, scope.user(), limit)
            .await?)
    }

    /// The kill switch: halt, reduce-only or resume, for one user or everyone.
    ///
    /// # Errors
    /// NotFound user; store failures.
    pub async fn kill_switch(
        &self,
        user: Option<&UserId>,
        state: TradingState,
        reason: String,
        actor: String,
    ) -> Result<TradingState, AppError> {
        if let Some(user) = user {
            let patch = UserPatch {
                trading_state: Some(state),
                reason: Some(format!("{reason} (by {actor})")),
                ..UserPatch::default()
            };
            return self.update_user(user, patch).await.map(|u| u.trading_state);
        }
        self.ctx.global.engage(state, reason, actor).await
    }
}

/// Events about the instance itself.
impl Engine {
    /// Records in the event log that a supporting component of `instance`
    /// (`cache`, `bus`) stopped working (`Some(reason)`) or works again
    /// (`None`). Each instance's component history is its own aggregate
    /// (`component/{instance}/{component}`), so instances never contend.
    ///
    /// # Errors
    /// Store failures.
    pub async fn record_component_health(
        &self,
        instance: &str,
        component: &str,
        problem: Option<String>,
    ) -> Result<(), AppError> {
        let aggregate = format!("component/{instance}/{component}");
        let last = self
            .ctx
            .persistence
            .events
            .aggregate_events(AggregateType::System, &aggregate)
            .await?
            .last()
            .map_or(0, |e| e.event.sequence);
        let payload = match problem {
            Some(reason) => {
                tracing::warn!(component, %reason, "component degraded");
                SystemEvent::ComponentDegraded {
                    component: component.to_owned(),
                    instance: instance.to_owned(),
                    reason,
                }
            }
            None => {
                tracing::info!(component, "component recovered");
                SystemEvent::ComponentRecovered {
                    component: component.to_owned(),
                    instance: instance.to_owned(),
                }
            }
        };
        let mut cs = ChangeSet::default();
        cs.push_events([DomainEvent::new(
            aggregate,
            last + 1,
            None,
            self.ctx.clock.now(),
            None,
            EventPayload::System(payload),
        )])
        .map_err(|e| AppError::Unexpected(e.to_string()))?;
        self.ctx.committer.commit(cs).await?;
        Ok(())
    }
}

/// Monitoring plumbing used by the monitoring engine.
impl Engine {
    pub(crate) fn tracker(&self) -> TaskTracker {
        self.tracker.clone()
    }

    pub(crate) fn monitor_config(&self) -> &MonitorConfig {
        &self.ctx.config.monitor
    }

    pub(crate) fn monitor_counters(&self) -> &MonitorCounters {
        &self.ctx.counters
    }

    /// Monitors running now.
    #[must_use]
    pub fn monitored_users(&self) -> usize {
        self.ctx.monitored.len()
    }

    pub(crate) fn monitored_list(&self) -> Vec<UserId> {
        self.ctx.monitored.iter().map(|u| u.clone()).collect()
    }

    /// True when the user's monitor runs.
    #[must_use]
    pub fn is_monitored(&self, user: &UserId) -> bool {
        self.ctx.monitored.contains(user)
    }

    /// Strategies running in monitors now.
    #[must_use]
    pub fn running_strategies(&self) -> u64 {
        self.ctx
            .counters
            .strategies
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn quote_subscriptions(&self) -> usize {
        self.ctx.lanes.subscriptions()
    }

    pub(crate) async fn start_monitor(&self, user: &UserId) {
        let _ = self.owners.send(user, Command::StartMonitor).await;
    }

    pub(crate) async fn stop_monitor(&self, user: &UserId, status: UserStatus, reason: &str) {
        let _ = self
            .owners
            .send(
                user,
                Command::StopMonitor {
                    status,
                    reason: reason.to_owned(),
                },
            )
            .await;
    }

    pub(crate) async fn sync_strategies(
        &self,
        user: &UserId,
        strategies: Vec<ordermon_domain::strategy::Strategy>,
    ) {
        let _ = self
            .owners
            .send(user, Command::SyncStrategies { strategies })
            .await;
    }

    /// Starts the quote lanes (see `owner::lanes`).
    pub(crate) fn spawn_lanes(&self, cancel: &CancellationToken) {
        for lane in 0..self.ctx.lanes.len() {
            self.tracker.spawn(crate::owner::lanes::run_lane(
                self.ctx.clone(),
                lane,
                cancel.clone(),
            ));
        }
    }

    /// Quotes the lanes missed because they fell behind the quote book.
    pub(crate) fn lagged_quotes(&self) -> u64 {
        self.ctx.lanes.lagged()
    }

    /// Number of quote lanes.
    pub(crate) fn lane_count(&self) -> usize {
        self.ctx.lanes.len()
    }

    pub(crate) fn tick_users(&self, users: &[UserId]) {
        for user in users {
            // A full mailbox skips this tick; the next one comes.
            let _ = self.owners.try_send(user, Command::Tick);
        }
    }
}

/// Strategy configuration use cases (each goes through the user's owner, so it
/// takes effect in the user's monitor at once).
impl Engine {
    /// The strategy registry.
    #[must_use]
    pub fn registry(&self) -> &StrategyRegistry {
        &self.ctx.registry
    }

    /// Creates a strategy (params validated by its type; bad params → 422, nothing saved).
    ///
    /// # Errors
    /// Validation, Conflict when the id exists, NotFound user.
    pub async fn create_strategy(
        &self,
        strategy: ordermon_domain::strategy::Strategy,
    ) -> Result<ordermon_domain::strategy::Strategy, AppError> {
        let user = strategy.user_id.clone();
        self.ask(&user, |reply| Command::CreateStrategy {
            strategy: Box::new(strategy),
            reply,
        })
        .await
    }

    /// Changes a strategy's name, params, instruments or status.
    ///
    /// # Errors
    /// NotFound, Validation.
    pub async fn update_strategy(
        &self,
        user: &UserId,
        id: &ordermon_domain::ids::StrategyId,
        patch: StrategyPatch,
    ) -> Result<ordermon_domain::strategy::Strategy, AppError> {
        let id = id.clone();
        self.ask(user, |reply| Command::UpdateStrategy {
            id,
            patch: Box::new(patch),
            reply,
        })
        .await
    }

    /// Deletes a strategy (stopping it first).
    ///
    /// # Errors
    /// NotFound.
    pub async fn delete_strategy(
        &self,
        user: &UserId,
        id: &ordermon_domain::ids::StrategyId,
    ) -> Result<(), AppError> {
        let id = id.clone();
        self.ask(user, |reply| Command::DeleteStrategy { id, reply })
            .await
    }

    /// A user's strategies, with their live stats.
    ///
    /// # Errors
    /// NotFound user.
    pub async fn list_strategies(
        &self,
        user: &UserId,
    ) -> Result<Vec<ordermon_domain::strategy::Strategy>, AppError> {
        self.ask(user, |reply| Command::ListStrategies { reply })
            .await
    }

    /// One of `user`'s strategies, with its live stats (strategy ids are
    /// unique per user: another user's strategy of the same id is not seen).
    ///
    /// # Errors
    /// NotFound.
    pub async fn get_strategy(
        &self,
        user: &UserId,
        id: &ordermon_domain::ids::StrategyId,
    ) -> Result<ordermon_domain::strategy::Strategy, AppError> {
        let (strategies, owner, key) = (
            self.ctx.persistence.strategies.clone(),
            user.clone(),
            id.clone(),
        );
        let stored = self
            .cache
            .strategy(user, id, || async move {
                Ok(strategies.get_strategy(&owner, &key).await?)
            })
            .await?
            .filter(|s| &s.user_id == user)
            .ok_or(AppError::NotFound("strategy"))?;
        // The owner holds the live stats.
        Ok(self
            .list_strategies(&stored.user_id)
            .await?
            .into_iter()
            .find(|s| &s.id == id)
            .unwrap_or(stored))
    }
}

fn replay(existing: Order, new: &NewOrder) -> Result<SubmitOutcome, AppError> {
    if same_request(&existing, new) {
        Ok(SubmitOutcome {
            order: existing,
            created: false,
        })
    } else {
        Err(AppError::Conflict {
            code: "idempotency_mismatch",
            message: format!(
                "client_order_id {} was already used with a different body",
                new.client_order_id
            ),
        })
    }
}

/// The cache, and the reads that only make sense with one.
impl Engine {
    /// The read-through cache.
    #[must_use]
    pub fn cache(&self) -> &Arc<ReadCache> {
        &self.cache
    }

    /// One instrument, as the store has it now (through the cache, so an
    /// instrument created or changed on another instance is seen too; the local
    /// catalog learns it). Without a cache, the local catalog.
    ///
    /// # Errors
    /// NotFound; store failures.
    pub async fn instrument(&self, id: &InstrumentId) -> Result<Arc<Instrument>, AppError> {
        let known = self.ctx.catalog.get(id);
        if !self.cache.is_on() {
            return known.ok_or(AppError::NotFound("instrument"));
        }
        let (repo, key) = (self.ctx.persistence.instruments.clone(), id.clone());
        let stored = self
            .cache
            .instrument(id, || async move { Ok(repo.get_instrument(&key).await?) })
            .await?;
        match (stored, known) {
            (Some(s), Some(k)) if k.version >= s.version => Ok(k),
            (Some(s), _) => {
                self.ctx.catalog.put(s.clone());
                Ok(Arc::new(s))
            }
            (None, Some(k)) => Ok(k),
            (None, None) => Err(AppError::NotFound("instrument")),
        }
    }

    /// The latest quote: this instance's book, else the one another instance
    /// shared through the cache (at most `quote` TTL old).
    ///
    /// # Errors
    /// NotFound when the instrument is unknown or nobody has a quote for it.
    pub async fn latest_quote(&self, id: &InstrumentId) -> Result<Quote, AppError> {
        let local = self.quote(id);
        if local.is_ok() || !self.cache.is_shared() {
            return local;
        }
        match self.cache.quote(id).await {
            Some(q) => Ok(q),
            None => local,
        }
    }
}

/// A new user, its empty account and their `created`/`opened` events, as the
/// change set that stores them (the engine commits it; so does
/// `monitor-server token --create` against a database the server is not
/// running on).
///
/// # Errors
/// A name that is empty or longer than 200 characters.
pub fn new_user(req: CreateUser, now: DateTime<Utc>) -> Result<(User, ChangeSet), AppError> {
    if req.name.trim().is_empty() || req.name.chars().count() > 200 {
        return Err(AppError::field("name", "must be 1-200 characters"));
    }
    let user = User {
        id: req.id.clone(),
        name: req.name,
        status: req.status,
        role: req.role,
        account_type: req.account_type,
        limits: req.limits,
        trading_state: TradingState::Active,
        created_at: now,
        updated_at: now,
        version: 1,
        sequence: 1,
        tokens_valid_after: None,
    };
    let mut account = Account::new(req.id.clone(), req.account_type);
    account.version = 1;
    account.sequence = 1;
    let mut cs = ChangeSet::default();
    cs.changes.push(StateChange::User {
        user: Box::new(user.clone()),
        expected: 0,
    });
    cs.changes.push(StateChange::Account {
        account: Box::new(account),
        expected: 0,
        reservations: ReservationWrite::All,
    });
    let events = [
        DomainEvent::new(
            req.id.to_string(),
            1,
            Some(req.id.clone()),
            now,
            None,
            EventPayload::User(UserEvent::Created {
                user: Box::new(user.clone()),
            }),
        ),
        DomainEvent::new(
            req.id.to_string(),
            1,
            Some(req.id.clone()),
            now,
            None,
            EventPayload::Account(AccountEvent::Opened {
                account_type: req.account_type,
            }),
        ),
    ];
    cs.push_events(events)
        .map_err(|e| AppError::Unexpected(e.to_string()))?;
    Ok((user, cs))
}

/// Ownership (several instances sharing users) starts and stops this
/// instance's owners and monitors through this.
#[async_trait::async_trait]
impl crate::ownership::OwnedUsers for Engine {
    async fn start_monitor(&self, user: &UserId) {
        Engine::start_monitor(self, user).await;
    }

    async fn stop_monitor(&self, user: &UserId, reason: &str) {
        if self.is_monitored(user) {
            let status = self
                .get_user(user)
                .await
                .map_or(UserStatus::Active, |u| u.status);
            Engine::stop_monitor(self, user, status, reason).await;
        }
    }

    fn evict_owner(&self, user: &UserId) {
        Engine::evict_owner(self, user);
    }

    async fn user_statuses(
        &self,
    ) -> Result<Vec<(UserId, UserStatus)>, ordermon_domain::ports::StoreError> {
        self.persistence().users.user_statuses().await
    }
}
