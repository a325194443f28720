//! Refresh tokens: `<session id>.<secret>`, the secret 256 random bits in
//! unpadded base64url. Only the SHA-256 of the secret is stored; the token
//! itself exists in the response that hands it out and in the client.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ordermon_domain::credential::RefreshHash;
use ordermon_domain::ids::SessionId;
use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};

/// Random bytes in a refresh secret.
const SECRET_BYTES: usize = 32;

/// A refresh token as handed to a client. `Debug` shows only its session.
#[derive(Clone)]
pub struct RefreshToken {
    session: SessionId,
    token: SecretString,
}

impl RefreshToken {
    /// A new token for `session`, and the hash of its secret to store.
    pub(crate) fn generate(session: SessionId) -> (Self, RefreshHash) {
        let mut bytes = [0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        let secret = URL_SAFE_NO_PAD.encode(bytes);
        bytes.fill(0);
        let hash = hash_secret(&secret);
        let token = SecretString::from(format!("{session}.{secret}"));
        (Self { session, token }, hash)
    }

    /// The session it names.
    #[must_use]
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// The token text, to send to the client.
    #[must_use]
    pub fn expose(&self) -> &str {
        self.token.expose_secret()
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshToken")
            .field("session", &self.session)
            .field("token", &"[REDACTED]")
            .finish()
    }
}

/// The session a presented token names and the hash of its secret; `None`
/// for anything that is not a well-formed token.
pub(crate) fn parse(token: &str) -> Option<(SessionId, RefreshHash)> {
    let (session, secret) = token.trim().split_once('.')?;
    let session: SessionId = session.parse().ok()?;
    let decoded = URL_SAFE_NO_PAD.decode(secret).ok()?;
    (decoded.len() == SECRET_BYTES).then(|| (session, hash_secret(secret)))
}

/// The SHA-256 of a secret's text, in lowercase hex.
fn hash_secret(secret: &str) -> RefreshHash {
    let digest = Sha256::digest(secret.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    // 32 bytes are always 64 lowercase hex digits.
    RefreshHash::new(hex).unwrap_or_else(|_| unreachable!("a SHA-256 digest is 64 hex digits"))
}

/// Compares two hashes in time that does not depend on where they differ.
pub(crate) fn same(a: &RefreshHash, b: &RefreshHash) -> bool {
    let (a, b) = (a.expose().as_bytes(), b.expose().as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_back_to_their_session_and_hash() {
        let session = SessionId::generate();
        let (token, hash) = RefreshToken::generate(session);
        let (parsed, presented) = parse(token.expose()).unwrap();
        assert_eq!(parsed, session);
        assert!(same(&presented, &hash));
        assert!(!format!("{token:?}").contains(token.expose()));
        let (other, other_hash) = RefreshToken::generate(session);
        assert_ne!(other.expose(), token.expose());
        assert!(!same(&other_hash, &hash));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let session = SessionId::generate();
        let (token, _) = RefreshToken::generate(session);
        let secret = token.expose().split_once('.').unwrap().1.to_owned();
        for bad in [
            String::new(),
            "no-dot".to_owned(),
            format!("{session}."),
            format!("not-a-uuid.{secret}"),
            format!("{session}.{}", &secret[..20]),
            format!("{session}.{secret}!"),
            format!("{}.{secret}", uuid::Uuid::new_v4()),
        ] {
            assert!(parse(&bad).is_none(), "{bad:?}");
        }
    }
}
