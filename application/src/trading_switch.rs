//! The global kill switch: everyone's trading state (active, reduce-only,
//! halted), kept as the `system/global` aggregate of the event log and read by
//! every owner's pre-trade check.
//!
//! Instances sharing a database share the switch. Engaging it here commits
//! the next event of the aggregate; another instance that engaged it at the
//! same moment makes this commit fail on the event log's unique key, and the
//! switch then reads what the other committed and tries once more on top of
//! it, so concurrent changes never collide and the last committed one wins on
//! every instance. Changes made elsewhere reach this instance through
//! [`GlobalSwitch::spawn_watch`], which reads the aggregate's newest event at a
//! short interval.

use std::sync::Arc;
use std::time::Duration;

use ordermon_domain::event::{AggregateType, DomainEvent, EventPayload, SystemEvent};
use ordermon_domain::ports::{ChangeSet, Clock, EventLog, StoreError};
use ordermon_domain::risk::TradingState;
use parking_lot::RwLock;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::committer::GroupCommitter;
use crate::error::AppError;

/// The aggregate id of the global switch.
pub const GLOBAL: &str = "global";

/// How often a concurrent change is read back and retried before giving up.
const ATTEMPTS: usize = 5;

/// The switch: its state and the sequence of the event that set it.
pub struct GlobalSwitch {
    current: RwLock<(TradingState, u64)>,
    events: Arc<dyn EventLog>,
    committer: GroupCommitter,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for GlobalSwitch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobalSwitch")
            .field("current", &*self.current.read())
            .finish_non_exhaustive()
    }
}

/// The state and sequence the aggregate's events leave.
fn latest(events: &[ordermon_domain::ports::StoredEvent]) -> Option<(TradingState, u64)> {
    events.iter().rev().find_map(|e| match &e.event.payload {
        EventPayload::System(SystemEvent::TradingStateChanged { state, .. }) => {
            Some((*state, e.event.sequence))
        }
        _ => None,
    })
}

impl GlobalSwitch {
    /// The switch as the event log leaves it.
    ///
    /// # Errors
    /// Store failures.
    pub async fn load(
        events: Arc<dyn EventLog>,
        committer: GroupCommitter,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let switch = Self {
            current: RwLock::new((TradingState::Active, 0)),
            events,
            committer,
            clock,
        };
        switch.refresh().await?;
        Ok(switch)
    }

    /// The state now.
    #[must_use]
    pub fn state(&self) -> TradingState {
        self.current.read().0
    }

    /// The sequence of the event that set it (0: never set).
    #[must_use]
    pub fn sequence(&self) -> u64 {
        self.current.read().1
    }

    /// Takes what the event log says when it is newer than what this
    /// instance knows; returns whether the state changed.
    ///
    /// # Errors
    /// Store failures.
    pub async fn refresh(&self) -> Result<bool, StoreError> {
        let stored = self
            .events
            .aggregate_events(AggregateType::System, GLOBAL)
            .await?;
        let seq = stored.last().map_or(0, |e| e.event.sequence);
        let state = latest(&stored).map_or(TradingState::Active, |(s, _)| s);
        let mut current = self.current.write();
        if seq <= current.1 {
            return Ok(false);
        }
        let changed = current.0 != state;
        *current = (state, seq);
        drop(current);
        if changed {
            tracing::warn!(
                ?state,
                sequence = seq,
                "global trading state changed on another instance"
            );
        }
        Ok(changed)
    }

    /// Sets everyone's trading state, recorded in the event log.
    ///
    /// # Errors
    /// Store failures, or other instances changing it faster than this one
    /// can read their changes back.
    pub async fn engage(
        &self,
        state: TradingState,
        reason: String,
        actor: String,
    ) -> Result<TradingState, AppError> {
        for _ in 0..ATTEMPTS {
            let seq = self.sequence() + 1;
            let mut cs = ChangeSet::default();
            cs.push_events([DomainEvent::new(
                GLOBAL,
                seq,
                None,
                self.clock.now(),
                None,
                EventPayload::System(SystemEvent::TradingStateChanged {
                    state,
                    reason: reason.clone(),
                    actor: actor.clone(),
                }),
            )])
            .map_err(|e| AppError::Unexpected(e.to_string()))?;
            match self.committer.commit(cs).await {
                Ok(_) => {
                    let mut current = self.current.write();
                    if current.1 < seq {
                        *current = (state, seq);
                    }
                    drop(current);
                    tracing::warn!(?state, sequence = seq, "global trading state changed");
                    return Ok(state);
                }
                // Another instance took this sequence: read it, go on top.
                Err(StoreError::Duplicate { .. }) => {
                    self.refresh().await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::Conflict {
            code: "concurrent_change",
            message: "the global trading state is being changed concurrently; try again".to_owned(),
        })
    }

    /// Reads changes made by other instances every `every` until `cancel`.
    pub fn spawn_watch(
        self: &Arc<Self>,
        every: Duration,
        tracker: &TaskTracker,
        cancel: CancellationToken,
    ) {
        let me = self.clone();
        tracker.spawn(async move {
            let mut interval = tokio::time::interval(every.max(Duration::from_millis(10)));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = interval.tick() => {}
                    () = cancel.cancelled() => return,
                }
                if let Err(e) = me.refresh().await {
                    tracing::debug!(error = %e, "reading the global trading state failed; will retry");
                }
            }
        });
    }
}
