//! Per-user owners: one task per user serializes that user's commands, holds the
//! user's account, open orders and positions in memory, and persists through the
//! group committer, answering each caller only after its writes are durable.
//!
//! Why an owner instead of optimistic retries: the system we replace deducted
//! funds with optimistic locking and spin retries and failed 13 % of 500
//! concurrent orders. Here concurrent requests for one user queue in its mailbox
//! and are applied one after another to the in-memory account, so every request
//! is answered and funds can never be over-committed. The store's expected-version
//! check remains as the guard against a second writer (another instance).

mod context;
mod flow;
pub(crate) mod lanes;
mod monitor;
mod reconcile;
mod registry;
mod session_cids;
mod state;
mod strategy_book;
mod strategy_ops;
mod traced;
mod user_ops;

pub use crate::views::Snapshot;
pub(crate) use context::Context;
pub use context::{EngineConfig, MonitorConfig, MonitorCounters, VenueMode};
pub(crate) use flow::idempotent;
pub use lanes::QuoteLanes;
pub(crate) use monitor::panic_text;
pub use registry::Owners;
pub use strategy_book::StrategyPatch;
pub use user_ops::UserPatch;

use std::sync::Arc;

use ordermon_domain::account::Account;
use ordermon_domain::event::{
    AccountEvent, DomainEvent, EventPayload, PositionEvent, UserEvent, position_aggregate_id,
};
use ordermon_domain::ids::{InstrumentId, OrderId, UserId};
use ordermon_domain::order::{Applied, NewOrder, Order, OrderError, OrderEvent};
use ordermon_domain::ports::{
    ChangeSet, ExecutionReport, OrderChange, ReservationWrite, StateChange,
};
use ordermon_domain::values::Money;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::error::AppError;
use state::{Cycle, UserState};

/// The result of a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitOutcome {
    /// The order (possibly denied).
    pub order: Order,
    /// False when the client order id was already known with the same body
    /// (idempotent replay: the original order is returned).
    pub created: bool,
}

type Reply<T> = oneshot::Sender<Result<T, AppError>>;

/// A command for a user's owner.
pub(crate) enum Command {
    // Large payloads are boxed: every quote and tick moves a `Command`.
    Submit {
        new: Box<NewOrder>,
        reply: Reply<SubmitOutcome>,
    },
    SubmitBatch {
        orders: Vec<NewOrder>,
        atomic: bool,
        reply: Reply<Vec<Result<SubmitOutcome, AppError>>>,
    },
    Modify {
        order_id: OrderId,
        change: Box<OrderChange>,
        reply: Reply<Order>,
    },
    Cancel {
        order_id: OrderId,
        reply: Reply<Order>,
    },
    CancelAll {
        instrument: Option<InstrumentId>,
        reply: Reply<Vec<Order>>,
    },
    Report {
        report: Box<ExecutionReport>,
        reply: Option<Reply<Order>>,
    },
    AdjustCash {
        amount: Box<Money>,
        reason: String,
        reply: Reply<Account>,
    },
    UpdateUser {
        patch: Box<UserPatch>,
        reply: Reply<ordermon_domain::user::User>,
    },
    Snapshot {
        reply: Reply<Snapshot>,
    },
    /// A strategy decided in its quote lane: execute what it asked for.
    StrategyDecided(Box<lanes::Decision>),
    /// A strategy panicked in its quote lane: restart it.
    StrategyFailed(Box<(Arc<lanes::Slot>, String)>),
    /// Timer tick: strategy timers, stuck orders, heartbeats.
    Tick,
    /// Start monitoring (the user is active).
    StartMonitor,
    /// Stop monitoring; `status` is the user's status as seen in the database.
    StopMonitor {
        status: ordermon_domain::user::UserStatus,
        reason: String,
    },
    /// The database's strategies changed: reconcile with these (all of the user's).
    SyncStrategies {
        strategies: Vec<ordermon_domain::strategy::Strategy>,
    },
    CreateStrategy {
        strategy: Box<ordermon_domain::strategy::Strategy>,
        reply: Reply<ordermon_domain::strategy::Strategy>,
    },
    UpdateStrategy {
        id: ordermon_domain::ids::StrategyId,
        patch: Box<StrategyPatch>,
        reply: Reply<ordermon_domain::strategy::Strategy>,
    },
    DeleteStrategy {
        id: ordermon_domain::ids::StrategyId,
        reply: Reply<()>,
    },
    ListStrategies {
        reply: Reply<Vec<ordermon_domain::strategy::Strategy>>,
    },
    /// A command sent from within a trace (only when traces are recorded):
    /// it runs as a child of the sender's span, its commit follows it, and so
    /// do the messages it writes.
    Traced(Box<(Command, String)>),
}

