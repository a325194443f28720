//! What the service asks of the worker (acknowledge, resolve, a new
//! silence, new overrides, a counted mismatch, a sync), and how the worker
//! carries it out.

use chrono::{DateTime, Utc};
use ordermon_domain::alert::{Alert, RuleOverride, Silence};
use ordermon_domain::ids::{AlertId, UserId};
use tokio::sync::oneshot;

use super::Worker;
use crate::alerting::book::BookError;

/// What the service asks of the worker.
#[derive(Debug)]
pub enum Command {
    /// Acknowledge.
    Ack {
        /// The alert.
        id: AlertId,
        /// Who.
        by: String,
        /// The answer.
        reply: oneshot::Sender<Result<Alert, BookError>>,
    },
    /// Resolve by hand.
    Resolve {
        /// The alert.
        id: AlertId,
        /// Who.
        by: String,
        /// The answer.
        reply: oneshot::Sender<Result<Alert, BookError>>,
    },
    /// A silence was created or expired (already stored).
    Silence(Box<Silence>),
    /// The per-user overrides changed (already stored): all of them now.
    Overrides(Vec<RuleOverride>),
    /// An execution report was refused (a disagreement with the venue).
    Mismatch {
        /// The user.
        user: UserId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Answered once everything before it is evaluated and committed.
    Sync(oneshot::Sender<()>),
    /// Evaluates every rule now (as the periodic evaluation does), then
    /// answers like `Sync`.
    Evaluate(oneshot::Sender<()>),
}

impl Worker {
    /// Carries out `cmd` (`Sync` and `Evaluate` are answered by the run loop).
    pub(super) fn command(&mut self, cmd: Command) {
        let now = self.clock.now();
        match cmd {
            Command::Ack { id, by, reply } => {
                let r = self.book.acknowledge(id, &by, now);
                if let Ok(a) = &r {
                    self.dispatcher.observe(a, now);
                }
                let _ = reply.send(r);
            }
            Command::Resolve { id, by, reply } => {
                let r = self.book.resolve(id, &by, now);
                if let Ok(a) = &r {
                    self.dispatcher.observe(a, now);
                }
                let _ = reply.send(r);
            }
            Command::Silence(s) => {
                match self.silences.iter_mut().find(|x| x.id == s.id) {
                    Some(x) => *x = *s,
                    None => self.silences.push(*s),
                }
                self.remute(now);
            }
            Command::Overrides(list) => {
                self.rules.set_overrides(&list);
                self.observed
                    .dirty
                    .extend(self.observed.users.keys().cloned());
            }
            Command::Mismatch { user, at } => self.observed.mismatch(&user, at),
            Command::Sync(_) | Command::Evaluate(_) => {}
        }
    }
}
