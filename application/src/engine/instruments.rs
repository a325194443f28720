//! Instruments and their quotes: reference data (created or replaced,
//! read through the cache so another instance's change is seen), the local
//! catalog and quote book, and the latest quote of any instance.

use std::sync::Arc;

use ordermon_domain::event::{DomainEvent, EventPayload, InstrumentEvent};
use ordermon_domain::ids::InstrumentId;
use ordermon_domain::instrument::Instrument;
use ordermon_domain::market::Quote;
use ordermon_domain::ports::{ChangeSet, StateChange};

use super::Core;
use crate::catalog::InstrumentCatalog;
use crate::error::AppError;
use crate::market::QuoteBook;

/// The instrument and quote use cases.
#[derive(Clone, Debug)]
pub struct InstrumentService {
    pub(super) core: Core,
}

impl InstrumentService {
    /// The instrument catalog.
    #[must_use]
    pub fn catalog(&self) -> Arc<InstrumentCatalog> {
        self.core.ctx.catalog.clone()
    }

    /// The quote book.
    #[must_use]
    pub fn quotes(&self) -> Arc<QuoteBook> {
        self.core.ctx.quotes.clone()
    }

    /// Creates or replaces an instrument.
    ///
    /// # Errors
    /// Validation of the definition; store failures.
    pub async fn upsert(&self, mut instrument: Instrument) -> Result<Instrument, AppError> {
        instrument
            .validate()
            .map_err(|e| AppError::field("instrument", e))?;
        let current = self
            .core
            .ctx
            .persistence
            .instruments
            .get_instrument(&instrument.id)
            .await?;
        let expected = current.map_or(0, |i| i.version);
        instrument.version = expected + 1;
        let mut cs = ChangeSet::default();
        cs.changes.push(StateChange::Instrument {
            instrument: Box::new(instrument.clone()),
            expected,
        });
        cs.push_events([DomainEvent::new(
            instrument.id.to_string(),
            instrument.version,
            None,
            self.core.ctx.clock.now(),
            None,
            EventPayload::Instrument(InstrumentEvent::Upserted {
                instrument: Box::new(instrument.clone()),
            }),
        )])
        .map_err(|e| AppError::Unexpected(e.to_string()))?;
        self.core.ctx.committer.commit(cs).await?;
        self.core.ctx.catalog.put(instrument.clone());
        Ok(instrument)
    }

    /// The latest quote.
    ///
    /// # Errors
    /// NotFound when the instrument is unknown or has no quote yet.
    pub fn quote(&self, id: &InstrumentId) -> Result<Quote, AppError> {
        if self.core.ctx.catalog.get(id).is_none() {
            return Err(AppError::NotFound("instrument"));
        }
        self.core
            .ctx
            .quotes
            .latest(id)
            .ok_or(AppError::NotFound("quote"))
    }

    /// One instrument, as the store has it now (through the cache, so an
    /// instrument created or changed on another instance is seen too; the local
    /// catalog learns it). Without a cache, the local catalog.
    ///
    /// # Errors
    /// NotFound; store failures.
    pub async fn get(&self, id: &InstrumentId) -> Result<Arc<Instrument>, AppError> {
        let known = self.core.ctx.catalog.get(id);
        if !self.core.cache.is_on() {
            return known.ok_or(AppError::NotFound("instrument"));
        }
        let (repo, key) = (self.core.ctx.persistence.instruments.clone(), id.clone());
        let stored = self
            .core
            .cache
            .instrument(id, || async move { Ok(repo.get_instrument(&key).await?) })
            .await?;
        match (stored, known) {
            (Some(s), Some(k)) if k.version >= s.version => Ok(k),
            (Some(s), _) => {
                self.core.ctx.catalog.put(s.clone());
                Ok(Arc::new(s))
            }
            (None, Some(k)) => Ok(k),
            (None, None) => Err(AppError::NotFound("instrument")),
        }
    }

    /// The latest quote: this instance's book, else the one another instance
    /// shared through the cache (at most `quote` TTL old).
    ///
    /// # Errors
    /// NotFound when the instrument is unknown or nobody has a quote for it.
    pub async fn latest_quote(&self, id: &InstrumentId) -> Result<Quote, AppError> {
        let local = self.quote(id);
        if local.is_ok() || !self.core.cache.is_shared() {
            return local;
        }
        match self.core.cache.quote(id).await {
            Some(q) => Ok(q),
            None => local,
        }
    }
}