impl Command {
    /// The command, carrying the current trace context when traces are
    /// recorded (unchanged otherwise).
    pub(crate) fn traced(self) -> Self {
        match crate::trace_context::current() {
            Some(traceparent) => Self::Traced(Box::new((self, traceparent))),
            None => self,
        }
    }

    /// Answers the command with an error (used when the owner cannot start).
    fn fail(self, e: AppError) {
        match self {
            Self::Traced(traced) => traced.0.fail(e),
            Self::Submit { reply, .. } => drop(reply.send(Err(e))),
            Self::SubmitBatch { reply, .. } => drop(reply.send(Err(e))),
            Self::Modify { reply, .. } | Self::Cancel { reply, .. } => drop(reply.send(Err(e))),
            Self::CancelAll { reply, .. } => drop(reply.send(Err(e))),
            Self::Report { reply, report } => {
                tracing::warn!(order_id = %report.order_id, user_id = %report.user_id, error = %e, "execution report dropped");
                if let Some(r) = reply {
                    drop(r.send(Err(e)));
                }
            }
            Self::AdjustCash { reply, .. } => drop(reply.send(Err(e))),
            Self::UpdateUser { reply, .. } => drop(reply.send(Err(e))),
            Self::Snapshot { reply } => drop(reply.send(Err(e))),
            Self::CreateStrategy { reply, .. } | Self::UpdateStrategy { reply, .. } => {
                drop(reply.send(Err(e)));
            }
            Self::DeleteStrategy { reply, .. } => drop(reply.send(Err(e))),
            Self::ListStrategies { reply } => drop(reply.send(Err(e))),
            Self::StrategyDecided(_)
            | Self::StrategyFailed(_)
            | Self::Tick
            | Self::StartMonitor
            | Self::StopMonitor { .. }
            | Self::SyncStrategies { .. } => {}
        }
    }
}

/// One user's owner task.
pub(crate) struct Owner {
    ctx: Arc<Context>,
    /// This owner's own mailbox, for its strategies' quote lane.
    mailbox: mpsc::WeakSender<Command>,
    state: UserState,
    cycle: Cycle,
    correlation: Option<Uuid>,
    /// The user's strategy configurations, loaded on first use.
    strategies: strategy_book::StrategyBook,
    /// The running monitor, when the user is monitored.
    monitor: Option<monitor::MonitorState>,
    /// Cycles committed (or reloaded after a failure): the state's version
    /// for the views published to strategies.
    published: u64,
}

/// Loads the user and reconciles with the venue: the owner that runs.
///
/// # Errors
/// The user does not exist or cannot be read.
async fn start(
    ctx: Arc<Context>,
    user_id: &UserId,
    mailbox: mpsc::WeakSender<Command>,
) -> Result<Owner, AppError> {
    let now = ctx.clock.now();
    let mut records = match ctx.loads.load(user_id).await {
        Ok(Some(r)) => r,
        Ok(None) => return Err(AppError::NotFound("user")),
        Err(e) => return Err(AppError::from(e)),
    };
    // An active user's monitor starts next, with these strategies; a
    // disabled user's are read when first needed.
    let read = std::mem::take(&mut records.strategies);
    let mut strategies = strategy_book::StrategyBook::default();
    if records.user.status == ordermon_domain::user::UserStatus::Active {
        strategies.load(read);
    }
    let state = UserState::from_records(records, now);
    let mut owner = Owner {
        ctx,
        mailbox,
        state,
        cycle: Cycle::default(),
        correlation: None,
        strategies,
        monitor: None,
        published: 0,
    };
    let mismatches = reconcile::with_venue(&owner.ctx, &owner.state).await;
    if !mismatches.is_empty() {
        owner.cycle.events.extend(mismatches);
        owner.flush().await;
    }
    Ok(owner)
}

