//! The embedding API: ordermon as a crate, with the embedder's own strategy
//! types, venue, market data providers, notifiers and clock.
//!
//! [`AppBuilder`] collects what the embedder brings; [`AppBuilder::build`]
//! then builds the same application `monitor-server` runs from a [`Config`],
//! with those in place of (or beside) the built-in ones:
//!
//! | brought in code | replaces or joins | selected by |
//! |---|---|---|
//! | [`AppBuilder::strategy`] | the built-in strategy types | a strategy's `type` |
//! | [`AppBuilder::venue`] | the paper venue | `engine.venue = "paper"` (the default) |
//! | [`AppBuilder::market_data`] | the configured providers | `feed.provider = "<its name>"` |
//! | [`AppBuilder::notifier`] | the configured receivers | alert routes naming it |
//! | [`AppBuilder::clock`] | the system clock | always |
//!
//! The result serves the HTTP API ([`App::serve`], [`App::spawn`]) or runs
//! headless ([`App::run_headless`]). The `examples/embedded` crate trades on
//! the simulated feed with its own strategy and venue.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use std::sync::Arc;
//! use ordermon::config::{Config, ServiceUrl};
//! use ordermon::{AppBuilder, VenueContext};
//! # use ordermon::config::PaperConfig;
//! # use ordermon_sim::paper::PaperVenue;
//!
//! let builder = AppBuilder::new()
//!     // .strategy(MyStrategyFactory)
//!     .venue(|ctx: VenueContext| {
//!         // Your venue adapter: submit/modify/cancel, and fills later
//!         // through `ctx.reports`.
//! #       let venue = PaperVenue::new(PaperConfig::default(), ctx.quotes, ctx.reports, ctx.clock, ctx.catalog)?;
//!         Ok(Arc::new(venue))
//!     });
//! let mut config = Config::default();
//! config.database.url = ServiceUrl::new("memory");
//! let app = builder.build(config).await?;
//! app.run_headless(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::Context as _;
use ordermon_application::catalog::InstrumentCatalog;
use ordermon_application::market::QuoteBook;
use ordermon_application::strategy::{StrategyFactory, StrategyRegistry};
use ordermon_domain::ports::{
    Clock, ExecutionReportSink, ExecutionVenue, MarketDataProvider, Notifier, SystemClock,
};

use super::App;
use crate::config::{Config, Registered};

/// What a venue of the embedder's is built from, once the engine exists.
#[derive(Clone)]
pub struct VenueContext {
    /// The latest quotes (what the feed last published).
    pub quotes: Arc<QuoteBook>,
    /// Where the venue sends reports that come later than the call that
    /// caused them (fills of a resting order, cancels by the venue).
    pub reports: Arc<dyn ExecutionReportSink>,
    /// The application's clock.
    pub clock: Arc<dyn Clock>,
    /// The instruments (tick and lot sizes).
    pub catalog: Arc<InstrumentCatalog>,
}

impl std::fmt::Debug for VenueContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VenueContext").finish_non_exhaustive()
    }
}

/// Builds the embedder's venue.
pub(crate) type VenueFactory =
    Box<dyn FnOnce(VenueContext) -> anyhow::Result<Arc<dyn ExecutionVenue>> + Send>;

/// What the embedder brings, collected until [`AppBuilder::build`].
pub struct AppBuilder {
    pub(crate) strategies: StrategyRegistry,
    pub(crate) venue: Option<VenueFactory>,
    pub(crate) market_data: Vec<Arc<dyn MarketDataProvider>>,
    pub(crate) notifiers: Vec<Arc<dyn Notifier>>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for AppBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppBuilder")
            .field("strategies", &self.strategies.describe())
            .field("venue", &self.venue.is_some())
            .field("market_data", &self.market_data)
            .field("notifiers", &self.notifiers)
            .field("clock", &self.clock)
            .finish()
    }
}

