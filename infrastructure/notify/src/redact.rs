//! Keeping secrets out of output: how secret configuration fields serialize
//! (as [`REDACTED`], so `monitor-server config` can print the effective
//! configuration), and a last-line scrubber that masks any known secret that
//! still slipped into an error text (a server echoing its URL, say).

use std::collections::BTreeMap;
use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::Serializer;

/// What a secret prints as.
pub const REDACTED: &str = "[REDACTED]";

/// `serialize_with` for a secret: always [`REDACTED`].
pub(crate) fn secret<S: Serializer>(_: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(REDACTED)
}

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

/// `serialize_with` for a map whose names are public and values secret
/// (webhook headers: `Authorization = "[REDACTED]"`).
pub(crate) fn secret_values<S: Serializer>(
    map: &BTreeMap<String, SecretString>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(map.keys().map(|k| (k, REDACTED)))
}

/// `serialize_with` for a URL that is a secret only when it carries
/// credentials: user info or a query (`?token=…`). A plain URL prints as is so
/// operators can see where alerts go.
pub(crate) fn url_if_credentialed<S: Serializer>(
    url: &SecretString,
    s: S,
) -> Result<S::Ok, S::Error> {
    if carries_credentials(url.expose_secret()) {
        s.serialize_str(REDACTED)
    } else {
        s.serialize_str(url.expose_secret())
    }
}

/// True when a URL text has user info or a query. Conservative: text that
/// does not parse counts as credentialed.
pub(crate) fn carries_credentials(url: &str) -> bool {
    match reqwest::Url::parse(url) {
        Ok(u) => !u.username().is_empty() || u.password().is_some() || u.query().is_some(),
        Err(_) => true,
    }
}

/// Masks known secrets in texts that leave the notifier (error messages).
/// Secrets shorter than four characters are not masked: they would mask
/// ordinary words and protect nothing.
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
    fn credentialed_urls_are_recognised() {
        assert!(!carries_credentials("https://hooks.example/alert"));
        assert!(carries_credentials("https://hooks.example/alert?token=abc"));
        assert!(carries_credentials("https://user:pw@hooks.example/alert"));
        assert!(carries_credentials("https://user@hooks.example/alert"));
        assert!(carries_credentials("not a url"));
    }

    #[test]
    fn scrubber_masks_known_secrets_only() {
        let mut s = Scrubber::default();
        s.add("tok-123456");
        s.add("ab");
        assert_eq!(s.scrub("bad tok-123456 here"), "bad [REDACTED] here");
        assert_eq!(s.scrub("ab stays"), "ab stays");
        assert_eq!(format!("{s:?}"), "Scrubber(1 secrets)");
    }

    #[test]
    fn bounded_cuts_on_a_character_boundary() {
        assert_eq!(bounded("short", 10), "short");
        assert_eq!(bounded("ééé", 3), "é…");
    }
}
