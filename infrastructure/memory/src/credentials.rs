//! Password sign-in in memory: password hashes and sessions, with the SQL
//! backends' rules (an unknown user is not found, a refresh is a
//! compare-and-swap on the old hash, a revocation keeps its first time).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ordermon_domain::credential::{PasswordHash, RefreshHash, Session, StoredPassword};
use ordermon_domain::ids::{SessionId, UserId};
use ordermon_domain::ports::{CredentialRepository, StoreError};

use crate::MemoryStore;

fn user_not_found(user: &UserId) -> StoreError {
    StoreError::NotFound {
        entity: "user",
        id: user.to_string(),
    }
}

#[async_trait]
impl CredentialRepository for MemoryStore {
    async fn set_password_hash(
        &self,
        user: &UserId,
        hash: &PasswordHash,
        updated_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.with(|t| {
            if !t.users.contains_key(user) {
                return Err(user_not_found(user));
            }
            t.passwords.insert(
                user.clone(),
                StoredPassword {
                    user_id: user.clone(),
                    hash: hash.clone(),
                    updated_at,
                },
            );
            Ok(())
        })
    }

    async fn password_hash(&self, user: &UserId) -> Result<Option<StoredPassword>, StoreError> {
        Ok(self.with(|t| t.passwords.get(user).cloned()))
    }

    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        self.with(|t| {
            if !t.users.contains_key(&session.user_id) {
                return Err(user_not_found(&session.user_id));
            }
            if t.sessions.contains_key(&session.id) {
                return Err(StoreError::Duplicate {
                    entity: "session",
                    id: session.id.to_string(),
                });
            }
            t.sessions.insert(session.id, session.clone());
            Ok(())
        })
    }

    async fn get_session(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        Ok(self.with(|t| t.sessions.get(&id).cloned()))
    }

    async fn rotate_refresh_hash(
        &self,
        id: SessionId,
        old: &RefreshHash,
        new: &RefreshHash,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|t| match t.sessions.get_mut(&id) {
            Some(s) if s.revoked_at.is_none() && &s.refresh_hash == old => {
                s.refresh_hash = new.clone();
                s.last_used_at = at;
                true
            }
            _ => false,
        }))
    }

    async fn revoke_session(&self, id: SessionId, at: DateTime<Utc>) -> Result<bool, StoreError> {
        Ok(self.with(|t| match t.sessions.get_mut(&id) {
            Some(s) if s.revoked_at.is_none() => {
                s.revoked_at = Some(at);
                true
            }
            _ => false,
        }))
    }

    async fn revoke_user_sessions(
        &self,
        user: &UserId,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Ok(self.with(|t| {
            let mut n = 0;
            for s in t.sessions.values_mut() {
                if &s.user_id == user && s.is_live(at) {
                    s.revoked_at = Some(at);
                    n += 1;
                }
            }
            n
        }))
    }

    async fn live_sessions(
        &self,
        user: &UserId,
        at: DateTime<Utc>,
    ) -> Result<Vec<Session>, StoreError> {
        Ok(self.with(|t| {
            t.sessions
                .values()
                .rev()
                .filter(|s| &s.user_id == user && s.is_live(at))
                .take(crate::MAX_LIMIT as usize)
                .cloned()
                .collect()
        }))
    }

    async fn purge_sessions(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(self.with(|t| {
            let n = t.sessions.len();
            t.sessions.retain(|_, s| s.expires_at >= before);
            (n - t.sessions.len()) as u64
        }))
    }
}
