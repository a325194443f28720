//! Sessions revoked on this instance, so their access tokens stop working at
//! once here instead of at their expiry. An entry is kept as long as an
//! access token of the session can still be valid (the access TTL plus a
//! margin for clock leeway), then dropped. Other instances learn of a
//! revocation only through the refresh token: their copies of an access
//! token live until it expires, which is why access tokens are short-lived.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use ordermon_domain::ids::SessionId;
use parking_lot::Mutex;

/// How long past the access TTL an entry is kept (covers the leeway
/// tokens are verified with).
const MARGIN_SECS: i64 = 60;

/// The set, with each entry's end.
#[derive(Debug)]
pub(crate) struct RevokedSessions {
    keep: Duration,
    until: Mutex<HashMap<SessionId, DateTime<Utc>>>,
}

impl RevokedSessions {
    /// Entries live `access_ttl` plus the margin.
    pub(crate) fn new(access_ttl: std::time::Duration) -> Self {
        let ttl = Duration::from_std(access_ttl).unwrap_or(Duration::MAX);
        Self {
            keep: ttl
                .checked_add(&Duration::seconds(MARGIN_SECS))
                .unwrap_or(ttl),
            until: Mutex::new(HashMap::new()),
        }
    }

    /// Records revocations at `now`, dropping entries that have ended.
    pub(crate) fn insert(&self, ids: impl IntoIterator<Item = SessionId>, now: DateTime<Utc>) {
        let end = now
            .checked_add_signed(self.keep)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let mut until = self.until.lock();
        // Revocations are rare (logouts, new passwords, stolen tokens): a
        // sweep on each keeps the set small without a timer.
        until.retain(|_, e| *e > now);
        for id in ids {
            until.insert(id, end);
        }
    }

    /// True when `id` was revoked here and its tokens may still be unexpired.
    pub(crate) fn contains(&self, id: SessionId, now: DateTime<Utc>) -> bool {
        self.until.lock().get(&id).is_some_and(|end| *end > now)
    }

    /// Entries held (ended ones included until the next insert).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.until.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_end_after_the_access_ttl() {
        let set = RevokedSessions::new(std::time::Duration::from_secs(900));
        let t = Utc::now();
        let (a, b) = (SessionId::generate(), SessionId::generate());
        set.insert([a], t);
        assert!(set.contains(a, t));
        assert!(!set.contains(b, t));
        assert!(set.contains(a, t + Duration::seconds(900)));
        assert!(!set.contains(a, t + Duration::seconds(960)));
        set.insert([b], t + Duration::seconds(961));
        assert_eq!(set.len(), 1, "the ended entry went with the next insert");
    }
}
