//! Who may act through a token, as the database says: the token's user must
//! exist and be active, the token must not predate a revocation of the user's
//! tokens, and it acts with the lesser of its own role and the user's.
//!
//! The answer for a user is kept for a short time (`ttl`, a few seconds) so
//! a request costs a map look-up, not a database round trip; a change made
//! through this instance is seen at once ([`UserAccess::forget`]), a change
//! made elsewhere (another instance, plain SQL on `users.status`) within
//! `ttl`. Unknown users are remembered too, so a flood of tokens for a
//! subject that does not exist costs one read per `ttl`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ordermon_domain::ids::UserId;
use ordermon_domain::ports::{StoreError, UserRepository};
use ordermon_domain::user::{Role, TokenRefusal, User};

/// Users remembered at most; beyond it the expired ones are dropped first,
/// then everything (the next requests read again).
const MAX_ENTRIES: usize = 100_000;

/// Why a request's token may not act.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The user is unknown or disabled, or the token was revoked.
    #[error("{0}")]
    Refused(#[from] TokenRefusal),
    /// The user could not be read.
    #[error("could not read the user: {0}")]
    Store(#[from] StoreError),
}

/// The database's word on tokens, kept for `ttl`.
pub struct UserAccess {
    users: Arc<dyn UserRepository>,
    ttl: Duration,
    entries: Mutex<HashMap<UserId, Entry>>,
}

struct Entry {
    user: Option<Arc<User>>,
    read_at: Instant,
}

impl std::fmt::Debug for UserAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserAccess")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl UserAccess {
    /// Reads users from `users`, trusting an answer for `ttl` (zero: read on
    /// every request).
    #[must_use]
    pub fn new(users: Arc<dyn UserRepository>, ttl: Duration) -> Self {
        Self {
            users,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// How long an answer is trusted.
    #[must_use]
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The role a token minted for `claimed` and issued at `issued_at` (Unix
    /// seconds) acts with for `user`.
    ///
    /// # Errors
    /// [`AccessError::Refused`] for an unknown or disabled user or a revoked
    /// token; [`AccessError::Store`] when the user cannot be read.
    pub async fn admit(
        &self,
        user: &UserId,
        issued_at: i64,
        claimed: Role,
    ) -> Result<Role, AccessError> {
        let found = match self.remembered(user) {
            Some(found) => found,
            None => {
                let found = self.users.get_user(user).await?.map(Arc::new);
                self.remember(user, found.clone());
                found
            }
        };
        let found = found.ok_or(TokenRefusal::UnknownUser)?;
        Ok(found.admit_token(issued_at, claimed)?)
    }

    /// Drops what is remembered of `user` (after a change through this
    /// instance: its next request reads the user again).
    pub fn forget(&self, user: &UserId) {
        self.lock().remove(user);
    }

    fn remembered(&self, user: &UserId) -> Option<Option<Arc<User>>> {
        let entries = self.lock();
        let entry = entries.get(user)?;
        (entry.read_at.elapsed() < self.ttl).then(|| entry.user.clone())
    }

    fn remember(&self, user: &UserId, found: Option<Arc<User>>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            entries.retain(|_, e| e.read_at.elapsed() < ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(
            user.clone(),
            Entry {
                user: found,
                read_at: Instant::now(),
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests;
