//! Password sign-in as stored: one password hash per user and the sign-in
//! sessions that refresh tokens name.
//!
//! The domain only keeps strings: hashing (argon2id for passwords, SHA-256 for
//! refresh secrets) and random secrets belong to the application, which alone
//! sees a password or a refresh secret. What is stored is still secret enough
//! that it must not leak, so the hash types print as `[REDACTED]` in `Debug`
//! and have no `Display`. [`redact_url`] masks the passwords of connection
//! URLs (databases, brokers, Redis) wherever one is printed.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::ids::{SessionId, UserId};

/// Why a stored credential value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// Not a PHC string (`$algorithm$…`), or longer than any sane one.
    #[error("a password hash must be a PHC string of at most {max} characters")]
    NotPhc {
        /// The longest accepted.
        max: usize,
    },
    /// Not 64 lowercase hexadecimal digits.
    #[error("a refresh hash must be 64 lowercase hexadecimal digits (SHA-256)")]
    NotSha256Hex,
}

/// A password hash in PHC string format (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
/// The constructor checks the shape only; which algorithm produced it is the
/// application's business.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// The longest PHC string accepted (argon2id with default parameters is
    /// about 100 characters).
    pub const MAX_LEN: usize = 512;

    /// Wraps a PHC string.
    ///
    /// # Errors
    /// [`CredentialError::NotPhc`] when it does not start with `$`, holds
    /// characters outside printable ASCII, or is too long.
    pub fn new(phc: impl Into<String>) -> Result<Self, CredentialError> {
        let phc = phc.into();
        let printable = phc.bytes().all(|b| b.is_ascii_graphic());
        if phc.len() < 2 || !phc.starts_with('$') || !printable || phc.len() > Self::MAX_LEN {
            return Err(CredentialError::NotPhc { max: Self::MAX_LEN });
        }
        Ok(Self(phc))
    }

    /// The PHC string (to verify a password against, or to store).
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash([REDACTED])")
    }
}

/// The SHA-256 of a refresh secret, as 64 lowercase hex digits. Only the hash
/// is stored: a database dump does not hand out live refresh tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshHash(String);

impl RefreshHash {
    /// Wraps a hex digest.
    ///
    /// # Errors
    /// [`CredentialError::NotSha256Hex`] for anything but 64 lowercase hex digits.
    pub fn new(hex: impl Into<String>) -> Result<Self, CredentialError> {
        let hex = hex.into();
        let ok = hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !ok {
            return Err(CredentialError::NotSha256Hex);
        }
        Ok(Self(hex))
    }

    /// The hex digest.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RefreshHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshHash([REDACTED])")
    }
}

/// A user's stored password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPassword {
    /// Whose.
    pub user_id: UserId,
    /// The PHC hash.
    pub hash: PasswordHash,
    /// When it was last set.
    pub updated_at: DateTime<Utc>,
}

/// One password sign-in: what a refresh token names. Its expiry is fixed at
/// sign-in (refreshing rotates the secret, it does not extend the session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The session (also the `sid` claim of its access tokens).
    pub id: SessionId,
    /// Who signed in.
    pub user_id: UserId,
    /// The SHA-256 of the current refresh secret.
    pub refresh_hash: RefreshHash,
    /// When the user signed in.
    pub created_at: DateTime<Utc>,
    /// After this the refresh token is refused.
    pub expires_at: DateTime<Utc>,
    /// When it was revoked (logout, a new password, a reused refresh token).
    pub revoked_at: Option<DateTime<Utc>>,
    /// The last sign-in or refresh.
    pub last_used_at: DateTime<Utc>,
}

