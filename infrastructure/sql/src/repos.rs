//! The read side of the trading model: its query repository ports over SQL
//! (the alerting model's are in `alerting`). Entities come back from their
//! `data` JSON, with the columns operators may change (user and strategy
//! status, account balances) taking precedence.

use async_trait::async_trait;
use ordermon_domain::account::Account;
use ordermon_domain::event::{AggregateType, DomainEvent};
use ordermon_domain::fill::Fill;
use ordermon_domain::ids::{ClientOrderId, EventId, InstrumentId, OrderId, StrategyId, UserId};
use ordermon_domain::instrument::Instrument;
use ordermon_domain::order::{Order, OrderStatus};
use ordermon_domain::ports::{
    AccountRepository, EventLog, FillQuery, FillRepository, InstrumentRepository, OrderQuery,
    OrderRepository, Outbox, OutboxMessage, OutboxRecord, PositionRepository, StoreError,
    StoredEvent, StrategyRepository, UserRepository,
};
use ordermon_domain::position::Position;
use ordermon_domain::strategy::{Strategy, StrategyStatus};
use ordermon_domain::user::{User, UserStatus};

use crate::conn::{Cell, Kind, Row, Val, marks};
use crate::decode::{
    corrupt, int, json, overlay_balances, overlay_reservations, parsed, text, ts, uint, uuid,
};
use crate::store::SqlStore;
use crate::url::Dialect;

/// Page size for a query's `limit` (same rule as the in-memory store).
pub(crate) fn limit(n: u32) -> Val {
    let n = if n == 0 { 100 } else { n.min(10_000) };
    Val::Int(i64::from(n))
}

/// A `WHERE` clause under construction.
#[derive(Default)]
pub(crate) struct Filter {
    conditions: Vec<String>,
    pub(crate) args: Vec<Val>,
}

impl Filter {
    pub(crate) fn and(
        &mut self,
        condition: impl Into<String>,
        args: impl IntoIterator<Item = Val>,
    ) {
        self.conditions.push(condition.into());
        self.args.extend(args);
    }

    /// `column IN (…)` over the distinct `values` (none: no condition). A
    /// list filter names a handful of enum values however long the request
    /// made it, so it never runs into a database's parameter limit.
    pub(crate) fn any_of<'a>(&mut self, column: &str, values: impl IntoIterator<Item = &'a str>) {
        let distinct: std::collections::BTreeSet<&str> = values.into_iter().collect();
        if distinct.is_empty() {
            return;
        }
        let condition = format!("{column} IN ({})", marks(distinct.len()));
        self.and(condition, distinct.into_iter().map(Val::text));
    }

    pub(crate) fn sql(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.conditions.join(" AND "))
        }
    }
}

/// Entities from `(data, status)` rows: the status column wins (operators
/// change it with plain SQL).
fn with_status<T, S>(
    rows: &[Row],
    what: &str,
    set: impl Fn(&mut T, S),
) -> Result<Vec<T>, StoreError>
where
    T: serde::de::DeserializeOwned,
    S: std::str::FromStr,
    S::Err: std::fmt::Display,
{
    rows.iter()
        .map(|r| {
            let mut entity: T = json(r, 0, what)?;
            set(&mut entity, parsed(r, 1, &format!("{what} status"))?);
            Ok(entity)
        })
        .collect()
}

/// Users from `(data, status)` rows.
fn users_from(rows: &[Row]) -> Result<Vec<User>, StoreError> {
    with_status(rows, "user", |u: &mut User, s| u.status = s)
}

/// Strategies from `(data, status)` rows.
fn strategies_from(rows: &[Row]) -> Result<Vec<Strategy>, StoreError> {
    with_status(rows, "strategy", |st: &mut Strategy, s| st.status = s)
}

