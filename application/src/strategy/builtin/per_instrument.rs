//! State a built-in strategy keeps per instrument, found cheaply on every
//! quote.
//!
//! A strategy is called for every quote of its instruments, tens of
//! thousands of times a second across a lane, and most strategies trade one
//! or a few instruments. A `HashMap` hashes the id (SipHash over its text) and
//! probes a table of its own for each call; a short list compared by length
//! and text is cheaper and touches less memory. Past [`INDEXED_FROM`] entries
//! an index by id takes over, so a strategy on many instruments stays
//! `O(1)` per quote.

use std::collections::HashMap;

use ordermon_domain::ids::InstrumentId;

/// Entries from which lookups go through the index.
const INDEXED_FROM: usize = 8;

/// A value per instrument.
#[derive(Debug)]
pub(super) struct PerInstrument<T> {
    entries: Vec<(InstrumentId, T)>,
    /// Position in `entries` by id, kept once there are `INDEXED_FROM`.
    index: Option<HashMap<InstrumentId, usize>>,
}

impl<T> Default for PerInstrument<T> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            index: None,
        }
    }
}

impl<T> PerInstrument<T> {
    fn position(&self, id: &InstrumentId) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(id).copied(),
            None => self.entries.iter().position(|(k, _)| k == id),
        }
    }

    /// Adds an instrument not seen yet; returns its position.
    fn add(&mut self, id: &InstrumentId, value: T) -> usize {
        let at = self.entries.len();
        self.entries.push((id.clone(), value));
        if let Some(index) = &mut self.index {
            index.insert(id.clone(), at);
        } else if self.entries.len() >= INDEXED_FROM {
            self.index = Some(
                self.entries
                    .iter()
                    .enumerate()
                    .map(|(i, (k, _))| (k.clone(), i))
                    .collect(),
            );
        }
        at
    }

    /// The value of `id`, made by `make` the first time `id` is seen (the id
    /// is cloned only then).
    pub(super) fn get_or_insert_with(
        &mut self,
        id: &InstrumentId,
        make: impl FnOnce() -> T,
    ) -> &mut T {
        let at = match self.position(id) {
            Some(at) => at,
            None => self.add(id, make()),
        };
        &mut self.entries[at].1
    }

    /// Sets the value of `id`, returning the one it replaces.
    pub(super) fn replace(&mut self, id: &InstrumentId, value: T) -> Option<T> {
        match self.position(id) {
            Some(at) => Some(std::mem::replace(&mut self.entries[at].1, value)),
            None => {
                self.add(id, value);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: usize) -> InstrumentId {
        InstrumentId::new(format!("S{i}.V")).unwrap()
    }

    #[test]
    fn values_are_kept_per_instrument_below_and_past_the_index() {
        let mut m: PerInstrument<usize> = PerInstrument::default();
        for round in 0..3 {
            for i in 0..20 {
                *m.get_or_insert_with(&id(i), || 0) += i + round;
            }
        }
        assert!(m.index.is_some(), "indexed past {INDEXED_FROM} entries");
        assert_eq!(m.entries.len(), 20);
        for i in 0..20 {
            assert_eq!(*m.get_or_insert_with(&id(i), || 999), 3 * i + 3);
        }
        assert_eq!(m.replace(&id(3), 7), Some(12));
        assert_eq!(m.replace(&id(30), 1), None);
        assert_eq!(*m.get_or_insert_with(&id(30), || 0), 1);
        assert_eq!(*m.get_or_insert_with(&id(3), || 0), 7);
    }
}
