//! The lease check of a fenced commit: an owner's writes go in only while
//! its instance still holds the user's lease at the epoch it was taken with
//! (see `ordermon_application::ownership`).

use ordermon_domain::ports::{Fence, StoreError};

use crate::conn::{Cell, Conn, Kind, Val, marks};
use crate::error::Failure;
use crate::url::Dialect;

/// Refuses the writes of `fences` unless each writer still holds its lease at
/// its epoch. The lease rows stay share-locked until the transaction ends, so
/// a takeover (which locks the row `FOR UPDATE`) waits for writes under the
/// old epoch to finish, and none can follow it. On PostgreSQL the lock is
/// `FOR KEY SHARE`: renewals, which change only `expires_ms`, go on beside
/// the commits.
pub(crate) async fn check_fences(conn: &mut Conn<'_>, fences: &[&Fence]) -> Result<(), Failure> {
    if fences.is_empty() {
        return Ok(());
    }
    let lock = match conn.dialect() {
        Dialect::Postgres => " FOR KEY SHARE",
        Dialect::MySql => " LOCK IN SHARE MODE",
        Dialect::Sqlite => "",
    };
    let marks = marks(fences.len());
    // In name order, as `renew_all` locks them.
    let sql = format!(
        "SELECT name, holder, epoch FROM leases WHERE name IN ({marks}) ORDER BY name{lock}"
    );
    let args = fences.iter().map(|f| Val::text(&f.lease)).collect();
    let rows = conn
        .fetch(&sql, args, &[Kind::Text, Kind::Text, Kind::Int])
        .await?;
    for fence in fences {
        let found = rows
            .iter()
            .find(|r| matches!(r.first(), Some(Cell::Text(n)) if *n == fence.lease));
        let held = found.is_some_and(|r| {
            matches!(r.get(1), Some(Cell::Text(h)) if *h == fence.holder)
                && matches!(r.get(2), Some(Cell::Int(e)) if u64::try_from(*e).ok() == Some(fence.epoch))
        });
        if !held {
            return Err(Failure::Fatal(StoreError::Conflict {
                entity: "lease",
                id: fence.lease.clone(),
                expected: fence.epoch,
                actual: found.and_then(|r| match r.get(2) {
                    Some(Cell::Int(e)) => u64::try_from(*e).ok(),
                    _ => None,
                }),
            }));
        }
    }
    Ok(())
}
