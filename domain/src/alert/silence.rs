//! Silences: label matchers and a time window during which matching alerts send
//! no notification (they still show, flagged `silenced`). Expiring a silence
//! ends its window now; silences are never deleted, so who muted what stays on
//! record.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::matcher::{Matcher, all_match};
use crate::ids::{SilenceId, UserId};

/// Most matchers in one silence.
pub const MAX_MATCHERS: usize = 16;
/// Longest comment (characters).
pub const MAX_COMMENT: usize = 1024;
/// Longest `created_by` (characters).
pub const MAX_AUTHOR: usize = 128;

/// Why a silence was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    /// No matchers, or only matchers that also match alerts without the label
    /// (a silence must select something, or it would mute every alert).
    #[error("a silence needs at least one matcher that does not match the empty string")]
    MatchesEverything,
    /// More than [`MAX_MATCHERS`] matchers.
    #[error("a silence has at most {MAX_MATCHERS} matchers")]
    TooManyMatchers,
    /// The window ends before it starts, or has already ended.
    #[error("ends_at must be after starts_at and in the future")]
    BadWindow,
    /// The window is longer than the configured maximum.
    #[error("a silence may last at most {max_hours} h")]
    TooLong {
        /// The maximum, in hours.
        max_hours: i64,
    },
    /// The comment is longer than [`MAX_COMMENT`] characters.
    #[error("comment longer than {MAX_COMMENT} characters")]
    CommentTooLong,
    /// `created_by` is empty or longer than [`MAX_AUTHOR`] characters.
    #[error("created_by must be 1-{MAX_AUTHOR} characters")]
    BadAuthor,
}

/// Where a silence is in its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SilenceState {
    /// Starts later.
    Pending,
    /// Mutes matching alerts now.
    Active,
    /// Over (ran out or expired by hand).
    Expired,
}

/// A silence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// Its id.
    pub id: SilenceId,
    /// Every matcher must match an alert's labels.
    pub matchers: Vec<Matcher>,
    /// Start of the window.
    pub starts_at: DateTime<Utc>,
    /// End of the window.
    pub ends_at: DateTime<Utc>,
    /// Who created it.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// The tenant when a trader created it: it only ever applies to that
    /// user's alerts (`None` = an admin's silence, which may cover anything).
    pub user_id: Option<UserId>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Version for optimistic concurrency.
    pub version: u64,
}

/// What a new silence is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSilence {
    /// Matchers.
    pub matchers: Vec<Matcher>,
    /// Start (default now).
    pub starts_at: Option<DateTime<Utc>>,
    /// End.
    pub ends_at: DateTime<Utc>,
    /// Author.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// Tenant (traders' silences).
    pub user_id: Option<UserId>,
}

impl Silence {
    /// A validated silence (version 1, ready to insert).
    ///
    /// # Errors
    /// See [`SilenceError`]; `max_duration` bounds `ends_at - starts_at`.
    pub fn create(
        new: NewSilence,
        max_duration: Duration,
        now: DateTime<Utc>,
    ) -> Result<Self, SilenceError> {
        if new.matchers.len() > MAX_MATCHERS {
            return Err(SilenceError::TooManyMatchers);
        }
        if new.matchers.iter().all(Matcher::matches_empty) {
            return Err(SilenceError::MatchesEverything);
        }
        let starts_at = new.starts_at.unwrap_or(now).max(now);
        if new.ends_at <= starts_at {
            return Err(SilenceError::BadWindow);
        }
        if new.ends_at - starts_at > max_duration {
            return Err(SilenceError::TooLong {
                max_hours: max_duration.num_hours(),
            });
        }
        if new.comment.chars().count() > MAX_COMMENT {
            return Err(SilenceError::CommentTooLong);
        }
        let author = new.created_by.trim();
        if author.is_empty() || author.chars().count() > MAX_AUTHOR {
            return Err(SilenceError::BadAuthor);
        }
        Ok(Self {
            id: SilenceId::generate(),
            matchers: new.matchers,
            starts_at,
            ends_at: new.ends_at,
            created_by: author.to_owned(),
            comment: new.comment,
            user_id: new.user_id,
            created_at: now,
            updated_at: now,
            version: 1,
        })
    }

    /// Where the silence is at `now`.
    #[must_use]
    pub fn state(&self, now: DateTime<Utc>) -> SilenceState {
        if now >= self.ends_at {
            SilenceState::Expired
        } else if now < self.starts_at {
            SilenceState::Pending
        } else {
            SilenceState::Active
        }
    }