/// The commands of one wake-up (their writes are committed next).
async fn run_commands(owner: &mut Owner, batch: &mut Vec<Command>, user_id: &UserId) {
    for cmd in batch.drain(..) {
        let (cmd, span) = traced::command_span(cmd, user_id);
        let first_event = owner.cycle.events.len();
        let step = async {
            owner.handle(cmd).await;
            owner.feed_order_events().await;
        };
        // An untraced command (every one when traces are off) runs
        // as it did before traces existed.
        match span {
            None => step.await,
            Some(span) => {
                step.instrument(span.clone()).await;
                let events = first_event..owner.cycle.events.len();
                owner.cycle.traced.push((span, events));
            }
        }
    }
}

impl Owner {
    /// Runs the owner until its mailbox closes or shutdown.
    ///
    /// An owner spends its life waiting on its mailbox, and its task keeps
    /// what that wait needs. The work of each wake-up (the start, a batch of
    /// commands, its commit, the stop) runs in a future of its own on the
    /// heap: awaited inline, the largest of them (the command handlers'
    /// state machines, ~6 KB) would be part of every idle owner's task,
    /// 300 MB at 50,000 users.
    pub(crate) async fn run(
        ctx: Arc<Context>,
        user_id: UserId,
        mut rx: mpsc::Receiver<Command>,
        mailbox: mpsc::WeakSender<Command>,
        cancel: CancellationToken,
    ) {
        let mut owner = match Box::pin(start(ctx, &user_id, mailbox)).await {
            Ok(owner) => owner,
            Err(e) => {
                rx.close();
                while let Some(cmd) = rx.recv().await {
                    cmd.fail(e.clone());
                }
                return;
            }
        };
        let max = owner.ctx.config.max_commands_per_cycle.max(1);
        let mut batch: Vec<Command> = Vec::new();
        // One cancellation future for the owner's life: creating one per
        // command registers and unregisters a waiter each time.
        let cancelled = cancel.cancelled();
        tokio::pin!(cancelled);
        loop {
            // The mailbox first: a waiting command is taken without looking at
            // the token (whose check takes a lock); cancellation is seen as
            // soon as the mailbox is empty.
            let first = tokio::select! {
                biased;
                cmd = rx.recv() => cmd,
                () = &mut cancelled => None,
            };
            let Some(first) = first else { break };
            // One buffer for the owner's life: no allocation per wake-up.
            batch.push(first);
            while batch.len() < max {
                match rx.try_recv() {
                    Ok(cmd) => batch.push(cmd),
                    Err(_) => break,
                }
            }
            Box::pin(run_commands(&mut owner, &mut batch, &user_id)).await;
            // The commit is awaited in a future of its own: the wait for
            // the group commit is the long one, and it need not hold the
            // command handlers' memory (every owner waits at once when all
            // monitors start together).
            Box::pin(owner.flush()).await;
        }
        let reason = if cancel.is_cancelled() {
            "shutdown"
        } else {
            "owner stopped"
        };
        Box::pin(async {
            owner.stop_monitor(reason).await;
            owner.flush().await;
        })
        .await;
        // Shutdown: answer what is still queued.
        rx.close();
        while let Some(cmd) = rx.recv().await {
            cmd.fail(AppError::Unavailable("shutting down".to_owned()));
        }
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.ctx.clock.now()
    }

