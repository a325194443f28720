//! Password sign-in over SQL: `user_credentials` (one PHC hash per user) and
//! `auth_sessions`, plain columns written one statement at a time outside the
//! batch machinery (credentials have no events and no versions).
//!
//! Inserts select from `users`, so an unknown user writes nothing and is
//! reported as not found on every dialect alike (the foreign keys stay as a
//! last guard). A refresh is a compare-and-swap on the old hash in the
//! `UPDATE`'s `WHERE`, so of two refreshes with one secret only one wins.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ordermon_domain::credential::{PasswordHash, RefreshHash, Session, StoredPassword};
use ordermon_domain::ids::{SessionId, UserId};
use ordermon_domain::ports::{CredentialRepository, StoreError};

use crate::conn::{Cell, Kind, Val};
use crate::decode::{corrupt, parsed, text, ts, uuid};
use crate::store::SqlStore;
use crate::url::Dialect;

const SESSION_COLUMNS: &str =
    "id, user_id, refresh_hash, created_at, expires_at, revoked_at, last_used_at";

const SESSION_KINDS: [Kind; 7] = [
    Kind::Uuid,
    Kind::Text,
    Kind::Text,
    Kind::Ts,
    Kind::Ts,
    Kind::Ts,
    Kind::Ts,
];

/// Most sessions [`CredentialRepository::live_sessions`] returns.
const LIVE_SESSIONS_MAX: i64 = 10_000;

fn user_not_found(user: &UserId) -> StoreError {
    StoreError::NotFound {
        entity: "user",
        id: user.to_string(),
    }
}

fn opt_ts(row: &[Cell], i: usize) -> Result<Option<DateTime<Utc>>, StoreError> {
    match row.get(i) {
        Some(Cell::Null) => Ok(None),
        _ => ts(row, i).map(Some),
    }
}

fn session(row: &[Cell]) -> Result<Session, StoreError> {
    Ok(Session {
        id: SessionId::from_uuid(uuid(row, 0)?)
            .map_err(|e| corrupt(format!("bad stored session id: {e}")))?,
        user_id: parsed(row, 1, "user id")?,
        // No value in the message: even a malformed hash stays out of logs.
        refresh_hash: RefreshHash::new(text(row, 2)?.trim_end())
            .map_err(|_| corrupt("bad stored refresh hash"))?,
        created_at: ts(row, 3)?,
        expires_at: ts(row, 4)?,
        revoked_at: opt_ts(row, 5)?,
        last_used_at: ts(row, 6)?,
    })
}

impl SqlStore {
    async fn user_exists(&self, user: &UserId) -> Result<bool, StoreError> {
        let rows = self
            .fetch(
                "SELECT id FROM users WHERE id = ?",
                vec![Val::text(user)],
                &[Kind::Text],
            )
            .await?;
        Ok(!rows.is_empty())
    }
}

#[async_trait]
impl CredentialRepository for SqlStore {
    async fn set_password_hash(
        &self,
        user: &UserId,
        hash: &PasswordHash,
        updated_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let upsert = match self.dialect() {
            Dialect::Sqlite | Dialect::Postgres => {
                " ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash, \
                 updated_at = excluded.updated_at"
            }
            Dialect::MySql => {
                " ON DUPLICATE KEY UPDATE password_hash = VALUES(password_hash), \
                 updated_at = VALUES(updated_at)"
            }
        };
        let sql = format!(
            "INSERT INTO user_credentials (user_id, password_hash, updated_at) \
             SELECT ?, ?, ? FROM users WHERE id = ?{upsert}"
        );
        let args = vec![
            Val::text(user),
            Val::text(hash.expose()),
            Val::Ts(updated_at),
            Val::text(user),
        ];
        let written = self.exec_each(&[(sql, args)]).await?;
        // MySQL counts an update that changes nothing as 0 rows: ask whether
        // the user is there before calling it unknown.
        if written == 0 && !self.user_exists(user).await? {
            return Err(user_not_found(user));
        }
        Ok(())
    }

