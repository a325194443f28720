//! Opening the store `database.url` selects: SQL (SQLite, PostgreSQL, MySQL) with
//! migrations, or the in-process store.

use std::sync::Arc;

use ordermon_application::lookup::{BatchedClientIdLookups, LOOKUP_WORKERS, MAX_LOOKUP_BATCH};
use ordermon_application::persistence::Persistence;
use ordermon_domain::ports::StoreError;
use ordermon_memory::MemoryStore;
use ordermon_sql::{PoolConfig, SqlStore};

use crate::config::{DatabaseKind, DatabaseSettings};

/// An open store, and what closing it takes.
#[derive(Debug, Clone)]
pub(crate) enum OpenStore {
    /// In memory: nothing to close.
    Memory(Arc<MemoryStore>),
    /// A pooled SQL database.
    Sql(Arc<SqlStore>),
}

impl OpenStore {
    /// Every persistence port, backed by this store.
    pub(crate) fn persistence(&self) -> Persistence {
        match self {
            Self::Memory(m) => Persistence::from_backend(m.clone()),
            Self::Sql(s) => Persistence::from_backend(s.clone()),
        }
    }

    /// The ports the server's engine uses: on SQL, the idempotency look-ups
    /// of order submission are batched (one statement for the questions that
    /// arrive together, not a round trip per order).
    pub(crate) fn serving_persistence(&self) -> Persistence {
        let mut p = self.persistence();
        if let Self::Sql(_) = self {
            p.orders = Arc::new(BatchedClientIdLookups::spawn(
                p.orders.clone(),
                LOOKUP_WORKERS,
                MAX_LOOKUP_BATCH,
            ));
        }
        p
    }

    /// The SQL store, when the database is one.
    pub(crate) fn sql(&self) -> Option<Arc<SqlStore>> {
        match self {
            Self::Sql(s) => Some(s.clone()),
            Self::Memory(_) => None,
        }
    }

    /// Closes pooled connections.
    pub(crate) async fn close(&self) {
        if let Self::Sql(s) = self {
            s.close().await;
        }
    }
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The configuration names no supported database.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The SQLite file's directory could not be created.
    #[error("cannot create directory {path} for the SQLite file: {source}")]
    Directory {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Connecting failed.
    #[error("cannot connect to the database {url}: {source}")]
    Connect {
        /// The URL, password masked.
        url: String,
        /// Why.
        source: StoreError,
    },
    /// Migrations failed.
    #[error("cannot migrate the database {url}: {source}")]
    Migrate {
        /// The URL, password masked.
        url: String,
        /// Why.
        source: StoreError,
    },
}

/// Connects to the database (creating the SQLite file's directory first);
/// runs migrations when `migrate` is set.
///
/// # Errors
/// See [`OpenError`].
pub(crate) async fn open(db: &DatabaseSettings, migrate: bool) -> Result<OpenStore, OpenError> {
    if db.kind()? == DatabaseKind::Memory {
        return Ok(OpenStore::Memory(Arc::new(MemoryStore::new())));
    }
    if let Some(dir) = db
        .sqlite_path()
        .and_then(|p| p.parent().map(std::path::Path::to_path_buf))
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(&dir).map_err(|source| OpenError::Directory {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let url = db.url.to_string();
    let pool = PoolConfig {
        max_connections: db.max_connections,
        acquire_timeout: db.acquire_timeout,
        ..PoolConfig::default()
    };
    let store = SqlStore::connect(db.url.expose(), pool)
        .await
        .map_err(|source| OpenError::Connect {
            url: url.clone(),
            source,
        })?;
    if migrate {
        store
            .migrate()
            .await
            .map_err(|source| OpenError::Migrate { url, source })?;
    }
    Ok(OpenStore::Sql(Arc::new(store)))
}
