//! The instrument catalog: reference data kept in memory, written through the store.

use std::collections::HashMap;
use std::sync::Arc;

use ordermon_domain::ids::InstrumentId;
use ordermon_domain::instrument::Instrument;
use parking_lot::RwLock;

/// Instruments by id. Reads are lock-free in practice (uncontended read lock).
#[derive(Debug, Default)]
pub struct InstrumentCatalog {
    map: RwLock<HashMap<InstrumentId, Arc<Instrument>>>,
}

impl InstrumentCatalog {
    /// A catalog holding `instruments`.
    #[must_use]
    pub fn new(instruments: impl IntoIterator<Item = Instrument>) -> Self {
        let map = instruments
            .into_iter()
            .map(|i| (i.id.clone(), Arc::new(i)))
            .collect();
        Self {
            map: RwLock::new(map),
        }
    }

    /// One instrument.
    #[must_use]
    pub fn get(&self, id: &InstrumentId) -> Option<Arc<Instrument>> {
        self.map.read().get(id).cloned()
    }

    /// Adds or replaces an instrument.
    pub fn put(&self, instrument: Instrument) {
        self.map
            .write()
            .insert(instrument.id.clone(), Arc::new(instrument));
    }

    /// Every instrument, sorted by id.
    #[must_use]
    pub fn all(&self) -> Vec<Arc<Instrument>> {
        let mut v: Vec<_> = self.map.read().values().cloned().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }
}
