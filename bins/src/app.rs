//! The composition root: from a [`Config`] to a running engine and its HTTP API.

mod builder;

pub use builder::{AppBuilder, VenueContext};

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use ordermon_application::access::UserAccess;
use ordermon_application::bar_history::BarHistory;
use ordermon_application::instance_consumer::EventFanout;
use ordermon_application::market::QuoteBook;
use ordermon_application::ownership::UserOwnership;
use ordermon_application::sign_in::SignInService;
use ordermon_application::strategy_health::StrategyHealth;
use ordermon_application::{Engine, Monitoring, VenueMode};
use ordermon_domain::ports::{Cache, Clock};
use ordermon_domain::user::Role;
use ordermon_http::{ApiState, AuthConfig, DeadLetterAdmin, HealthCheck, HttpLimits};
use ordermon_memory::cache::MemoryCache;
use ordermon_sim::feed::SimulatedFeed;
use ordermon_sim::paper::PaperVenue;
use ordermon_sql::SqlStore;
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::bootstrap;
use crate::cache::{self as read_cache, OpenCache};
use crate::config::{Config, DatabaseKind};
use crate::demo;
use crate::live_market;
use crate::market;
use crate::messaging::{self, BusHealth, Messaging};
use crate::secret::{self, SecretSource};
use crate::store::{self, OpenStore};

/// Quotes the quote book keeps for slow readers.
const QUOTE_BUFFER: usize = 4096;

/// A built application: engine, feed, venue and router, ready to serve.
pub struct App {
    engine: Arc<Engine>,
    sign_in: Arc<SignInService>,
    monitoring: Arc<Monitoring>,
    router: axum::Router,
    store: OpenStore,
    auth: AuthConfig,
    /// Stops the feed, the venue and the catalog sync.
    market_cancel: CancellationToken,
    market_tasks: Vec<JoinHandle<()>>,
    /// Stops the monitors' scan, quote routing and ticker.
    monitor_cancel: CancellationToken,
    cluster_tasks: TaskTracker,
    /// The outbox relay and this instance's bus consumer.
    messaging: Messaging,
    /// Alert rules, notifications and their delivery.
    alerting: crate::alerting::Alerting,
    /// The cache's background tasks (Redis subscriber, prober, health watch).
    cache_tasks: TaskTracker,
    cache_cancel: CancellationToken,
    shutdown_timeout: Duration,
    /// The store keeps what it holds across a restart (not `memory`).
    durable_store: bool,
    /// Header-read timeout and connection cap of the HTTP server.
    connections: ordermon_http::server::ConnectionLimits,
    /// `http.metrics_addr`'s listener and its `/metrics`-only router.
    metrics: Option<(TcpListener, axum::Router)>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("engine", &self.engine)
            .field("store", &self.store)
            .field("messaging", &self.messaging)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish_non_exhaustive()
    }
}

/// Open per-user log files kept at once (least recently written closed first).
pub(crate) const USER_LOG_OPEN_FILES: usize = 256;

/// How long after start the first log retention sweep runs: not during the
/// start itself, when every monitor starts and logs.
const LOG_RETENTION_FIRST: std::time::Duration = std::time::Duration::from_secs(60);

/// Deletes log files older than the retention, a minute after start and then
/// hourly. The sweep walks every user's folder (50,000 at 50,000 users), so
/// it runs on a blocking thread, never on the runtime's workers.
fn spawn_log_retention(
    sink: Arc<ordermon_telemetry::user_logs::FileLogSink>,
    retention_days: u32,
    cancel: CancellationToken,
) {
    use ordermon_domain::ports::UserLogSink;
    tokio::spawn(async move {
        let hour = std::time::Duration::from_secs(3600);
        let mut every =
            tokio::time::interval_at(tokio::time::Instant::now() + LOG_RETENTION_FIRST, hour);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                () = cancel.cancelled() => return,
            }
            // Keep today and the `retention_days - 1` days before it.
            let keep = i64::from(retention_days.max(1)) - 1;
            let cutoff = chrono::Utc::now().date_naive() - chrono::Duration::days(keep);
            let sink = sink.clone();
            match tokio::task::spawn_blocking(move || sink.purge_before(cutoff)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(removed = n, %cutoff, "old log files deleted"),
                Ok(Err(e)) => tracing::warn!(error = %e, "log retention failed"),
                Err(e) => tracing::warn!(error = %e, "log retention stopped"),
            }
        }
    });
}

