//! The configuration tree: defaults, then a TOML file, then `ORDERMON_*`
//! environment overrides (`__` separates levels: `ORDERMON_DATABASE__URL`).
//!
//! Every key is documented in `docs/configuration.md`. Secrets (`auth.jwt_secret`)
//! and the passwords in service URLs never appear in `Debug` output or in the
//! serialized configuration (`monitor-server config`).

pub use ordermon_domain::duration;
mod engine;
pub mod env;
pub mod redact;
mod sections;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Table;

pub use engine::{CommitSettings, EngineSettings, RiskSettings};
pub use sections::{
    AuthSettings, BusKind, BusSettings, CacheKind, CacheSettings, ClusterSettings, DatabaseKind,
    DatabaseSettings, DemoSettings, HttpSettings, LogSettings, MonitorSettings, OtlpSettings,
    ServiceUrl, ShutdownSettings, TelemetrySettings,
};

pub use ordermon_marketdata::{ProviderConfig, ProviderKind};
pub use ordermon_sim::feed::FeedConfig;

/// The names of what an embedder registered in code
/// ([`crate::AppBuilder::registered`]), for validating a configuration that
/// refers to them ([`Config::validate_with`],
/// [`Config::load_with`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registered {
    /// Market data providers' names (`feed.provider` may name one).
    pub market_data: Vec<String>,
    /// Notifiers' names (alert routes and escalation may name one).
    pub receivers: Vec<String>,
}

/// Most clock skew `auth.leeway_secs` may tolerate: an expired token must not
/// stay good for long.
pub const MAX_LEEWAY_SECS: u64 = 300;
/// Longest `auth.user_check_ttl`: how late a disabled user or a revocation
/// may take effect on another instance.
pub const MAX_USER_CHECK_TTL: std::time::Duration = std::time::Duration::from_secs(300);
/// `[market_data.NAME]`: HTTP market data providers by name.
pub type MarketDataSettings = std::collections::BTreeMap<String, ProviderConfig>;

/// `[alerting]`: rules, routes, inhibition, escalation, delivery and the
/// receivers (`[alerting.receivers.NAME]`, one of the notifier kinds).
pub type AlertingSettings =
    ordermon_application::alerting::AlertingConfig<ordermon_notify::ReceiverConfig>;
pub use ordermon_sim::paper::PaperConfig;

/// Optional string keys: they have no default, so the environment overlay cannot
/// learn from the default that they are strings.
const OPTIONAL_STRING_KEYS: &[&str] = &[
    "auth.jwt_secret",
    "cache.tls_ca_file",
    "bus.tls_ca_file",
    "cluster.advertise_url",
    "telemetry.otlp.endpoint",
    "http.metrics_addr",
];

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this configuration (unknown key, bad value).
    #[error("config file {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// The parser's message, naming the key and line.
        message: String,
    },
    /// An environment override does not fit its key.
    #[error("environment variable {var} (key `{key}`): {message}")]
    Env {
        /// The variable.
        var: String,
        /// The key it sets.
        key: String,
        /// Why it was refused.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid configuration: {key}: {message}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// Why.
        message: String,
    },
}

impl ConfigError {
    fn invalid(key: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            key,
            message: message.into(),
        }
    }
}

/// The whole configuration of a deployment.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The HTTP listener.
    pub http: HttpSettings,
    /// The database (`sqlite:`, `postgres://`, `mysql://`, or `memory`).
    pub database: DatabaseSettings,
    /// The shared cache.
    pub cache: CacheSettings,
    /// The message bus.
    pub bus: BusSettings,
    /// Log output and per-user log files.
    pub logs: LogSettings,
    /// Trace export.
    pub telemetry: TelemetrySettings,
    /// Monitoring control.
    pub monitor: MonitorSettings,
    /// Several instances sharing users.
    pub cluster: ClusterSettings,
    /// Token signing.
    pub auth: AuthSettings,
    /// The engine (`[engine]`).
    pub engine: EngineSettings,
    /// The quote feed: simulated, or polled from a market data provider.
    pub feed: FeedConfig,
    /// HTTP market data providers by name (`[market_data.binance]`, …).
    pub market_data: MarketDataSettings,
    /// The paper-trading venue.
    pub paper: PaperConfig,
    /// Demo data.
    pub demo: DemoSettings,
    /// Graceful shutdown.
    pub shutdown: ShutdownSettings,
    /// Alerting and notifications.
    pub alerting: AlertingSettings,
}

