//! The quote book: latest quote per instrument, and a broadcast of every quote.

use dashmap::DashMap;
use ordermon_domain::ids::InstrumentId;
use ordermon_domain::market::Quote;
use ordermon_domain::values::{Price, round_amount};
use tokio::sync::broadcast;

/// Latest quotes, shared by the feed (writer), the paper venue, pre-trade risk,
/// monitors and the API (readers).
#[derive(Debug)]
pub struct QuoteBook {
    latest: DashMap<InstrumentId, Quote>,
    tx: broadcast::Sender<Quote>,
}

impl QuoteBook {
    /// A book whose broadcast keeps up to `capacity` quotes for slow readers
    /// (a reader that falls further behind skips ahead: quotes are state, not
    /// events, so only the latest matters).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(16));
        Self {
            latest: DashMap::new(),
            tx,
        }
    }

    /// Records a quote and broadcasts it.
    pub fn publish(&self, quote: Quote) {
        self.latest
            .insert(quote.instrument_id.clone(), quote.clone());
        // No receivers is fine: nobody is listening yet.
        let _ = self.tx.send(quote);
    }

    /// The latest quote of an instrument.
    #[must_use]
    pub fn latest(&self, instrument: &InstrumentId) -> Option<Quote> {
        self.latest.get(instrument).map(|q| q.clone())
    }

    /// The latest mid price, used as the last price by risk and valuations.
    #[must_use]
    pub fn last_price(&self, instrument: &InstrumentId) -> Option<Price> {
        self.latest
            .get(instrument)
            .and_then(|q| Price::new(round_amount(q.mid())).ok())
    }

    /// Every instrument with a quote.
    #[must_use]
    pub fn instruments(&self) -> Vec<InstrumentId> {
        self.latest.iter().map(|e| e.key().clone()).collect()
    }

    /// Subscribes to every future quote.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Quote> {
        self.tx.subscribe()
    }
}
