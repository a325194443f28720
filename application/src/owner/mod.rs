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

mod command;
mod commit;
mod context;
mod flow;
mod lane_priority;
pub(crate) mod lane_threads;
pub(crate) mod lanes;
mod monitor;
mod monitor_ops;
mod monitored;
mod reconcile;
mod record;
mod registry;
mod session_cids;
mod state;
mod strategy_book;
mod strategy_ops;
mod traced;
mod user_ops;

pub use crate::views::Snapshot;
pub(crate) use command::Command;
pub(crate) use context::Context;
pub use context::{EngineConfig, MonitorConfig, MonitorCounters, VenueMode};
pub(crate) use flow::idempotent;
pub use lanes::QuoteLanes;
pub(crate) use monitored::MonitoredUsers;
pub use registry::Owners;
pub use strategy_book::StrategyPatch;
pub use user_ops::UserPatch;

use std::sync::Arc;

use ordermon_domain::ids::UserId;
use ordermon_domain::order::Order;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::error::AppError;
use command::Reply;
use state::{Cycle, UserState};

/// The result of a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitOutcome {
    /// The order (possibly denied).
    pub order: Order,
    /// False when the client order id was already known with the same body
    /// (an idempotent repeat: the original order is returned).
    pub created: bool,
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
    /// The running monitor, when the user is monitored: its strategies and
    /// checks.
    monitor: Option<monitor::Monitor>,
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
            Command::StartMonitor { started } => {
                self.start_monitor().await;
                self.reply(started, Ok(()));
            }
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
}

/// The text of a caught panic.
pub(crate) fn panic_text(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| e.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_owned())
}

#[cfg(test)]
mod task_size;