impl SqlStore {
    /// Entities from `(data)` rows.
    pub(crate) async fn entities<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
        args: Vec<Val>,
        what: &str,
    ) -> Result<Vec<T>, StoreError> {
        let rows = self.fetch(sql, args, &[Kind::Text]).await?;
        rows.iter().map(|r| json(r, 0, what)).collect()
    }

    /// The rows of `head` + `?, …` + `tail` for each chunk of `users` (bulk
    /// reads for owners starting together), `pre` bound before the users,
    /// planned for its keys (see [`SqlStore::fetch_planned`]).
    async fn by_users(
        &self,
        (head, tail): (&str, &str),
        pre: &[Val],
        users: &[UserId],
        kinds: &[Kind],
    ) -> Result<Vec<Row>, StoreError> {
        let mut rows = Vec::new();
        for chunk in users.chunks(LOOKUP_CHUNK) {
            let sql = format!("{head}{}{tail}", marks(chunk.len()));
            let args = pre
                .iter()
                .cloned()
                .chain(chunk.iter().map(Val::text))
                .collect();
            rows.extend(self.fetch_planned(&sql, args, kinds).await?);
        }
        Ok(rows)
    }

    /// Orders from `(data)` rows of a bulk lookup, planned for its keys
    /// (see [`SqlStore::fetch_planned`]).
    async fn looked_up(&self, sql: &str, args: Vec<Val>) -> Result<Vec<Order>, StoreError> {
        let rows = self.fetch_planned(sql, args, &[Kind::Text]).await?;
        rows.iter().map(|r| json(r, 0, "order")).collect()
    }

    /// Users from `(data, status)` rows: the status column wins.
    async fn users(&self, sql: &str, args: Vec<Val>) -> Result<Vec<User>, StoreError> {
        let rows = self.fetch(sql, args, &[Kind::Text, Kind::Text]).await?;
        users_from(&rows)
    }

    /// Strategies from `(data, status)` rows: the status column wins.
    async fn strategies(&self, sql: &str, args: Vec<Val>) -> Result<Vec<Strategy>, StoreError> {
        let rows = self.fetch(sql, args, &[Kind::Text, Kind::Text]).await?;
        strategies_from(&rows)
    }

    /// Events from `(position, data)` rows.
    async fn stored_events(
        &self,
        sql: &str,
        args: Vec<Val>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.fetch_int_text(sql, args, |position, data| {
            let event = serde_json::from_str::<DomainEvent>(data)
                .map_err(|e| format!("bad stored event: {e}"))?;
            Ok(StoredEvent { position, event })
        })
        .await
    }
}

#[async_trait]
impl OrderRepository for SqlStore {
    async fn get_order(&self, id: OrderId) -> Result<Option<Order>, StoreError> {
        let sql = "SELECT data FROM orders WHERE id = ?";
        Ok(self
            .entities(sql, vec![Val::Uuid(id.as_uuid())], "order")
            .await?
            .pop())
    }

    async fn get_order_by_client_id(
        &self,
        user: &UserId,
        client_order_id: &str,
    ) -> Result<Option<Order>, StoreError> {
        let sql = "SELECT data FROM orders WHERE user_id = ? AND client_order_id = ?";
        let args = vec![Val::text(user), Val::text(client_order_id)];
        Ok(self.entities(sql, args, "order").await?.pop())
    }

    async fn list_orders(&self, q: &OrderQuery) -> Result<Vec<Order>, StoreError> {
        let mut f = Filter::default();
        if let Some(u) = &q.user_id {
            f.and("user_id = ?", [Val::text(u)]);
        }
        f.any_of("status", q.statuses.iter().map(|s| s.as_str()));
        if let Some(i) = &q.instrument_id {
            f.and("instrument_id = ?", [Val::text(i)]);
        }
        if let Some(s) = &q.strategy_id {
            f.and("strategy_id = ?", [Val::text(s)]);
        }
        if let Some(from) = q.from {
            f.and("created_at >= ?", [Val::Ts(from)]);
        }
        if let Some(to) = q.to {
            f.and("created_at < ?", [Val::Ts(to)]);
        }
        if let Some(before) = q.before {
            f.and("id < ?", [Val::Uuid(before.as_uuid())]);
        }
        let sql = format!(
            "SELECT data FROM orders{} ORDER BY id DESC LIMIT ?",
            f.sql()
        );
        let mut args = f.args;
        args.push(limit(q.limit));
        self.entities(&sql, args, "order").await
    }

