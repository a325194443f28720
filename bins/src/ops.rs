//! Operator commands behind `monitor-server check`, `migrate`, `dlq` and
//! `user set-password`.

use std::fmt;

use ordermon_application::consume::{DeadLetterView, DeadLetters, ReplayOutcome};
use ordermon_domain::ids::EventId;
use ordermon_domain::ports::Cache;
use ordermon_domain::user::Role;

use crate::config::{CacheKind, Config};
use crate::messaging;
use crate::store::{self, OpenStore};

/// The outcome of checking one backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// `database`, `cache`, `bus`, `market_data`.
    pub component: &'static str,
    /// Where it points (password masked).
    pub target: String,
    /// What was found: `Ok(detail)` or `Err(reason)`.
    pub outcome: Result<String, String>,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Ok(detail) => write!(
                f,
                "ok      {:<9} {}  ({detail})",
                self.component, self.target
            ),
            Err(reason) => write!(
                f,
                "FAILED  {:<9} {}  ({reason})",
                self.component, self.target
            ),
        }
    }
}

/// Checks every configured backend: the database (connect, health, migrations),
/// then the cache and the bus. Never panics; each outcome says what it found.
pub async fn check(config: &Config) -> Vec<Check> {
    let (database, cache, bus, market) = tokio::join!(
        check_database(config),
        check_cache(config),
        check_bus(config),
        check_market_data(config)
    );
    let mut checks = vec![database, cache, bus];
    checks.extend(market);
    checks
}

/// The feed's market data provider, when it is a real one: a quote of the
/// first polled instrument (through the provider's budget and retries).
async fn check_market_data(config: &Config) -> Option<Check> {
    use ordermon_domain::ports::MarketDataProvider as _;
    if config.feed.is_simulated() {
        return None;
    }
    let name = config.feed.provider.clone();
    let provider = match config.provider(&name) {
        Ok(mut provider) => {
            provider.cache.enabled = false;
            provider
        }
        Err(e) => {
            return Some(Check {
                component: "market_data",
                target: name,
                outcome: Err(e),
            });
        }
    };
    // The base URL may carry a gateway's credentials: name the provider only.
    let target = format!("{name} ({})", provider.kind.as_str());
    let outcome = match ordermon_marketdata::build(&provider, None) {
        Err(e) => Err(e.to_string()),
        Ok(market) => match config.feed.poll.instruments.first() {
            None => Err("feed.poll.instruments is empty".to_owned()),
            Some(instrument) => {
                let asked = tokio::time::timeout(
                    std::time::Duration::from_secs(15),
                    market.quote(instrument),
                )
                .await;
                match asked {
                    Ok(Ok(q)) => Ok(format!("{instrument} bid {} ask {}", q.bid, q.ask)),
                    Ok(Err(e)) => Err(format!("{instrument}: {e}")),
                    Err(_) => Err(format!("{instrument}: no answer within 15 s")),
                }
            }
        },
    };
    Some(Check {
        component: "market_data",
        target,
        outcome,
    })
}

async fn check_database(config: &Config) -> Check {
    let target = config.database.url.to_string();
    let outcome = match store::open(&config.database, false).await {
        // The target is printed already; the cause is what matters here.
        Err(store::OpenError::Connect { source, .. }) => Err(source.to_string()),
        Err(e) => Err(e.to_string()),
        Ok(OpenStore::Memory(_)) => Ok("in-process store; nothing survives a restart".to_owned()),
        Ok(open @ OpenStore::Sql(_)) => {
            let health = open.persistence().store.health().await;
            let migrated = match &open {
                // sqlx records applied migrations in this table.
                OpenStore::Sql(s) => s
                    .execute_unprepared("SELECT COUNT(*) FROM _sqlx_migrations")
                    .await
                    .is_ok(),
                OpenStore::Memory(_) => true,
            };
            open.close().await;
            match health {
                Err(e) => Err(e.to_string()),
                Ok(()) if migrated => Ok("reachable, migrations applied".to_owned()),
                Ok(()) => Ok(
                    "reachable, not migrated yet: `serve` or `migrate` applies the migrations"
                        .to_owned(),
                ),
            }
        }
    };
    Check {
        component: "database",
        target,
        outcome,
    }
}