    async fn password_hash(&self, user: &UserId) -> Result<Option<StoredPassword>, StoreError> {
        let sql = "SELECT user_id, password_hash, updated_at FROM user_credentials \
                   WHERE user_id = ?";
        let rows = self
            .fetch(
                sql,
                vec![Val::text(user)],
                &[Kind::Text, Kind::Text, Kind::Ts],
            )
            .await?;
        rows.first()
            .map(|r| {
                Ok(StoredPassword {
                    user_id: parsed(r, 0, "user id")?,
                    hash: PasswordHash::new(text(r, 1)?)
                        .map_err(|_| corrupt("bad stored password hash"))?,
                    updated_at: ts(r, 2)?,
                })
            })
            .transpose()
    }

    async fn create_session(&self, s: &Session) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO auth_sessions ({SESSION_COLUMNS}) \
             SELECT ?, ?, ?, ?, ?, ?, ? FROM users WHERE id = ?"
        );
        let args = vec![
            Val::Uuid(s.id.as_uuid()),
            Val::text(&s.user_id),
            Val::text(s.refresh_hash.expose()),
            Val::Ts(s.created_at),
            Val::Ts(s.expires_at),
            Val::OptTs(s.revoked_at),
            Val::Ts(s.last_used_at),
            Val::text(&s.user_id),
        ];
        match self.exec_each(&[(sql, args)]).await {
            Ok(0) => Err(user_not_found(&s.user_id)),
            Ok(_) => Ok(()),
            Err(StoreError::Duplicate { .. }) => Err(StoreError::Duplicate {
                entity: "session",
                id: s.id.to_string(),
            }),
            Err(e) => Err(e),
        }
    }

    async fn get_session(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM auth_sessions WHERE id = ?");
        let rows = self
            .fetch(&sql, vec![Val::Uuid(id.as_uuid())], &SESSION_KINDS)
            .await?;
        rows.first().map(|r| session(r)).transpose()
    }

    async fn rotate_refresh_hash(
        &self,
        id: SessionId,
        old: &RefreshHash,
        new: &RefreshHash,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE auth_sessions SET refresh_hash = ?, last_used_at = ? \
                   WHERE id = ? AND refresh_hash = ? AND revoked_at IS NULL"
            .to_owned();
        let args = vec![
            Val::text(new.expose()),
            Val::Ts(at),
            Val::Uuid(id.as_uuid()),
            Val::text(old.expose()),
        ];
        Ok(self.exec_each(&[(sql, args)]).await? == 1)
    }

    async fn revoke_session(&self, id: SessionId, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let sql = "UPDATE auth_sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"
            .to_owned();
        let args = vec![Val::Ts(at), Val::Uuid(id.as_uuid())];
        Ok(self.exec_each(&[(sql, args)]).await? == 1)
    }

    async fn revoke_user_sessions(
        &self,
        user: &UserId,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let sql = "UPDATE auth_sessions SET revoked_at = ? \
                   WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ?"
            .to_owned();
        let args = vec![Val::Ts(at), Val::text(user), Val::Ts(at)];
        self.exec_each(&[(sql, args)]).await
    }

    async fn live_sessions(
        &self,
        user: &UserId,
        at: DateTime<Utc>,
    ) -> Result<Vec<Session>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM auth_sessions \
             WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? \
             ORDER BY id DESC LIMIT ?"
        );
        let args = vec![Val::text(user), Val::Ts(at), Val::Int(LIVE_SESSIONS_MAX)];
        let rows = self.fetch(&sql, args, &SESSION_KINDS).await?;
        rows.iter().map(|r| session(r)).collect()
    }

    async fn purge_sessions(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let sql = "DELETE FROM auth_sessions WHERE expires_at < ?".to_owned();
        self.exec_each(&[(sql, vec![Val::Ts(before)])]).await
    }
}