/// Builds the application `config` describes: opens (and migrates) the store,
/// starts the engine and its monitors, seeds the demo instruments, starts the
/// simulated feed and, in paper mode, the paper venue, and builds the router.
/// Nothing listens yet: call [`App::serve`], [`App::spawn`] or
/// [`App::run_headless`]. An embedder that brings its own strategy types,
/// venue, providers, notifiers or clock uses [`crate::AppBuilder`].
///
/// # Errors
/// A backend that cannot be reached or set up, or settings the running build
/// does not support (`kafka://` without the `kafka` feature).
pub async fn build(config: Config) -> anyhow::Result<App> {
    AppBuilder::new().build(config).await
}

/// [`build`] with what `ext` brings; `config` was validated against it.
pub(crate) async fn build_with(config: Config, ext: AppBuilder) -> anyhow::Result<App> {
    let AppBuilder {
        strategies,
        venue: own_venue,
        market_data,
        notifiers,
        clock,
    } = ext;
    let kind = config.database.kind()?;
    if matches!(kind, DatabaseKind::Sqlite | DatabaseKind::Memory) {
        tracing::info!(
            database = ?kind,
            "this store serves one instance; several instances share PostgreSQL or MySQL with cluster.enabled"
        );
    }
    // A port that is taken is a configuration error: found before anything
    // is started that would need stopping.
    let metrics_listener = match &config.http.metrics_addr {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding http.metrics_addr {addr}"))?,
        ),
        None => None,
    };
    let instance = config.bus.instance_name(&config.http.addr);
    let (jwt_secret, source) = secret::resolve(&config.auth).context("resolving the JWT secret")?;
    let auth = token_settings(&config.auth, jwt_secret);
    match source {
        SecretSource::Generated => tracing::info!(
            file = %config.auth.jwt_secret_file.display(),
            "generated a JWT secret; `monitor-server token` reads it from this file"
        ),
        SecretSource::Ephemeral => tracing::warn!(
            "generated a JWT secret in memory only: tokens stop working at the next restart"
        ),
        SecretSource::Configured | SecretSource::File => {}
    }

    // The bus first: it is the likeliest to be unreachable, and nothing has
    // been started yet that would need stopping.
    let bus = messaging::open_bus(&config.bus, config.bus.connect_timeout)
        .await
        .context("opening the message bus")?;
    let store = store::open(&config.database, true).await?;
    if kind == DatabaseKind::Memory {
        tracing::warn!("database.url = memory: nothing survives a restart");
    }
    let cache_tasks = TaskTracker::new();
    let cache_cancel = CancellationToken::new();
    let cache: OpenCache = match read_cache::open(&config.cache, &cache_tasks, &cache_cancel).await
    {
        Ok(c) => c,
        Err(e) => {
            store.close().await;
            return Err(anyhow::Error::new(e).context("opening the cache"));
        }
    };
    let quotes = Arc::new(QuoteBook::new(QUOTE_BUFFER));
    let root = CancellationToken::new();
    let engine = Engine::start_with_cache(
        store.serving_persistence(),
        quotes.clone(),
        clock.clone(),
        config.engine.engine_config(&config.monitor),
        config.engine.commit.for_database(kind),
        root.child_token(),
        strategies,
        cache.read.clone(),
    )
    .await;
    let engine = match engine {
        Ok(e) => e,
        Err(e) => {
            cache_cancel.cancel();
            store.close().await;
            return Err(anyhow::Error::new(e).context("starting the engine"));
        }
    };
    cache.watch(
        engine.clone(),
        instance.clone(),
        &cache_tasks,
        cache_cancel.clone(),
    );
    // Password sign-in: a service of its own over the same store.
    let sign_in = Arc::new(SignInService::new(
        engine.persistence(),
        clock.clone(),
        config.auth.sign_in(),
    ));
    let fanout = EventFanout::new(ordermon_application::instance_consumer::DEFAULT_CAPACITY);
    let messaging = Messaging::start(
        bus,
        &config.bus,
        config.bus.group(&config.http.addr),
        &engine,
        clock.clone(),
        fanout.clone(),
        cache.read.clone(),
    );
    // The venue before any owner starts: an owner hands it its open orders
    // when it starts (restart reconciliation), and the first scan starts
    // owners at once. Its matching task starts with the market tasks below.
    let paper = if let Some(make) = own_venue {
        let venue = make(VenueContext {
            quotes: quotes.clone(),
            reports: engine.report_sink(),
            clock: clock.clone(),
            catalog: engine.instruments.catalog(),
        });
        let venue = match venue {
            Ok(v) => v,
            Err(e) => {
                abandon(&root, None, &engine, messaging, &cache_cancel, &store).await;
                return Err(e.context("building the registered venue"));
            }
        };
        tracing::info!(venue = venue.name(), "orders go to the registered venue");
        engine.set_venue(venue);
        None
    } else if config.engine.venue == VenueMode::Paper {
        let venue = PaperVenue::new(
            config.paper.clone(),
            quotes.clone(),
            engine.report_sink(),
            clock.clone(),
            engine.instruments.catalog(),
        );
        let venue = match venue {
            Ok(v) => v,
            Err(e) => {
                abandon(&root, None, &engine, messaging, &cache_cancel, &store).await;
                return Err(anyhow::Error::new(e).context("starting the paper venue"));
            }
        };
        engine.set_venue(Arc::new(venue.clone()));
        Some(venue)
    } else {
        None
    };
    let monitor_cancel = root.child_token();
    let cluster_tasks = TaskTracker::new();
    // Before monitoring starts: with shared users, its first scan must
    // already start only the users this instance owns.
    let ownership = config.cluster.enabled.then(|| {
        let o = UserOwnership::new(
            engine.persistence().leases.clone(),
            messaging::lease_holder(&instance),
            (&config.cluster).into(),
        );
        engine.set_ownership(o.clone());
        o.spawn(engine.clone(), &cluster_tasks, &monitor_cancel);
        tracing::info!(
            holder = o.holder(),
            "sharing users with the other instances on this database"
        );
        o
    });
    // Before monitoring starts: its first scan starts every active
    // user's owner at once, and with many users their loads hold the pool
    // for seconds; the steps awaited before the server listens (creating the
    // bootstrap admin, and alerting's start, which reads the unresolved
    // alerts) would queue behind them.
    let started = async {
        if let Some(admin) = &config.auth.bootstrap_admin {
            bootstrap::ensure_admin(&engine, admin)
                .await
                .context("creating auth.bootstrap_admin")?;
        }
        crate::alerting::start(
            &config.alerting,
            &engine,
            &messaging,
            notifiers,
            clock.clone(),
            instance.clone(),
        )
        .await
    }
    .await;
    let alerting = match started {
        Ok(a) => a,
        Err(e) => {
            abandon(&root, None, &engine, messaging, &cache_cancel, &store).await;
            return Err(e);
        }
    };
    let monitoring = Monitoring::spawn(engine.clone(), &monitor_cancel);
    // Per-user logs: the API reads them through the engine's sink port; the
    // `monitor-server` binary also installs the tracing layer that writes them.
    let user_logs = Arc::new(ordermon_telemetry::user_logs::FileLogSink::new(
        &config.logs.dir,
        USER_LOG_OPEN_FILES,
    ));
    engine.set_user_logs(user_logs.clone());
    spawn_log_retention(user_logs, config.logs.retention_days, root.child_token());

    {
        let seeded = async {
            if !config.demo.instruments {
                return anyhow::Ok(());
            }
            market::seed_demo_instruments(&engine)
                .await
                .context("seeding demo instruments")?;
            if config.demo.users {
                let created = demo::seed_demo_users(&engine, &sign_in, clock.now())
                    .await
                    .context("seeding demo users")?;
                // Start new users' monitors now rather than at the next scan.
                if created > 0
                    && let Err(e) = monitoring.scan().await
                {
                    tracing::warn!(error = %e, "monitor scan after seeding demo users failed; the next scan retries");
                }
            }
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = seeded {
            abandon(
                &root,
                Some(&alerting),
                &engine,
                messaging,
                &cache_cancel,
                &store,
            )
            .await;
            return Err(e);
        }
    }
    let market_cancel = root.child_token();
    let mut market_tasks = Vec::new();
    let live = if config.feed.is_simulated() {
        let feed = Arc::new(
            SimulatedFeed::new(&config.feed, quotes.clone(), clock.clone())
                .context("starting the simulated feed")?,
        );
        market::cover_catalog(&engine, &feed);
        market_tasks.push(feed.spawn(market_cancel.clone()));
        market_tasks.push(market::spawn_catalog_sync(
            engine.clone(),
            feed.clone(),
            market_cancel.clone(),
        ));
        None
    } else {
        // The provider's answers are cached in the shared tier when there is
        // one, else in a cache of its own (TTLs per call: quotes 10 s, bars 5 min).
        let provider_cache: Option<Arc<dyn Cache>> = if !config.cache.enabled {
            None
        } else if let Some(tiered) = &cache.tiered {
            Some(Arc::new(tiered.clone()))
        } else {
            Some(Arc::new(MemoryCache::new(config.cache.max_entries)))
        };
        let started = live_market::start(
            &config,
            &engine,
            &market_data,
            provider_cache,
            clock.clone(),
            market_cancel.clone(),
        )
        .await;
        let (live, task) = match started {
            Ok(started) => started,
            Err(e) => {
                abandon(
                    &root,
                    Some(&alerting),
                    &engine,
                    messaging,
                    &cache_cancel,
                    &store,
                )
                .await;
                return Err(e);
            }
        };
        market_tasks.push(task);
        Some(live)
    };
    if let Some(venue) = &paper {
        market_tasks.push(venue.spawn(market_cancel.clone()));
    }

    let metrics = ordermon_telemetry::install_metrics("monitor-server", env!("CARGO_PKG_VERSION"));
    if let Err(e) = &metrics {
        tracing::warn!(error = %e, "metrics are not recorded by ordermon; /metrics will be empty");
    }
    let render_metrics: ordermon_http::RenderMetrics = match metrics {
        Ok(m) => {
            let (engine, sql) = (engine.clone(), store.sql());
            Arc::new(move || {
                scrape_gauges(&engine, sql.as_deref());
                m.render()
            })
        }
        Err(_) => Arc::new(String::new),
    };
    // With a listener of their own, metrics leave the API's listener.
    let (render_metrics, metrics) = match metrics_listener {
        Some(listener) => (
            None,
            Some((listener, ordermon_http::metrics_router(render_metrics))),
        ),
        None => (Some(render_metrics), None),
    };
    let mut health: Vec<Arc<dyn HealthCheck>> = vec![
        Arc::new(FeedHealth {
            quotes,
            clock: clock.clone(),
            stale_after: if live.is_some() {
                Duration::from_millis(config.feed.poll.max_quote_age_ms)
            } else {
                Duration::from_millis(config.feed.interval_ms.saturating_mul(20))
                    .max(Duration::from_secs(5))
            },
            engine: engine.clone(),
        }),
        Arc::new(BusHealth {
            bus: messaging.bus().clone(),
            consumer: messaging.consumer(),
        }),
    ];
    health.extend(cache.health());
    if let Some(client) = live.as_ref().and_then(|l| l.client.clone()) {
        health.push(Arc::new(live_market::ProviderHealth(client)));
    }
    let mut status = messaging.status_sections();
    if let Some(live) = &live {
        status.push(Arc::new(live_market::FeedSection(live.clone())));
    }
    status.push(cache.status_section());
    status.push(alerting.status_section());
    // Requests for users another instance owns go to it, at the address it
    // published.
    let forwarder = match &ownership {
        Some(o) => {
            let book = o.clone();
            Some(Arc::new(
                ordermon_http::forward::Forwarder::new(
                    o.holder(),
                    Arc::new(move |holder: &str| book.address_of(holder)),
                    config.http.request_timeout,
                    config.http.body_limit_bytes,
                )
                .context("the request forwarder")?,
            ))
        }
        None => None,
    };
    if let Some(o) = ownership {
        status.push(Arc::new(messaging::Section::new("ownership", move || {
            serde_json::to_value(o.status()).unwrap_or_default()
        })));
    }
    let monitoring_status = monitoring.clone();
    status.push(Arc::new(messaging::Section::new("monitoring", move || {
        serde_json::to_value(monitoring_status.status()).unwrap_or_default()
    })));
    // Strategy restarts and last errors, from every instance's monitor events.
    let strategy_health = Arc::new(StrategyHealth::new());
    drop(strategy_health.spawn(fanout.subscribe(), root.child_token()));
    let api = ApiState {
        engine: engine.clone(),
        auth: Arc::new(auth.clone()),
        access: Arc::new(UserAccess::new(
            engine.persistence().users.clone(),
            config.auth.user_check_ttl,
        )),
        render_metrics,
        started_at: clock.now(),
        clock: clock.clone(),
        limits: HttpLimits {
            body_limit_bytes: config.http.body_limit_bytes,
            request_timeout_secs: config.http.request_timeout.as_secs().max(1),
        },
        health: health.into(),
        events: fanout,
        dead_letters: Some(Arc::new(DeadLetterAdmin {
            letters: messaging.dead_letters(),
            default_group: messaging.group().to_owned(),
        })),
        status: status.into(),
        alerting: Some(alerting.service.clone()),
        bars: Some(Arc::new(BarHistory::new(
            engine.persistence().bars.clone(),
            live.as_ref().map(|l| l.provider.clone()),
            engine.instruments.catalog(),
            clock.clone(),
        ))),
        sign_in: Some(sign_in.clone()),
        strategy_health: Some(strategy_health),
        streams: Arc::new(ordermon_http::routes::stream::StreamSlots::new(
            config.http.max_streams_per_user,
            config.http.max_streams,
        )),
        request_limits: Some(Arc::new(
            ordermon_application::request_limits::RequestLimits::new(
                ordermon_application::request_limits::RequestLimitsConfig {
                    per_user_per_second: config.http.rate_limit_per_user,
                    per_ip_per_second: config.http.rate_limit_per_ip,
                },
            ),
        )),
        verified_tokens: Arc::default(),
        forwarder,
    };
    // Readiness as gauges, whether or not anything probes /health/ready.
    let readiness = api.clone();
    let readiness_stop = monitor_cancel.child_token();
    drop(tokio::spawn(async move {
        let mut every = tokio::time::interval(READINESS_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = every.tick() => ordermon_http::routes::health::record_readiness(&readiness).await,
                () = readiness_stop.cancelled() => return,
            }
        }
    }));
    let router = ordermon_http::router(api);
    Ok(App {
        engine,
        sign_in,
        monitoring,
        router,
        store,
        auth,
        market_cancel,
        market_tasks,
        monitor_cancel,
        cluster_tasks,
        messaging,
        alerting,
        cache_tasks,
        cache_cancel,
        shutdown_timeout: config.shutdown.timeout,
        durable_store: !matches!(kind, DatabaseKind::Memory),
        connections: ordermon_http::server::ConnectionLimits {
            header_read_timeout: config.http.header_read_timeout,
            max_connections: config.http.max_connections,
        },
        metrics,
    })
}

