//! Label matchers, as Alertmanager writes them: `name="value"`, `name!="value"`,
//! `name=~"regex"` and `name!~"regex"`. Silences, routes and inhibition rules
//! select alerts with lists of matchers that must all match.
//!
//! Regular expressions are anchored at both ends (`=~"ali.*"` matches `alice`,
//! not `xalice`), like Prometheus and Alertmanager, and their size is bounded so
//! a matcher from an API request cannot cost unbounded memory or time.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// Longest label name.
pub const MAX_LABEL_NAME: usize = 128;
/// Longest label value or matcher pattern.
pub const MAX_LABEL_VALUE: usize = 1024;
/// Largest compiled regex (bytes), far above any real pattern.
const REGEX_SIZE_LIMIT: usize = 64 * 1024;

/// How a matcher compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MatchOp {
    /// Equal (`=`).
    #[serde(rename = "=")]
    Eq,
    /// Not equal (`!=`).
    #[serde(rename = "!=")]
    NotEq,
    /// Matches the anchored regex (`=~`).
    #[serde(rename = "=~")]
    Regex,
    /// Does not match the anchored regex (`!~`).
    #[serde(rename = "!~")]
    NotRegex,
}

impl MatchOp {
    /// The operator as written (`=`, `!=`, `=~`, `!~`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::NotEq => "!=",
            Self::Regex => "=~",
            Self::NotRegex => "!~",
        }
    }
}

/// Why a matcher or a label was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatcherError {
    /// The label name is empty, too long or has a character outside `[A-Za-z0-9_]`
    /// (or starts with a digit).
    #[error("bad label name `{0}`: 1-128 of A-Z a-z 0-9 _ expected, not starting with a digit")]
    Name(String),
    /// The value or pattern is longer than 1024 characters.
    #[error("label `{0}`: value longer than 1024 characters")]
    ValueTooLong(String),
    /// The regular expression does not compile (or is too large).
    #[error("label `{name}`: bad regular expression: {reason}")]
    Regex {
        /// The label.
        name: String,
        /// The compiler's message.
        reason: String,
    },
    /// The text is not `name<op>"value"`.
    #[error("bad matcher `{0}`: write e.g. severity=\"critical\" or user_id=~\"desk-.*\"")]
    Syntax(String),
}

/// Checks a label name: `[A-Za-z_][A-Za-z0-9_]*`, at most 128 characters.
///
/// # Errors
/// [`MatcherError::Name`].
pub fn check_label_name(name: &str) -> Result<(), MatcherError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_LABEL_NAME
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(MatcherError::Name(name.to_owned()))
    }
}

/// Checks a label set: valid names, values of at most 1024 characters.
///
/// # Errors
/// The first bad label.
pub fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), MatcherError> {
    for (k, v) in labels {
        check_label_name(k)?;
        if v.chars().count() > MAX_LABEL_VALUE {
            return Err(MatcherError::ValueTooLong(k.clone()));
        }
    }
    Ok(())
}

/// One label matcher. Built only through [`Matcher::new`] (or parsing), so its
/// name is valid and its regex compiled.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "MatcherRepr", into = "MatcherRepr")]
pub struct Matcher {
    name: String,
    op: MatchOp,
    value: String,
    regex: Option<Regex>,
}

/// The serialized shape of a matcher.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatcherRepr {
    name: String,
    op: MatchOp,
    value: String,
}

impl TryFrom<MatcherRepr> for Matcher {
    type Error = MatcherError;
    fn try_from(r: MatcherRepr) -> Result<Self, Self::Error> {
        Self::new(r.name, r.op, r.value)
    }
}

impl From<Matcher> for MatcherRepr {
    fn from(m: Matcher) -> Self {
        Self {
            name: m.name,
            op: m.op,
            value: m.value,
        }
    }
}

impl Matcher {
    /// A matcher on `name`.
    ///
    /// # Errors
    /// A bad label name, a value over 1024 characters, or a regex that does not
    /// compile.
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Self, MatcherError> {
        let (name, value) = (name.into(), value.into());
        check_label_name(&name)?;
        if value.chars().count() > MAX_LABEL_VALUE {
            return Err(MatcherError::ValueTooLong(name));
        }
        let regex = match op {
            MatchOp::Eq | MatchOp::NotEq => None,
            MatchOp::Regex | MatchOp::NotRegex => Some(
                regex::RegexBuilder::new(&format!("^(?:{value})$"))
                    .size_limit(REGEX_SIZE_LIMIT)
                    .dfa_size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| MatcherError::Regex {
                        name: name.clone(),
                        reason: e.to_string().lines().last().unwrap_or("").trim().to_owned(),
                    })?,
            ),
        };
        Ok(Self {
            name,
            op,
            value,
            regex,
        })
    }

    /// `name="value"`.
    ///
    /// # Errors
    /// As [`Matcher::new`].
    pub fn eq(name: impl Into<String>, value: impl Into<String>) -> Result<Self, MatcherError> {
        Self::new(name, MatchOp::Eq, value)
    }

    /// The label name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The operator.
    #[must_use]
    pub fn op(&self) -> MatchOp {
        self.op
    }

    /// The value or pattern.
    #[must_use]
    pub fn value(&self) -> &str {
        &self.value
    }

    /// True when the label set satisfies the matcher. A missing label reads as
    /// the empty string, as in Alertmanager (so `team!="x"` matches an alert
    /// without `team`).
    #[must_use]
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let v = labels.get(&self.name).map_or("", String::as_str);
        match (self.op, &self.regex) {
            (MatchOp::Eq, _) => v == self.value,
            (MatchOp::NotEq, _) => v != self.value,
            (MatchOp::Regex, Some(r)) => r.is_match(v),
            (MatchOp::NotRegex, Some(r)) => !r.is_match(v),
            // Unreachable by construction; refuse rather than match everything.
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }

    /// True when the matcher also matches an alert that lacks the label, i.e. it
    /// selects nothing by itself (`x=""`, `x=~".*"`, `x!="y"`).
    #[must_use]
    pub fn matches_empty(&self) -> bool {
        self.matches(&BTreeMap::new())
    }
}

