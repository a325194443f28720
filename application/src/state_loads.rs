//! Owners' state loads, in bulk. An owner starts by reading its user, account,
//! open orders, positions and strategies: five statements. After a restart
//! every active user's owner starts at once, and 50,000 owners asking five
//! questions each queue a quarter of a million statements behind the pool.
//! [`StateLoads`] gathers the loads that arrive while one batch is being read
//! and reads the batch with one statement per table, as the client order id
//! look-ups ([`crate::lookup`]) and group commit do. Alone, a load goes out
//! at once.

use std::collections::HashMap;
use std::sync::Arc;

use ordermon_domain::account::Account;
use ordermon_domain::ids::UserId;
use ordermon_domain::order::Order;
use ordermon_domain::ports::StoreError;
use ordermon_domain::position::Position;
use ordermon_domain::strategy::Strategy;
use ordermon_domain::user::User;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::persistence::Persistence;

/// Users one batch reads at most.
pub(crate) const MAX_STATE_BATCH: usize = 256;

/// Batches read concurrently (each a few statements, one after another, on
/// one pooled connection at a time).
pub(crate) const STATE_LOAD_WORKERS: usize = 2;

/// Loads that may wait before a caller waits to ask.
const QUEUE: usize = 4096;

/// What an owner starts from: its user's rows.
#[derive(Debug, Clone)]
pub(crate) struct UserRecords {
    pub(crate) user: User,
    /// `None` when the user has no account row yet.
    pub(crate) account: Option<Account>,
    pub(crate) open_orders: Vec<Order>,
    pub(crate) positions: Vec<Position>,
    pub(crate) strategies: Vec<Strategy>,
}

type Answer = Result<Option<UserRecords>, StoreError>;

struct Ask {
    user: UserId,
    reply: oneshot::Sender<Answer>,
}

/// Reads users' records for their owners, many users per statement under load.
pub(crate) struct StateLoads {
    persistence: Persistence,
    asks: mpsc::Sender<Ask>,
}

impl std::fmt::Debug for StateLoads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateLoads").finish_non_exhaustive()
    }
}