/// Leaves nothing running behind a failed build: stops what was started, in
/// the order a shutdown does.
async fn abandon(
    root: &CancellationToken,
    alerting: Option<&crate::alerting::Alerting>,
    engine: &Engine,
    messaging: Messaging,
    cache_cancel: &CancellationToken,
    store: &OpenStore,
) {
    root.cancel();
    if let Some(alerting) = alerting {
        alerting.shutdown().await;
    }
    engine.shutdown().await;
    messaging.shutdown().await;
    cache_cancel.cancel();
    store.close().await;
}

impl App {
    /// The engine, for embedders and tests that call use cases directly.
    #[must_use]
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Password sign-in: set passwords (`user set-password`, demo users),
    /// sign in, refresh, sign out.
    #[must_use]
    pub fn sign_in(&self) -> &Arc<SignInService> {
        &self.sign_in
    }

    /// The monitors' scan loop (its status feeds `/status`).
    #[must_use]
    pub fn monitoring(&self) -> &Arc<Monitoring> {
        &self.monitoring
    }

    /// The address metrics are served on when `http.metrics_addr` is set
    /// (until [`App::serve`] takes the listener over).
    #[must_use]
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
            .as_ref()
            .and_then(|(listener, _)| listener.local_addr().ok())
    }

    /// Mints a token for `sub` with `role`, valid for `ttl`.
    ///
    /// # Errors
    /// A `sub` that is not a valid user id.
    pub fn mint_token(&self, sub: &str, role: Role, ttl: Duration) -> anyhow::Result<String> {
        ordermon_http::mint_token(&self.auth, sub, role, ttl).context("minting a token")
    }

    /// Serves HTTP on `listener` until `shutdown` completes, then shuts down
    /// gracefully: stops accepting, lets in-flight requests finish, stops the
    /// feed and the venue, drains the monitors, owners and committer, and closes
    /// the pools — all within `shutdown.timeout` of the signal.
    ///
    /// # Errors
    /// The listener failing, or the shutdown missing its deadline.
    pub async fn serve(
        mut self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let signalled = CancellationToken::new();
        let on_signal = signalled.clone();
        let graceful = async move {
            shutdown.await;
            on_signal.cancel();
        };
        // Metrics on their own listener stop with the API's: at the signal.
        let metrics = self.metrics.take().map(|(listener, router)| {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, "metrics listening");
            }
            let stop = signalled.clone();
            tokio::spawn(ordermon_http::server::serve(
                listener,
                router,
                self.connections,
                async move { stop.cancelled().await },
            ))
        });
        // Handlers get the peer address (sign-in attempts are limited per
        // client address); slow or excess connections are bounded.
        let (router, limits) = (self.router.clone(), self.connections);
        let server = async move {
            ordermon_http::server::serve(listener, router, limits, graceful).await;
            anyhow::Ok(())
        };
        tokio::pin!(server);
        // Serve until the signal; then give in-flight requests until the deadline.
        // Whatever happened to HTTP, the engine is shut down before returning.
        let (served, deadline) = tokio::select! {
            r = &mut server => (r.context("serving HTTP"), Instant::now() + self.shutdown_timeout),
            () = signalled.cancelled() => {
                let deadline = Instant::now() + self.shutdown_timeout;
                tracing::info!(timeout = ?self.shutdown_timeout, "shutting down");
                let served = match tokio::time::timeout_at(deadline, &mut server).await {
                    Ok(r) => r.context("serving HTTP"),
                    Err(_) => {
                        tracing::warn!("requests still running at the deadline; closing");
                        Ok(())
                    }
                };
                (served, deadline)
            }
        };
        signalled.cancel();
        if let Some(task) = metrics
            && tokio::time::timeout_at(deadline, task).await.is_err()
        {
            tracing::warn!("a metrics scrape still running at the deadline; closing");
        }
        let stopped = self.shutdown_until(deadline).await;
        served.and(stopped)
    }

    /// Serves on `listener` in a background task; stop it with
    /// [`RunningApp::stop`]. This is how tests and embedders run the app on port 0.
    ///
    /// # Errors
    /// The listener's address cannot be read.
    pub fn spawn(self, listener: TcpListener) -> anyhow::Result<RunningApp> {
        let local_addr = listener
            .local_addr()
            .context("reading the listener's address")?;
        let engine = self.engine.clone();
        let sign_in = self.sign_in.clone();
        let auth = self.auth.clone();
        let stop = CancellationToken::new();
        let signal = stop.clone();
        let task = tokio::spawn(self.serve(listener, async move { signal.cancelled().await }));
        Ok(RunningApp {
            local_addr,
            engine,
            sign_in,
            auth,
            stop,
            task,
        })
    }

    /// Runs without HTTP until `shutdown` completes, then shuts down as
    /// [`App::serve`] does, within `shutdown.timeout`: for an embedder that
    /// drives the engine itself. Metrics are not served (`http.metrics_addr`
    /// is released).
    ///
    /// # Errors
    /// The shutdown missing its deadline.
    pub async fn run_headless(
        mut self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        drop(self.metrics.take());
        shutdown.await;
        tracing::info!(timeout = ?self.shutdown_timeout, "shutting down");
        let deadline = Instant::now() + self.shutdown_timeout;
        self.shutdown_until(deadline).await
    }

    /// Stops everything but HTTP, bounded by `deadline`.
    async fn shutdown_until(self, deadline: Instant) -> anyhow::Result<()> {
        // The step under way; read once the steps' future is gone.
        let mut step = ShutdownStep::Market;
        let steps = async {
            self.market_cancel.cancel();
            for task in self.market_tasks {
                // A task that panicked has stopped too.
                drop(task.await);
            }
            step = ShutdownStep::Monitors;
            self.monitor_cancel.cancel();
            // Shared users: their owners stop and their leases go at once.
            self.cluster_tasks.close();
            self.cluster_tasks.wait().await;
            // Alerting writes through the committer: it stores its last
            // decisions before the engine stops.
            step = ShutdownStep::Alerting;
            self.alerting.shutdown().await;
            step = ShutdownStep::Engine;
            self.engine.shutdown().await;
            // After the last commit: the relay drains the outbox, then the
            // consumer stops.
            step = ShutdownStep::Outbox;
            self.messaging.shutdown().await;
            step = ShutdownStep::Close;
            self.cache_cancel.cancel();
            self.cache_tasks.close();
            self.cache_tasks.wait().await;
            self.store.close().await;
        };
        let finished = tokio::time::timeout_at(deadline, steps).await;
        match finished {
            Ok(()) => {
                tracing::info!("shut down cleanly");
                Ok(())
            }
            Err(_) => {
                anyhow::bail!(
                    "shutdown did not finish within {:?} while {}; {}",
                    self.shutdown_timeout,
                    step.doing(),
                    step.left_behind(self.durable_store)
                )
            }
        }
    }
}

