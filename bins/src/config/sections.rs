//! The sections of the configuration tree, each with its defaults (`[engine]`
//! lives in its own module).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ordermon_application::MonitorConfig;
use ordermon_application::cache::{CacheSettings as ReadCacheSettings, Codec, NamespaceSettings};
use ordermon_application::ownership::OwnershipConfig;
use ordermon_application::relay::RelayConfig;
use ordermon_application::sign_in::SignInConfig;
use ordermon_sql::Dialect;
use ordermon_telemetry::LogFormat;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{ConfigError, duration, redact};

/// A service URL whose password never prints: `Debug`, `Display` and
/// serialization show it redacted; [`ServiceUrl::expose`] gives the real one.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ServiceUrl(String);

impl ServiceUrl {
    /// A URL.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL with its password, for connecting.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True for the in-process implementation (`memory`).
    #[must_use]
    pub fn is_memory(&self) -> bool {
        self.0.trim() == "memory"
    }
}

impl std::fmt::Debug for ServiceUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", redact::url(&self.0))
    }
}

impl std::fmt::Display for ServiceUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact::url(&self.0))
    }
}

impl Serialize for ServiceUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&redact::url(&self.0))
    }
}

/// `[http]`: the listener and request limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Address to listen on (default `127.0.0.1:8080`).
    pub addr: String,
    /// Largest request body (default 1 MiB); larger bodies get 413.
    pub body_limit_bytes: usize,
    /// Time a request may take (default `30s`).
    #[serde(with = "duration::serde")]
    pub request_timeout: Duration,
    /// Time a client may take to send a request's headers before its
    /// connection is closed (default `10s`; slow-header clients).
    #[serde(with = "duration::serde")]
    pub header_read_timeout: Duration,
    /// Most HTTP connections open at once (default 10,000); more wait in the
    /// listener's backlog.
    pub max_connections: usize,
    /// API requests a second per signed-in user, with bursts of twice as many
    /// (default 1000; 0: no limit). Over it: 429 with `Retry-After`.
    pub rate_limit_per_user: u32,
    /// API requests a second per client address, the same way (default 0: no
    /// limit; behind a proxy every client shares its address).
    pub rate_limit_per_ip: u32,
    /// Live streams (`/api/v1/stream`) one user may hold open (default 16).
    pub max_streams_per_user: usize,
    /// Live streams open in all (default 10,000).
    pub max_streams: usize,
    /// A listener of its own for `GET /metrics` (`host:port`; default unset:
    /// metrics are served on `addr`). Set, the API listener no longer serves
    /// `/metrics`.
    pub metrics_addr: Option<String>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8080".to_owned(),
            body_limit_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            rate_limit_per_user: 1000,
            rate_limit_per_ip: 0,
            max_streams_per_user: 16,
            max_streams: 10_000,
            metrics_addr: None,
        }
    }
}

/// Which store a database URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    /// The in-process store (`memory`): nothing survives a restart.
    Memory,
    /// A SQLite file (`sqlite://path` or `sqlite:path`).
    Sqlite,
    /// PostgreSQL (`postgres://` or `postgresql://`).
    Postgres,
    /// MySQL or MariaDB (`mysql://` or `mariadb://`).
    MySql,
}

/// `[database]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Default `sqlite://data/ordermon.db`.
    pub url: ServiceUrl,
    /// Pool size (default 10).
    pub max_connections: u32,
    /// How long a request waits for a pooled connection (default `5s`).
    #[serde(with = "duration::serde")]
    pub acquire_timeout: Duration,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: ServiceUrl::new("sqlite://data/ordermon.db"),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

impl DatabaseSettings {
    /// The store the URL selects.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for any other scheme.
    pub fn kind(&self) -> Result<DatabaseKind, ConfigError> {
        if self.url.is_memory() {
            return Ok(DatabaseKind::Memory);
        }
        match Dialect::from_url(self.url.expose().trim()) {
            Some(Dialect::Sqlite) => Ok(DatabaseKind::Sqlite),
            Some(Dialect::Postgres) => Ok(DatabaseKind::Postgres),
            Some(Dialect::MySql) => Ok(DatabaseKind::MySql),
            None => Err(ConfigError::invalid(
                "database.url",
                format!(
                    "`{}` is not one of memory, sqlite:…, postgres://…, mysql://…",
                    self.url
                ),
            )),
        }
    }