    async fn handle(&mut self, cmd: Command) {
        // Ticks usually change nothing, and a lane's decision is the
        // strategy's: their correlation id is made only when a strategy acts
        // (see `execute`).
        self.correlation = match &cmd {
            Command::StrategyDecided(_) | Command::StrategyFailed(_) | Command::Tick => None,
            _ => Some(Uuid::now_v7()),
        };
        match cmd {
            Command::Submit { new, reply } => {
                let r = self.submit(*new).await;
                self.reply(reply, r);
            }
            Command::SubmitBatch {
                orders,
                atomic,
                reply,
            } => {
                let r = self.submit_batch(orders, atomic).await;
                self.reply(reply, r);
            }
            Command::Modify {
                order_id,
                change,
                reply,
            } => {
                let r = self.modify(order_id, *change).await;
                self.reply(reply, r);
            }
            Command::Cancel { order_id, reply } => {
                let r = self.cancel(order_id).await;
                self.reply(reply, r);
            }
            Command::CancelAll { instrument, reply } => {
                let r = self.cancel_all(instrument.as_ref()).await;
                self.reply(reply, r);
            }
            Command::Report { report, reply } => {
                let r = self.apply_report(*report).await;
                match reply {
                    Some(reply) => self.reply(reply, r),
                    None => {
                        if let Err(e) = r {
                            tracing::warn!(user_id = %self.state.user.id, error = %e, "execution report refused");
                        }
                    }
                }
            }
            Command::AdjustCash {
                amount,
                reason,
                reply,
            } => {
                let r = self.adjust_cash(&amount, reason);
                self.reply(reply, r);
            }
            Command::UpdateUser { patch, reply } => {
                let r = self.update_user(*patch).await;
                self.reply(reply, r);
            }
            Command::Snapshot { reply } => {
                let snap = self.snapshot();
                // Reads need no commit; answer at once.
                drop(reply.send(Ok(snap)));
            }
            Command::StrategyDecided(d) => {
                let (slot, cmds) = *d;
                self.on_decided(slot, cmds).await;
            }
            Command::StrategyFailed(f) => {
                let (slot, error) = *f;
                self.on_failed(slot, &error).await;
            }
            Command::Tick => self.on_tick().await,
            Command::StartMonitor => self.start_monitor().await,
            Command::StopMonitor { status, reason } => {
                if status != self.state.user.status {
                    // Changed with plain SQL: adopt the database's value.
                    self.state.user.status = status;
                }
                self.stop_monitor(&reason).await;
            }
            Command::SyncStrategies { strategies } => self.sync_strategies(strategies).await,
            Command::CreateStrategy { strategy, reply } => {
                let r = self.create_strategy(*strategy).await;
                self.reply(reply, r);
            }
            Command::UpdateStrategy { id, patch, reply } => {
                let r = self.update_strategy(&id, *patch).await;
                self.reply(reply, r);
            }
            Command::DeleteStrategy { id, reply } => {
                let r = self.delete_strategy(&id).await;
                self.reply(reply, r);
            }
            Command::ListStrategies { reply } => {
                let r = self.list_strategies().await;
                drop(reply.send(r));
            }
            // `run` unwraps traced commands before handling them.
            Command::Traced(traced) => traced.0.fail(AppError::Unexpected(
                "a traced command reached the handler".to_owned(),
            )),
        }
    }