    /// True when the silence mutes an alert with `labels` of `user` at `now`.
    /// A trader's silence never reaches another user's (or a system) alert.
    #[must_use]
    pub fn mutes(
        &self,
        labels: &BTreeMap<String, String>,
        user: Option<&UserId>,
        now: DateTime<Utc>,
    ) -> bool {
        if self.state(now) != SilenceState::Active {
            return false;
        }
        if let Some(tenant) = &self.user_id
            && user != Some(tenant)
        {
            return false;
        }
        all_match(&self.matchers, labels)
    }

    /// Ends the window now. Returns false when it had already ended.
    pub fn expire(&mut self, now: DateTime<Utc>) -> bool {
        if self.state(now) == SilenceState::Expired {
            return false;
        }
        if self.starts_at > now {
            self.starts_at = now;
        }
        self.ends_at = now;
        self.updated_at = now;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::matcher::MatchOp;

    fn new(matchers: Vec<Matcher>, hours: i64, now: DateTime<Utc>) -> NewSilence {
        NewSilence {
            matchers,
            starts_at: None,
            ends_at: now + Duration::hours(hours),
            created_by: "ops".to_owned(),
            comment: "maintenance".to_owned(),
            user_id: None,
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn mutes_matching_alerts_inside_its_window() {
        let now = Utc::now();
        let max = Duration::days(30);
        let s = Silence::create(
            new(vec![Matcher::eq("rule", "stuck_order").unwrap()], 2, now),
            max,
            now,
        )
        .unwrap();
        let hit = labels(&[("rule", "stuck_order"), ("user_id", "alice")]);
        let miss = labels(&[("rule", "kill_switch_engaged")]);
        assert!(s.mutes(&hit, None, now));
        assert!(!s.mutes(&miss, None, now));
        assert!(!s.mutes(&hit, None, now + Duration::hours(3)));
        assert_eq!(s.state(now + Duration::hours(3)), SilenceState::Expired);
    }

    #[test]
    fn a_traders_silence_stays_in_their_tenancy() {
        let now = Utc::now();
        let alice = UserId::new("alice").unwrap();
        let bob = UserId::new("bob").unwrap();
        let mut n = new(vec![Matcher::eq("rule", "stuck_order").unwrap()], 1, now);
        n.user_id = Some(alice.clone());
        let s = Silence::create(n, Duration::days(1), now).unwrap();
        let l = labels(&[("rule", "stuck_order")]);
        assert!(s.mutes(&l, Some(&alice), now));
        assert!(!s.mutes(&l, Some(&bob), now));
        assert!(!s.mutes(&l, None, now));
    }

    #[test]
    fn refuses_silences_that_mute_everything_or_last_too_long() {
        let now = Utc::now();
        let max = Duration::days(7);
        let empty = Silence::create(new(vec![], 1, now), max, now);
        assert_eq!(empty, Err(SilenceError::MatchesEverything));
        let vacuous = Matcher::new("rule", MatchOp::Regex, ".*").unwrap();
        assert_eq!(
            Silence::create(new(vec![vacuous], 1, now), max, now),
            Err(SilenceError::MatchesEverything)
        );
        let m = || vec![Matcher::eq("rule", "x").unwrap()];
        assert_eq!(
            Silence::create(new(m(), 24 * 8, now), max, now),
            Err(SilenceError::TooLong { max_hours: 168 })
        );
        assert_eq!(
            Silence::create(new(m(), -1, now), max, now),
            Err(SilenceError::BadWindow)
        );
        let mut long = new(m(), 1, now);
        long.comment = "x".repeat(MAX_COMMENT + 1);
        assert_eq!(
            Silence::create(long, max, now),
            Err(SilenceError::CommentTooLong)
        );
        let many = (0..=MAX_MATCHERS)
            .map(|i| Matcher::eq(format!("l{i}"), "x").unwrap())
            .collect();
        assert_eq!(
            Silence::create(new(many, 1, now), max, now),
            Err(SilenceError::TooManyMatchers)
        );
    }

    #[test]
    fn expiring_ends_the_window_once() {
        let now = Utc::now();
        let mut s = Silence::create(
            new(vec![Matcher::eq("rule", "x").unwrap()], 1, now),
            Duration::days(1),
            now,
        )
        .unwrap();
        let later = now + Duration::minutes(5);
        assert!(s.expire(later));
        assert_eq!(s.state(later), SilenceState::Expired);
        assert!(!s.expire(later + Duration::seconds(1)));
    }
}