    /// The SQLite file a `sqlite:` URL names (`None` for other URLs and for
    /// in-memory SQLite).
    #[must_use]
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let url = self.url.expose().trim();
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))?;
        let path = rest.split('?').next().unwrap_or_default();
        if path.is_empty() || path == ":memory:" || path.starts_with("file::memory:") {
            return None;
        }
        Some(Path::new(path).to_path_buf())
    }
}

/// `[cache]`: the read-through cache in front of the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    /// `memory` (default: in-process only, right for one instance) or
    /// `redis://…` — `rediss://…` for TLS — (Redis shared by every instance,
    /// with an in-process tier in front and cross-instance invalidation).
    pub url: ServiceUrl,
    /// Off: every read goes to the store (default on).
    pub enabled: bool,
    /// Most entries each in-process tier holds (default 100,000): the encoded
    /// entries in front of the store or of Redis and, with `memory`, the
    /// values this process loaded, kept decoded.
    pub max_entries: u64,
    /// Per-namespace TTL overrides (`order`, `order_cid`, `portfolio`, `user`,
    /// `strategy`, `instrument`, `quote`, `bar`, `session`), e.g. `quote = "5s"`.
    #[serde(with = "duration::serde_map")]
    pub ttl: BTreeMap<String, Duration>,
    /// Per-namespace serializer overrides: `json` or `message_pack`.
    pub codec: BTreeMap<String, Codec>,
    /// TTL of a cached "not found" (default `2s`).
    #[serde(with = "duration::serde")]
    pub negative_ttl: Duration,
    /// Longest a Redis command may take before the cache counts Redis as
    /// failing and falls through to the store (default `250ms`).
    #[serde(with = "duration::serde")]
    pub command_timeout: Duration,
    /// A PEM file with the only CA a `rediss://` cache server's certificate
    /// may chain to (unset: the system's certificate store).
    pub tls_ca_file: Option<PathBuf>,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            url: ServiceUrl::new("memory"),
            enabled: true,
            max_entries: 100_000,
            ttl: BTreeMap::new(),
            codec: BTreeMap::new(),
            negative_ttl: ReadCacheSettings::default().negative_ttl,
            command_timeout: Duration::from_millis(250),
            tls_ca_file: None,
        }
    }
}

impl CacheSettings {
    /// What the URL selects.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for any other scheme, or a CA file without a
    /// `rediss://` URL.
    pub fn kind(&self) -> Result<CacheKind, ConfigError> {
        let url = self.url.expose().trim();
        if self.tls_ca_file.is_some() && !url.starts_with("rediss://") {
            return Err(ConfigError::invalid(
                "cache.tls_ca_file",
                "needs a rediss:// cache.url",
            ));
        }
        if self.url.is_memory() {
            Ok(CacheKind::Memory)
        } else if url.starts_with("redis://") || url.starts_with("rediss://") {
            Ok(CacheKind::Redis)
        } else {
            Err(ConfigError::invalid(
                "cache.url",
                format!("`{}` is not one of memory, redis://…", self.url),
            ))
        }
    }

    /// The application's read-through settings: defaults with the overrides.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming an unknown namespace or a zero TTL.
    pub fn read_settings(&self) -> Result<ReadCacheSettings, ConfigError> {
        let mut s = ReadCacheSettings {
            enabled: self.enabled,
            negative_ttl: self.negative_ttl,
            decoded_entries: self.max_entries,
            ..ReadCacheSettings::default()
        };
        for (ns, ttl) in &self.ttl {
            if ttl.is_zero() {
                return Err(ConfigError::invalid(
                    "cache.ttl",
                    format!("`{ns}` must be positive"),
                ));
            }
            namespace_mut(&mut s, ns, "cache.ttl")?.ttl = *ttl;
        }
        for (ns, codec) in &self.codec {
            namespace_mut(&mut s, ns, "cache.codec")?.codec = *codec;
        }
        Ok(s)
    }
}

