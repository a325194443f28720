//! How each strategy has been running: restarts after failures and the last
//! error, read from the monitors' `monitor.restarted` events.
//!
//! It follows an event feed (the instance's fanout, which carries every
//! instance's events when a bus is configured), so every instance answers the
//! same for every strategy. Counts start when the server starts; the event
//! log keeps the full history.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use dashmap::DashMap;
use ordermon_domain::event::{DomainEvent, EventPayload, MonitorEvent};
use ordermon_domain::ids::{StrategyId, UserId};
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

/// Longest error text kept per strategy.
const MAX_ERROR_CHARS: usize = 1000;

/// One strategy's restarts and last failure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StrategyRun {
    /// Restarts after failures since this server started.
    pub restarts: u64,
    /// What the last failure said.
    pub last_error: Option<String>,
    /// When it last failed.
    pub last_restart_at: Option<DateTime<Utc>>,
}

/// Restarts and last errors of every strategy seen failing.
#[derive(Debug, Default)]
pub struct StrategyHealth {
    /// By user and id (strategy ids are unique per user).
    runs: DashMap<(UserId, StrategyId), StrategyRun>,
}

impl StrategyHealth {
    /// An empty record.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `event` when it is a strategy's restart.
    pub fn observe(&self, event: &DomainEvent) {
        let EventPayload::Monitor(MonitorEvent::Restarted {
            strategy_id: Some(id),
            error,
            ..
        }) = &event.payload
        else {
            return;
        };
        let Some(user) = &event.user_id else {
            return;
        };
        let mut run = self.runs.entry((user.clone(), id.clone())).or_default();
        run.restarts += 1;
        run.last_error = Some(error.chars().take(MAX_ERROR_CHARS).collect());
        run.last_restart_at = Some(
            run.last_restart_at
                .map_or(event.occurred_at, |t| t.max(event.occurred_at)),
        );
    }

    /// What is known of `user`'s strategy `id` (zero restarts when it never failed).
    #[must_use]
    pub fn get(&self, user: &UserId, id: &StrategyId) -> StrategyRun {
        self.runs
            .get(&(user.clone(), id.clone()))
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// Follows `feed` until `cancel` fires or the feed closes.
    pub fn spawn(
        self: &Arc<Self>,
        mut feed: broadcast::Receiver<Arc<DomainEvent>>,
        cancel: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    event = feed.recv() => match event {
                        Ok(e) => me.observe(&e),
                        Err(RecvError::Lagged(n)) => {
                            tracing::warn!(skipped = n, "strategy health fell behind the event feed");
                        }
                        Err(RecvError::Closed) => return,
                    },
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> UserId {
        UserId::new("alice").unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn another_users_strategy_of_the_same_id_is_another_strategy() {
        let h = StrategyHealth::new();
        h.observe(&restarted(Some("s1"), "alice's"));
        let bob = UserId::new("bob").unwrap_or_else(|_| unreachable!());
        let id = StrategyId::new("s1").unwrap_or_else(|_| unreachable!());
        assert_eq!(h.get(&alice(), &id).restarts, 1);
        assert_eq!(h.get(&bob, &id), StrategyRun::default());
    }

    fn restarted(strategy: Option<&str>, error: &str) -> DomainEvent {
        DomainEvent::new(
            "alice",
            1,
            UserId::new("alice").ok(),
            Utc::now(),
            None,
            EventPayload::Monitor(MonitorEvent::Restarted {
                strategy_id: strategy.and_then(|s| StrategyId::new(s).ok()),
                error: error.to_owned(),
                attempt: 1,
            }),
        )
    }

    #[test]
    fn counts_restarts_and_keeps_the_last_error() {
        let h = StrategyHealth::new();
        let id = StrategyId::new("s1").unwrap_or_else(|_| unreachable!());
        assert_eq!(h.get(&alice(), &id), StrategyRun::default());
        h.observe(&restarted(Some("s1"), "first"));
        h.observe(&restarted(Some("s1"), "second"));
        h.observe(&restarted(Some("s2"), "other"));
        // A monitor's own restart names no strategy and counts for none.
        h.observe(&restarted(None, "monitor"));
        let run = h.get(&alice(), &id);
        assert_eq!(run.restarts, 2);
        assert_eq!(run.last_error.as_deref(), Some("second"));
        assert!(run.last_restart_at.is_some());
        assert_eq!(
            h.get(
                &alice(),
                &StrategyId::new("s2").unwrap_or_else(|_| unreachable!())
            )
            .restarts,
            1
        );
    }

    #[test]
    fn long_errors_are_cut() {
        let h = StrategyHealth::new();
        h.observe(&restarted(Some("s1"), &"x".repeat(5000)));
        let run = h.get(
            &alice(),
            &StrategyId::new("s1").unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(
            run.last_error.map(|e| e.chars().count()),
            Some(MAX_ERROR_CHARS)
        );
    }

    #[tokio::test]
    async fn follows_a_feed() {
        let h = Arc::new(StrategyHealth::new());
        let (tx, rx) = broadcast::channel(16);
        let cancel = CancellationToken::new();
        let task = h.spawn(rx, cancel.clone());
        tx.send(Arc::new(restarted(Some("s1"), "boom"))).ok();
        let id = StrategyId::new("s1").unwrap_or_else(|_| unreachable!());
        for _ in 0..100 {
            if h.get(&alice(), &id).restarts == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(h.get(&alice(), &id).restarts, 1);
        cancel.cancel();
        assert!(task.await.is_ok(), "the task ends when cancelled");
    }
}