    async fn open_orders(&self, user: Option<&UserId>) -> Result<Vec<Order>, StoreError> {
        let open: Vec<Val> = OrderStatus::ALL
            .iter()
            .filter(|s| s.is_open())
            .map(|s| Val::text(s.as_str()))
            .collect();
        let mut f = Filter::default();
        f.and(format!("status IN ({})", marks(open.len())), open);
        if let Some(u) = user {
            f.and("user_id = ?", [Val::text(u)]);
        }
        let sql = format!("SELECT data FROM orders{} ORDER BY id", f.sql());
        self.entities(&sql, f.args, "order").await
    }

    async fn cancels_requested(&self, limit: u32) -> Result<Vec<(OrderId, UserId)>, StoreError> {
        // A canceled order the system wrote has nothing left working; a row
        // an operator marked still has.
        let sql = format!(
            "SELECT id, user_id FROM orders WHERE status IN ({}) AND leaves_qty > 0 \
             ORDER BY id LIMIT ?",
            marks(OPERATOR_CANCELED.len())
        );
        let mut args: Vec<Val> = OPERATOR_CANCELED.iter().map(Val::text).collect();
        args.push(Val::Int(i64::from(limit.clamp(1, 10_000))));
        let rows = self.fetch(&sql, args, &[Kind::Uuid, Kind::Text]).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    OrderId::from_uuid(crate::decode::uuid(r, 0)?)
                        .map_err(|e| crate::decode::corrupt(format!("bad stored order id: {e}")))?,
                    crate::decode::parsed(r, 1, "user id")?,
                ))
            })
            .collect()
    }

    async fn get_orders(&self, ids: &[OrderId]) -> Result<Vec<Order>, StoreError> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(LOOKUP_CHUNK) {
            let sql = format!(
                "SELECT data FROM orders WHERE id IN ({})",
                marks(chunk.len())
            );
            let args = chunk.iter().map(|id| Val::Uuid(id.as_uuid())).collect();
            found.extend(self.looked_up(&sql, args).await?);
        }
        Ok(found)
    }

    async fn get_orders_by_client_ids(
        &self,
        keys: &[(UserId, ClientOrderId)],
    ) -> Result<Vec<Order>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        // Row values work on all three dialects and use the unique
        // (user_id, client_order_id) index. On PostgreSQL a long list is
        // planned as a parallel bitmap scan (worker start-up, and an OR of
        // every pair rechecked per row: ~50 ms for 400 keys against ~2 ms
        // for 100), so its statements carry fewer keys.
        let per = match self.dialect() {
            Dialect::Postgres => PG_PAIR_CHUNK,
            Dialect::Sqlite | Dialect::MySql => LOOKUP_CHUNK,
        };
        for chunk in keys.chunks(per) {
            let pairs = vec!["(?, ?)"; chunk.len()].join(", ");
            let sql =
                format!("SELECT data FROM orders WHERE (user_id, client_order_id) IN ({pairs})");
            let args = chunk
                .iter()
                .flat_map(|(u, c)| [Val::text(u), Val::text(c)])
                .collect();
            found.extend(self.looked_up(&sql, args).await?);
        }
        Ok(found)
    }

    async fn open_orders_of(&self, users: &[UserId]) -> Result<Vec<Order>, StoreError> {
        let open: Vec<Val> = OrderStatus::ALL
            .iter()
            .filter(|s| s.is_open())
            .map(|s| Val::text(s.as_str()))
            .collect();
        let head = format!(
            "SELECT data FROM orders WHERE status IN ({}) AND user_id IN (",
            marks(open.len())
        );
        let rows = self
            .by_users((&head, ")"), &open, users, &[Kind::Text])
            .await?;
        rows.iter().map(|r| json(r, 0, "order")).collect()
    }
}