    /// Queues a reply: successes are sent after the cycle commits, errors at once
    /// (a failed command wrote nothing).
    fn reply<T: Send + 'static>(&mut self, reply: Reply<T>, result: Result<T, AppError>) {
        match result {
            Err(e) => drop(reply.send(Err(e))),
            Ok(value) => self.cycle.replies.push(Box::new(move |outcome| {
                drop(reply.send(outcome.map(|()| value)));
            })),
        }
    }

    /// Commits the cycle and answers its callers.
    async fn flush(&mut self) {
        let cycle = std::mem::take(&mut self.cycle);
        if !cycle.has_writes() {
            // Terminal orders loaded for a command that changed nothing (a
            // cancel of a filled order) do not stay in memory.
            self.state.orders.retain(|_, o| !o.status.is_terminal());
            for r in cycle.replies {
                r(Ok(()));
            }
            return;
        }
        let mut batch = match self.build_batch(&cycle) {
            Ok(mut b) => {
                b.fence = self.ctx.fence(&self.state.user.id);
                b
            }
            Err(e) => {
                self.fail_cycle(cycle, e).await;
                return;
            }
        };
        // One commit span per traced command, ending when the commit does.
        let _commits = traced::commit_spans(&cycle.traced, &mut batch.outbox);
        match self.ctx.committer.commit(batch).await {
            Ok(_) => {
                metrics::counter!("ordermon_owner_cycles_total").increment(1);
                self.state.orders.retain(|_, o| !o.status.is_terminal());
                self.published += 1;
                self.publish_view();
                for r in cycle.replies {
                    r(Ok(()));
                }
            }
            Err(e) => {
                // A duplicate (two requests racing for one id) or a version
                // conflict is the client's 409, not a server fault.
                if matches!(
                    e,
                    ordermon_domain::ports::StoreError::Duplicate { .. }
                        | ordermon_domain::ports::StoreError::Conflict { .. }
                ) {
                    tracing::info!(user_id = %self.state.user.id, error = %e, "commit refused; reloading user state");
                } else {
                    tracing::error!(user_id = %self.state.user.id, error = %e, "commit failed; reloading user state");
                }
                self.fail_cycle(cycle, e.into()).await;
            }
        }
    }

    async fn fail_cycle(&mut self, cycle: Cycle, e: AppError) {
        metrics::counter!("ordermon_owner_commit_failures_total").increment(1);
        for r in cycle.replies {
            r(Err(e.clone()));
        }
        // The in-memory state is ahead of the store: reload it.
        let now = self.now();
        match self.ctx.loads.load(&self.state.user.id).await {
            Ok(Some(records)) => {
                let mut fresh = UserState::from_records(records, now);
                let mut cids = std::mem::take(&mut self.state.session_cids);
                for c in &cycle.new_cids {
                    cids.remove(c);
                }
                fresh.session_cids = cids;
                fresh.recent_submits = std::mem::take(&mut self.state.recent_submits);
                self.state = fresh;
            }
            Ok(None) => {
                tracing::error!(user_id = %self.state.user.id, "user vanished during reload")
            }
            Err(err) => {
                tracing::error!(user_id = %self.state.user.id, error = %err, "reload failed; keeping state");
            }
        }
        // Strategies the cycle changed are ahead of the store too.
        if !cycle.strategies.is_empty() {
            match self
                .ctx
                .persistence
                .strategies
                .list_strategies(&self.state.user.id)
                .await
            {
                Ok(fresh) => self.sync_strategies(fresh).await,
                Err(err) => {
                    tracing::error!(user_id = %self.state.user.id, error = %err, "strategy reload failed; reloading on next use");
                    self.strategies.forget();
                }
            }
        }
        self.published += 1;
        self.publish_view();
    }

    fn build_batch(&self, cycle: &Cycle) -> Result<ChangeSet, AppError> {
        let mut cs = ChangeSet::default();
        for id in &cycle.order_seq {
            let (Some(expected), Some(order)) = (cycle.orders.get(id), self.state.orders.get(id))
            else {
                return Err(AppError::Unexpected(format!("order {id} left the cycle")));
            };
            cs.changes.push(StateChange::Order {
                order: Box::new(order.clone()),
                expected: *expected,
            });
        }
        for fill in &cycle.fills {
            cs.changes.push(StateChange::Fill(Box::new(fill.clone())));
        }
        if let Some(expected) = cycle.account {
            // Only the reservations this cycle changed are written: every
            // order it touched, and every order an account event named.
            let mut ids: Vec<OrderId> = cycle
                .reservations
                .iter()
                .chain(&cycle.order_seq)
                .copied()
                .collect();
            ids.sort_unstable();
            ids.dedup();
            cs.changes.push(StateChange::Account {
                account: Box::new(self.state.account.with_reservations_of(&ids)),
                expected,
                reservations: ReservationWrite::Orders(ids),
            });
        }
        for (inst, expected) in &cycle.positions {
            if let Some(p) = self.state.positions.get(inst) {
                cs.changes.push(StateChange::Position {
                    position: Box::new(p.clone()),
                    expected: *expected,
                });
            }
        }
        for (id, expected) in &cycle.strategies {
            match self.strategies.get(id) {
                Some(st) => cs.changes.push(StateChange::Strategy {
                    strategy: Box::new(st.clone()),
                    expected: *expected,
                }),
                None => cs.changes.push(StateChange::DeleteStrategy {
                    id: id.clone(),
                    user_id: self.state.user.id.clone(),
                    expected: *expected,
                }),
            }
        }
        if let Some(expected) = cycle.user {
            cs.changes.push(StateChange::User {
                user: Box::new(self.state.user.clone()),
                expected,
            });
        }
        cs.push_events(cycle.events.iter().cloned())
            .map_err(|e| AppError::Unexpected(e.to_string()))?;
        let max = self.ctx.config.max_event_bytes;
        if let Some(m) = cs.outbox.iter().find(|m| m.payload.len() > max) {
            metrics::counter!("ordermon_events_too_large_total").increment(1);
            return Err(AppError::field(
                "body",
                format!(
                    "the change would record a {} event of {} bytes; at most {max}",
                    m.topic.split('.').take(2).collect::<Vec<_>>().join("."),
                    m.payload.len()
                ),
            ));
        }
        Ok(cs)
    }

    // ----- helpers that record changes in the cycle -----

    fn touch_order(&mut self, id: OrderId) {
        if let Some(order) = self.state.orders.get_mut(&id) {
            if let std::collections::hash_map::Entry::Vacant(e) = self.cycle.orders.entry(id) {
                e.insert(order.version);
                order.version += 1;
                self.cycle.order_seq.push(id);
            }
        }
    }

    fn touch_account(&mut self) {
        if self.cycle.account.is_none() {
            self.cycle.account = Some(self.state.account.version);
            self.state.account.version += 1;
        }
    }

    fn touch_user(&mut self) {
        if self.cycle.user.is_none() {
            self.cycle.user = Some(self.state.user.version);
            self.state.user.version += 1;
        }
    }

    fn touch_position(&mut self, instrument: &InstrumentId) {
        if let Some(p) = self.state.positions.get_mut(instrument) {
            if !self.cycle.positions.contains_key(instrument) {
                self.cycle.positions.insert(instrument.clone(), p.version);
                p.version += 1;
            }
        }
    }

    fn envelope(&self, id: String, sequence: u64, payload: EventPayload) -> DomainEvent {
        DomainEvent::new(
            id,
            sequence,
            Some(self.state.user.id.clone()),
            self.now(),
            self.correlation,
            payload,
        )
    }

    /// Applies an order event to an order held in state and records it.
    fn order_event(&mut self, id: OrderId, event: OrderEvent) -> Result<Applied, OrderError> {
        let now = self.now();
        let Some(order) = self.state.orders.get_mut(&id) else {
            return Err(OrderError::ForeignFill);
        };
        let applied = order.apply(&event, now)?;
        if applied == Applied::Changed {
            let seq = order.sequence;
            if order.strategy_id.is_some() && self.monitor.is_some() {
                self.cycle.strategy_events.push((id, event.clone()));
            }
            self.touch_order(id);
            let e = self.envelope(id.to_string(), seq, EventPayload::Order(event));
            self.cycle.events.push(e);
        }
        Ok(applied)
    }

    fn account_event(&mut self, event: AccountEvent) {
        self.touch_account();
        if let AccountEvent::Reserved { order_id, .. }
        | AccountEvent::Released { order_id, .. }
        | AccountEvent::FillSettled { order_id, .. } = &event
        {
            self.cycle.reservations.push(*order_id);
        }
        self.state.account.sequence += 1;
        let seq = self.state.account.sequence;
        let e = self.envelope(
            self.state.user.id.to_string(),
            seq,
            EventPayload::Account(event),
        );
        self.cycle.events.push(e);
    }

    fn position_event(&mut self, instrument: &InstrumentId, event: PositionEvent) {
        self.touch_position(instrument);
        let Some(p) = self.state.positions.get_mut(instrument) else {
            return;
        };
        p.sequence += 1;
        let seq = p.sequence;
        let id = position_aggregate_id(&self.state.user.id, instrument);
        let e = self.envelope(id, seq, EventPayload::Position(event));
        self.cycle.events.push(e);
    }

    fn user_event(&mut self, event: UserEvent) {
        self.touch_user();
        self.state.user.sequence += 1;
        let seq = self.state.user.sequence;
        let e = self.envelope(
            self.state.user.id.to_string(),
            seq,
            EventPayload::User(event),
        );
        self.cycle.events.push(e);
    }
}

#[cfg(test)]
mod size_tests {
    #[test]
    fn commands_stay_small() {
        // Every quote and tick moves a `Command` through a mailbox; large
        // variants are boxed so that stays a few words.
        let size = std::mem::size_of::<super::Command>();
        assert!(size <= 48, "Command is {size} bytes");
    }
}

#[cfg(test)]
mod task_size;