async fn check_cache(config: &Config) -> Check {
    let target = config.cache.url.to_string();
    let outcome = match config.cache.kind() {
        Err(e) => Err(e.to_string()),
        Ok(CacheKind::Memory) => Ok("in-process".to_owned()),
        Ok(CacheKind::Redis) => {
            let redis = ordermon_redis::cache::RedisCacheConfig {
                connect_timeout: std::time::Duration::from_secs(2),
                command_timeout: std::time::Duration::from_secs(2),
                tls_ca_file: config.cache.tls_ca_file.clone(),
                ..ordermon_redis::cache::RedisCacheConfig::default()
            };
            match ordermon_redis::cache::RedisCache::new(config.cache.url.expose(), &redis) {
                Err(e) => Err(e.to_string()),
                Ok(c) => c
                    .health()
                    .await
                    .map(|()| "reachable".to_owned())
                    .map_err(|e| e.to_string()),
            }
        }
    };
    Check {
        component: "cache",
        target,
        outcome,
    }
}

async fn check_bus(config: &Config) -> Check {
    let target = config.bus.url.to_string();
    let outcome = match messaging::open_bus(
        &config.bus,
        config
            .bus
            .connect_timeout
            .min(std::time::Duration::from_secs(5)),
    )
    .await
    {
        Err(messaging::BusOpenError::Connect { source, .. }) => Err(source.to_string()),
        Err(e) => Err(e.to_string()),
        Ok(bus) => match bus.health().await {
            Ok(()) if config.bus.url.is_memory() => Ok("in-process".to_owned()),
            Ok(()) => Ok(format!("{} reachable", bus.name())),
            Err(e) => Err(e.to_string()),
        },
    };
    Check {
        component: "bus",
        target,
        outcome,
    }
}

/// The trace export settings of `serve`, when `telemetry.otlp.endpoint` is set.
#[must_use]
pub fn otlp_config(config: &Config) -> Option<ordermon_telemetry::otlp::OtlpConfig> {
    let o = &config.telemetry.otlp;
    Some(ordermon_telemetry::otlp::OtlpConfig {
        endpoint: o.endpoint.clone()?,
        sample_ratio: o.sample_ratio,
        service_name: o.service_name.clone(),
        instance: config.bus.instance_name(&config.http.addr),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        batch_delay: o.batch_delay,
        timeout: o.timeout,
    })
}

/// The consumer group `dlq` commands work on: `group`, or this instance's own.
#[must_use]
pub fn dlq_group(config: &Config, group: Option<String>) -> String {
    group.unwrap_or_else(|| config.bus.group(&config.http.addr))
}

async fn dead_letter_service(config: &Config) -> anyhow::Result<DeadLetters> {
    use anyhow::Context as _;
    if config.bus.url.is_memory() {
        anyhow::bail!(
            "bus.url = memory: dead letters live inside the running server; use GET /api/v1/admin/dead-letters"
        );
    }
    let bus = messaging::open_bus(&config.bus, config.bus.connect_timeout)
        .await
        .context("opening the message bus")?;
    Ok(DeadLetters::new(bus))
}

/// `dlq list`: up to `limit` dead letters of `group`, oldest first.
///
/// # Errors
/// The bus cannot be reached, or a bad group or limit.
pub async fn dlq_list(
    config: &Config,
    group: &str,
    limit: usize,
) -> anyhow::Result<Vec<DeadLetterView>> {
    let service = dead_letter_service(config).await?;
    Ok(service.list(group, limit).await?)
}

/// `dlq replay`: sends dead letters of `group` back (the given ids, or all).
///
/// # Errors
/// The bus cannot be reached, or a bad group.
pub async fn dlq_replay(
    config: &Config,
    group: &str,
    ids: &[EventId],
) -> anyhow::Result<ReplayOutcome> {
    let service = dead_letter_service(config).await?;
    let ids = (!ids.is_empty()).then_some(ids);
    Ok(service.replay(group, ids).await?)
}

