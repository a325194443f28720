//! Reads what the alerting worker needs from the store at start — users and
//! their limits, open orders, accounts and positions — in the background, so
//! the commit feed is read meanwhile. Alerts of users are evaluated once the
//! seed is complete (before that, an unknown account would look like no
//! drawdown and resolve an alert that still holds).

use futures::StreamExt;
use ordermon_domain::account::Account;
use ordermon_domain::ids::UserId;
use ordermon_domain::order::Order;
use ordermon_domain::position::Position;
use ordermon_domain::user::User;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::persistence::Persistence;

/// Users read per page.
const PAGE: u32 = 500;
/// Accounts read at once.
const CONCURRENCY: usize = 8;

/// One piece of what the store holds.
#[derive(Debug)]
pub enum Seed {
    /// A user.
    User(Box<User>),
    /// A user's account and positions.
    Book {
        /// The user.
        user: UserId,
        /// The account.
        account: Box<Account>,
        /// The positions.
        positions: Vec<Position>,
    },
    /// An open order.
    Order(Box<Order>),
}

/// Reads the store into `tx`; the channel closes when done (or on cancel).
pub async fn run(persistence: Persistence, tx: mpsc::Sender<Seed>, cancel: CancellationToken) {
    let started = std::time::Instant::now();
    let mut after: Option<UserId> = None;
    let mut users = 0usize;
    loop {
        let page = tokio::select! {
            () = cancel.cancelled() => return,
            p = retry(|| persistence.users.list_users(after.as_ref(), PAGE)) => p,
        };
        let Some(page) = page else { return };
        if page.is_empty() {
            break;
        }
        after = page.last().map(|u| u.id.clone());
        users += page.len();
        let last_page = page.len() < PAGE as usize;
        let ids: Vec<UserId> = page.iter().map(|u| u.id.clone()).collect();
        for u in page {
            if tx.send(Seed::User(Box::new(u))).await.is_err() {
                return;
            }
        }
        let books = futures::stream::iter(ids)
            .map(|id| {
                let p = persistence.clone();
                async move {
                    let account = retry(|| p.accounts.get_account(&id)).await.flatten();
                    let positions = retry(|| p.positions.list_positions(&id))
                        .await
                        .unwrap_or_default();
                    account.map(|a| Seed::Book {
                        user: id,
                        account: Box::new(a),
                        positions,
                    })
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect::<Vec<_>>();
        let books = tokio::select! {
            () = cancel.cancelled() => return,
            b = books => b,
        };
        for b in books.into_iter().flatten() {
            if tx.send(b).await.is_err() {
                return;
            }
        }
        if last_page {
            break;
        }
    }
    if let Some(orders) = retry(|| persistence.orders.open_orders(None)).await {
        for o in orders {
            if tx.send(Seed::Order(Box::new(o))).await.is_err() {
                return;
            }
        }
    }
    tracing::info!(
        users,
        took_ms = started.elapsed().as_millis() as u64,
        "alerting read the store"
    );
}

/// Retries a read while the store is unavailable (a few times, backing off).
async fn retry<T, F, Fut>(f: F) -> Option<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, ordermon_domain::ports::StoreError>>,
{
    use backon::BackoffBuilder as _;
    // Eight tries in all, 0.1 s doubling up to 5 s between them.
    let mut waits = backon::ExponentialBuilder::new()
        .with_min_delay(std::time::Duration::from_millis(100))
        .with_max_delay(std::time::Duration::from_secs(5))
        .with_factor(2.0)
        .with_max_times(7)
        .build();
    loop {
        match f().await {
            Ok(v) => return Some(v),
            Err(e) => {
                let Some(wait) = waits.next() else {
                    tracing::warn!(error = %e, "alerting could not read the store; giving up");
                    return None;
                };
                tracing::warn!(error = %e, "alerting could not read the store; retrying");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Spawns the reader.
pub fn spawn(
    persistence: Persistence,
    tracker: &tokio_util::task::TaskTracker,
    cancel: CancellationToken,
) -> mpsc::Receiver<Seed> {
    let (tx, rx) = mpsc::channel(4096);
    tracker.spawn(run(persistence, tx, cancel));
    rx
}