fn namespace_mut<'a>(
    s: &'a mut ReadCacheSettings,
    ns: &str,
    key: &'static str,
) -> Result<&'a mut NamespaceSettings, ConfigError> {
    Ok(match ns {
        // Client-id aliases share the order namespace's settings.
        "order" | "order_cid" => &mut s.order,
        "portfolio" => &mut s.portfolio,
        "user" => &mut s.user,
        "strategy" => &mut s.strategy,
        "instrument" => &mut s.instrument,
        "quote" => &mut s.quote,
        "bar" => &mut s.bar,
        "session" => &mut s.session,
        other => {
            return Err(ConfigError::invalid(
                key,
                format!(
                    "unknown namespace `{other}` (order, portfolio, user, strategy, instrument, quote, bar, session)"
                ),
            ));
        }
    })
}

/// Which cache `cache.url` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheKind {
    /// In-process only.
    Memory,
    /// Redis, with an in-process tier in front.
    Redis,
}

/// `[bus]`: where committed events go, and this instance's consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusSettings {
    /// `memory` (default), `redis://…` / `rediss://…` (Redis Streams, TLS with
    /// `rediss`), `amqp://…` (RabbitMQ)
    /// or `kafka://host:port[,host:port]` (builds with the `kafka` feature).
    pub url: ServiceUrl,
    /// The exchange (RabbitMQ), topic (Kafka) or stream (Redis) events are
    /// published to (default `ordermon.events`).
    pub topic: String,
    /// This instance's name: its consumer group is `instance-{instance}`, so
    /// every instance sees every event. Must differ between instances; empty
    /// (default) derives it from the host name and the HTTP port.
    pub instance: String,
    /// Deliveries of an event before it is dead-lettered (default 5).
    pub max_attempts: u32,
    /// Delay before each redelivery, the last one repeating (default
    /// `["1s", "5s", "30s"]`).
    #[serde(with = "duration::serde_list")]
    pub retry_delays: Vec<Duration>,
    /// Let this instance relay the outbox (default true). Instances that may
    /// relay compete for the `outbox-relay` lease in the database: exactly one
    /// relays at a time, another takes over when it dies. `false` forbids
    /// relaying here.
    pub relay: bool,
    /// How long the `outbox-relay` lease lasts without a renewal (default
    /// `5s`): a dead relay's lease lapses after at most this long, and a
    /// standby takes it over within a tenth of it after that.
    #[serde(with = "duration::serde")]
    pub relay_lease_ttl: Duration,
    /// Most outbox rows per published batch (default 500).
    pub relay_batch: u32,
    /// How often an idle relay looks at the outbox without being woken by a
    /// commit (default `250ms`).
    #[serde(with = "duration::serde")]
    pub relay_poll_interval: Duration,
    /// How long `serve` keeps trying to reach the broker at start before it
    /// gives up (default `20s`).
    #[serde(with = "duration::serde")]
    pub connect_timeout: Duration,
    /// How long sent rows stay in the outbox table before the relay deletes
    /// them, hourly (default `24h`; `0s` keeps them forever). The event log
    /// keeps every event whatever this says.
    #[serde(with = "duration::serde")]
    pub outbox_retention: Duration,
    /// A PEM file with the only CA a `rediss://` bus server's certificate may
    /// chain to (unset: the system's certificate store).
    pub tls_ca_file: Option<PathBuf>,
}

impl Default for BusSettings {
    fn default() -> Self {
        let relay = RelayConfig::default();
        Self {
            url: ServiceUrl::new("memory"),
            topic: "ordermon.events".to_owned(),
            instance: String::new(),
            max_attempts: 5,
            retry_delays: vec![
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(30),
            ],
            relay: true,
            relay_lease_ttl: Duration::from_secs(5),
            relay_batch: relay.batch,
            relay_poll_interval: relay.poll_interval,
            connect_timeout: Duration::from_secs(20),
            outbox_retention: Duration::from_secs(24 * 3600),
            tls_ca_file: None,
        }
    }
}