impl StateLoads {
    /// Starts `workers` tasks reading up to `max_batch` users per batch. The
    /// tasks end when this value is dropped. Must be called within a Tokio
    /// runtime.
    pub(crate) fn spawn(persistence: Persistence, workers: usize, max_batch: usize) -> Self {
        let (asks, rx) = mpsc::channel(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..workers.max(1) {
            tokio::spawn(answer(persistence.clone(), rx.clone(), max_batch.max(1)));
        }
        Self { persistence, asks }
    }

    /// One user's records; `Ok(None)` when the user does not exist.
    ///
    /// # Errors
    /// Store failures (every load of the batch gets the same error).
    pub(crate) async fn load(&self, user: &UserId) -> Answer {
        let (reply, answer) = oneshot::channel();
        let ask = Ask {
            user: user.clone(),
            reply,
        };
        if self.asks.send(ask).await.is_ok()
            && let Ok(a) = answer.await
        {
            return a;
        }
        // The workers went away (shutdown): read it alone.
        let mut found = read(&self.persistence, std::slice::from_ref(user)).await?;
        Ok(found.remove(user))
    }
}

/// One worker: takes what is waiting (at least one load), reads it, answers
/// each caller.
async fn answer(p: Persistence, rx: Arc<Mutex<mpsc::Receiver<Ask>>>, max_batch: usize) {
    while let Some(mut batch) = crate::lookup::next_batch(&rx, max_batch).await {
        batch.sort_by(|a, b| a.user.cmp(&b.user));
        let mut users: Vec<UserId> = batch.iter().map(|a| a.user.clone()).collect();
        users.dedup();
        metrics::histogram!("ordermon_state_load_batch_size").record(users.len() as f64);
        match read(&p, &users).await {
            Ok(mut found) => {
                let mut asks = batch.into_iter().peekable();
                while let Some(a) = asks.next() {
                    // The same user asked twice in one batch (rare): each
                    // but the last gets a copy.
                    let again = asks.peek().is_some_and(|next| next.user == a.user);
                    let records = if again {
                        found.get(&a.user).cloned()
                    } else {
                        found.remove(&a.user)
                    };
                    let _ = a.reply.send(Ok(records));
                }
            }
            Err(e) => {
                for a in batch {
                    let _ = a.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// The records of `users` (those that exist), one statement per table.
///
/// Each table is read in its own statement, so the records of one user are
/// not one snapshot across tables; they need not be: an owner loads before
/// it runs any command for its user, and every write of a user's rows goes
/// through that user's owner (the single writer). A row changed with plain
/// SQL between two statements is read as an owner reading table by table
/// always did.
async fn read(
    p: &Persistence,
    users: &[UserId],
) -> Result<HashMap<UserId, UserRecords>, StoreError> {
    let mut found: HashMap<UserId, UserRecords> = p
        .users
        .get_users(users)
        .await?
        .into_iter()
        .map(|user| {
            (
                user.id.clone(),
                UserRecords {
                    user,
                    account: None,
                    open_orders: Vec::new(),
                    positions: Vec::new(),
                    strategies: Vec::new(),
                },
            )
        })
        .collect();
    if found.is_empty() {
        return Ok(found);
    }
    let present: Vec<UserId> = users
        .iter()
        .filter(|u| found.contains_key(*u))
        .cloned()
        .collect();
    for account in p.accounts.get_accounts(&present).await? {
        if let Some(r) = found.get_mut(&account.user_id) {
            r.account = Some(account);
        }
    }
    for order in p.orders.open_orders_of(&present).await? {
        if let Some(r) = found.get_mut(&order.user_id) {
            r.open_orders.push(order);
        }
    }
    for position in p.positions.positions_of(&present).await? {
        if let Some(r) = found.get_mut(&position.user_id) {
            r.positions.push(position);
        }
    }
    for strategy in p.strategies.strategies_of(&present).await? {
        if let Some(r) = found.get_mut(&strategy.user_id) {
            r.strategies.push(strategy);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use chrono::Utc;
    use ordermon_domain::ports::{ChangeSet, StateChange, Store as _, UserRepository};
    use ordermon_domain::user::{Role, UserStatus};
    use ordermon_memory::MemoryStore;

    use super::*;

    /// The memory store's users, counting the bulk reads asked (or failing).
    struct Counting {
        inner: Arc<MemoryStore>,
        bulk_calls: AtomicUsize,
        fail: bool,
    }

    #[async_trait]
    impl UserRepository for Counting {
        async fn get_user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
            self.inner.get_user(id).await
        }
        async fn list_users(
            &self,
            after: Option<&UserId>,
            limit: u32,
        ) -> Result<Vec<User>, StoreError> {
            self.inner.list_users(after, limit).await
        }
        async fn user_statuses(&self) -> Result<Vec<(UserId, UserStatus)>, StoreError> {
            self.inner.user_statuses().await
        }
        async fn get_users(&self, ids: &[UserId]) -> Result<Vec<User>, StoreError> {
            self.bulk_calls.fetch_add(1, Ordering::SeqCst);
            if self.fail {
                return Err(StoreError::Unavailable("database down".to_owned()));
            }
            // Slow enough that the loads arriving meanwhile queue up.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            self.inner.get_users(ids).await
        }
    }

    fn uid(s: &str) -> UserId {
        UserId::new(s).unwrap()
    }

    async fn seeded(users: usize, fail: bool) -> (StateLoads, Arc<Counting>) {
        let store = Arc::new(MemoryStore::new());
        let now = Utc::now();
        let mut batch = ChangeSet::default();
        for i in 0..users {
            let id = uid(&format!("u{i}"));
            batch.changes.push(StateChange::User {
                user: Box::new(User {
                    id: id.clone(),
                    name: format!("User {i}"),
                    status: UserStatus::Active,
                    role: Role::Trader,
                    account_type: Default::default(),
                    limits: Default::default(),
                    trading_state: Default::default(),
                    created_at: now,
                    updated_at: now,
                    version: 1,
                    sequence: 0,
                    tokens_valid_after: None,
                }),
                expected: 0,
            });
            // Odd users have a strategy, named after them.
            if i % 2 == 1 {
                let strategy: Strategy = serde_json::from_value(serde_json::json!({
                    "id": format!("s{i}"), "user_id": id, "type": "twap", "name": "slicer",
                    "instruments": ["ACME.SIM"], "params": {"slices": 4}, "status": "enabled",
                    "created_at": now, "updated_at": now, "version": 1,
                }))
                .unwrap();
                batch.changes.push(StateChange::Strategy {
                    strategy: Box::new(strategy),
                    expected: 0,
                });
            }
        }
        store.commit(batch).await.unwrap();
        let counting = Arc::new(Counting {
            inner: store.clone(),
            bulk_calls: AtomicUsize::new(0),
            fail,
        });
        let mut p = Persistence::from_backend(store);
        p.users = counting.clone();
        (StateLoads::spawn(p, 1, 64), counting)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn loads_arriving_together_share_statements_and_get_their_own_user() {
        let (loads, counting) = seeded(300, false).await;
        let loads = Arc::new(loads);
        let mut tasks = Vec::new();
        // Every user, one twice, and one who does not exist.
        let mut asked: Vec<String> = (0..300).map(|i| format!("u{i}")).collect();
        asked.push("u7".to_owned());
        asked.push("nobody".to_owned());
        for name in asked {
            let loads = loads.clone();
            tasks.push(tokio::spawn(async move {
                (name.clone(), loads.load(&uid(&name)).await)
            }));
        }
        for t in tasks {
            let (name, got) = t.await.unwrap();
            let got = got.unwrap();
            if name == "nobody" {
                assert!(got.is_none());
                continue;
            }
            let r = got.unwrap();
            assert_eq!(r.user.id.as_str(), name);
            assert!(r.account.is_none());
            let i: usize = name[1..].parse().unwrap();
            let strategies: Vec<&str> = r.strategies.iter().map(|s| s.id.as_str()).collect();
            if i % 2 == 1 {
                assert_eq!(strategies, [format!("s{i}")]);
            } else {
                assert!(strategies.is_empty());
            }
        }
        // 302 loads, at most 64 users per statement: one statement per load
        // would be 302.
        let calls = counting.bulk_calls.load(Ordering::SeqCst);
        assert!(calls >= 302_usize.div_ceil(64), "{calls} statements");
        assert!(calls <= 60, "{calls} statements for 302 loads");
    }

    #[tokio::test]
    async fn a_failed_read_fails_every_load_of_its_batch_and_changes_nothing() {
        let (loads, counting) = seeded(3, true).await;
        let (u0, u1) = (uid("u0"), uid("u1"));
        let (a, b) = tokio::join!(loads.load(&u0), loads.load(&u1));
        assert!(matches!(a, Err(StoreError::Unavailable(_))), "{a:?}");
        assert!(matches!(b, Err(StoreError::Unavailable(_))), "{b:?}");
        assert!(counting.bulk_calls.load(Ordering::SeqCst) >= 1);
    }

    #[tokio::test]
    async fn alone_a_load_goes_out_at_once() {
        let (loads, counting) = seeded(3, false).await;
        let r = loads.load(&uid("u1")).await.unwrap().unwrap();
        assert_eq!(r.user.id, uid("u1"));
        assert_eq!(counting.bulk_calls.load(Ordering::SeqCst), 1);
        assert!(loads.load(&uid("u9")).await.unwrap().is_none());
    }
}