/// Keys one bulk lookup carries per statement.
const LOOKUP_CHUNK: usize = 400;

/// Users one bulk account read carries per statement. Beyond ~128 users
/// PostgreSQL plans the balances join as a sequential scan of every balance
/// under a parallel gather (11–16 ms for 256 users against 1–3 ms for 128,
/// measured on 50,000 accounts).
const ACCOUNT_CHUNK: usize = 128;

/// (user, client order id) pairs one lookup carries on PostgreSQL.
const PG_PAIR_CHUNK: usize = 100;

#[async_trait]
impl FillRepository for SqlStore {
    async fn list_fills(&self, q: &FillQuery) -> Result<Vec<(i64, Fill)>, StoreError> {
        let mut f = Filter::default();
        if let Some(u) = &q.user_id {
            f.and("user_id = ?", [Val::text(u)]);
        }
        if let Some(o) = q.order_id {
            f.and("order_id = ?", [Val::Uuid(o.as_uuid())]);
        }
        if let Some(i) = &q.instrument_id {
            f.and("instrument_id = ?", [Val::text(i)]);
        }
        if let Some(before) = q.before {
            f.and("seq < ?", [Val::Int(before)]);
        }
        let sql = format!(
            "SELECT seq, data FROM fills{} ORDER BY seq DESC LIMIT ?",
            f.sql()
        );
        let mut args = f.args;
        args.push(limit(q.limit));
        let rows = self.fetch(&sql, args, &[Kind::Int, Kind::Text]).await?;
        rows.iter()
            .map(|r| Ok((int(r, 0)?, json(r, 1, "fill")?)))
            .collect()
    }
}

#[async_trait]
impl PositionRepository for SqlStore {
    async fn get_position(
        &self,
        user: &UserId,
        instrument: &InstrumentId,
    ) -> Result<Option<Position>, StoreError> {
        let sql = "SELECT data FROM positions WHERE user_id = ? AND instrument_id = ?";
        let args = vec![Val::text(user), Val::text(instrument)];
        Ok(self.entities(sql, args, "position").await?.pop())
    }

    async fn list_positions(&self, user: &UserId) -> Result<Vec<Position>, StoreError> {
        let sql = "SELECT data FROM positions WHERE user_id = ? ORDER BY instrument_id";
        self.entities(sql, vec![Val::text(user)], "position").await
    }

    async fn positions_of(&self, users: &[UserId]) -> Result<Vec<Position>, StoreError> {
        let sql = ("SELECT data FROM positions WHERE user_id IN (", ")");
        let rows = self.by_users(sql, &[], users, &[Kind::Text]).await?;
        rows.iter().map(|r| json(r, 0, "position")).collect()
    }
}

/// The columns of an account read from the marker on: `'a'` rows (the
/// account's data, then each balance's currency, total and reserved), then
/// `'r'` rows (each reservation's data).
const ACCOUNT_KINDS: [Kind; 6] = [
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Dec,
    Kind::Dec,
    Kind::Text,
];

/// One user's account from its rows of an account read (see
/// [`ACCOUNT_KINDS`]), whose marker is column `at`; `None` without an
/// account row.
fn account_from(rows: &[Row], at: usize) -> Result<Option<Account>, StoreError> {
    let split = rows.partition_point(|r| r.get(at) == Some(&Cell::Text("a".to_owned())));
    let (heads, reservations) = rows.split_at(split);
    let Some(first) = heads.first() else {
        return Ok(None);
    };
    let mut account: Account = json(first, at + 1, "account")?;
    overlay_balances(&mut account, heads, at + 2)?;
    overlay_reservations(&mut account, reservations, at + 5)?;
    Ok(Some(account))
}

