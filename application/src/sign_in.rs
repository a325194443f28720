//! Password sign-in: set a user's password, sign in with it, refresh, sign
//! out — the use cases behind `POST /api/v1/auth/*`. A service of its own,
//! wired by the composition root beside the engine.
//!
//! - **Passwords** are argon2id hashes (PHC strings), hashed and verified on
//!   the blocking pool ([`password`]). A new password must be 10 to 1024
//!   characters; setting one revokes the user's sessions.
//! - **Signing in** answers the same [`SignInError::InvalidCredentials`] for
//!   an unknown user, a disabled one, one without a password and a wrong
//!   password, and verifies a password against some hash in every case, so
//!   neither the answer nor its timing tells them apart. Attempts are limited
//!   per account and per client address ([`limits`]); a refused attempt is
//!   not checked at all.
//! - **Sessions**: a sign-in creates a session and hands out a refresh token
//!   `<session id>.<secret>` ([`token`]); the store keeps the SHA-256 of the
//!   secret. Each refresh replaces the secret (compare-and-swap on the old
//!   hash). A secret that does not match a live session's current one — an
//!   old, already rotated one, or one raced by a concurrent refresh — means
//!   two parties hold the token: the session is revoked. The session's
//!   expiry is fixed at sign-in: refreshing does not extend it.
//! - **Access tokens** are the HTTP adapter's short-lived JWTs naming the
//!   session; [`SignInService::is_revoked`] answers from the sessions revoked
//!   on this instance ([`revoked`]) so a signed-out token stops working here
//!   at once.
//!
//! Passwords, refresh tokens and hashes appear in no error, log line or
//! `Debug` output.

mod limits;
pub(crate) use limits::client_key;
pub mod password;
mod revoked;
mod token;

#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ordermon_domain::credential::Session;
use ordermon_domain::ids::{SessionId, UserId};
use ordermon_domain::ports::{Clock, CredentialRepository, StoreError, UserRepository};
use ordermon_domain::user::{Role, User, UserStatus};

use crate::persistence::Persistence;
use limits::AttemptLimits;
use password::{DUMMY_HASH, Hasher};
use revoked::RevokedSessions;

pub use password::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, PasswordPolicyError, check_policy};
pub use token::RefreshToken;

/// Sign-in settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInConfig {
    /// How long an access token is valid (default 15 minutes).
    pub access_ttl: Duration,
    /// How long a session, and so its refresh token, lives from sign-in
    /// (default 12 hours).
    pub refresh_ttl: Duration,
    /// Sign-in attempts per account per minute (default 5).
    pub attempts_per_account_per_minute: u32,
    /// Sign-in attempts per client address per minute (default 30).
    pub attempts_per_ip_per_minute: u32,
}

impl Default for SignInConfig {
    fn default() -> Self {
        Self {
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(12 * 3600),
            attempts_per_account_per_minute: 5,
            attempts_per_ip_per_minute: 30,
        }
    }
}

/// Why a sign-in use case failed. No variant carries a password, a token or
/// a hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignInError {
    /// Unknown user, disabled user, no password set, or a wrong password —
    /// deliberately one answer (HTTP 401).
    #[error("invalid user id or password")]
    InvalidCredentials,
    /// Too many attempts for the account or the address (HTTP 429).
    #[error("too many sign-in attempts; retry after {} s", retry_after_secs(*.retry_after))]
    RateLimited {
        /// How long to wait.
        retry_after: Duration,
    },
    /// Malformed, unknown, expired, revoked or reused refresh token, or its
    /// user is disabled (HTTP 401).
    #[error("invalid or expired refresh token")]
    InvalidRefreshToken,
    /// The new password breaks the policy (HTTP 422).
    #[error("password {0}")]
    Policy(#[from] PasswordPolicyError),
    /// No such user (HTTP 404; setting a password only).
    #[error("user not found")]
    UnknownUser,
    /// The store is unreachable (HTTP 503).
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected store answer (HTTP 500).
    #[error("unexpected error: {0}")]
    Unexpected(String),
}

/// Whole seconds to wait, rounded up and at least 1 (for `Retry-After`).
#[must_use]
pub fn retry_after_secs(d: Duration) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(1)
}

impl From<StoreError> for SignInError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => Self::Unavailable(m),
            other => Self::Unexpected(other.to_string()),
        }
    }
}

