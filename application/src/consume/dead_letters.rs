//! The dead-letter use cases behind `monitor-server dlq list|replay` and the
//! admin API: list a consumer group's dead letters and send them back.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ordermon_domain::ids::EventId;
use ordermon_domain::ports::{BusError, DeadLetter, MessageBus};
use serde::Serialize;

use crate::error::AppError;

/// The most dead letters one listing returns.
pub const MAX_LIST: usize = 1000;

/// One dead letter as shown to an operator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetterView {
    /// The event id (what `replay` takes).
    pub event_id: EventId,
    /// The consumer group that gave up.
    pub group: String,
    /// The message topic (`aggregate.event.user`).
    pub topic: String,
    /// The ordering key (the user).
    pub key: String,
    /// Deliveries made.
    pub attempts: u32,
    /// The last failure.
    pub error: String,
    /// When it was dead-lettered.
    pub dead_at: DateTime<Utc>,
    /// The payload: the event's JSON, or the raw text when it is not JSON.
    pub payload: serde_json::Value,
}

impl From<DeadLetter> for DeadLetterView {
    fn from(d: DeadLetter) -> Self {
        let payload = serde_json::from_slice(&d.message.payload).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&d.message.payload).into_owned())
        });
        Self {
            event_id: d.message.id,
            group: d.group,
            topic: d.message.topic,
            key: d.message.key,
            attempts: d.attempts,
            error: d.error,
            dead_at: d.dead_at,
            payload,
        }
    }
}

/// What a replay did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReplayOutcome {
    /// Dead letters sent back to the group.
    pub replayed: usize,
}

/// Lists and replays dead letters.
#[derive(Debug, Clone)]
pub struct DeadLetters {
    bus: Arc<dyn MessageBus>,
}

fn bus_error(e: BusError) -> AppError {
    match e {
        BusError::Unavailable(m) | BusError::NotConfirmed(m) => AppError::Unavailable(m),
        BusError::Closed => AppError::Unavailable("bus closed".to_owned()),
        BusError::Unexpected(m) | BusError::Rejected(m) => AppError::Unexpected(m),
    }
}

fn check_group(group: &str) -> Result<(), AppError> {
    let ok = !group.is_empty()
        && group.len() <= 128
        && group
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(AppError::field(
            "group",
            "1 to 128 of A-Z a-z 0-9 _ - . expected",
        ))
    }
}

impl DeadLetters {
    /// The service over `bus`.
    #[must_use]
    pub fn new(bus: Arc<dyn MessageBus>) -> Self {
        Self { bus }
    }

    /// Up to `limit` (1–1000) dead letters of `group`, oldest first.
    ///
    /// # Errors
    /// [`AppError::Validation`] for a bad group or limit;
    /// [`AppError::Unavailable`] when the broker is down.
    pub async fn list(&self, group: &str, limit: usize) -> Result<Vec<DeadLetterView>, AppError> {
        check_group(group)?;
        if limit == 0 || limit > MAX_LIST {
            return Err(AppError::field(
                "limit",
                format!("1 to {MAX_LIST} expected"),
            ));
        }
        let dead = self
            .bus
            .dead_letters(group, limit)
            .await
            .map_err(bus_error)?;
        Ok(dead.into_iter().map(DeadLetterView::from).collect())
    }

    /// Sends dead letters of `group` back to it for another try: those with the
    /// given event ids, or all of them when `ids` is `None`.
    ///
    /// # Errors
    /// [`AppError::Validation`] for a bad group or an empty id list;
    /// [`AppError::Unavailable`] when the broker is down.
    pub async fn replay(
        &self,
        group: &str,
        ids: Option<&[EventId]>,
    ) -> Result<ReplayOutcome, AppError> {
        check_group(group)?;
        if ids.is_some_and(<[EventId]>::is_empty) {
            return Err(AppError::field("ids", "at least one id, or none for all"));
        }
        let replayed = self
            .bus
            .replay_dead_letters(group, ids)
            .await
            .map_err(bus_error)?;
        tracing::info!(group, replayed, "dead letters replayed");
        Ok(ReplayOutcome { replayed })
    }
}