#[async_trait]
impl AccountRepository for SqlStore {
    async fn get_account(&self, user: &UserId) -> Result<Option<Account>, StoreError> {
        // One statement, so the account, its balances and its reservations
        // are one snapshot: the account row with each balance ('a'), then
        // each reservation ('r').
        let sql = "SELECT 'a', a.data, b.currency, b.total, b.reserved, NULL FROM accounts a \
                   LEFT JOIN account_balances b ON b.user_id = a.user_id WHERE a.user_id = ? \
                   UNION ALL \
                   SELECT 'r', NULL, NULL, NULL, NULL, r.data FROM account_reservations r \
                   WHERE r.user_id = ? \
                   ORDER BY 1, 3";
        let rows = self
            .fetch(sql, vec![Val::text(user), Val::text(user)], &ACCOUNT_KINDS)
            .await?;
        account_from(&rows, 0)
    }

    async fn get_accounts(&self, users: &[UserId]) -> Result<Vec<Account>, StoreError> {
        // As `get_account`, for many users at once: one statement per chunk,
        // each row led by its user id, so every account is one snapshot.
        let kinds: Vec<Kind> = std::iter::once(Kind::Text).chain(ACCOUNT_KINDS).collect();
        let mut found = Vec::new();
        for chunk in users.chunks(ACCOUNT_CHUNK) {
            let list = marks(chunk.len());
            let sql = format!(
                "SELECT a.user_id, 'a', a.data, b.currency, b.total, b.reserved, NULL \
                 FROM accounts a LEFT JOIN account_balances b ON b.user_id = a.user_id \
                 WHERE a.user_id IN ({list}) \
                 UNION ALL \
                 SELECT r.user_id, 'r', NULL, NULL, NULL, NULL, r.data \
                 FROM account_reservations r WHERE r.user_id IN ({list}) \
                 ORDER BY 1, 2, 4"
            );
            let args = chunk.iter().chain(chunk).map(Val::text).collect();
            let rows = self.fetch_planned(&sql, args, &kinds).await?;
            // Reservations of a user without an account row: nothing to
            // hang them on, as `get_account` would say.
            for group in rows.chunk_by(|a, b| a.first() == b.first()) {
                found.extend(account_from(group, 1)?);
            }
        }
        Ok(found)
    }
}

#[async_trait]
impl UserRepository for SqlStore {
    async fn get_user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        let sql = "SELECT data, status FROM users WHERE id = ?";
        Ok(self.users(sql, vec![Val::text(id)]).await?.pop())
    }

    async fn get_users(&self, ids: &[UserId]) -> Result<Vec<User>, StoreError> {
        let sql = ("SELECT data, status FROM users WHERE id IN (", ")");
        let rows = self
            .by_users(sql, &[], ids, &[Kind::Text, Kind::Text])
            .await?;
        users_from(&rows)
    }

    async fn list_users(&self, after: Option<&UserId>, n: u32) -> Result<Vec<User>, StoreError> {
        let mut f = Filter::default();
        if let Some(a) = after {
            f.and("id > ?", [Val::text(a)]);
        }
        let sql = format!(
            "SELECT data, status FROM users{} ORDER BY id LIMIT ?",
            f.sql()
        );
        let mut args = f.args;
        args.push(limit(n));
        self.users(&sql, args).await
    }

    async fn user_statuses(&self) -> Result<Vec<(UserId, UserStatus)>, StoreError> {
        let sql = "SELECT id, status FROM users ORDER BY id";
        let rows = self
            .fetch(sql, Vec::new(), &[Kind::Text, Kind::Text])
            .await?;
        rows.iter()
            .map(|r| Ok((parsed(r, 0, "user id")?, parsed(r, 1, "user status")?)))
            .collect()
    }

    async fn user_status_stamp(&self) -> Result<Option<u64>, StoreError> {
        self.stamp(&["id", "status"], "users").await
    }
}