/// Which broker `bus.url` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusKind {
    /// In-process.
    Memory,
    /// Redis Streams.
    Redis,
    /// RabbitMQ.
    RabbitMq,
    /// Kafka.
    Kafka,
}

impl BusSettings {
    /// What the URL selects.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for any other scheme, or a CA file without a
    /// `rediss://` URL.
    pub fn kind(&self) -> Result<BusKind, ConfigError> {
        let url = self.url.expose().trim();
        if self.tls_ca_file.is_some() && !url.starts_with("rediss://") {
            return Err(ConfigError::invalid(
                "bus.tls_ca_file",
                "needs a rediss:// bus.url",
            ));
        }
        if self.url.is_memory() {
            Ok(BusKind::Memory)
        } else if url.starts_with("redis://") || url.starts_with("rediss://") {
            Ok(BusKind::Redis)
        } else if url.starts_with("amqp://") || url.starts_with("amqps://") {
            Ok(BusKind::RabbitMq)
        } else if url.starts_with("kafka://") {
            Ok(BusKind::Kafka)
        } else {
            Err(ConfigError::invalid(
                "bus.url",
                format!(
                    "`{}` is not one of memory, redis://…, amqp://…, kafka://host:port",
                    self.url
                ),
            ))
        }
    }

    /// This instance's name: `bus.instance`, or `{host}-{port}` from the host
    /// name and the port of `http_addr`, reduced to `[A-Za-z0-9_.-]`.
    #[must_use]
    pub fn instance_name(&self, http_addr: &str) -> String {
        let raw = if self.instance.trim().is_empty() {
            let host = std::fs::read_to_string("/etc/hostname")
                .ok()
                .or_else(|| std::env::var("HOSTNAME").ok())
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "ordermon".to_owned());
            let port = http_addr.rsplit(':').next().unwrap_or("0");
            format!("{host}-{port}")
        } else {
            self.instance.trim().to_owned()
        };
        let clean: String = raw
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .take(100)
            .collect();
        if clean.is_empty() {
            "ordermon".to_owned()
        } else {
            clean
        }
    }

    /// This instance's consumer group.
    #[must_use]
    pub fn group(&self, http_addr: &str) -> String {
        format!("instance-{}", self.instance_name(http_addr))
    }
}

/// `[logs]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// Directory of the per-user and system log files (default `logs`).
    pub dir: PathBuf,
    /// Days log files are kept (default 7).
    pub retention_days: u32,
    /// `pretty` (default) or `json`.
    pub format: LogFormat,
    /// A `RUST_LOG`-style filter (default `info`); `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("logs"),
            retention_days: 7,
            format: LogFormat::Pretty,
            level: "info".to_owned(),
        }
    }
}

/// `[telemetry]`: what is exported besides logs and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    /// Traces over OTLP/HTTP.
    pub otlp: OtlpSettings,
}

/// `[telemetry.otlp]`: traces exported over OTLP/HTTP (protobuf), off unless
/// `endpoint` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpSettings {
    /// The OTLP/HTTP receiver (`http://collector:4318`, to which `/v1/traces`
    /// is added, or the full traces URL); unset (default): no traces.
    pub endpoint: Option<String>,
    /// Fraction of the traces begun here that are recorded, 0 to 1 (default
    /// 1); a request whose `traceparent` is sampled is always recorded.
    pub sample_ratio: f64,
    /// `service.name` of the spans (default `ordermon`).
    pub service_name: String,
    /// How long finished spans wait to be sent together (default `1s`).
    #[serde(with = "duration::serde")]
    pub batch_delay: Duration,
    /// Most time one export may take (default `10s`).
    #[serde(with = "duration::serde")]
    pub timeout: Duration,
}

impl Default for OtlpSettings {
    fn default() -> Self {
        Self {
            endpoint: None,
            sample_ratio: 1.0,
            service_name: "ordermon".to_owned(),
            batch_delay: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
        }
    }
}

