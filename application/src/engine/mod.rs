//! The engine: the composition of owners, committer, catalog and quotes, and
//! one service per resource with the use cases the API calls (users,
//! accounts, orders, strategies, instruments, administration, the event
//! feed), each in a module of its own.

mod accounts;
mod admin;
mod events;
mod instruments;
mod orders;
mod strategies;
mod users;

pub use accounts::AccountService;
pub use admin::AdminService;
pub use events::EventService;
pub use instruments::InstrumentService;
pub use orders::OrderService;
pub use strategies::StrategyService;
pub use users::{CreateUser, UserService, new_user};

use std::sync::Arc;

use ordermon_domain::ids::UserId;
use ordermon_domain::ports::{Clock, ExecutionReportSink, ExecutionVenue};
use ordermon_domain::risk::TradingState;
use ordermon_domain::user::{User, UserStatus};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cache::ReadCache;
use crate::catalog::InstrumentCatalog;
use crate::committer::{CommitConfig, GroupCommitter};
use crate::error::AppError;
use crate::market::QuoteBook;
use crate::owner::{
    Command, Context, EngineConfig, MonitorConfig, MonitorCounters, Owners, UserPatch,
};
use crate::persistence::Persistence;
use crate::strategy::StrategyRegistry;
use crate::trading_switch::GlobalSwitch;

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

/// The running engine: the owners and what they run on, and one service
/// per resource over them. The engine itself starts and stops them and
/// wires the parts the composition root sets once (venue, user logs,
/// ownership).
pub struct Engine {
    /// Users: create, read, change, their log lines.
    pub users: UserService,
    /// Accounts: cash, snapshots, portfolio, positions.
    pub accounts: AccountService,
    /// Orders: submit, modify, cancel, reports, reads.
    pub orders: OrderService,
    /// Strategies: create, change, delete, read; the registry of types.
    pub strategies: StrategyService,
    /// Instruments and quotes.
    pub instruments: InstrumentService,
    /// The kill switches and the instance's component health.
    pub admin: AdminService,
    /// The event log as a feed.
    pub events: EventService,
    core: Core,
    tracker: TaskTracker,
    cancel: CancellationToken,
    /// The owners run apart from the committer, so that on shutdown they can
    /// commit their last batches (monitor stops) before the committer goes.
    owner_tracker: TaskTracker,
    owner_cancel: CancellationToken,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("owners", &self.core.owners)
            .finish_non_exhaustive()
    }
}

/// What every service shares: the context the owners run on, the owners
/// themselves and the read-through cache (invalidated by the committer on
/// every write).
#[derive(Clone, Debug)]
struct Core {
    ctx: Arc<Context>,
    owners: Arc<Owners>,
    cache: Arc<ReadCache>,
}

impl Core {
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

    /// Changes a user through its owner (the user service's `update`, and
    /// the kill switch of one user).
    async fn update_user(&self, id: &UserId, patch: UserPatch) -> Result<User, AppError> {
        self.ask(id, |reply| Command::UpdateUser {
            patch: Box::new(patch),
            reply,
        })
        .await
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
            monitored: crate::owner::MonitoredUsers::default(),
            counters: crate::owner::MonitorCounters::default(),
        });
        let high_water =
            crate::high_water::HighWaterMarks::new(ctx.persistence.clone(), ctx.committer.clone());
        let owner_tracker = TaskTracker::new();
        let owner_cancel = cancel.child_token();
        let owners = Owners::new(ctx.clone(), owner_tracker.clone(), owner_cancel.clone());
        let core = Core { ctx, owners, cache };
        Ok(Arc::new(Self {
            users: UserService {
                core: core.clone(),
                logs: Arc::new(std::sync::OnceLock::new()),
            },
            accounts: AccountService {
                core: core.clone(),
                high_water: Arc::new(high_water),
            },
            orders: OrderService { core: core.clone() },
            strategies: StrategyService { core: core.clone() },
            instruments: InstrumentService { core: core.clone() },
            admin: AdminService { core: core.clone() },
            events: EventService { core: core.clone() },
            core,
            tracker,
            cancel,
            owner_tracker,
            owner_cancel,
        }))
    }

    /// Where venues send their reports.
    #[must_use]
    pub fn report_sink(&self) -> Arc<dyn ExecutionReportSink> {
        self.core.owners.sink()
    }

    /// Sets where per-user log lines are kept (once; later calls are ignored).
    pub fn set_user_logs(&self, sink: Arc<dyn ordermon_domain::ports::UserLogSink>) {
        let _ = self.users.logs.set(sink);
    }

    /// Sets the venue (once; later calls are ignored).
    pub fn set_venue(&self, venue: Arc<dyn ExecutionVenue>) {
        let _ = self.core.ctx.venue.set(venue);
    }

    /// The group committer, for services that write through it beside the
    /// owners (alerting); their commits are on the same commit feed.
    #[must_use]
    pub fn committer(&self) -> GroupCommitter {
        self.core.ctx.committer.clone()
    }

    /// Shares users with other instances: from now on only users `ownership`
    /// owns have owners here, and their commits carry its fences. Set once,
    /// before serving.
    pub fn set_ownership(&self, ownership: Arc<crate::ownership::UserOwnership>) {
        if self.core.ctx.ownership.set(ownership).is_err() {
            tracing::warn!("ownership set twice; the first stays");
        }
    }

    /// Whether `user`'s owner may run here (always, unless users are shared
    /// and another instance owns this one).
    pub(crate) fn may_own(&self, user: &UserId) -> bool {
        self.core.ctx.ownership.get().is_none_or(|o| o.owns(user))
    }

    /// Ends `user`'s owner here once its queued commands ran.
    pub(crate) fn evict_owner(&self, user: &UserId) {
        self.core.owners.evict(user);
    }

    /// The persistence ports.
    #[must_use]
    pub fn persistence(&self) -> &Persistence {
        &self.core.ctx.persistence
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
            owners: self.core.owners.running(),
            queued_commands: self.core.owners.queued(),
            trading_state: self.core.ctx.global.state(),
            instruments: self.core.ctx.catalog.all().len(),
        }
    }

    /// The read-through cache.
    #[must_use]
    pub fn cache(&self) -> &Arc<ReadCache> {
        &self.core.cache
    }
}