impl Session {
    /// True when the session may still be refreshed at `now`: not revoked
    /// and not expired.
    #[must_use]
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// The mask put where a secret was.
pub const MASK: &str = "[REDACTED]";

/// Query parameters whose values are secrets.
const SECRET_PARAMS: [&str; 5] = ["password", "pass", "pwd", "sslpassword", "secret"];

/// Returns `url` with any password replaced by `[REDACTED]`: the one in the user
/// info (`scheme://user:secret@host`) and those of `password=`-like query
/// parameters. Everything else is kept so the URL still says where it points.
#[must_use]
pub fn redact_url(url: &str) -> String {
    let (head, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    // The authority ends at the first '/', '?' or '#'.
    let auth_end = if head.is_empty() {
        0
    } else {
        rest.find(['/', '?', '#']).unwrap_or(rest.len())
    };
    let (authority, tail) = rest.split_at(auth_end);
    let mut out = String::with_capacity(url.len());
    out.push_str(head);
    match authority.rfind('@') {
        Some(at) => {
            let (userinfo, host) = authority.split_at(at);
            match userinfo.split_once(':') {
                Some((user, _password)) => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(MASK);
                }
                None => out.push_str(userinfo),
            }
            out.push_str(host);
        }
        None => out.push_str(authority),
    }
    out.push_str(&redact_query(tail));
    out
}

/// Masks the values of secret query parameters in `?a=b&password=c#frag`.
fn redact_query(tail: &str) -> String {
    let Some(q) = tail.find('?') else {
        return tail.to_owned();
    };
    let (path, query_and_fragment) = tail.split_at(q + 1);
    let (query, fragment) = match query_and_fragment.find('#') {
        Some(h) => query_and_fragment.split_at(h),
        None => (query_and_fragment, ""),
    };
    let params: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if SECRET_PARAMS.iter().any(|s| k.eq_ignore_ascii_case(s)) => {
                format!("{k}={MASK}")
            }
            _ => pair.to_owned(),
        })
        .collect();
    format!("{path}{}{fragment}", params.join("&"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_checked_and_never_printed() {
        let phc = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g";
        let h = PasswordHash::new(phc).unwrap();
        assert_eq!(h.expose(), phc);
        assert!(!format!("{h:?}").contains("argon2"));
        for bad in ["", "$", "plain", "$a b", &format!("${}", "x".repeat(600))] {
            assert!(PasswordHash::new(bad).is_err(), "{bad:?}");
        }
        let hex = "ab".repeat(32);
        let r = RefreshHash::new(hex.clone()).unwrap();
        assert_eq!(r.expose(), hex);
        assert!(!format!("{r:?}").contains("abab"));
        for bad in ["ab".repeat(31), "AB".repeat(32), "zz".repeat(32)] {
            assert!(RefreshHash::new(bad).is_err());
        }
    }

    #[test]
    fn a_session_is_live_until_revoked_or_expired() {
        let t = Utc::now();
        let mut s = Session {
            id: SessionId::generate(),
            user_id: UserId::new("alice").unwrap(),
            refresh_hash: RefreshHash::new("f0e1".repeat(16)).unwrap(),
            created_at: t,
            expires_at: t + chrono::Duration::hours(1),
            revoked_at: None,
            last_used_at: t,
        };
        assert!(s.is_live(t));
        assert!(!s.is_live(s.expires_at));
        s.revoked_at = Some(t);
        assert!(!s.is_live(t));
        assert!(!format!("{s:?}").contains("f0e1f0e1"));
    }
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            redact_url("postgres://app:s3cr%40t@db.example:5432/ordermon"),
            "postgres://app:[REDACTED]@db.example:5432/ordermon"
        );
        assert_eq!(
            redact_url("mysql://root:pw@127.0.0.1:3306/test?ssl-mode=disabled"),
            "mysql://root:[REDACTED]@127.0.0.1:3306/test?ssl-mode=disabled"
        );
        // '@' inside the password: the last '@' of the authority ends the user info.
        assert_eq!(
            redact_url("postgres://u:p@ss@h/db"),
            "postgres://u:[REDACTED]@h/db"
        );
        assert_eq!(
            redact_url("postgres://h/db?user=u&password=hunter2&sslmode=require"),
            "postgres://h/db?user=u&password=[REDACTED]&sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://u:p@h/db?PASSWORD=x#frag"),
            "postgres://u:[REDACTED]@h/db?PASSWORD=[REDACTED]#frag"
        );
    }

    #[test]
    fn urls_without_secrets_are_unchanged() {
        for url in [
            "postgres://postgres@127.0.0.1:5432/postgres",
            "mysql://root@127.0.0.1:3306/test",
            "sqlite://data/ordermon.db",
            "sqlite::memory:",
            "sqlite:ordermon.db?mode=rwc",
            "postgres://h/db?sslmode=require",
        ] {
            assert_eq!(redact_url(url), url);
        }
        // An '@' in the path is not user info.
        assert_eq!(redact_url("sqlite://dir/a@b.db"), "sqlite://dir/a@b.db");
    }
}