impl SqlStore {
    /// The monitoring scan's stamp of `table`'s `columns`: the row count and
    /// the sum of a 64-bit hash of each row's columns, computed by the
    /// database (plain SQL changes move it too), folded into one number.
    /// SQLite has no hash function built in: `None`, the scan reads the rows.
    async fn stamp(&self, columns: &[&str], table: &str) -> Result<Option<u64>, StoreError> {
        let sql = match self.dialect() {
            Dialect::Sqlite => return Ok(None),
            Dialect::Postgres => format!(
                "SELECT COUNT(*), COALESCE(SUM(hashtextextended({}, 0)), 0)::text FROM {table}",
                columns
                    .iter()
                    .map(|c| format!("{c}::text"))
                    .collect::<Vec<_>>()
                    .join(" || '/' || ")
            ),
            Dialect::MySql => format!(
                "SELECT COUNT(*), CAST(COALESCE(SUM(CAST(CONV(SUBSTRING(SHA1(CONCAT_WS('/', {})), 1, 16), 16, 10) AS UNSIGNED)), 0) AS CHAR) FROM {table}",
                columns.join(", ")
            ),
        };
        let rows = self
            .fetch(&sql, Vec::new(), &[Kind::Int, Kind::Text])
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let count = int(row, 0)?;
        let sum = text(row, 1)?;
        let mut h = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&(count, sum), &mut h);
        Ok(Some(std::hash::Hasher::finish(&h)))
    }
}

#[async_trait]
impl StrategyRepository for SqlStore {
    async fn get_strategy(
        &self,
        user: &UserId,
        id: &StrategyId,
    ) -> Result<Option<Strategy>, StoreError> {
        let sql = "SELECT data, status FROM strategies WHERE user_id = ? AND id = ?";
        Ok(self
            .strategies(sql, vec![Val::text(user), Val::text(id)])
            .await?
            .pop())
    }

    async fn list_strategies(&self, user: &UserId) -> Result<Vec<Strategy>, StoreError> {
        let sql = "SELECT data, status FROM strategies WHERE user_id = ? ORDER BY id";
        self.strategies(sql, vec![Val::text(user)]).await
    }

    async fn strategies_of(&self, users: &[UserId]) -> Result<Vec<Strategy>, StoreError> {
        let sql = (
            "SELECT data, status FROM strategies WHERE user_id IN (",
            ") ORDER BY user_id, id",
        );
        let rows = self
            .by_users(sql, &[], users, &[Kind::Text, Kind::Text])
            .await?;
        strategies_from(&rows)
    }

    async fn strategy_statuses(
        &self,
    ) -> Result<Vec<(StrategyId, UserId, StrategyStatus, u64)>, StoreError> {
        let sql = "SELECT id, user_id, status, version FROM strategies ORDER BY user_id, id";
        let kinds = [Kind::Text, Kind::Text, Kind::Text, Kind::Int];
        let rows = self.fetch(sql, Vec::new(), &kinds).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    parsed(r, 0, "strategy id")?,
                    parsed(r, 1, "user id")?,
                    parsed(r, 2, "strategy status")?,
                    uint(r, 3)?,
                ))
            })
            .collect()
    }

    async fn strategy_stamp(&self) -> Result<Option<u64>, StoreError> {
        self.stamp(&["user_id", "id", "status", "version"], "strategies")
            .await
    }
}

#[async_trait]
impl InstrumentRepository for SqlStore {
    async fn get_instrument(&self, id: &InstrumentId) -> Result<Option<Instrument>, StoreError> {
        let sql = "SELECT data FROM instruments WHERE id = ?";
        Ok(self
            .entities(sql, vec![Val::text(id)], "instrument")
            .await?
            .pop())
    }

    async fn list_instruments(&self) -> Result<Vec<Instrument>, StoreError> {
        self.entities(
            "SELECT data FROM instruments ORDER BY id",
            Vec::new(),
            "instrument",
        )
        .await
    }
}