/// Monitoring plumbing used by [`Monitoring`](crate::monitoring::Monitoring).
impl Engine {
    pub(crate) fn tracker(&self) -> TaskTracker {
        self.tracker.clone()
    }

    pub(crate) fn monitor_config(&self) -> &MonitorConfig {
        &self.core.ctx.config.monitor
    }

    pub(crate) fn monitor_counters(&self) -> &MonitorCounters {
        &self.core.ctx.counters
    }

    /// Monitors running now.
    #[must_use]
    pub fn monitored_users(&self) -> usize {
        self.core.ctx.monitored.len()
    }

    /// The monitored users, and who of them a tick round wakes.
    pub(crate) fn monitored(&self) -> &crate::owner::MonitoredUsers {
        &self.core.ctx.monitored
    }

    /// True when the user's monitor runs.
    #[must_use]
    pub fn is_monitored(&self, user: &UserId) -> bool {
        self.core.ctx.monitored.contains(user)
    }

    /// Strategies running in monitors now.
    #[must_use]
    pub fn running_strategies(&self) -> u64 {
        self.core
            .ctx
            .counters
            .strategies
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn quote_subscriptions(&self) -> usize {
        self.core.ctx.lanes.subscriptions()
    }

    /// Asks the user's owner to start its monitor. The answer comes once
    /// the start is committed; it is an error, or closes without one, when
    /// the owner could not start or take the command. A caller that need
    /// not wait drops it.
    pub(crate) async fn start_monitor(
        &self,
        user: &UserId,
    ) -> tokio::sync::oneshot::Receiver<Result<(), AppError>> {
        let (started, answer) = tokio::sync::oneshot::channel();
        self.core.ctx.monitored.asked_to_start();
        let _ = self
            .core
            .owners
            .send(user, Command::StartMonitor { started })
            .await;
        answer
    }

    pub(crate) async fn stop_monitor(&self, user: &UserId, status: UserStatus, reason: &str) {
        let _ = self
            .core
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
            .core
            .owners
            .send(user, Command::SyncStrategies { strategies })
            .await;
    }

    /// Starts the quote lanes (see `owner::lanes`).
    pub(crate) fn spawn_lanes(&self, cancel: &CancellationToken) {
        for lane in 0..self.core.ctx.lanes.len() {
            self.tracker.spawn(crate::owner::lane_threads::start_lane(
                self.core.ctx.clone(),
                lane,
                cancel.clone(),
            ));
        }
    }

    /// Quotes the lanes missed because they fell behind the quote book.
    pub(crate) fn lagged_quotes(&self) -> u64 {
        self.core.ctx.lanes.lagged()
    }

    /// Number of quote lanes.
    pub(crate) fn lane_count(&self) -> usize {
        self.core.ctx.lanes.len()
    }

    pub(crate) fn tick_users(&self, users: &[UserId]) {
        for user in users {
            // A full mailbox skips this tick; the next one comes.
            let _ = self.core.owners.try_send(user, Command::Tick);
        }
    }
}

/// Ownership (several instances sharing users) starts and stops this
/// instance's owners and monitors through this.
#[async_trait::async_trait]
impl crate::ownership::OwnedUsers for Engine {
    async fn start_monitor(&self, user: &UserId) {
        drop(Engine::start_monitor(self, user).await);
    }

    async fn stop_monitor(&self, user: &UserId, reason: &str) {
        if self.is_monitored(user) {
            let status = self
                .users
                .get(user)
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