impl Config {
    /// Loads defaults, then `file` when given, then the process environment.
    ///
    /// # Errors
    /// See [`ConfigError`].
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with(file, &Registered::default())
    }

    /// [`Config::load`] for an embedder: the configuration may name what was
    /// registered in code (see [`crate::AppBuilder::registered`]).
    ///
    /// # Errors
    /// See [`ConfigError`].
    pub fn load_with(file: Option<&Path>, registered: &Registered) -> Result<Self, ConfigError> {
        let text = match file {
            Some(path) => Some((
                path.display().to_string(),
                std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })?,
            )),
            None => None,
        };
        let config = Self::parse_sources(
            text.as_ref().map(|(p, t)| (p.as_str(), t.as_str())),
            // Variables that are not valid Unicode cannot be ours; skip them
            // rather than panic as `std::env::vars` would.
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )?;
        config.validate_with(registered)?;
        Ok(config)
    }

    /// Loads defaults, then `file` (`(name, text)`), then the overrides among `vars`.
    ///
    /// # Errors
    /// See [`ConfigError`].
    pub fn from_sources(
        file: Option<(&str, &str)>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let config = Self::parse_sources(file, vars)?;
        config.validate()?;
        Ok(config)
    }

    /// Merges the sources as [`Config::from_sources`] does, without validating.
    fn parse_sources(
        file: Option<(&str, &str)>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table = Table::new();
        if let Some((path, text)) = file {
            let file_error = |e: toml::de::Error| ConfigError::File {
                path: path.to_owned(),
                message: e.to_string().trim_end().to_owned(),
            };
            // Parsing the text directly gives errors with the key and line.
            toml::from_str::<Self>(text).map_err(file_error)?;
            table = toml::from_str::<Table>(text).map_err(file_error)?;
        }
        let defaults = Table::try_from(Self::default()).unwrap_or_default();
        let overrides = env::overrides(vars, &defaults, OPTIONAL_STRING_KEYS);
        let mut merged = table.clone();
        for o in &overrides {
            env::merge(&mut merged, o.table());
        }
        let config: Self = match merged.try_into() {
            Ok(c) => c,
            Err(combined) => {
                // Name the variable at fault: the first that fails on its own
                // (a table that needs several variables, such as a receiver,
                // only fails together, and is reported as a whole).
                for o in &overrides {
                    let mut single = table.clone();
                    env::merge(&mut single, o.table());
                    single.try_into::<Self>().map_err(|e| ConfigError::Env {
                        var: o.var.clone(),
                        key: o.key(),
                        message: e.to_string().trim_end().to_owned(),
                    })?;
                }
                return Err(ConfigError::Env {
                    var: "ORDERMON_*".to_owned(),
                    key: "(several)".to_owned(),
                    message: combined.to_string().trim_end().to_owned(),
                });
            }
        };
        Ok(config)
    }

    /// Checks ranges and the database URL's scheme.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_with(&Registered::default())
    }

    /// [`Config::validate`] where `feed.provider` may name a market data
    /// provider, and alert routes a receiver, that an embedder registered in
    /// code.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first bad key.
    pub fn validate_with(&self, registered: &Registered) -> Result<(), ConfigError> {
        if self.http.addr.trim().is_empty() {
            return Err(ConfigError::invalid("http.addr", "must not be empty"));
        }
        if let Some(addr) = &self.http.metrics_addr {
            check_listen_address(addr, &self.http.addr)
                .map_err(|m| ConfigError::invalid("http.metrics_addr", m))?;
        }
        if self.http.body_limit_bytes == 0 {
            return Err(ConfigError::invalid(
                "http.body_limit_bytes",
                "must be positive",
            ));
        }
        if self.http.request_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "http.request_timeout",
                "must be positive",
            ));
        }
        if self.http.header_read_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "http.header_read_timeout",
                "must be positive",
            ));
        }
        for (key, n) in [
            ("http.max_connections", self.http.max_connections),
            ("http.max_streams_per_user", self.http.max_streams_per_user),
            ("http.max_streams", self.http.max_streams),
        ] {
            if n == 0 {
                return Err(ConfigError::invalid(key, "must be positive"));
            }
        }
        self.database.kind()?;
        if self.database.max_connections == 0 {
            return Err(ConfigError::invalid(
                "database.max_connections",
                "must be positive",
            ));
        }
        if self.database.acquire_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "database.acquire_timeout",
                "must be positive",
            ));
        }
        self.cache.kind()?;
        self.cache.read_settings()?;
        if self.cache.max_entries == 0 {
            return Err(ConfigError::invalid(
                "cache.max_entries",
                "must be positive",
            ));
        }
        if self.cache.command_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "cache.command_timeout",
                "must be positive",
            ));
        }
        self.bus.kind()?;
        if self.bus.topic.trim().is_empty()
            || !self
                .bus
                .topic
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':'))
        {
            return Err(ConfigError::invalid(
                "bus.topic",
                "1 or more of A-Z a-z 0-9 _ . - : expected",
            ));
        }
        if self.bus.max_attempts == 0 {
            return Err(ConfigError::invalid(
                "bus.max_attempts",
                "must be at least 1",
            ));
        }
        if self.bus.retry_delays.is_empty() || self.bus.retry_delays.iter().any(Duration::is_zero) {
            return Err(ConfigError::invalid(
                "bus.retry_delays",
                "one or more positive durations expected",
            ));
        }
        if self.bus.relay_batch == 0 {
            return Err(ConfigError::invalid("bus.relay_batch", "must be positive"));
        }
        if self.bus.connect_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "bus.connect_timeout",
                "must be positive",
            ));
        }
        let c = &self.cluster;
        if c.enabled {
            if !matches!(
                self.database.kind()?,
                DatabaseKind::Postgres | DatabaseKind::MySql
            ) {
                return Err(ConfigError::invalid(
                    "cluster.enabled",
                    "instances share users only on PostgreSQL or MySQL; SQLite and the in-memory store serve one instance",
                ));
            }
            for (key, ttl) in [
                ("cluster.member_ttl", c.member_ttl),
                ("cluster.user_lease_ttl", c.user_lease_ttl),
            ] {
                if ttl < Duration::from_secs(1) || ttl < c.round_interval * 2 {
                    return Err(ConfigError::invalid(
                        key,
                        "must be at least 1s and twice cluster.round_interval",
                    ));
                }
            }
            if c.round_interval < Duration::from_millis(50) || c.max_moves == 0 {
                return Err(ConfigError::invalid(
                    "cluster.round_interval",
                    "must be at least 50ms, with cluster.max_moves positive",
                ));
            }
        }
        if let Some(url) = &c.advertise_url {
            if !c.enabled {
                return Err(ConfigError::invalid(
                    "cluster.advertise_url",
                    "only with cluster.enabled",
                ));
            }
            ordermon_http::forward::check_address(url)
                .map_err(|m| ConfigError::invalid("cluster.advertise_url", m))?;
        }
        let otlp = &self.telemetry.otlp;
        if let Some(endpoint) = &otlp.endpoint {
            ordermon_telemetry::otlp::traces_url(endpoint).map_err(|_| {
                ConfigError::invalid(
                    "telemetry.otlp.endpoint",
                    "must be an http:// or https:// URL with a host and no credentials",
                )
            })?;
        }
        if !(0.0..=1.0).contains(&otlp.sample_ratio) {
            return Err(ConfigError::invalid(
                "telemetry.otlp.sample_ratio",
                "must be between 0 and 1",
            ));
        }
        if otlp.service_name.trim().is_empty() {
            return Err(ConfigError::invalid(
                "telemetry.otlp.service_name",
                "must not be empty",
            ));
        }
        if otlp.batch_delay.is_zero() || otlp.timeout.is_zero() {
            return Err(ConfigError::invalid(
                "telemetry.otlp.batch_delay",
                "telemetry.otlp.batch_delay and telemetry.otlp.timeout must be positive",
            ));
        }
        if self.bus.relay_lease_ttl < Duration::from_secs(1) {
            return Err(ConfigError::invalid(
                "bus.relay_lease_ttl",
                "must be at least 1s",
            ));
        }
        if self.bus.relay_poll_interval.is_zero() {
            return Err(ConfigError::invalid(
                "bus.relay_poll_interval",
                "must be positive",
            ));
        }
        if self.logs.retention_days == 0 {
            return Err(ConfigError::invalid(
                "logs.retention_days",
                "must be at least 1",
            ));
        }
        let m = &self.monitor;
        for (key, d) in [
            ("monitor.scan_interval", m.scan_interval),
            ("monitor.tick_interval", m.tick_interval),
            ("monitor.stuck_submit_after", m.stuck_submit_after),
            ("monitor.stuck_cancel_after", m.stuck_cancel_after),
            ("monitor.heartbeat_timeout", m.heartbeat_timeout),
        ] {
            if d.is_zero() {
                return Err(ConfigError::invalid(key, "must be positive"));
            }
        }
        if self.monitor.lanes > 256 {
            return Err(ConfigError::invalid(
                "monitor.lanes",
                "must be at most 256 (0 means one per core)",
            ));
        }
        if !(-20..=19).contains(&self.monitor.lane_nice) {
            return Err(ConfigError::invalid(
                "monitor.lane_nice",
                "must be from -20 to 19 (0 leaves the lanes at the process's priority)",
            ));
        }
        if self.shutdown.timeout.is_zero() {
            return Err(ConfigError::invalid("shutdown.timeout", "must be positive"));
        }
        if self.auth.leeway_secs > MAX_LEEWAY_SECS {
            return Err(ConfigError::invalid(
                "auth.leeway_secs",
                format!("must be at most {MAX_LEEWAY_SECS}"),
            ));
        }
        if self.auth.user_check_ttl > MAX_USER_CHECK_TTL {
            return Err(ConfigError::invalid(
                "auth.user_check_ttl",
                "must be at most 5m: a disabled user or a revocation must take effect soon",
            ));
        }
        for (key, v) in [
            ("auth.issuer", &self.auth.issuer),
            ("auth.audience", &self.auth.audience),
        ] {
            if v.as_deref()
                .is_some_and(|v| v.trim().is_empty() || v.len() > 1024)
            {
                return Err(ConfigError::invalid(
                    key,
                    "must be 1-1024 characters when set",
                ));
            }
        }
        if let Some(id) = &self.auth.bootstrap_admin
            && let Err(e) = ordermon_domain::ids::UserId::new(id.as_str())
        {
            return Err(ConfigError::invalid("auth.bootstrap_admin", e.to_string()));
        }
        for (key, d) in [
            ("auth.access_ttl", self.auth.access_ttl),
            ("auth.refresh_ttl", self.auth.refresh_ttl),
            ("auth.max_token_ttl", self.auth.max_token_ttl),
        ] {
            if d.is_zero() {
                return Err(ConfigError::invalid(key, "must be positive"));
            }
        }
        if self.auth.access_ttl > self.auth.refresh_ttl {
            return Err(ConfigError::invalid(
                "auth.access_ttl",
                "must not be longer than auth.refresh_ttl",
            ));
        }
        for (key, n) in [
            (
                "auth.login_attempts_per_account_per_minute",
                self.auth.login_attempts_per_account_per_minute,
            ),
            (
                "auth.login_attempts_per_ip_per_minute",
                self.auth.login_attempts_per_ip_per_minute,
            ),
        ] {
            if n == 0 {
                return Err(ConfigError::invalid(key, "must be at least 1"));
            }
        }
        if let Some(secret) = &self.auth.jwt_secret
            && secrecy::ExposeSecret::expose_secret(secret).len() < 16
        {
            return Err(ConfigError::invalid(
                "auth.jwt_secret",
                "must be at least 16 characters",
            ));
        }
        self.engine.validate()?;
        self.feed
            .validate()
            .map_err(|e| ConfigError::invalid("feed", e.to_string()))?;
        for config in self.market_data.values() {
            config
                .validate()
                .map_err(|e| ConfigError::invalid("market_data", e.to_string()))?;
        }
        if !self.feed.is_simulated() && !registered.market_data.contains(&self.feed.provider) {
            self.provider(&self.feed.provider)
                .map_err(|e| ConfigError::invalid("feed.provider", e))?;
        }
        self.paper
            .validate()
            .map_err(|e| ConfigError::invalid("paper", e.to_string()))?;
        let receivers: Vec<&str> = registered.receivers.iter().map(String::as_str).collect();
        self.alerting
            .validate_with(&receivers)
            .map_err(|e| ConfigError::invalid("alerting", e.to_string()))?;
        for (name, receiver) in &self.alerting.receivers {
            receiver
                .validate(name)
                .map_err(|e| ConfigError::invalid("alerting.receivers", e.to_string()))?;
        }
        Ok(())
    }

    /// The configuration of the market data provider called `name`: its
    /// `[market_data.NAME]` section, else the public defaults of `binance`
    /// and `yahoo`.
    ///
    /// # Errors
    /// An unknown name, or a section that does not hold together.
    pub fn provider(&self, name: &str) -> Result<ProviderConfig, String> {
        let config = match self.market_data.get(name) {
            Some(config) => {
                let mut config = config.clone();
                if config.name.is_none() {
                    config.name = Some(name.to_owned());
                }
                config
            }
            None => match name {
                "binance" => ProviderConfig::new(ProviderKind::Binance),
                "yahoo" => ProviderConfig::new(ProviderKind::Yahoo),
                other => {
                    return Err(format!(
                        "no market data provider `{other}`: add a [market_data.{other}] section, or use binance or yahoo"
                    ));
                }
            },
        };
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    /// The effective configuration as TOML, secrets and URL passwords redacted,
    /// with values derived from other keys (commit workers) filled in.
    ///
    /// # Errors
    /// Only if serialization fails.
    pub fn to_redacted_toml(&self) -> Result<String, toml::ser::Error> {
        let mut effective = self.clone();
        if let Ok(kind) = self.database.kind() {
            effective.engine.commit.workers = Some(self.engine.commit.workers_for(kind));
        }
        toml::to_string_pretty(&effective)
    }
}

/// Checks a listen address of a second listener: `host:port` (an IP address,
/// `[v6]`, or a host name), not the API's own address.
fn check_listen_address(addr: &str, api_addr: &str) -> Result<(), String> {
    let example = "e.g. 0.0.0.0:9100 or [::1]:9100";
    if addr.trim().is_empty() {
        return Err(format!("must not be empty ({example})"));
    }
    let port = match addr.parse::<std::net::SocketAddr>() {
        Ok(a) => a.port(),
        Err(_) => {
            let Some((host, port)) = addr.rsplit_once(':') else {
                return Err(format!("`{addr}` is not host:port ({example})"));
            };
            let name_like = !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
            match port.parse::<u16>() {
                Ok(p) if name_like => p,
                _ => return Err(format!("`{addr}` is not host:port ({example})")),
            }
        }
    };
    // Port 0 picks a free port for each listener, so both can ask for it.
    if port != 0 && addr.trim() == api_addr.trim() {
        return Err(format!(
            "`{addr}` is http.addr too; metrics need a port of their own"
        ));
    }
    Ok(())
}