/// `[monitor]`: the per-user monitors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorSettings {
    /// How often users' and strategies' status is re-read from the database
    /// (default `10s`).
    #[serde(with = "duration::serde")]
    pub scan_interval: Duration,
    /// How often monitors run their timers and checks (default `1s`).
    #[serde(with = "duration::serde")]
    pub tick_interval: Duration,
    /// A submitted order not acknowledged for this long is stuck (default `30s`).
    #[serde(with = "duration::serde")]
    pub stuck_submit_after: Duration,
    /// A cancel not confirmed for this long is stuck (default `30s`).
    #[serde(with = "duration::serde")]
    pub stuck_cancel_after: Duration,
    /// A strategy silent for this long is reported missing (default `60s`).
    #[serde(with = "duration::serde")]
    pub heartbeat_timeout: Duration,
    /// Restarts of one strategy per minute before it is suspended (default 5).
    pub max_restarts_per_minute: u32,
    /// Quote lanes strategies are called in (default 0: one per core).
    pub lanes: usize,
    /// The nice value of the quote lanes' threads (default -5; -20 to 19,
    /// 0 leaves them at the process's; Linux).
    pub lane_nice: i32,
}

impl Default for MonitorSettings {
    fn default() -> Self {
        let d = MonitorConfig::default();
        Self {
            scan_interval: d.scan_interval,
            tick_interval: d.tick_interval,
            stuck_submit_after: d.stuck_submit_after,
            stuck_cancel_after: d.stuck_cancel_after,
            heartbeat_timeout: d.heartbeat_timeout,
            max_restarts_per_minute: d.max_restarts_per_minute,
            lanes: d.lanes,
            lane_nice: d.lane_nice,
        }
    }
}

impl From<&MonitorSettings> for MonitorConfig {
    fn from(m: &MonitorSettings) -> Self {
        Self {
            scan_interval: m.scan_interval,
            tick_interval: m.tick_interval,
            stuck_submit_after: m.stuck_submit_after,
            stuck_cancel_after: m.stuck_cancel_after,
            heartbeat_timeout: m.heartbeat_timeout,
            max_restarts_per_minute: m.max_restarts_per_minute,
            lanes: m.lanes,
            lane_nice: m.lane_nice,
        }
    }
}

/// `[cluster]`: several instances sharing one PostgreSQL or MySQL database,
/// each user owned by exactly one of them (see `docs/operations.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    /// Share users with the other instances on this database (default
    /// false: this instance runs every user's owner).
    pub enabled: bool,
    /// How long an instance's membership lasts without a renewal (default
    /// `5s`): a dead instance's users are reassigned after this.
    #[serde(with = "duration::serde")]
    pub member_ttl: Duration,
    /// How long a user's lease lasts without a renewal (default `5s`): the
    /// new owner takes a dead instance's user after this.
    #[serde(with = "duration::serde")]
    pub user_lease_ttl: Duration,
    /// How often leases are renewed and the assignment recomputed (default
    /// `1s`).
    #[serde(with = "duration::serde")]
    pub round_interval: Duration,
    /// Most users one instance takes, and most it hands over, per round
    /// (default 1000).
    pub max_moves: usize,
    /// The base URL the other instances reach this one at
    /// (`http://10.0.0.5:8080`; no path, query or credentials). Set: a request
    /// another instance receives for a user this one owns is forwarded here.
    /// Unset (default): that instance answers 503 `owned_elsewhere`.
    pub advertise_url: Option<String>,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        let d = OwnershipConfig::default();
        Self {
            enabled: false,
            member_ttl: d.member_ttl,
            user_lease_ttl: d.user_ttl,
            round_interval: d.round_interval,
            max_moves: d.max_moves,
            advertise_url: None,
        }
    }
}

impl From<&ClusterSettings> for OwnershipConfig {
    fn from(c: &ClusterSettings) -> Self {
        Self {
            member_ttl: c.member_ttl,
            user_ttl: c.user_lease_ttl,
            round_interval: c.round_interval,
            max_moves: c.max_moves,
            advertise_url: c
                .advertise_url
                .as_ref()
                .map(|u| u.trim_end_matches('/').to_owned()),
        }
    }
}

