//! Users: create, read, list and change them (status, role, limits, the
//! user's kill switch, token revocation), and read their log lines.

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use ordermon_domain::account::{Account, AccountType};
use ordermon_domain::event::{AccountEvent, DomainEvent, EventPayload, UserEvent};
use ordermon_domain::ids::UserId;
use ordermon_domain::ports::{ChangeSet, LogPage, ReservationWrite, StateChange, UserLogSink};
use ordermon_domain::risk::{RiskLimits, TradingState};
use ordermon_domain::user::{Role, User, UserStatus};
use serde::Deserialize;

use super::Core;
use crate::error::AppError;
use crate::owner::UserPatch;

/// The users use cases.
#[derive(Clone, Debug)]
pub struct UserService {
    pub(super) core: Core,
    /// Where per-user log lines are kept, once set.
    pub(super) logs: Arc<OnceLock<Arc<dyn UserLogSink>>>,
}

impl UserService {
    /// Creates a user and opens the account.
    ///
    /// # Errors
    /// Conflict when the id exists.
    #[tracing::instrument(skip_all, fields(user_id = %req.id), err)]
    pub async fn create(&self, req: CreateUser) -> Result<User, AppError> {
        let (user, cs) = new_user(req, self.core.ctx.clock.now())?;
        let id = user.id.clone();
        match self.core.ctx.committer.commit(cs).await {
            Ok(_) => {
                // An owner that answered "not found" earlier must not linger.
                self.core.owners.forget_ended(&id);
                Ok(user)
            }
            Err(ordermon_domain::ports::StoreError::Conflict { .. })
            | Err(ordermon_domain::ports::StoreError::Duplicate { .. }) => {
                Err(AppError::Conflict {
                    code: "user_exists",
                    message: format!("user {id} already exists"),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// One user.
    ///
    /// # Errors
    /// NotFound.
    pub async fn get(&self, id: &UserId) -> Result<User, AppError> {
        let (users, key) = (self.core.ctx.persistence.users.clone(), id.clone());
        self.core
            .cache
            .user(id, || async move { Ok(users.get_user(&key).await?) })
            .await?
            .ok_or(AppError::NotFound("user"))
    }

    /// Users by id after a cursor.
    ///
    /// # Errors
    /// Store failures.
    pub async fn list(&self, after: Option<&UserId>, limit: u32) -> Result<Vec<User>, AppError> {
        Ok(self
            .core
            .ctx
            .persistence
            .users
            .list_users(after, limit)
            .await?)
    }

    /// Changes a user's status, limits or kill switch.
    ///
    /// # Errors
    /// NotFound, or the store failing.
    #[tracing::instrument(skip_all, fields(user_id = %id), err)]
    pub async fn update(&self, id: &UserId, patch: UserPatch) -> Result<User, AppError> {
        self.core.update_user(id, patch).await
    }

    /// One user's log lines of one day.
    ///
    /// # Errors
    /// Unavailable when no log sink is configured or it fails.
    pub async fn log(
        &self,
        user: &UserId,
        date: chrono::NaiveDate,
        from: u64,
        limit: usize,
    ) -> Result<LogPage, AppError> {
        let sink =
            self.logs.get().cloned().ok_or_else(|| {
                AppError::Unavailable("per-user logs are not configured".to_owned())
            })?;
        let user = user.clone();
        // File reads stay off the async workers.
        tokio::task::spawn_blocking(move || sink.read_page(&user, date, from, limit))
            .await
            .map_err(|e| AppError::Unexpected(e.to_string()))?
            .map_err(|e| AppError::Unavailable(e.to_string()))
    }
}

/// `POST /api/v1/users`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Id.
    pub id: UserId,
    /// Display name.
    pub name: String,
    /// Monitored or not (default active).
    #[serde(default)]
    pub status: UserStatus,
    /// Role (default trader).
    #[serde(default)]
    pub role: Role,
    /// Cash or margin (default cash).
    #[serde(default)]
    pub account_type: AccountType,
    /// Limits (default none).
    #[serde(default)]
    pub limits: RiskLimits,
}

/// A new user, its empty account and their `created`/`opened` events, as the
/// change set that stores them (the engine commits it; so does
/// `monitor-server token --create` against a database the server is not
/// running on).
///
/// # Errors
/// A name that is empty or longer than 200 characters.
pub fn new_user(req: CreateUser, now: DateTime<Utc>) -> Result<(User, ChangeSet), AppError> {
    if req.name.trim().is_empty() || req.name.chars().count() > 200 {
        return Err(AppError::field("name", "must be 1-200 characters"));
    }
    let user = User {
        id: req.id.clone(),
        name: req.name,
        status: req.status,
        role: req.role,
        account_type: req.account_type,
        limits: req.limits,
        trading_state: TradingState::Active,
        created_at: now,
        updated_at: now,
        version: 1,
        sequence: 1,
        tokens_valid_after: None,
    };
    let mut account = Account::new(req.id.clone(), req.account_type);
    account.version = 1;
    account.sequence = 1;
    let mut cs = ChangeSet::default();
    cs.changes.push(StateChange::User {
        user: Box::new(user.clone()),
        expected: 0,
    });
    cs.changes.push(StateChange::Account {
        account: Box::new(account),
        expected: 0,
        reservations: ReservationWrite::All,
    });
    let events = [
        DomainEvent::new(
            req.id.to_string(),
            1,
            Some(req.id.clone()),
            now,
            None,
            EventPayload::User(UserEvent::Created {
                user: Box::new(user.clone()),
            }),
        ),
        DomainEvent::new(
            req.id.to_string(),
            1,
            Some(req.id.clone()),
            now,
            None,
            EventPayload::Account(AccountEvent::Opened {
                account_type: req.account_type,
            }),
        ),
    ];
    cs.push_events(events)
        .map_err(|e| AppError::Unexpected(e.to_string()))?;
    Ok((user, cs))
}