#[async_trait]
impl EventLog for SqlStore {
    async fn aggregate_events(
        &self,
        aggregate_type: AggregateType,
        aggregate_id: &str,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = "SELECT position, data FROM events \
                   WHERE aggregate_type = ? AND aggregate_id = ? ORDER BY sequence";
        let args = vec![Val::text(aggregate_type.as_str()), Val::text(aggregate_id)];
        self.stored_events(sql, args).await
    }

    async fn events_after(
        &self,
        after: i64,
        user: Option<&UserId>,
        n: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut f = Filter::default();
        f.and("position > ?", [Val::Int(after)]);
        if let Some(u) = user {
            f.and("user_id = ?", [Val::text(u)]);
        }
        let sql = format!(
            "SELECT position, data FROM events{} ORDER BY position LIMIT ?",
            f.sql()
        );
        let mut args = f.args;
        args.push(limit(n));
        self.stored_events(&sql, args).await
    }
}

#[async_trait]
impl Outbox for SqlStore {
    async fn pending(&self, n: u32) -> Result<Vec<OutboxRecord>, StoreError> {
        let sql = "SELECT id, event_id, topic, msg_key, payload, created_at, traceparent \
                   FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT ?";
        let kinds = [
            Kind::Int,
            Kind::Uuid,
            Kind::Text,
            Kind::Text,
            Kind::Text,
            Kind::Ts,
            Kind::Text,
        ];
        let rows = self.fetch(sql, vec![limit(n)], &kinds).await?;
        rows.iter()
            .map(|r| {
                Ok(OutboxRecord {
                    id: int(r, 0)?,
                    message: OutboxMessage {
                        event_id: EventId::from_uuid(uuid(r, 1)?).map_err(corrupt)?,
                        topic: text(r, 2)?.to_owned(),
                        key: text(r, 3)?.to_owned(),
                        payload: text(r, 4)?.to_owned(),
                        created_at: ts(r, 5)?,
                        traceparent: match r.get(6) {
                            Some(Cell::Text(t)) => Some(t.clone()),
                            _ => None,
                        },
                    },
                })
            })
            .collect()
    }

    async fn mark_sent(&self, ids: &[i64]) -> Result<u64, StoreError> {
        let now = chrono::Utc::now();
        let statements: Vec<(String, Vec<Val>)> = ids
            .chunks(1_000)
            .map(|chunk| {
                let sql = format!(
                    "UPDATE outbox SET sent_at = ? WHERE sent_at IS NULL AND id IN ({})",
                    marks(chunk.len())
                );
                let mut args = vec![Val::Ts(now)];
                args.extend(chunk.iter().map(|id| Val::Int(*id)));
                (sql, args)
            })
            .collect();
        if statements.is_empty() {
            return Ok(0);
        }
        self.exec_each(&statements).await
    }

    async fn pending_count(&self) -> Result<u64, StoreError> {
        let sql = "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL";
        let rows = self.fetch(sql, Vec::new(), &[Kind::Int]).await?;
        rows.first().map_or(Ok(0), |r| uint(r, 0))
    }

    async fn purge_sent(
        &self,
        sent_before: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError> {
        // Below the oldest unsent row only (found through the pending index),
        // so the delete walks the primary key and never touches the queue.
        let sql = "SELECT id FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT 1";
        let rows = self.fetch(sql, Vec::new(), &[Kind::Int]).await?;
        let below = match rows.first() {
            Some(r) => int(r, 0)?,
            None => i64::MAX,
        };
        let delete = "DELETE FROM outbox WHERE id < ? AND sent_at IS NOT NULL AND sent_at < ?";
        self.exec_each(&[(
            delete.to_owned(),
            vec![Val::Int(below), Val::Ts(sent_before)],
        )])
        .await
    }
}

/// The spellings of "canceled" an operator may write into `orders.status`.
const OPERATOR_CANCELED: [&str; 6] = [
    "cancelled",
    "canceled",
    "CANCELLED",
    "CANCELED",
    "Cancelled",
    "Canceled",
];
