//! The event log as a feed: a page after a position, and every event
//! committed from now on.

use std::sync::Arc;

use ordermon_domain::event::DomainEvent;
use ordermon_domain::ports::StoredEvent;

use super::{Core, Scope};
use crate::error::AppError;

/// The event feed.
#[derive(Clone, Debug)]
pub struct EventService {
    pub(super) core: Core,
}

impl EventService {
    /// The event feed after a position.
    ///
    /// # Errors
    /// Store failures.
    pub async fn after(
        &self,
        scope: &Scope,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, AppError> {
        Ok(self
            .core
            .ctx
            .persistence
            .events
            .events_after(after, scope.user(), limit)
            .await?)
    }

    /// Every event committed from now on (the live stream).
    #[must_use]
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<DomainEvent>> {
        self.core.ctx.committer.subscribe()
    }
}