/// A successful sign-in or refresh.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// Who.
    pub user_id: UserId,
    /// Their display name.
    pub name: String,
    /// Their role now (an access token carries it).
    pub role: Role,
    /// The session (the access token's `sid`).
    pub session_id: SessionId,
    /// The refresh token to hand to the client (replaces any earlier one).
    pub refresh_token: RefreshToken,
    /// When the session, and so the refresh token, expires.
    pub refresh_expires_at: DateTime<Utc>,
    /// How long the access token to mint is valid.
    pub access_ttl: Duration,
}

/// The sign-in use cases over the user and credential ports.
pub struct SignInService {
    users: Arc<dyn UserRepository>,
    credentials: Arc<dyn CredentialRepository>,
    clock: Arc<dyn Clock>,
    config: SignInConfig,
    hasher: Hasher,
    limits: AttemptLimits,
    revoked: RevokedSessions,
}

impl std::fmt::Debug for SignInService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInService")
            .field("config", &self.config)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl SignInService {
    /// The service over `persistence`'s users and credentials. At most one
    /// hash per core runs at once.
    #[must_use]
    pub fn new(persistence: &Persistence, clock: Arc<dyn Clock>, config: SignInConfig) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Self {
            users: persistence.users.clone(),
            credentials: persistence.credentials.clone(),
            clock,
            config,
            hasher: Hasher::new(cores),
            limits: AttemptLimits::new(
                config.attempts_per_account_per_minute,
                config.attempts_per_ip_per_minute,
            ),
            revoked: RevokedSessions::new(config.access_ttl),
        }
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &SignInConfig {
        &self.config
    }

    /// How long the access tokens to mint are valid.
    #[must_use]
    pub fn access_ttl(&self) -> Duration {
        self.config.access_ttl
    }

    /// Sets (or replaces) a user's password and revokes every session of
    /// theirs, so whoever knew the old one is signed out.
    ///
    /// # Errors
    /// [`SignInError::Policy`] for a password outside the policy,
    /// [`SignInError::UnknownUser`], or a store failure.
    #[tracing::instrument(skip_all, fields(user_id = %user))]
    pub async fn set_password(&self, user: &UserId, password: &str) -> Result<(), SignInError> {
        check_policy(password)?;
        if self.users.get_user(user).await?.is_none() {
            return Err(SignInError::UnknownUser);
        }
        let hash = self.hasher.hash(password).await?;
        let now = self.clock.now();
        match self.credentials.set_password_hash(user, &hash, now).await {
            Err(StoreError::NotFound { .. }) => return Err(SignInError::UnknownUser),
            other => other?,
        }
        let signed_out = self.revoke_all(user, now).await?;
        tracing::info!(revoked_sessions = signed_out, "password set");
        Ok(())
    }

    /// Signs `user_id` in with `password` from `client` (the peer address;
    /// attempts are limited per account and per address).
    ///
    /// # Errors
    /// [`SignInError::RateLimited`] (the password is not checked),
    /// [`SignInError::InvalidCredentials`], or a store failure.
    #[tracing::instrument(skip_all)]
    pub async fn login(
        &self,
        user_id: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<SignedIn, SignInError> {
        // A name that is no valid id belongs to no one; it is still counted
        // against the address and still costs a verification.
        let id = UserId::new(user_id).ok();
        if let Err(limited) = self.limits.check(id.as_ref(), client) {
            tracing::info!(
                user_id = id.as_ref().map(UserId::as_str),
                "sign-in attempt refused: too many attempts"
            );
            return Err(SignInError::RateLimited {
                retry_after: limited.retry_after,
            });
        }
        let (user, stored) = match &id {
            Some(id) => {
                let (user, stored) =
                    tokio::join!(self.users.get_user(id), self.credentials.password_hash(id));
                (user?, stored?)
            }
            None => (None, None),
        };
        // One verification on every path: against the user's hash when
        // there is one, else against a hash that matches nothing.
        let hash = stored.as_ref().map_or(DUMMY_HASH, |s| s.hash.expose());
        let matches = self.hasher.verify(hash, password).await? && stored.is_some();
        let user = match user {
            Some(u) if matches && u.status == UserStatus::Active => u,
            other => {
                let why = match (&other, stored.is_some(), matches) {
                    (None, _, _) => "unknown user",
                    (Some(_), false, _) => "no password set",
                    (Some(_), true, false) => "wrong password",
                    (Some(_), true, true) => "user disabled",
                };
                tracing::info!(
                    user_id = id.as_ref().map(UserId::as_str),
                    reason = why,
                    "sign-in refused"
                );
                return Err(SignInError::InvalidCredentials);
            }
        };
        let signed_in = self.open_session(user).await?;
        tracing::info!(user_id = %signed_in.user_id, session_id = %signed_in.session_id, "signed in");
        Ok(signed_in)
    }

    /// Exchanges a refresh token for a new one (and the facts to mint a new
    /// access token). A token whose secret is not the session's current one
    /// revokes the session: someone else refreshed with it first.
    ///
    /// # Errors
    /// [`SignInError::InvalidRefreshToken`], or a store failure.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, refresh_token: &str) -> Result<SignedIn, SignInError> {
        let (id, presented) =
            token::parse(refresh_token).ok_or(SignInError::InvalidRefreshToken)?;
        let now = self.clock.now();
        let session = match self.credentials.get_session(id).await? {
            Some(s) if s.is_live(now) => s,
            _ => return Err(SignInError::InvalidRefreshToken),
        };
        if !token::same(&presented, &session.refresh_hash) {
            self.revoke(id, now).await?;
            tracing::warn!(
                user_id = %session.user_id, session_id = %id,
                "a replaced refresh token was presented again; the session is revoked"
            );
            return Err(SignInError::InvalidRefreshToken);
        }
        // A session opened before the user's tokens were revoked is revoked
        // with them: its refresh token would otherwise mint new ones.
        let user = match self.users.get_user(&session.user_id).await? {
            Some(u)
                if u.status == UserStatus::Active
                    && u.tokens_valid_after.is_none_or(|t| session.created_at > t) =>
            {
                u
            }
            _ => {
                self.revoke(id, now).await?;
                return Err(SignInError::InvalidRefreshToken);
            }
        };
        let (refresh_token, next) = RefreshToken::generate(id);
        if !self
            .credentials
            .rotate_refresh_hash(id, &presented, &next, now)
            .await?
        {
            // Matched a moment ago, gone now: a concurrent refresh (or a
            // revocation) won. Two users of one token is the theft case.
            self.revoke(id, now).await?;
            tracing::warn!(
                user_id = %session.user_id, session_id = %id,
                "a refresh token was used twice at once; the session is revoked"
            );
            return Err(SignInError::InvalidRefreshToken);
        }
        Ok(SignedIn {
            user_id: user.id,
            name: user.name,
            role: user.role,
            session_id: id,
            refresh_token,
            refresh_expires_at: session.expires_at,
            access_ttl: self.config.access_ttl,
        })
    }

    /// Signs a session out: its refresh token stops working everywhere, its
    /// access tokens at once on this instance. Unknown or already revoked
    /// sessions are fine.
    ///
    /// # Errors
    /// A store failure.
    #[tracing::instrument(skip_all, fields(session_id = %session))]
    pub async fn logout(&self, session: SessionId) -> Result<(), SignInError> {
        self.revoke(session, self.clock.now()).await
    }

    /// True when `session` was revoked on this instance within the access
    /// token lifetime (its access tokens must be refused).
    #[must_use]
    pub fn is_revoked(&self, session: SessionId) -> bool {
        self.revoked.contains(session, self.clock.now())
    }

    /// Deletes sessions that expired before `before` (retention); returns
    /// how many went.
    ///
    /// # Errors
    /// A store failure.
    pub async fn purge_expired(&self, before: DateTime<Utc>) -> Result<u64, SignInError> {
        Ok(self.credentials.purge_sessions(before).await?)
    }

    async fn open_session(&self, user: User) -> Result<SignedIn, SignInError> {
        let now = self.clock.now();
        let id = SessionId::generate();
        let (refresh_token, hash) = RefreshToken::generate(id);
        let ttl = chrono::Duration::from_std(self.config.refresh_ttl)
            .map_err(|_| SignInError::Unexpected("refresh_ttl out of range".to_owned()))?;
        let session = Session {
            id,
            user_id: user.id.clone(),
            refresh_hash: hash,
            created_at: now,
            expires_at: now + ttl,
            revoked_at: None,
            last_used_at: now,
        };
        self.credentials.create_session(&session).await?;
        Ok(SignedIn {
            user_id: user.id,
            name: user.name,
            role: user.role,
            session_id: id,
            refresh_token,
            refresh_expires_at: session.expires_at,
            access_ttl: self.config.access_ttl,
        })
    }

    async fn revoke(&self, session: SessionId, now: DateTime<Utc>) -> Result<(), SignInError> {
        // Here first: even if the store fails, this instance refuses it.
        self.revoked.insert([session], now);
        self.credentials.revoke_session(session, now).await?;
        Ok(())
    }

    async fn revoke_all(&self, user: &UserId, now: DateTime<Utc>) -> Result<u64, SignInError> {
        let live = self.credentials.live_sessions(user, now).await?;
        self.revoked.insert(live.iter().map(|s| s.id), now);
        Ok(self.credentials.revoke_user_sessions(user, now).await?)
    }
}
