//! Operator commands behind `monitor-server check` and `migrate`.

use std::fmt;

use crate::config::{Config, ServiceUrl};
use crate::store::{self, OpenStore};

/// The outcome of checking one backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// `database`, `cache`, `bus`.
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
    vec![
        check_database(config).await,
        check_memory_only("cache", &config.cache.url),
        check_memory_only("bus", &config.bus.url),
    ]
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

fn check_memory_only(component: &'static str, url: &ServiceUrl) -> Check {
    let outcome = if url.is_memory() {
        Ok("in-process".to_owned())
    } else {
        Err("this build supports only `memory`".to_owned())
    };
    Check {
        component,
        target: url.to_string(),
        outcome,
    }
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