/// What a shutdown was doing when its deadline passed, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShutdownStep {
    Market,
    Monitors,
    Alerting,
    Engine,
    Outbox,
    Close,
}

impl ShutdownStep {
    fn doing(self) -> &'static str {
        match self {
            Self::Market => "stopping the market data tasks",
            Self::Monitors => "stopping the monitors and handing back shared users",
            Self::Alerting => "storing alerting's last decisions",
            Self::Engine => "stopping the owners (committing their last batches)",
            Self::Outbox => "publishing the outbox's unsent rows",
            Self::Close => "closing the cache and the store",
        }
    }

    /// What the cut-short step leaves for the next start to do, or lost.
    fn left_behind(self, durable: bool) -> &'static str {
        match (self, durable) {
            (Self::Market | Self::Monitors, _) => {
                "nothing committed is lost; some background tasks were cut short"
            }
            (Self::Alerting, _) => {
                "alerting's latest decisions may not be stored; the next start evaluates again"
            }
            (Self::Engine, _) => {
                "a command not yet acknowledged may not be committed; every acknowledged one is"
            }
            (Self::Outbox, true) => {
                "the unsent rows stay in the store and the next start publishes them"
            }
            (Self::Outbox, false) => {
                "the in-memory store's unsent outbox rows are lost with the process"
            }
            (Self::Close, _) => "everything was committed and published",
        }
    }
}

