//! Routes quotes to the owners whose monitors watch the instrument.
//!
//! Subscriptions are copy-on-write lists per instrument, so routing a quote
//! clones one `Arc` rather than a list of user ids: at 1,000 quotes/s across
//! 100 instruments with 200 watchers each, the router stays cheap.

use std::collections::HashMap;
use std::sync::Arc;

use ordermon_domain::ids::{InstrumentId, UserId};
use parking_lot::RwLock;

/// Which users watch which instruments.
#[derive(Debug, Default)]
pub struct QuoteRouter {
    subs: RwLock<HashMap<InstrumentId, Arc<[UserId]>>>,
}

impl QuoteRouter {
    /// The users watching an instrument.
    #[must_use]
    pub fn watchers(&self, instrument: &InstrumentId) -> Option<Arc<[UserId]>> {
        self.subs.read().get(instrument).cloned()
    }

    /// Replaces the set of instruments a user watches.
    pub fn set(&self, user: &UserId, instruments: &[InstrumentId]) {
        let mut subs = self.subs.write();
        // Drop the user everywhere, then add it where wanted.
        let mut empty = Vec::new();
        for (inst, users) in subs.iter_mut() {
            if users.contains(user) && !instruments.contains(inst) {
                let kept: Vec<UserId> = users.iter().filter(|u| *u != user).cloned().collect();
                if kept.is_empty() {
                    empty.push(inst.clone());
                }
                *users = kept.into();
            }
        }
        for inst in empty {
            subs.remove(&inst);
        }
        for inst in instruments {
            let entry = subs
                .entry(inst.clone())
                .or_insert_with(|| Arc::from(Vec::new()));
            if !entry.contains(user) {
                let mut v = entry.to_vec();
                v.push(user.clone());
                *entry = v.into();
            }
        }
    }

    /// Number of (instrument, user) subscriptions.
    #[must_use]
    pub fn subscriptions(&self) -> usize {
        self.subs.read().values().map(|u| u.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i(s: &str) -> InstrumentId {
        InstrumentId::new(s).unwrap()
    }
    fn u(s: &str) -> UserId {
        UserId::new(s).unwrap()
    }

    #[test]
    fn set_replaces_a_users_instruments() {
        let r = QuoteRouter::default();
        r.set(&u("a"), &[i("X.V"), i("Y.V")]);
        r.set(&u("b"), &[i("X.V")]);
        assert_eq!(r.watchers(&i("X.V")).unwrap().len(), 2);
        r.set(&u("a"), &[i("Y.V")]);
        assert_eq!(&*r.watchers(&i("X.V")).unwrap(), &[u("b")]);
        r.set(&u("b"), &[]);
        assert!(r.watchers(&i("X.V")).is_none());
        assert_eq!(r.subscriptions(), 1);
    }
}
