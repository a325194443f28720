//! Bearer tokens already verified, with what they said.
//!
//! Clients send the same token on every request until it expires; verifying
//! it (base64, HMAC-SHA256, two JSON documents) is a tenth of what a cached
//! `GET /api/v1/orders/{id}` costs the server. [`VerifiedTokens`] keeps the
//! outcome of each successful verification, so a token seen before costs a
//! hash look-up. Only successes are kept, and an entry is used only while the
//! token is still accepted (its `exp` plus the leeway): a hit gives exactly
//! the answer verification would give. What verification does not decide —
//! the user's status and revocations, the sign-in session — is still checked
//! on every request by the caller.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use parking_lot::RwLock;

use crate::auth::{AuthConfig, AuthError, Caller, verify_with_expiry};

/// Tokens kept at most; when full, the map starts over (the next request of
/// each client verifies its token again).
const CAPACITY: usize = 16_384;

/// Longest token kept (longer ones are verified every time).
const MAX_TOKEN_LEN: usize = 2048;

/// What verifying a token gave: its caller and when it stops being accepted.
type Verified = (Caller, DateTime<Utc>);

/// Verified bearer tokens of one [`AuthConfig`] (see the module docs).
#[derive(Default)]
pub struct VerifiedTokens {
    map: RwLock<HashMap<Box<str>, Verified>>,
}

impl std::fmt::Debug for VerifiedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keys are bearer tokens: never printed.
        f.debug_struct("VerifiedTokens")
            .field("len", &self.map.read().len())
            .finish()
    }
}

impl VerifiedTokens {
    /// An empty set.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// [`verify_with_expiry`] of `token` under `config`, from memory when
    /// this token was verified before and is still accepted. `config` must be
    /// the same for every call on one set (the server has one).
    ///
    /// # Errors
    /// As [`verify_with_expiry`].
    pub fn verify(&self, config: &AuthConfig, token: &str) -> Result<Verified, AuthError> {
        let stale = match self.map.read().get(token) {
            Some((caller, until)) if *until > Utc::now() => return Ok((caller.clone(), *until)),
            Some(_) => true,
            None => false,
        };
        let verified = verify_with_expiry(config, token);
        match &verified {
            Ok((caller, until)) if token.len() <= MAX_TOKEN_LEN => {
                let mut map = self.map.write();
                if map.len() >= CAPACITY {
                    map.clear();
                }
                map.insert(token.into(), (caller.clone(), *until));
            }
            Err(_) if stale => {
                // An expired entry goes; the error is verification's own.
                self.map.write().remove(token);
            }
            Ok(_) | Err(_) => {}
        }
        verified
    }

    /// Tokens held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.map.read().len()
    }

    /// True when none is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::mint_token;
    use ordermon_domain::user::Role;
    use secrecy::SecretString;

    fn token(c: &AuthConfig, sub: &str, role: Role) -> String {
        mint_token(c, sub, role, std::time::Duration::from_secs(60)).unwrap()
    }

    fn config() -> AuthConfig {
        AuthConfig::new(SecretString::from("verified-tokens-test-secret-0123456789"))
    }

    #[test]
    fn a_token_seen_again_gives_the_same_answer_from_memory() {
        let c = config();
        let tokens = VerifiedTokens::new();
        let t = token(&c, "alice", Role::Trader);
        let first = tokens.verify(&c, &t).unwrap();
        assert_eq!(tokens.len(), 1);
        assert_eq!(first, verify_with_expiry(&c, &t).unwrap());
        assert_eq!(tokens.verify(&c, &t).unwrap(), first);
        assert_eq!(tokens.len(), 1);
    }

    #[test]
    fn refusals_are_not_kept() {
        let c = config();
        let tokens = VerifiedTokens::new();
        let other = AuthConfig::new(SecretString::from("another-secret-entirely-0123456789"));
        let forged = token(&other, "alice", Role::Admin);
        assert_eq!(tokens.verify(&c, &forged), Err(AuthError::Invalid));
        assert_eq!(tokens.verify(&c, "not.a.jwt"), Err(AuthError::Invalid));
        assert!(tokens.is_empty());
    }

    #[test]
    fn an_expired_entry_is_not_used() {
        let c = config();
        let tokens = VerifiedTokens::new();
        let t = token(&c, "alice", Role::Trader);
        let (caller, _) = verify_with_expiry(&c, &t).unwrap();
        // As if it had been verified a while ago and has expired since.
        tokens.map.write().insert(
            t.as_str().into(),
            (caller, Utc::now() - chrono::Duration::seconds(1)),
        );
        let (_, until) = tokens.verify(&c, &t).unwrap();
        assert!(
            until > Utc::now(),
            "verified again, with the token's own expiry"
        );
    }

    #[test]
    fn a_full_set_starts_over() {
        let c = config();
        let tokens = VerifiedTokens::new();
        let (caller, until) = verify_with_expiry(&c, &token(&c, "alice", Role::Trader)).unwrap();
        {
            let mut map = tokens.map.write();
            for i in 0..CAPACITY {
                map.insert(format!("t{i}").into(), (caller.clone(), until));
            }
        }
        let t = token(&c, "bob", Role::Trader);
        tokens.verify(&c, &t).unwrap();
        assert_eq!(tokens.len(), 1);
    }
}
