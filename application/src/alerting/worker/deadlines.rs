//! When users (and the venues) must be evaluated again because time alone
//! makes a rule hold (an order that waits): a heap of instants, earliest
//! first, with stale entries skipped.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use chrono::{DateTime, Utc};
use ordermon_domain::ids::UserId;

/// Instants at which users (and the venues) must be evaluated.
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    heap: BinaryHeap<Reverse<(DateTime<Utc>, UserId)>>,
    /// The earliest instant scheduled per user (older heap entries are stale).
    scheduled: HashMap<UserId, DateTime<Utc>>,
    venues: Option<DateTime<Utc>>,
}

impl Deadlines {
    pub(super) fn schedule(
        &mut self,
        user: &UserId,
        at: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
        now: DateTime<Utc>,
    ) {
        if let Some(t) = at.0.filter(|t| *t > now)
            && self.scheduled.get(user).is_none_or(|s| t < *s || *s <= now)
        {
            self.scheduled.insert(user.clone(), t);
            self.heap.push(Reverse((t, user.clone())));
        }
        if let Some(t) = at.1.filter(|t| *t > now) {
            self.venues = Some(self.venues.map_or(t, |v| v.min(t)));
        }
    }

    /// The earliest instant anything is due.
    pub(super) fn next(&self) -> Option<DateTime<Utc>> {
        let user = self.heap.peek().map(|Reverse((t, _))| *t);
        match (user, self.venues) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The users due at `now`, and whether the venues are.
    pub(super) fn take_due(&mut self, now: DateTime<Utc>) -> (Vec<UserId>, bool) {
        let mut users = Vec::new();
        while let Some(Reverse((t, _))) = self.heap.peek() {
            if *t > now {
                break;
            }
            if let Some(Reverse((t, u))) = self.heap.pop()
                && self.scheduled.get(&u) == Some(&t)
            {
                self.scheduled.remove(&u);
                users.push(u);
            }
        }
        let venues = self.venues.is_some_and(|t| t <= now);
        if venues {
            self.venues = None;
        }
        (users, venues)
    }
}