/// An app serving in the background.
#[derive(Debug)]
pub struct RunningApp {
    local_addr: SocketAddr,
    engine: Arc<Engine>,
    sign_in: Arc<SignInService>,
    auth: AuthConfig,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningApp {
    /// The address it listens on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://{local_addr}`.
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// The engine.
    #[must_use]
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Password sign-in (as [`App::sign_in`]).
    #[must_use]
    pub fn sign_in(&self) -> &Arc<SignInService> {
        &self.sign_in
    }

    /// Mints a token for `sub` with `role`, valid for `ttl`.
    ///
    /// # Errors
    /// A `sub` that is not a valid user id.
    pub fn mint_token(&self, sub: &str, role: Role, ttl: Duration) -> anyhow::Result<String> {
        ordermon_http::mint_token(&self.auth, sub, role, ttl).context("minting a token")
    }

    /// Shuts down gracefully and waits for it.
    ///
    /// # Errors
    /// As for [`App::serve`].
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.task.await.context("the server task panicked")?
    }
}

/// How often readiness is checked for `ordermon_ready` and
/// `ordermon_component_up`.
const READINESS_EVERY: Duration = Duration::from_secs(5);

/// Readiness of the simulated feed: the newest quote is recent.
struct FeedHealth {
    quotes: Arc<QuoteBook>,
    clock: Arc<dyn Clock>,
    stale_after: Duration,
    engine: Arc<Engine>,
}

