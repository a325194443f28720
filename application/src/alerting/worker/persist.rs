//! What the worker writes: the notifications it decided (due groups,
//! escalations) and the alert changes with their events, committed through
//! the group committer and retried every round until they are stored.

use std::sync::atomic::Ordering;

use ordermon_domain::alert::Alert;
use ordermon_domain::event::{AlertEvent, DomainEvent, EventPayload};
use ordermon_domain::ports::{ChangeSet, StateChange, StoreError};

use super::Worker;

/// Alerts written per change set (bigger rounds are split).
const CHUNK: usize = 500;

impl Worker {
    /// Flushes due groups and decides escalations.
    pub(super) fn decide(&mut self) {
        let now = self.clock.now();
        let mut records = self.dispatcher.flush(now);
        let escalations = self.dispatcher.escalations(self.book.alerts(), now);
        for (fp, record) in escalations {
            if self.book.escalate(fp, now).is_some() {
                records.push(record);
            }
        }
        if !records.is_empty() {
            metrics::counter!("ordermon_notifications_decided_total")
                .increment(records.len() as u64);
        }
        self.unsaved.extend(records);
    }

    /// Commits alert changes (with their events) and decided notifications.
    pub(super) async fn persist(&mut self) {
        let changes = self.book.uncommitted();
        if !changes.is_empty() {
            let mut sets = Vec::new();
            for chunk in changes.chunks(CHUNK) {
                let mut cs = ChangeSet::default();
                let mut ids = Vec::with_capacity(chunk.len());
                for (alert, stored) in chunk {
                    cs.changes.push(StateChange::Alert {
                        alert: Box::new(alert.clone()),
                        expected: *stored,
                    });
                    ids.push((alert.id, alert.version));
                    if let Err(e) = cs.push_events([alert_event(alert)]) {
                        tracing::error!(error = %e, "alert event not serializable");
                    }
                }
                sets.push((cs, ids));
            }
            let commits = sets.into_iter().map(|(cs, ids)| {
                let committer = self.committer.clone();
                async move { (committer.commit(cs).await, ids) }
            });
            for (result, ids) in futures::future::join_all(commits).await {
                match result {
                    Ok(_) => self.book.committed(&ids),
                    Err(StoreError::Conflict { id, actual, .. }) => {
                        // The stored version is not the one expected (a lost
                        // answer, another writer): write over it next round.
                        tracing::warn!(alert = %id, ?actual, "alert version differs from the store; retrying");
                        if let (Ok(alert_id), Some(actual)) = (id.parse(), actual) {
                            self.book.stored_is(alert_id, actual);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "alert changes not stored yet; retrying"),
                }
            }
        }
        if !self.unsaved.is_empty() {
            let mut cs = ChangeSet::default();
            for r in &self.unsaved {
                cs.changes.push(StateChange::Notification {
                    record: Box::new(r.clone()),
                    expected: 0,
                });
            }
            match self.committer.commit(cs).await {
                Ok(_) => {
                    self.unsaved.clear();
                    self.wake_delivery.notify_one();
                }
                Err(StoreError::Duplicate { .. } | StoreError::Conflict { .. }) => {
                    // Stored by an earlier attempt whose answer was lost.
                    self.unsaved.clear();
                    self.wake_delivery.notify_one();
                }
                Err(e) => tracing::warn!(error = %e, "notifications not stored yet; retrying"),
            }
        }
        self.status
            .active
            .store(self.book.len() as u64, Ordering::Relaxed);
    }
}

/// The event of an alert's new state.
#[must_use]
pub fn alert_event(alert: &Alert) -> DomainEvent {
    DomainEvent::new(
        alert.id.to_string(),
        alert.version,
        alert.user_id.clone(),
        alert.updated_at,
        None,
        EventPayload::Alert(AlertEvent::Changed {
            alert: Box::new(alert.clone()),
        }),
    )
}
