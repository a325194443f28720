//! Passwords: the policy a new password must meet, and argon2id hashing and
//! verification off the async runtime.
//!
//! Hashing is deliberately slow (argon2id with the crate's defaults, the
//! OWASP minimum: 19 MiB, 2 passes, 1 lane — tens of milliseconds and 19 MiB
//! each), so it runs on the blocking pool, and a semaphore bounds how many
//! run at once: a burst of sign-ins queues instead of taking the memory of
//! hundreds of hashes at a time.

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Argon2, PasswordHash as Phc};
use ordermon_domain::credential::PasswordHash;
use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretSlice};
use tokio::sync::Semaphore;

use super::SignInError;

/// The fewest characters a password may have.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// The most characters a password may have.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// An argon2id PHC string that matches no password, with the default
/// parameters: verifying against it costs what verifying a real hash costs,
/// so an unknown user, or one without a password, takes as long to refuse as
/// a wrong password. (A test checks its parameters are the defaults.)
pub(crate) const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$b3JkZXJtb24tZHVtbXktc2FsdA$Bhq2UUSrvo1gWqIFXc6qUwHpq+r7ReMBtjgLj1qixJk";

/// Why a new password was refused. The messages name the rule, never the
/// password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordPolicyError {
    /// Fewer than [`MIN_PASSWORD_CHARS`] characters.
    #[error("must be at least {min} characters")]
    TooShort {
        /// The minimum.
        min: usize,
    },
    /// More than [`MAX_PASSWORD_CHARS`] characters.
    #[error("must be at most {max} characters")]
    TooLong {
        /// The maximum.
        max: usize,
    },
}

/// Checks a new password against the policy: 10 to 1024 characters (Unicode
/// scalar values; any characters, so a passphrase is fine).
///
/// # Errors
/// [`PasswordPolicyError`] naming the rule it breaks.
pub fn check_policy(password: &str) -> Result<(), PasswordPolicyError> {
    // Counting stops past the maximum: a huge body costs no more than that.
    let chars = password.chars().take(MAX_PASSWORD_CHARS + 1).count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PasswordPolicyError::TooShort {
            min: MIN_PASSWORD_CHARS,
        });
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(PasswordPolicyError::TooLong {
            max: MAX_PASSWORD_CHARS,
        });
    }
    Ok(())
}

/// Hashes and verifies on the blocking pool, a bounded number at a time.
#[derive(Debug, Clone)]
pub(crate) struct Hasher {
    permits: Arc<Semaphore>,
}

impl Hasher {
    /// At most `concurrent` hashes at once (at least 1).
    pub(crate) fn new(concurrent: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrent.max(1))),
        }
    }

    /// Runs `f` on the blocking pool once a permit is free.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, SignInError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| SignInError::Unexpected("the password hasher is closed".to_owned()))?;
        tokio::task::spawn_blocking(move || {
            let out = f();
            drop(permit);
            out
        })
        .await
        .map_err(|e| SignInError::Unexpected(format!("password hashing task failed: {e}")))
    }

    /// An argon2id hash of `password` with a fresh 128-bit salt.
    pub(crate) async fn hash(&self, password: &str) -> Result<PasswordHash, SignInError> {
        let password = Secret::new(password);
        let phc = self
            .run(move || {
                let mut salt = [0u8; 16];
                rand::rng().fill_bytes(&mut salt);
                let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
                Argon2::default()
                    .hash_password(password.bytes(), &salt)
                    .map(|h| h.to_string())
                    .map_err(|e| e.to_string())
            })
            .await?
            .map_err(|e| SignInError::Unexpected(format!("hashing a password failed: {e}")))?;
        PasswordHash::new(phc)
            .map_err(|e| SignInError::Unexpected(format!("argon2 gave no PHC string: {e}")))
    }

    /// True when `password` matches `hash` (a hash that does not parse
    /// matches nothing).
    pub(crate) async fn verify(&self, hash: &str, password: &str) -> Result<bool, SignInError> {
        let (hash, password) = (hash.to_owned(), Secret::new(password));
        self.run(move || {
            Phc::new(&hash).is_ok_and(|phc| {
                Argon2::default()
                    .verify_password(password.bytes(), &phc)
                    .is_ok()
            })
        })
        .await
    }
}

/// A copy of a password for the blocking pool, wiped when dropped.
struct Secret(SecretSlice<u8>);

impl Secret {
    fn new(s: &str) -> Self {
        Self(SecretSlice::from(s.as_bytes().to_vec()))
    }

    fn bytes(&self) -> &[u8] {
        self.0.expose_secret()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_counts_characters() {
        assert_eq!(
            check_policy("short"),
            Err(PasswordPolicyError::TooShort { min: 10 })
        );
        assert!(check_policy("ten chars!").is_ok());
        // Ten characters, more than ten bytes.
        assert!(check_policy("pässwörtéé").is_ok());
        assert!(check_policy(&"x".repeat(1024)).is_ok());
        assert_eq!(
            check_policy(&"x".repeat(1025)),
            Err(PasswordPolicyError::TooLong { max: 1024 })
        );
        let e = check_policy("hunter2").unwrap_err().to_string();
        assert!(!e.contains("hunter2"));
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        let phc = Phc::new(DUMMY_HASH).unwrap();
        let params = argon2::Params::try_from(&phc).unwrap();
        let defaults = argon2::Params::default();
        assert_eq!(phc.algorithm, argon2::Algorithm::Argon2id.ident());
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (defaults.m_cost(), defaults.t_cost(), defaults.p_cost())
        );
    }

    #[tokio::test]
    async fn hashes_verify_and_differ_by_salt() {
        let h = Hasher::new(2);
        let a = h.hash("correct horse battery").await.unwrap();
        let b = h.hash("correct horse battery").await.unwrap();
        assert_ne!(a, b, "a fresh salt each time");
        assert!(a.expose().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(h.verify(a.expose(), "correct horse battery").await.unwrap());
        assert!(!h.verify(a.expose(), "correct horse batterY").await.unwrap());
        assert!(
            !h.verify("not a hash", "correct horse battery")
                .await
                .unwrap()
        );
        assert!(!h.verify(DUMMY_HASH, "correct horse battery").await.unwrap());
    }
}