/// `[auth]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// The HS256 signing secret (at least 16 characters). When unset, the
    /// secret is read from `jwt_secret_file`, or generated there on first start.
    #[serde(
        serialize_with = "redact::secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub jwt_secret: Option<SecretString>,
    /// Where a generated secret is kept, mode 0600 (default `data/jwt_secret`).
    /// Empty: a generated secret lives in memory only, so tokens stop working
    /// at the next restart.
    pub jwt_secret_file: PathBuf,
    /// Clock skew tolerated on token expiry, in seconds (default 5, at most
    /// 300).
    pub leeway_secs: u64,
    /// Longest validity `monitor-server token --ttl` may give a token
    /// (default `30d`).
    #[serde(with = "duration::serde")]
    pub max_token_ttl: Duration,
    /// How long an access token from password sign-in is valid (default
    /// `15m`). Signing out stops it at once only on the instance that
    /// served the logout; elsewhere it lives this long.
    #[serde(with = "duration::serde")]
    pub access_ttl: Duration,
    /// How long a sign-in session, and so its refresh tokens, lives from
    /// sign-in (default `12h`; refreshing does not extend it).
    #[serde(with = "duration::serde")]
    pub refresh_ttl: Duration,
    /// Sign-in attempts per account per minute (default 5).
    pub login_attempts_per_account_per_minute: u32,
    /// Sign-in attempts per client address per minute (default 30).
    pub login_attempts_per_ip_per_minute: u32,
    /// How long an instance trusts what it read of a token's user (exists,
    /// active, role, revocation) before reading it again (default `5s`, at
    /// most `5m`; `0s` reads on every request). A change made through this
    /// instance applies at once; one made elsewhere within this time.
    #[serde(with = "duration::serde")]
    pub user_check_ttl: Duration,
    /// The issuer (`iss`) tokens carry: when set, minted tokens carry it and
    /// tokens without it or with another are refused (default unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The audience (`aud`) tokens carry, as for `issuer` (default unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// A user id created at start, as an active admin, when no user has it
    /// (default unset): how a new deployment gets its first admin, whose
    /// token `monitor-server token --sub ID --role admin` then mints. An
    /// existing user of that id is left as it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap_admin: Option<String>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        let sign_in = SignInConfig::default();
        Self {
            jwt_secret: None,
            jwt_secret_file: PathBuf::from("data/jwt_secret"),
            leeway_secs: 5,
            max_token_ttl: Duration::from_secs(30 * 24 * 3600),
            access_ttl: sign_in.access_ttl,
            refresh_ttl: sign_in.refresh_ttl,
            login_attempts_per_account_per_minute: sign_in.attempts_per_account_per_minute,
            login_attempts_per_ip_per_minute: sign_in.attempts_per_ip_per_minute,
            user_check_ttl: Duration::from_secs(5),
            issuer: None,
            audience: None,
            bootstrap_admin: None,
        }
    }
}

impl AuthSettings {
    /// The sign-in service's settings.
    #[must_use]
    pub fn sign_in(&self) -> SignInConfig {
        SignInConfig {
            access_ttl: self.access_ttl,
            refresh_ttl: self.refresh_ttl,
            attempts_per_account_per_minute: self.login_attempts_per_account_per_minute,
            attempts_per_ip_per_minute: self.login_attempts_per_ip_per_minute,
        }
    }
}

/// `[demo]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemoSettings {
    /// Seed a few instruments when the catalog is empty (default true).
    pub instruments: bool,
    /// Seed the demo users when missing (default true): `admin`, two traders
    /// whose strategies trade the demo instruments, and a viewer, each with
    /// the documented demo password. Needs the demo instruments; turn it off
    /// outside a demo.
    pub users: bool,
}

impl Default for DemoSettings {
    fn default() -> Self {
        Self {
            instruments: true,
            users: true,
        }
    }
}

/// `[shutdown]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownSettings {
    /// Deadline for draining requests, owners and the committer (default `10s`).
    #[serde(with = "duration::serde")]
    pub timeout: Duration,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
        }
    }
}