/// True when every matcher matches (an empty list matches everything).
#[must_use]
pub fn all_match(matchers: &[Matcher], labels: &BTreeMap<String, String>) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Matcher({self})")
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.as_str(), self.value)
    }
}

impl FromStr for Matcher {
    type Err = MatcherError;

    /// Parses `name<op>value` where the value may be double-quoted (with `\"`
    /// and `\\` escapes inside the quotes): `severity="critical"`,
    /// `user_id=~desk-.*`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let syntax = || MatcherError::Syntax(s.to_owned());
        let at = text.find(['=', '!']).ok_or_else(syntax)?;
        let name = text[..at].trim();
        let rest = &text[at..];
        let (op, value) = if let Some(v) = rest.strip_prefix("=~") {
            (MatchOp::Regex, v)
        } else if let Some(v) = rest.strip_prefix("!~") {
            (MatchOp::NotRegex, v)
        } else if let Some(v) = rest.strip_prefix("!=") {
            (MatchOp::NotEq, v)
        } else if let Some(v) = rest.strip_prefix('=') {
            (MatchOp::Eq, v)
        } else {
            return Err(syntax());
        };
        let value = value.trim();
        let value = if let Some(inner) = value.strip_prefix('"') {
            let inner = inner.strip_suffix('"').ok_or_else(syntax)?;
            unescape(inner).ok_or_else(syntax)?
        } else {
            value.to_owned()
        };
        Self::new(name, op, value)
    }
}

fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                c @ ('"' | '\\') => out.push(c),
                // Keep regex escapes such as `\.` as written.
                other => {
                    out.push('\\');
                    out.push(other);
                }
            },
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_four_operators() {
        let l = labels(&[("user_id", "alice"), ("severity", "critical")]);
        assert!(Matcher::eq("user_id", "alice").unwrap().matches(&l));
        assert!(!Matcher::eq("user_id", "bob").unwrap().matches(&l));
        let ne = Matcher::new("user_id", MatchOp::NotEq, "bob").unwrap();
        assert!(ne.matches(&l));
        let re = Matcher::new("user_id", MatchOp::Regex, "ali.*").unwrap();
        assert!(re.matches(&l));
        let nre = Matcher::new("severity", MatchOp::NotRegex, "warn.*|info").unwrap();
        assert!(nre.matches(&l));
        // Anchored: a pattern must match the whole value.
        assert!(
            !Matcher::new("user_id", MatchOp::Regex, "lic")
                .unwrap()
                .matches(&l)
        );
        // A missing label is the empty string.
        assert!(
            Matcher::new("team", MatchOp::NotEq, "risk")
                .unwrap()
                .matches(&l)
        );
        assert!(Matcher::eq("team", "").unwrap().matches_empty());
        assert!(!Matcher::eq("team", "risk").unwrap().matches_empty());
    }

    #[test]
    fn parses_alertmanager_syntax() {
        let m: Matcher = r#"severity="critical""#.parse().unwrap();
        assert_eq!(
            (m.name(), m.op(), m.value()),
            ("severity", MatchOp::Eq, "critical")
        );
        let m: Matcher = r#"user_id=~"desk-\d+""#.parse().unwrap();
        assert_eq!(m.op(), MatchOp::Regex);
        assert!(m.matches(&labels(&[("user_id", "desk-12")])));
        let m: Matcher = "venue!=SIM".parse().unwrap();
        assert_eq!((m.op(), m.value()), (MatchOp::NotEq, "SIM"));
        let m: Matcher = r#"x!~"a\"b""#.parse().unwrap();
        assert_eq!((m.op(), m.value()), (MatchOp::NotRegex, "a\"b"));
        assert_eq!(m.to_string(), r#"x!~"a\"b""#);
    }

    #[test]
    fn refuses_bad_matchers() {
        assert!(matches!(
            Matcher::new("user_id", MatchOp::Regex, "(unclosed"),
            Err(MatcherError::Regex { .. })
        ));
        assert!(matches!(
            Matcher::eq("9lives", "x"),
            Err(MatcherError::Name(_))
        ));
        assert!(matches!(
            Matcher::eq("a-b", "x"),
            Err(MatcherError::Name(_))
        ));
        assert!(matches!(
            Matcher::eq("a", "x".repeat(1025)),
            Err(MatcherError::ValueTooLong(_))
        ));
        // A pathological but valid pattern is refused by size, not compiled forever.
        assert!(Matcher::new("a", MatchOp::Regex, "(a{1000}){1000}").is_err());
        for bad in ["", "novalue", "=x", r#"a="unterminated"#, r#"a="x"y""#] {
            assert!(bad.parse::<Matcher>().is_err(), "{bad}");
        }
    }

    #[test]
    fn serde_goes_through_the_constructor() {
        let m: Matcher =
            serde_json::from_str(r#"{"name":"rule","op":"=~","value":"stuck_.*"}"#).unwrap();
        assert!(m.matches(&labels(&[("rule", "stuck_order")])));
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"name":"rule","op":"=~","value":"stuck_.*"}"#
        );
        assert!(serde_json::from_str::<Matcher>(r#"{"name":"r","op":"=~","value":"("}"#).is_err());
        assert!(serde_json::from_str::<Matcher>(r#"{"name":"r","op":"~","value":"x"}"#).is_err());
    }
}
