//! The registry of owners: one task per user, started on first use.

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use dashmap::DashMap;
use ordermon_domain::ids::UserId;
use ordermon_domain::ports::{ExecutionReport, ExecutionReportSink};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Command, Context, Owner};
use crate::error::AppError;

/// Every running owner.
pub struct Owners {
    ctx: Arc<Context>,
    map: DashMap<UserId, mpsc::Sender<Command>>,
    tracker: TaskTracker,
    cancel: CancellationToken,
}

impl std::fmt::Debug for Owners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owners")
            .field("running", &self.map.len())
            .finish_non_exhaustive()
    }
}

impl Owners {
    pub(crate) fn new(
        ctx: Arc<Context>,
        tracker: TaskTracker,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Self {
            ctx,
            map: DashMap::new(),
            tracker,
            cancel,
        })
    }

    /// Number of owner tasks running.
    #[must_use]
    pub fn running(&self) -> usize {
        self.map.len()
    }

    /// Total commands waiting in owners' mailboxes.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.map
            .iter()
            .map(|e| e.value().max_capacity() - e.value().capacity())
            .sum()
    }

    fn sender(&self, user: &UserId) -> mpsc::Sender<Command> {
        if let Some(tx) = self.map.get(user) {
            return tx.clone();
        }
        self.map
            .entry(user.clone())
            .or_insert_with(|| {
                let (tx, rx) = mpsc::channel(self.ctx.config.mailbox.max(1));
                let ctx = self.ctx.clone();
                let user = user.clone();
                let cancel = self.cancel.child_token();
                let span = tracing::info_span!("owner", user_id = %user);
                let mailbox = tx.downgrade();
                self.tracker.spawn(tracing::Instrument::instrument(
                    async move { Owner::run(ctx, user, rx, mailbox, cancel).await },
                    span,
                ));
                tx
            })
            .clone()
    }

    /// Sends a command to the user's owner, starting it when needed.
    pub(crate) async fn send(&self, user: &UserId, cmd: Command) -> Result<(), AppError> {
        if self.cancel.is_cancelled() {
            cmd.fail(AppError::Unavailable("shutting down".to_owned()));
            return Ok(());
        }
        // Stopping a monitor is how a user leaves this instance: it passes
        // the ownership check, and it never starts an owner (with none
        // running there is nothing to stop).
        if matches!(cmd, Command::StopMonitor { .. }) {
            let running = self.map.get(user).map(|tx| tx.clone());
            if let Some(tx) = running {
                let _ = tx.send(cmd).await;
            }
            return Ok(());
        }
        if let Some(refusal) = self.ctx.refuse_owner(user) {
            cmd.fail(refusal);
            return Ok(());
        }
        let cmd = cmd.traced();
        let tx = self.sender(user);
        match tx.send(cmd).await {
            Ok(()) => Ok(()),
            Err(mpsc::error::SendError(cmd)) => {
                // The owner ended (unknown user, or a reload after the user was
                // created): forget it and start a fresh one once.
                self.map.remove_if(user, |_, v| v.same_channel(&tx));
                let tx = self.sender(user);
                if let Err(mpsc::error::SendError(cmd)) = tx.send(cmd).await {
                    cmd.fail(AppError::Unavailable("owner stopped".to_owned()));
                }
                Ok(())
            }
        }
    }

    /// Sends without waiting; false when the owner is not running or its
    /// mailbox is full (used for quotes and ticks, where the next one supersedes).
    pub(crate) fn try_send(&self, user: &UserId, cmd: Command) -> bool {
        self.map
            .get(user)
            .is_some_and(|tx| tx.try_send(cmd).is_ok())
    }

    /// Ends a user's owner here (its user moved to another instance):
    /// dropping the sender ends it once its queued commands ran.
    pub(crate) fn evict(&self, user: &UserId) {
        self.map.remove(user);
    }

    /// Forgets a user's owner if it has ended (it answered "not found" before
    /// the user existed), so the next command starts a fresh one. A running
    /// owner is kept: one may have started, for the new user, between its
    /// commit and this call, and a user must never have two.
    pub fn forget_ended(&self, user: &UserId) {
        self.map.remove_if(user, |_, tx| tx.is_closed());
    }

    /// A sink that routes venue reports to owners.
    #[must_use]
    pub fn sink(self: &Arc<Self>) -> Arc<dyn ExecutionReportSink> {
        Arc::new(OwnerSink(Arc::downgrade(self)))
    }
}

struct OwnerSink(Weak<Owners>);

#[async_trait]
impl ExecutionReportSink for OwnerSink {
    async fn report(&self, report: ExecutionReport) {
        if let Some(owners) = self.0.upgrade() {
            let user = report.user_id.clone();
            let _ = owners
                .send(
                    &user,
                    Command::Report {
                        report: Box::new(report),
                        reply: None,
                    },
                )
                .await;
        }
    }
}
