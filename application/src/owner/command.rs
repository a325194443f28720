//! The commands an owner's mailbox carries: the use cases' requests (each
//! with the reply its caller waits for), what the quote lanes hand over, the
//! monitoring scan's and the ticker's signals, and the traced wrapper.

use std::sync::Arc;

use ordermon_domain::account::Account;
use ordermon_domain::ids::{InstrumentId, OrderId};
use ordermon_domain::order::{NewOrder, Order};
use ordermon_domain::ports::{ExecutionReport, OrderChange};
use ordermon_domain::values::Money;
use tokio::sync::{mpsc, oneshot};

use super::{Snapshot, StrategyPatch, SubmitOutcome, UserPatch, lanes};
use crate::error::AppError;

/// Where a command's caller waits for its answer.
pub(super) type Reply<T> = oneshot::Sender<Result<T, AppError>>;

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
    /// Start monitoring (the user is active); `started` is answered once
    /// the start is committed.
    StartMonitor {
        started: Reply<()>,
    },
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
    pub(super) fn fail(self, e: AppError) {
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
            Self::StartMonitor { started } => drop(started.send(Err(e))),
            Self::StrategyDecided(_)
            | Self::StrategyFailed(_)
            | Self::Tick
            | Self::StopMonitor { .. }
            | Self::SyncStrategies { .. } => {}
        }
    }
}

/// A lane hands a slot's outcome to the slot's owner through its mailbox.
impl lanes::Handover for mpsc::WeakSender<Command> {
    fn hand_over(&self, slot: Arc<lanes::Slot>, outcome: lanes::Outcome) -> bool {
        let Some(tx) = self.upgrade() else {
            return false;
        };
        let command = match outcome {
            lanes::Outcome::Decided(cmds) => Command::StrategyDecided(Box::new((slot, cmds))),
            lanes::Outcome::Failed(error) => Command::StrategyFailed(Box::new((slot, error))),
        };
        match tx.try_send(command) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Closed(_)) => false,
            Err(mpsc::error::TrySendError::Full(command)) => {
                tokio::spawn(async move {
                    let _ = tx.send(command).await;
                });
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn commands_stay_small() {
        // Every quote and tick moves a `Command` through a mailbox; large
        // variants are boxed so that stays a few words.
        let size = std::mem::size_of::<super::Command>();
        assert!(size <= 48, "Command is {size} bytes");
    }
}
