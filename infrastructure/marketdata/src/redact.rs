//! Keeping secrets out of output: how the API key serializes (as
//! [`REDACTED`], so the effective configuration can be printed), and a
//! last-line scrubber that masks a known secret that still slipped into an
//! error text (a server echoing a header back, say).
//!
//! The notifiers (`ordermon-notify`) keep a scrubber of their own: neither
//! infrastructure crate may depend on the other, and it is a dozen lines.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::Serializer;

/// What a secret prints as.
pub const REDACTED: &str = "[REDACTED]";

/// `serialize_with` for an optional secret (pair it with
/// `skip_serializing_if = "Option::is_none"`).
pub(crate) fn optional_secret<S: Serializer>(
    value: &Option<SecretString>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_str(REDACTED),
        None => s.serialize_none(),
    }
}

/// A URL text with its user info (a gateway's credentials) masked:
/// `https://[REDACTED]@gateway.example/binance`. Text that does not parse is
/// masked whole.
pub(crate) fn url(text: &str) -> String {
    match reqwest::Url::parse(text.trim()) {
        Ok(u) if u.username().is_empty() && u.password().is_none() => text.to_owned(),
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            let bare = u.to_string();
            match bare.split_once("://") {
                Some((scheme, rest)) => format!("{scheme}://{REDACTED}@{rest}"),
                None => REDACTED.to_owned(),
            }
        }
        Err(_) => REDACTED.to_owned(),
    }
}

/// `serialize_with` for an optional URL that may carry user info.
pub(crate) fn optional_url<S: Serializer>(value: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(text) => s.serialize_str(&url(text)),
        None => s.serialize_none(),
    }
}

/// Masks known secrets in texts that leave the provider (error messages,
/// log lines). Secrets shorter than four characters are not masked: they
/// would mask ordinary words and protect nothing.
#[derive(Default, Clone)]
pub(crate) struct Scrubber {
    secrets: Vec<SecretString>,
}

impl Scrubber {
    /// Adds a secret to mask.
    pub(crate) fn add(&mut self, secret: &str) {
        if secret.len() >= 4 {
            self.secrets.push(SecretString::from(secret));
        }
    }

    /// `text` with every known secret replaced by [`REDACTED`].
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in &self.secrets {
            let s = s.expose_secret();
            if out.contains(s) {
                out = out.replace(s, REDACTED);
            }
        }
        out
    }
}

impl fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scrubber({} secrets)", self.secrets.len())
    }
}

/// `text` cut to at most `max` bytes (on a character boundary), with `…`
/// when cut: server messages put into errors stay short.
pub(crate) fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubber_masks_known_secrets_only() {
        let mut s = Scrubber::default();
        s.add("key-123456");
        s.add("ab");
        assert_eq!(s.scrub("bad key-123456 here"), "bad [REDACTED] here");
        assert_eq!(s.scrub("ab stays"), "ab stays");
        assert_eq!(format!("{s:?}"), "Scrubber(1 secrets)");
    }

    #[test]
    fn urls_lose_their_user_info() {
        assert_eq!(url("https://api.binance.com"), "https://api.binance.com");
        assert_eq!(
            url("https://user:pw-1@gw.example/binance"),
            "https://[REDACTED]@gw.example/binance"
        );
        assert_eq!(
            url("https://token-2@gw.example/"),
            "https://[REDACTED]@gw.example/"
        );
        assert_eq!(url("not a url pw-3"), REDACTED);
    }

    #[test]
    fn bounded_cuts_on_a_character_boundary() {
        assert_eq!(bounded("short", 10), "short");
        assert_eq!(bounded("ééé", 3), "é…");
    }
}