#[async_trait]
impl HealthCheck for FeedHealth {
    fn name(&self) -> &'static str {
        "market_data"
    }

    async fn check(&self) -> Result<(), String> {
        if self.engine.instruments.catalog().all().is_empty() {
            return Ok(());
        }
        let newest = self
            .quotes
            .instruments()
            .iter()
            .filter_map(|i| self.quotes.latest(i))
            .map(|q| q.ts)
            .max()
            .ok_or_else(|| "no quote yet".to_owned())?;
        let age = (self.clock.now() - newest).to_std().unwrap_or_default();
        if age > self.stale_after {
            return Err(format!("newest quote is {}s old", age.as_secs()));
        }
        Ok(())
    }
}

/// How tokens are checked and minted, from `[auth]` and the resolved secret.
#[must_use]
pub fn token_settings(settings: &crate::config::AuthSettings, secret: SecretString) -> AuthConfig {
    AuthConfig {
        jwt_secret: secret,
        leeway_secs: settings.leeway_secs,
        issuer: settings.issuer.clone(),
        audience: settings.audience.clone(),
    }
}

/// Gauges read at each scrape: owners and their queued commands, and the
/// database pool's connections.
#[allow(clippy::cast_precision_loss)]
fn scrape_gauges(engine: &Engine, sql: Option<&SqlStore>) {
    let s = engine.status();
    metrics::gauge!("ordermon_owners").set(s.owners as f64);
    metrics::gauge!("ordermon_owner_queued_commands").set(s.queued_commands as f64);
    if let Some(sql) = sql {
        let (open, idle) = sql.pool_connections();
        metrics::gauge!("ordermon_db_pool_connections", "state" => "idle").set(idle as f64);
        metrics::gauge!("ordermon_db_pool_connections", "state" => "busy")
            .set(f64::from(open).max(idle as f64) - idle as f64);
    }
}

#[cfg(test)]
mod shutdown_step_tests {
    use super::ShutdownStep;

    #[test]
    fn each_step_says_what_it_was_doing_and_leaves() {
        let steps = [
            ShutdownStep::Market,
            ShutdownStep::Monitors,
            ShutdownStep::Alerting,
            ShutdownStep::Engine,
            ShutdownStep::Outbox,
            ShutdownStep::Close,
        ];
        for s in steps {
            assert!(!s.doing().is_empty());
        }
        // Unsent outbox rows survive only in a durable store.
        assert!(
            ShutdownStep::Outbox
                .left_behind(true)
                .contains("next start publishes")
        );
        assert!(ShutdownStep::Outbox.left_behind(false).contains("lost"));
        assert!(
            !ShutdownStep::Market
                .left_behind(false)
                .contains("lost with")
        );
    }
}
