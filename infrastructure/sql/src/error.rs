//! Driver errors at the boundary: which are transient (retried with backoff),
//! which are unique violations (typed conflicts), and how the rest become
//! [`StoreError`]s.

use ordermon_domain::ports::StoreError;
use sqlx::error::ErrorKind;
use sqlx::mysql::MySqlDatabaseError;

/// PostgreSQL SQLSTATEs worth retrying: serialization failure, deadlock, lock
/// not available, shutdowns, "starting up", too many connections.
const PG_TRANSIENT: [&str; 7] = [
    "40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300",
];

/// MySQL/MariaDB error numbers worth retrying: deadlock, lock wait timeout, too
/// many connections, shutdown in progress, server gone away, lost connection,
/// connection killed.
const MYSQL_TRANSIENT: [u16; 7] = [1213, 1205, 1040, 1053, 2006, 2013, 1927];

/// SQLite primary result codes worth retrying: SQLITE_BUSY and SQLITE_LOCKED
/// (extended codes carry the primary code in their low byte).
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;

/// True when retrying the same operation later may succeed.
pub(crate) fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            if let Some(my) = db.try_downcast_ref::<MySqlDatabaseError>() {
                return MYSQL_TRANSIENT.contains(&my.number());
            }
            let Some(code) = db.code() else {
                return false;
            };
            if PG_TRANSIENT.contains(&code.as_ref()) || code.starts_with("08") {
                return true;
            }
            code.parse::<i64>()
                .is_ok_and(|c| matches!(c & 0xff, SQLITE_BUSY | SQLITE_LOCKED))
        }
        _ => false,
    }
}

/// True for a unique-key violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.kind() == ErrorKind::UniqueViolation)
}

/// Text that names the violated constraint (PostgreSQL reports it; MySQL and
/// SQLite put the key or columns in the message).
pub(crate) fn violation_text(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => {
            format!("{} {}", db.constraint().unwrap_or_default(), db.message())
        }
        other => other.to_string(),
    }
}

/// Maps a driver error that was not retried (or ran out of retries) to a
/// [`StoreError`]. Unique violations should be diagnosed before reaching here.
pub(crate) fn to_store_error(e: &sqlx::Error) -> StoreError {
    match e {
        _ if is_transient(e) => StoreError::Unavailable(e.to_string()),
        sqlx::Error::PoolClosed => StoreError::Unavailable("the pool is closed".to_owned()),
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_) => StoreError::Corrupt(e.to_string()),
        sqlx::Error::Database(db) if db.kind() == ErrorKind::UniqueViolation => {
            StoreError::Duplicate {
                entity: "row",
                id: violation_text(e),
            }
        }
        other => StoreError::Unexpected(other.to_string()),
    }
}

/// Why one attempt at an operation failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Worth another attempt after a backoff.
    Transient(sqlx::Error),
    /// Final.
    Fatal(StoreError),
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        if is_transient(&e) {
            Self::Transient(e)
        } else {
            Self::Fatal(to_store_error(&e))
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self::Fatal(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_and_pool_timeouts_are_transient() {
        let io = sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset",
        ));
        assert!(is_transient(&io));
        assert!(is_transient(&sqlx::Error::PoolTimedOut));
        assert!(!is_transient(&sqlx::Error::RowNotFound));
        assert!(matches!(to_store_error(&io), StoreError::Unavailable(_)));
        assert!(matches!(
            to_store_error(&sqlx::Error::PoolClosed),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            to_store_error(&sqlx::Error::ColumnNotFound("x".into())),
            StoreError::Corrupt(_)
        ));
    }
}
