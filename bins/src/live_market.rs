//! A real market data provider driving the quote book (`feed.provider` names
//! one): the provider built once and shared (one rate budget for the feed,
//! the bars route and anything else), the instruments it lists added to the
//! catalog, the live feed polling it, and its readiness and status.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use ordermon_application::Engine;
use ordermon_application::live_feed::LiveFeed;
use ordermon_domain::ports::{Cache, Clock, MarketDataProvider};
use ordermon_http::{HealthCheck, StatusSection};
use ordermon_marketdata::{BreakerState, MarketData};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// How long the start waits for the provider's instrument list.
const INSTRUMENTS_TIMEOUT: Duration = Duration::from_secs(15);

/// The provider and the feed polling it.
#[derive(Debug, Clone)]
pub(crate) struct LiveMarket {
    pub(crate) provider: Arc<dyn MarketDataProvider>,
    /// A configured provider's client (rate limit, circuit breaker, health);
    /// none for a provider an embedder registered in code.
    pub(crate) client: Option<Arc<MarketData>>,
    pub(crate) feed: Arc<LiveFeed>,
}

/// Builds the provider named by `feed.provider` and, for a provider that
/// lists instruments, adds the polled instruments it knows and the catalog
/// lacks (with the exchange's tick and lot sizes). A provider an embedder
/// registered under that name is polled as it is: its rate limits and
/// retries are its own.
///
/// # Errors
/// The provider cannot be built (a bad configuration).
pub(crate) async fn start(
    config: &Config,
    engine: &Engine,
    registered: &[Arc<dyn MarketDataProvider>],
    cache: Option<Arc<dyn Cache>>,
    clock: Arc<dyn Clock>,
    cancel: CancellationToken,
) -> anyhow::Result<(LiveMarket, JoinHandle<()>)> {
    let name = &config.feed.provider;
    if let Some(provider) = registered.iter().find(|p| p.name() == name.as_str()) {
        return start_polling(config, engine, provider.clone(), None, clock, cancel);
    }
    let mut provider_config = config
        .provider(name)
        .map_err(anyhow::Error::msg)
        .context("feed.provider")?;
    // A quote served from the cache longer than half a poll interval would
    // hold the book still: the live feed wants the provider's latest.
    let poll = Duration::from_millis(config.feed.poll.interval_ms);
    provider_config.cache.quote_ttl = provider_config
        .cache
        .quote_ttl
        .min(poll / 2)
        .max(Duration::from_millis(1));
    let provider = ordermon_marketdata::build_with_clock(&provider_config, cache, clock.clone())
        .with_context(|| format!("building market data provider `{name}`"))?;
    if provider.lists_instruments() {
        add_listed_instruments(engine, &provider, &config.feed.poll.instruments).await;
    }
    let polled: Arc<dyn MarketDataProvider> = provider.clone();
    start_polling(config, engine, polled, Some(provider), clock, cancel)
}

/// Starts the live feed polling `provider` (`client`: its configured
/// client, none for a registered provider).
fn start_polling(
    config: &Config,
    engine: &Engine,
    provider: Arc<dyn MarketDataProvider>,
    client: Option<Arc<MarketData>>,
    clock: Arc<dyn Clock>,
    cancel: CancellationToken,
) -> anyhow::Result<(LiveMarket, JoinHandle<()>)> {
    let feed = Arc::new(
        LiveFeed::new(
            provider.clone(),
            engine.instruments.quotes(),
            clock,
            config.feed.poll.clone(),
        )
        .context("starting the live feed")?,
    );
    let task = feed.spawn(cancel);
    tracing::info!(
        provider = %config.feed.provider,
        registered = client.is_none(),
        instruments = config.feed.poll.instruments.len(),
        interval_ms = config.feed.poll.interval_ms,
        "live feed polling"
    );
    let live = LiveMarket {
        provider,
        client,
        feed,
    };
    Ok((live, task))
}

/// Adds the polled instruments the provider lists and the catalog lacks. A
/// provider that cannot answer now is not fatal: the server starts, the feed
/// keeps polling, and the instruments can be added through the API.
async fn add_listed_instruments(
    engine: &Engine,
    provider: &MarketData,
    polled: &[ordermon_domain::ids::InstrumentId],
) {
    let missing: Vec<_> = polled
        .iter()
        .filter(|i| engine.instruments.catalog().get(i).is_none())
        .collect();
    if missing.is_empty() {
        return;
    }
    let listed = match tokio::time::timeout(INSTRUMENTS_TIMEOUT, provider.instruments()).await {
        Ok(Ok(listed)) => listed,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "the provider's instrument list is unavailable; add the polled instruments through the API");
            return;
        }
        Err(_) => {
            tracing::warn!(
                "the provider's instrument list did not come in time; add the polled instruments through the API"
            );
            return;
        }
    };
    for id in missing {
        let Some(instrument) = listed.iter().find(|i| &i.id == id) else {
            tracing::warn!(instrument = %id, "the provider does not list this polled instrument");
            continue;
        };
        match engine.instruments.upsert(instrument.clone()).await {
            Ok(_) => {
                tracing::info!(instrument = %id, tick = %instrument.tick_size, lot = %instrument.lot_size, "instrument added from the provider")
            }
            Err(e) => tracing::warn!(instrument = %id, error = %e, "could not add the instrument"),
        }
    }
}

/// Readiness of the provider: degraded (never unready) while its circuit is
/// open — the server still serves orders, monitors and history without it.
pub(crate) struct ProviderHealth(pub(crate) Arc<MarketData>);

#[async_trait]
impl HealthCheck for ProviderHealth {
    fn name(&self) -> &'static str {
        "market_data_provider"
    }

    fn critical(&self) -> bool {
        false
    }

    async fn check(&self) -> Result<(), String> {
        let health = self.0.health();
        match self.0.breaker_state() {
            BreakerState::Closed => Ok(()),
            state => Err(format!(
                "circuit {} after {} failures{}",
                breaker_name(state),
                health.consecutive_failures,
                health
                    .last_failure
                    .as_deref()
                    .map(|f| format!(": {f}"))
                    .unwrap_or_default()
            )),
        }
    }
}

fn breaker_name(state: BreakerState) -> &'static str {
    match state {
        BreakerState::Closed => "closed",
        BreakerState::Open => "open",
        BreakerState::HalfOpen => "half-open",
    }
}

/// `/status` section `feed`: the live feed's figures and the provider's health.
pub(crate) struct FeedSection(pub(crate) LiveMarket);

impl StatusSection for FeedSection {
    fn name(&self) -> &'static str {
        "feed"
    }

    fn report(&self) -> serde_json::Value {
        let provider = match &self.0.client {
            Some(client) => serde_json::to_value(client.health()).unwrap_or_default(),
            // Registered in code: its health is its own.
            None => serde_json::json!({ "name": self.0.provider.name(), "registered": true }),
        };
        serde_json::json!({
            "live": self.0.feed.status(),
            "provider": provider,
        })
    }
}
