//! Batched idempotency look-ups. Every order submitted first asks the store
//! whether its client order id is taken already (SPEC §3: a retried submit
//! answers with the order it created). One question per order costs a round
//! trip per order; under load [`BatchedClientIdLookups`] gathers the questions
//! that arrive while one is being answered and asks them in one statement,
//! as group commit does for writes. Alone, a question goes out at once.

use std::sync::Arc;

use async_trait::async_trait;
use ordermon_domain::ids::{ClientOrderId, OrderId, UserId};
use ordermon_domain::order::Order;
use ordermon_domain::ports::{OrderQuery, OrderRepository, StoreError};
use tokio::sync::{Mutex, mpsc, oneshot};

/// Questions one statement carries at most.
pub const MAX_LOOKUP_BATCH: usize = 64;

/// Questions answered concurrently (each on its own connection).
pub const LOOKUP_WORKERS: usize = 2;

/// Questions that may wait before a caller waits to ask.
const QUEUE: usize = 4096;

type Answer = Result<Option<Order>, StoreError>;

struct Ask {
    user: UserId,
    cid: ClientOrderId,
    reply: oneshot::Sender<Answer>,
}

/// An [`OrderRepository`] whose look-ups by client order id are batched;
/// everything else goes straight to the repository it wraps.
pub struct BatchedClientIdLookups {
    inner: Arc<dyn OrderRepository>,
    asks: mpsc::Sender<Ask>,
}

impl std::fmt::Debug for BatchedClientIdLookups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchedClientIdLookups")
            .finish_non_exhaustive()
    }
}

