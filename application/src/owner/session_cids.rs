//! The client order ids an owner remembers itself: a bounded window of the
//! newest, for the race the store's look-up cannot see.

use std::collections::{HashMap, VecDeque};

use ordermon_domain::ids::{ClientOrderId, OrderId};

/// Client ids of the most recent orders an owner created, at most
/// [`SessionCids::CAPACITY`], the oldest forgotten first.
///
/// The engine looks a client id up in the store before a submission reaches the
/// owner; these catch the same id submitted again while the first is still on
/// its way to the store. That window spans a mailbox or two of commands, so a
/// bounded window is enough; past it the store's unique key still refuses a
/// second order with the same client id.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionCids {
    ids: HashMap<ClientOrderId, OrderId>,
    order: VecDeque<ClientOrderId>,
}

impl SessionCids {
    /// Client ids remembered per owner.
    pub(crate) const CAPACITY: usize = 16_384;

    pub(crate) fn get(&self, cid: &ClientOrderId) -> Option<&OrderId> {
        self.ids.get(cid)
    }

    pub(crate) fn insert(&mut self, cid: ClientOrderId, id: OrderId) {
        if self.ids.insert(cid.clone(), id).is_none() {
            self.order.push_back(cid);
        }
        while self.order.len() > Self::CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
    }

    /// Forgets `cid` (its order was never committed).
    pub(crate) fn remove(&mut self, cid: &ClientOrderId) {
        if self.ids.remove(cid).is_some() {
            self.order.retain(|c| c != cid);
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_cids_keep_the_newest_only() {
        let mut cids = SessionCids::default();
        let first = ClientOrderId::new("c-0").unwrap();
        let total = SessionCids::CAPACITY + 10;
        for i in 0..total {
            cids.insert(
                ClientOrderId::new(format!("c-{i}")).unwrap(),
                OrderId::generate(),
            );
        }
        assert_eq!(cids.len(), SessionCids::CAPACITY);
        assert!(cids.get(&first).is_none(), "the oldest is forgotten");
        let newest = ClientOrderId::new(format!("c-{}", total - 1)).unwrap();
        assert!(cids.get(&newest).is_some());
        cids.remove(&newest);
        assert!(cids.get(&newest).is_none());
        assert_eq!(cids.len(), SessionCids::CAPACITY - 1);
    }
}
