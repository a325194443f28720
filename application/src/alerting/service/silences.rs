//! Silences through the API: created and expired here (stored first, then
//! handed to the worker, which re-applies them to the alerts), listed and
//! read from the store. A trader's silence only ever covers their own alerts.

use ordermon_domain::alert::{NewSilence, Silence};
use ordermon_domain::ids::SilenceId;
use ordermon_domain::ports::{ChangeSet, Page, SilenceQuery, StateChange};

use super::{AlertingService, limit, visible};
use crate::alerting::worker::Command;
use crate::engine::Scope;
use crate::error::AppError;

impl AlertingService {
    /// Creates a silence. A trader's silence only ever covers their own alerts.
    ///
    /// # Errors
    /// Validation (matchers, window, size); store failures.
    pub async fn create_silence(
        &self,
        scope: &Scope,
        mut new: NewSilence,
    ) -> Result<Silence, AppError> {
        if let Scope::User(me) = scope {
            new.user_id = Some(me.clone());
        }
        let now = self.clock.now();
        let s = Silence::create(new, self.silence_max, now)
            .map_err(|e| AppError::field("silence", e))?;
        self.store_silence(&s, 0).await?;
        tracing::info!(silence = %s.id, by = %s.created_by, matchers = s.matchers.len(), "silence created");
        Ok(s)
    }

    async fn store_silence(&self, s: &Silence, expected: u64) -> Result<(), AppError> {
        let mut cs = ChangeSet::default();
        cs.changes.push(StateChange::Silence {
            silence: Box::new(s.clone()),
            expected,
        });
        self.committer.commit(cs).await?;
        if self.enabled {
            self.ask(Command::Silence(Box::new(s.clone()))).await?;
            self.sync().await;
        }
        Ok(())
    }

    /// One silence the caller may see.
    ///
    /// # Errors
    /// NotFound; store failures.
    pub async fn get_silence(&self, scope: &Scope, id: SilenceId) -> Result<Silence, AppError> {
        match self.persistence.silences.get_silence(id).await? {
            Some(s) if matches!(scope, Scope::All) || visible(scope, s.user_id.as_ref()) => Ok(s),
            _ => Err(AppError::NotFound("silence")),
        }
    }

    /// Silences the caller may see, newest first; expired ones only when asked.
    ///
    /// # Errors
    /// A bad limit; store failures.
    pub async fn list_silences(
        &self,
        scope: &Scope,
        include_expired: bool,
        cursor: Option<SilenceId>,
        page_size: Option<u32>,
    ) -> Result<Page<Silence>, AppError> {
        let limit = limit(page_size)?;
        let now = self.clock.now();
        let items = self
            .persistence
            .silences
            .list_silences(&SilenceQuery {
                user_id: scope.user().cloned(),
                ending_after: (!include_expired).then_some(now),
                before: cursor,
                limit,
            })
            .await?;
        let next_cursor = (items.len() == limit as usize)
            .then(|| items.last().map(|s| s.id.to_string()))
            .flatten();
        Ok(Page { items, next_cursor })
    }

    /// Expires a silence now.
    ///
    /// # Errors
    /// NotFound; Conflict when it has ended already; store failures.
    pub async fn expire_silence(
        &self,
        scope: &Scope,
        id: SilenceId,
        by: &str,
    ) -> Result<Silence, AppError> {
        let mut s = self.get_silence(scope, id).await?;
        if matches!(scope, Scope::User(_)) && s.user_id.is_none() {
            return Err(AppError::Forbidden);
        }
        let expected = s.version;
        if !s.expire(self.clock.now()) {
            return Err(AppError::Conflict {
                code: "silence_expired",
                message: "the silence has ended already".to_owned(),
            });
        }
        s.version += 1;
        self.store_silence(&s, expected).await?;
        tracing::info!(silence = %s.id, by, "silence expired");
        Ok(s)
    }
}
