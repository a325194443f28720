//! Copies each instrument's latest quote into a shared cache, at most once per
//! `quote_mirror_every` per instrument, so instances without the feed can serve
//! quotes (`GET /api/v1/quotes/{instrument}`). Quotes are state, not events: a
//! burst costs one write of the latest quote.

use std::collections::HashSet;
use std::sync::Arc;

use ordermon_domain::ids::InstrumentId;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ReadCache;
use crate::market::QuoteBook;

impl ReadCache {
    /// Starts the quote mirror (only for a shared cache; otherwise nothing).
    pub fn spawn_quote_mirror(
        self: &Arc<Self>,
        quotes: Arc<QuoteBook>,
        tracker: &TaskTracker,
        cancel: CancellationToken,
    ) {
        if !self.is_shared() {
            return;
        }
        let me = self.clone();
        tracker.spawn(async move { me.mirror(quotes, cancel).await });
    }

    async fn mirror(&self, quotes: Arc<QuoteBook>, cancel: CancellationToken) {
        let mut rx = quotes.subscribe();
        let every = self
            .settings
            .quote_mirror_every
            .max(std::time::Duration::from_millis(10));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut dirty: HashSet<InstrumentId> = HashSet::new();
        loop {
            tokio::select! {
                q = rx.recv() => match q {
                    Ok(q) => {
                        dirty.insert(q.instrument_id);
                    }
                    Err(RecvError::Lagged(_)) => dirty.extend(quotes.instruments()),
                    Err(RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    for id in dirty.drain() {
                        if let Some(q) = quotes.latest(&id) {
                            self.put_quote(&q).await;
                        }
                    }
                }
                () = cancel.cancelled() => return,
            }
        }
    }
}