impl Default for AppBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl AppBuilder {
    /// What `monitor-server` runs: the built-in strategy types, the paper
    /// venue, the configured providers and receivers, the system clock.
    #[must_use]
    pub fn new() -> Self {
        Self {
            strategies: StrategyRegistry::with_builtins(),
            venue: None,
            market_data: Vec::new(),
            notifiers: Vec::new(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Adds a strategy type; strategies whose `type` is its
    /// [`StrategyFactory::type_name`] run it. A type named like a built-in
    /// one replaces it.
    #[must_use]
    pub fn strategy(mut self, factory: impl StrategyFactory + 'static) -> Self {
        self.strategies.register(Arc::new(factory));
        self
    }

    /// The venue orders go to, in place of the paper venue (with
    /// `engine.venue = "paper"`, the default; `"external"` sends orders
    /// nowhere and refuses a venue). `make` runs once, while the application
    /// is built, before any order can reach the venue.
    #[must_use]
    pub fn venue(
        mut self,
        make: impl FnOnce(VenueContext) -> anyhow::Result<Arc<dyn ExecutionVenue>> + Send + 'static,
    ) -> Self {
        self.venue = Some(Box::new(make));
        self
    }

    /// A market data provider, polled by the live feed when `feed.provider`
    /// is its [`MarketDataProvider::name`] (and serving bars to the API). Its
    /// rate limits and retries are its own.
    #[must_use]
    pub fn market_data(mut self, provider: Arc<dyn MarketDataProvider>) -> Self {
        self.market_data.push(provider);
        self
    }

    /// An alert receiver: routes (and escalation) that name its
    /// [`Notifier::name`] deliver to it, as to a configured receiver.
    #[must_use]
    pub fn notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifiers.push(notifier);
        self
    }

    /// The clock every time-dependent part reads (the system's by default).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The names registered so far, to validate or load a configuration
    /// that refers to them.
    #[must_use]
    pub fn registered(&self) -> Registered {
        Registered {
            market_data: self
                .market_data
                .iter()
                .map(|p| p.name().to_owned())
                .collect(),
            receivers: self.notifiers.iter().map(|n| n.name().to_owned()).collect(),
        }
    }

    /// Builds the application `config` describes with what was registered:
    /// see [`crate::build`], which is this with nothing registered.
    ///
    /// # Errors
    /// Two providers or two notifiers of one name, a provider called
    /// `simulated`, a notifier named like a configured receiver, a venue
    /// with `engine.venue = "external"`, a venue that cannot be built, and
    /// everything [`crate::build`] refuses.
    pub async fn build(self, config: Config) -> anyhow::Result<App> {
        self.check(&config)?;
        // Boxed: wiring everything makes a large future, and callers hold it.
        Box::pin(super::build_with(config, self)).await
    }

    fn check(&self, config: &Config) -> anyhow::Result<()> {
        let mut seen = BTreeSet::new();
        for p in &self.market_data {
            let name = p.name();
            anyhow::ensure!(
                name != ordermon_sim::feed::SIMULATED,
                "a market data provider may not be called `{name}`: that is the simulated feed"
            );
            anyhow::ensure!(
                seen.insert(name),
                "two market data providers are called `{name}`"
            );
        }
        let mut seen = BTreeSet::new();
        for n in &self.notifiers {
            let name = n.name();
            anyhow::ensure!(seen.insert(name), "two notifiers are called `{name}`");
            anyhow::ensure!(
                !config.alerting.receivers.contains_key(name),
                "the notifier `{name}` has the name of a configured receiver (alerting.receivers.{name})"
            );
        }
        if self.venue.is_some() {
            anyhow::ensure!(
                config.engine.venue == ordermon_application::VenueMode::Paper,
                "a venue was registered but engine.venue = \"external\" sends orders to none; set engine.venue = \"paper\""
            );
        }
        config
            .validate_with(&self.registered())
            .context("invalid configuration")
    }
}
