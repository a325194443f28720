//! Database URLs: which dialect a URL names, and a redacted form that is safe to
//! log or return (a password never leaves this crate).

use std::fmt;

/// The SQL dialects ordermon runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// SQLite (`sqlite:` URLs), the embedded default.
    Sqlite,
    /// PostgreSQL (`postgres://`, `postgresql://`).
    Postgres,
    /// MySQL or MariaDB (`mysql://`, `mariadb://`).
    MySql,
}

impl Dialect {
    /// The dialect named by a URL's scheme, if it is one ordermon supports.
    #[must_use]
    pub fn from_url(url: &str) -> Option<Self> {
        let scheme = url.split_once(':')?.0.to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Some(Self::Sqlite),
            "postgres" | "postgresql" => Some(Self::Postgres),
            "mysql" | "mariadb" => Some(Self::MySql),
            _ => None,
        }
    }

    /// A short lowercase name (`sqlite`, `postgres`, `mysql`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::MySql => "mysql",
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

use ordermon_domain::credential::MASK;
pub use ordermon_domain::credential::redact_url;

/// Removes a URL's secrets from texts (driver errors may echo them). Its
/// `Debug` output shows nothing secret.
#[derive(Clone)]
pub(crate) struct Scrubber {
    url: String,
    password: Option<String>,
}

impl Scrubber {
    /// A scrubber for the secrets of `url`.
    pub(crate) fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            password: password_of(url),
        }
    }

    /// `text` with the URL redacted and the password masked.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let text = text.replace(&self.url, &redact_url(&self.url));
        match &self.password {
            Some(pw) => text.replace(pw, MASK),
            None => text,
        }
    }
}

impl fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scrubber")
            .field("url", &redact_url(&self.url))
            .finish()
    }
}

/// The password in a URL, if any, so error texts can be scrubbed of it.
fn password_of(url: &str) -> Option<String> {
    let rest = &url[url.find("://")? + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let userinfo = &authority[..authority.rfind('@')?];
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then(|| password.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialect_from_scheme() {
        assert_eq!(
            Dialect::from_url("sqlite://data/x.db"),
            Some(Dialect::Sqlite)
        );
        assert_eq!(Dialect::from_url("sqlite::memory:"), Some(Dialect::Sqlite));
        assert_eq!(
            Dialect::from_url("postgres://h/db"),
            Some(Dialect::Postgres)
        );
        assert_eq!(
            Dialect::from_url("postgresql://h/db"),
            Some(Dialect::Postgres)
        );
        assert_eq!(Dialect::from_url("mysql://h/db"), Some(Dialect::MySql));
        assert_eq!(Dialect::from_url("MariaDB://h/db"), Some(Dialect::MySql));
        assert_eq!(Dialect::from_url("redis://h"), None);
        assert_eq!(Dialect::from_url("nonsense"), None);
    }

    #[test]
    fn scrubber_masks_and_hides() {
        let s = Scrubber::new("postgres://u:hunter2@h/db");
        assert_eq!(
            s.scrub("failed to connect to postgres://u:hunter2@h/db (hunter2)"),
            "failed to connect to postgres://u:[REDACTED]@h/db ([REDACTED])"
        );
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn password_extraction() {
        assert_eq!(password_of("postgres://u:pw@h/db").as_deref(), Some("pw"));
        assert_eq!(password_of("postgres://u@h/db"), None);
        assert_eq!(password_of("postgres://u:@h/db"), None);
        assert_eq!(password_of("sqlite::memory:"), None);
    }
}