/// Applies pending migrations and closes the connection; returns a line for the operator.
///
/// # Errors
/// Connecting or migrating failed.
pub async fn migrate(config: &Config) -> Result<String, store::OpenError> {
    let open = store::open(&config.database, true).await?;
    open.close().await;
    Ok(match open {
        OpenStore::Memory(_) => "database.url = memory: nothing to migrate".to_owned(),
        OpenStore::Sql(_) => format!("migrations applied to {}", config.database.url),
    })
}

/// `user set-password`: sets `user`'s password in the configured database
/// and signs their sessions out (refresh tokens at once; access tokens on
/// running servers when they expire, within `auth.access_ttl`). Migrates
/// the database first, as `serve` does.
///
/// # Errors
/// An in-memory database, an unknown user, a password outside the policy,
/// or the database failing.
pub async fn set_password(config: &Config, user: &str, password: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use ordermon_application::sign_in::SignInService;
    use ordermon_domain::ids::UserId;
    use ordermon_domain::ports::SystemClock;

    let id = UserId::new(user).with_context(|| format!("`{user}` is not a valid user id"))?;
    // Checked before touching the database, so a bad password changes nothing.
    ordermon_application::sign_in::check_policy(password).context("the new password")?;
    let open = store::open(&config.database, true).await?;
    if let OpenStore::Memory(_) = open {
        anyhow::bail!(
            "database.url = memory: users live inside the running server; use PUT /api/v1/users/{id}/password"
        );
    }
    let service = SignInService::new(
        &open.persistence(),
        std::sync::Arc::new(SystemClock),
        config.auth.sign_in(),
    );
    let set = service.set_password(&id, password).await;
    open.close().await;
    set.with_context(|| format!("setting the password of `{id}`"))
}

/// What `token` found of the user it mints for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenUser {
    /// The user exists and is active; the token acts with `role`, the lesser
    /// of the one asked for and the user's.
    Active {
        /// The role the token will act with.
        role: Role,
    },
    /// The user did not exist and was created with the role asked for.
    Created,
    /// `database.url = memory`: users live inside the running server, so the
    /// user could not be checked here.
    Unchecked,
}

/// `token`: the user a token is minted for must exist and be active in the
/// configured database (the server refuses tokens of unknown or disabled
/// users); with `create`, a missing user is created with `role` (how the
/// first admin of a new deployment is made). Migrates the database first,
/// as `serve` does.
///
/// # Errors
/// An invalid id, an unknown user without `create`, a disabled user, or the
/// database failing.
pub async fn token_user(
    config: &Config,
    sub: &str,
    role: Role,
    create: bool,
) -> anyhow::Result<TokenUser> {
    use anyhow::Context as _;
    use ordermon_application::CreateUser;
    use ordermon_domain::ids::UserId;
    use ordermon_domain::user::UserStatus;

    let id = UserId::new(sub).with_context(|| format!("`{sub}` is not a valid user id"))?;
    let open = store::open(&config.database, true).await?;
    if let OpenStore::Memory(_) = open {
        return Ok(TokenUser::Unchecked);
    }
    let persistence = open.persistence();
    let found = persistence.users.get_user(&id).await;
    let outcome = match found {
        Err(e) => Err(anyhow::Error::new(e).context(format!("reading user `{id}`"))),
        Ok(Some(user)) if user.status == UserStatus::Disabled => Err(anyhow::anyhow!(
            "user `{id}` is disabled: the server refuses its tokens"
        )),
        Ok(Some(user)) => Ok(TokenUser::Active {
            role: user.role.lesser(role),
        }),
        Ok(None) if !create => Err(anyhow::anyhow!(
            "user `{id}` does not exist, so the server would refuse its token; \
             create it with `--create` (it gets --role) or POST /api/v1/users"
        )),
        Ok(None) => {
            let request = CreateUser {
                id: id.clone(),
                name: id.to_string(),
                status: UserStatus::Active,
                role,
                account_type: Default::default(),
                limits: Default::default(),
            };
            match ordermon_application::engine::new_user(request, chrono::Utc::now()) {
                Ok((_, changes)) => persistence
                    .store
                    .commit(changes)
                    .await
                    .map(|_| TokenUser::Created)
                    .with_context(|| format!("creating user `{id}`")),
                Err(e) => Err(anyhow::anyhow!("creating user `{id}`: {e}")),
            }
        }
    };
    open.close().await;
    outcome
}
