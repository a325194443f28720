//! ordermon's SQL store on sqlx: SQLite (the embedded default), PostgreSQL and
//! MySQL/MariaDB behind the domain's [`Store`](ordermon_domain::ports::Store)
//! and query repository ports, with the event log and a transactional outbox.
//!
//! - **One contract, three dialects.** Statements are written once; values bind
//!   with the type each dialect stores exactly (`NUMERIC(38,18)` on PostgreSQL,
//!   `DECIMAL(38,18)` on MySQL, canonical text on SQLite). Queries are checked at
//!   run time, so building needs no database.
//! - **Atomic batches.** A batch's state rows are checked against their expected
//!   versions, then its events and outbox rows are appended, in one transaction.
//!   A group commit writes many callers' batches in one transaction — first as
//!   multi-row inserts, and if anything is refused, batch by batch under a
//!   savepoint each — and reports each batch's own outcome.
//! - **Ordered log.** Event positions and outbox ids come from one locked row,
//!   so they are handed out, and become visible, in commit order.
//! - **Resilience.** Pools with size and timeout settings, connecting with
//!   exponential backoff, transient errors retried a bounded number of times,
//!   URLs logged only with passwords masked ([`redact_url`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), ordermon_domain::ports::StoreError> {
//! use ordermon_sql::{PoolConfig, SqlStore};
//! let store = SqlStore::connect("sqlite://data/ordermon.db", PoolConfig::default()).await?;
//! store.migrate().await?;
//! # Ok(()) }
//! ```

mod alerting;
mod bars;
mod conn;
mod credentials;
mod decode;
mod error;
mod fence;
mod leases;
mod pool;
mod repos;
mod retry;
mod rows;
mod scan;
mod store;
mod url;
mod write;

pub use pool::PoolConfig;
pub use store::SqlStore;
pub use url::{Dialect, redact_url};