impl BatchedClientIdLookups {
    /// Wraps `inner`, starting `workers` tasks that answer up to `max_batch`
    /// questions per statement. The tasks end when this value is dropped.
    /// Must be called within a Tokio runtime.
    #[must_use]
    pub fn spawn(inner: Arc<dyn OrderRepository>, workers: usize, max_batch: usize) -> Self {
        let (asks, rx) = mpsc::channel(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..workers.max(1) {
            tokio::spawn(answer(inner.clone(), rx.clone(), max_batch.max(1)));
        }
        Self { inner, asks }
    }
}

/// One worker: takes what is waiting (at least one question), asks it in
/// one statement, answers each caller.
async fn answer(
    inner: Arc<dyn OrderRepository>,
    rx: Arc<Mutex<mpsc::Receiver<Ask>>>,
    max_batch: usize,
) {
    while let Some(batch) = next_batch(&rx, max_batch).await {
        let keys: Vec<(UserId, ClientOrderId)> = batch
            .iter()
            .map(|a| (a.user.clone(), a.cid.clone()))
            .collect();
        metrics::histogram!("ordermon_client_id_lookup_batch_size").record(keys.len() as f64);
        match inner.get_orders_by_client_ids(&keys).await {
            Ok(found) => {
                for a in batch {
                    let order = found
                        .iter()
                        .find(|o| o.user_id == a.user && o.client_order_id == a.cid)
                        .cloned();
                    let _ = a.reply.send(Ok(order));
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

/// What is waiting in a queue shared by workers, at most `max` and at
/// least one (waiting for it); `None` once every sender is gone. The lock is
/// held while the batch is taken, so each question goes to one worker.
pub(crate) async fn next_batch<T>(rx: &Mutex<mpsc::Receiver<T>>, max: usize) -> Option<Vec<T>> {
    let mut rx = rx.lock().await;
    let first = rx.recv().await?;
    let mut batch = vec![first];
    while batch.len() < max {
        match rx.try_recv() {
            Ok(a) => batch.push(a),
            Err(_) => break,
        }
    }
    Some(batch)
}

#[async_trait]
impl OrderRepository for BatchedClientIdLookups {
    async fn get_order(&self, id: OrderId) -> Result<Option<Order>, StoreError> {
        self.inner.get_order(id).await
    }

    async fn get_order_by_client_id(
        &self,
        user: &UserId,
        client_order_id: &str,
    ) -> Result<Option<Order>, StoreError> {
        // Not a valid id: no order can have it; the store says so itself.
        let Ok(cid) = ClientOrderId::new(client_order_id) else {
            return self
                .inner
                .get_order_by_client_id(user, client_order_id)
                .await;
        };
        let (reply, answer) = oneshot::channel();
        let ask = Ask {
            user: user.clone(),
            cid,
            reply,
        };
        if self.asks.send(ask).await.is_err() {
            return self
                .inner
                .get_order_by_client_id(user, client_order_id)
                .await;
        }
        match answer.await {
            Ok(a) => a,
            // The worker went away mid-question: ask directly.
            Err(_) => {
                self.inner
                    .get_order_by_client_id(user, client_order_id)
                    .await
            }
        }
    }

    async fn list_orders(&self, query: &OrderQuery) -> Result<Vec<Order>, StoreError> {
        self.inner.list_orders(query).await
    }

    async fn open_orders(&self, user: Option<&UserId>) -> Result<Vec<Order>, StoreError> {
        self.inner.open_orders(user).await
    }

    async fn cancels_requested(&self, limit: u32) -> Result<Vec<(OrderId, UserId)>, StoreError> {
        self.inner.cancels_requested(limit).await
    }

    async fn get_orders(&self, ids: &[OrderId]) -> Result<Vec<Order>, StoreError> {
        self.inner.get_orders(ids).await
    }

    async fn get_orders_by_client_ids(
        &self,
        keys: &[(UserId, ClientOrderId)],
    ) -> Result<Vec<Order>, StoreError> {
        self.inner.get_orders_by_client_ids(keys).await
    }

    async fn open_orders_of(&self, users: &[UserId]) -> Result<Vec<Order>, StoreError> {
        self.inner.open_orders_of(users).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A repository holding a few orders that counts the statements asked.
    struct Counting {
        orders: Vec<Order>,
        bulk_calls: AtomicUsize,
        keys_asked: AtomicUsize,
        fail: bool,
    }

    #[async_trait]
    impl OrderRepository for Counting {
        async fn get_order(&self, id: OrderId) -> Result<Option<Order>, StoreError> {
            Ok(self.orders.iter().find(|o| o.id == id).cloned())
        }
        async fn get_order_by_client_id(
            &self,
            user: &UserId,
            cid: &str,
        ) -> Result<Option<Order>, StoreError> {
            Ok(self
                .orders
                .iter()
                .find(|o| &o.user_id == user && o.client_order_id.as_str() == cid)
                .cloned())
        }
        async fn list_orders(&self, _: &OrderQuery) -> Result<Vec<Order>, StoreError> {
            Ok(Vec::new())
        }
        async fn open_orders(&self, _: Option<&UserId>) -> Result<Vec<Order>, StoreError> {
            Ok(Vec::new())
        }
        async fn get_orders_by_client_ids(
            &self,
            keys: &[(UserId, ClientOrderId)],
        ) -> Result<Vec<Order>, StoreError> {
            self.bulk_calls.fetch_add(1, Ordering::SeqCst);
            self.keys_asked.fetch_add(keys.len(), Ordering::SeqCst);
            // Long enough for the other questions to queue behind this one.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            if self.fail {
                return Err(StoreError::Unavailable("down".to_owned()));
            }
            Ok(self
                .orders
                .iter()
                .filter(|o| {
                    keys.iter()
                        .any(|(u, c)| *u == o.user_id && *c == o.client_order_id)
                })
                .cloned()
                .collect())
        }
    }

    fn order(user: &str, cid: &str) -> Order {
        use ordermon_domain::order::{NewOrder, OrderType, Side, TimeInForce};
        let new = NewOrder {
            user_id: UserId::new(user).unwrap(),
            client_order_id: ClientOrderId::new(cid).unwrap(),
            strategy_id: None,
            instrument_id: ordermon_domain::ids::InstrumentId::new("ACME.SIM").unwrap(),
            side: Side::Buy,
            order_type: OrderType::Limit,
            quantity: ordermon_domain::values::Quantity::new(rust_decimal::Decimal::ONE).unwrap(),
            price: Some(ordermon_domain::values::Price::new(rust_decimal::Decimal::ONE).unwrap()),
            trigger_price: None,
            time_in_force: TimeInForce::Gtc,
            expire_at: None,
            post_only: false,
            reduce_only: false,
        };
        Order::create(OrderId::generate(), new, chrono::Utc::now())
            .unwrap()
            .0
    }

    fn repo(fail: bool) -> Arc<Counting> {
        Arc::new(Counting {
            orders: vec![order("alice", "a-1"), order("bob", "a-1")],
            bulk_calls: AtomicUsize::new(0),
            keys_asked: AtomicUsize::new(0),
            fail,
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_questions_share_statements_and_get_their_own_answers() {
        let inner = repo(false);
        let batched = Arc::new(BatchedClientIdLookups::spawn(inner.clone(), 1, 64));
        let mut asks = Vec::new();
        for i in 0..40 {
            let b = batched.clone();
            asks.push(tokio::spawn(async move {
                let (user, cid) = match i % 4 {
                    0 => ("alice", "a-1".to_owned()),
                    1 => ("bob", "a-1".to_owned()),
                    2 => ("carol", "a-1".to_owned()),
                    _ => ("alice", format!("new-{i}")),
                };
                let got = b
                    .get_order_by_client_id(&UserId::new(user).unwrap(), &cid)
                    .await
                    .unwrap();
                (
                    i,
                    got.map(|o| (o.user_id.to_string(), o.client_order_id.to_string())),
                )
            }));
        }
        for a in asks {
            let (i, got) = a.await.unwrap();
            let want = match i % 4 {
                0 => Some(("alice".to_owned(), "a-1".to_owned())),
                1 => Some(("bob".to_owned(), "a-1".to_owned())),
                _ => None,
            };
            assert_eq!(got, want, "question {i}");
        }
        assert_eq!(inner.keys_asked.load(Ordering::SeqCst), 40);
        // One worker, 20 ms a statement: the questions queued behind the
        // first went out together.
        let calls = inner.bulk_calls.load(Ordering::SeqCst);
        assert!(calls < 10, "{calls} statements for 40 questions");
    }

    #[tokio::test]
    async fn a_failed_statement_fails_its_questions_and_an_invalid_id_asks_directly() {
        let inner = repo(true);
        let batched = BatchedClientIdLookups::spawn(inner.clone(), 1, 64);
        let alice = UserId::new("alice").unwrap();
        let e = batched.get_order_by_client_id(&alice, "a-1").await;
        assert!(matches!(e, Err(StoreError::Unavailable(_))), "{e:?}");
        // Too long to be a client order id: answered by the store directly.
        let long = "x".repeat(200);
        assert_eq!(
            batched.get_order_by_client_id(&alice, &long).await,
            Ok(None)
        );
        assert_eq!(inner.bulk_calls.load(Ordering::SeqCst), 1);
    }
}
