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

/// The mask put where a secret was.
const MASK: &str = "[REDACTED]";

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
