//! `backfill orders|fills` end to end, on every backend: a file of good and
//! bad rows imports the good ones, the rejects file names the bad ones by line
//! and reason, a re-run changes nothing, a dry run writes nothing, and the
//! imported rows leave the same accounts, positions and orders as the same
//! history fed through the engine into a twin database — and the event log
//! replays to the projections.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use ordermon::backfill::import::{ImportContext, ImportKind, ImportOptions, ImportSummary, import};
use ordermon::backfill::progress::Progress;
use ordermon_application::committer::CommitConfig;
use ordermon_application::market::QuoteBook;
use ordermon_application::persistence::Persistence;
use ordermon_application::{CreateUser, Engine, EngineConfig, VenueMode};
use ordermon_domain::Decimal;
use ordermon_domain::account::Account;
use ordermon_domain::event::{AggregateType, EventPayload, position_aggregate_id};
use ordermon_domain::fill::LiquiditySide;
use ordermon_domain::ids::{ClientOrderId, InstrumentId, TradeId, UserId};
use ordermon_domain::instrument::Instrument;
use ordermon_domain::order::{NewOrder, Order, OrderType, Side, TimeInForce};
use ordermon_domain::ports::{ExecutionReport, ExecutionReportKind, OrderQuery, SystemClock};
use ordermon_domain::position::Position;
use ordermon_domain::risk::RiskParams;
use ordermon_domain::values::{Currency, Money, Price, Quantity};
use ordermon_tests::{Backend, TestStore, provision};
use tokio_util::sync::CancellationToken;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn usd() -> Currency {
    Currency::new("USD").unwrap()
}

fn acme() -> InstrumentId {
    InstrumentId::new("ACME.SIM").unwrap()
}

fn persistence(t: &TestStore) -> Persistence {
    t.persistence()
}

async fn engine(p: Persistence) -> Arc<Engine> {
    Engine::start(
        p,
        Arc::new(QuoteBook::new(1024)),
        Arc::new(SystemClock),
        EngineConfig {
            venue_mode: VenueMode::External,
            ..EngineConfig::default()
        },
        CommitConfig::default(),
        CancellationToken::new(),
    )
    .await
    .unwrap()
}

/// Users alice (100,000 USD) and bob (50,000 USD), instrument ACME.SIM.
async fn reference_data(engine: &Engine) {
    engine
        .instruments
        .upsert(Instrument {
            id: acme(),
            quote_currency: usd(),
            tick_size: Price::new(d("0.01")).unwrap(),
            lot_size: Quantity::new(d("1")).unwrap(),
            min_quantity: Quantity::new(d("1")).unwrap(),
            max_quantity: None,
            min_notional: None,
            multiplier: Decimal::ONE,
            version: 0,
        })
        .await
        .unwrap();
    for (id, cash) in [("alice", "100000"), ("bob", "50000")] {
        let user = UserId::new(id).unwrap();
        engine
            .users
            .create(CreateUser {
                id: user.clone(),
                name: id.to_owned(),
                status: Default::default(),
                role: Default::default(),
                account_type: Default::default(),
                limits: Default::default(),
            })
            .await
            .unwrap();
        engine
            .accounts
            .adjust_cash(&user, Money::new(d(cash), usd()).unwrap(), "deposit".into())
            .await
            .unwrap();
    }
}

const ORDER_HEADER: &[&str] = &[
    "user_id",
    "client_order_id",
    "instrument_id",
    "side",
    "type",
    "quantity",
    "price",
    "time_in_force",
    "status",
    "reason",
    "created_at",
    "updated_at",
];

/// Order rows and, for the bad ones, a fragment of the expected reason.
const ORDER_ROWS: &[(&[&str], Option<&str>)] = &[
    (
        &[
            "alice",
            "a-1",
            "ACME.SIM",
            "buy",
            "limit",
            "100",
            "10.00",
            "gtc",
            "filled",
            "",
            "2026-01-05T09:30:00Z",
            "",
        ],
        None,
    ),
    (
        &[
            "alice",
            "a-2",
            "ACME.SIM",
            "buy",
            "limit",
            "50",
            "10.50",
            "gtc",
            "partially_filled",
            "",
            "2026-01-05T09:31:00Z",
            "",
        ],
        None,
    ),
    (
        &[
            "alice",
            "a-3",
            "ACME.SIM",
            "sell",
            "limit",
            "40",
            "11.00",
            "gtc",
            "canceled",
            "",
            "2026-01-05T09:32:00Z",
            "2026-01-05T10:00:00Z",
        ],
        None,
    ),
    (
        &[
            "bob",
            "b-1",
            "ACME.SIM",
            "buy",
            "limit",
            "20",
            "9.90",
            "gtc",
            "accepted",
            "",
            "2026-01-05T09:33:00Z",
            "",
        ],
        None,
    ),
    (
        &[
            "bob",
            "b-2",
            "ACME.SIM",
            "buy",
            "limit",
            "10",
            "9.80",
            "gtc",
            "rejected",
            "price band",
            "2026-01-05T09:34:00Z",
            "2026-01-05T09:34:01Z",
        ],
        None,
    ),
    (
        &[
            "carol",
            "c-1",
            "ACME.SIM",
            "buy",
            "limit",
            "10",
            "10.00",
            "gtc",
            "accepted",
            "",
            "2026-01-05T09:35:00Z",
            "",
        ],
        Some("user_id: unknown user"),
    ),
    (
        &[
            "alice",
            "a-4",
            "NOPE.SIM",
            "buy",
            "limit",
            "10",
            "10.00",
            "gtc",
            "accepted",
            "",
            "2026-01-05T09:35:00Z",
            "",
        ],
        Some("instrument_id: unknown instrument"),
    ),
    (
        &[
            "alice",
            "a-5",
            "ACME.SIM",
            "buy",
            "limit",
            "10",
            "10.001",
            "gtc",
            "accepted",
            "",
            "2026-01-05T09:35:00Z",
            "",
        ],
        Some("price: price 10.001 is not a multiple of tick size 0.01"),
    ),
    (
        &[
            "alice",
            "a-6",
            "ACME.SIM",
            "buy",
            "limit",
            "1.5",
            "10.00",
            "gtc",
            "accepted",
            "",
            "2026-01-05T09:35:00Z",
            "",
        ],
        Some("quantity: quantity 1.5 is not a multiple of lot size 1"),
    ),
    (
        &[
            "alice",
            "a-7",
            "ACME.SIM",
            "buy",
            "limit",
            "10",
            "1e1",
            "gtc",
            "accepted",
            "",
            "2026-01-05T09:35:00Z",
            "",
        ],
        Some("price: not a decimal number"),
    ),
    (
        &[
            "alice",
            "a-1",
            "ACME.SIM",
            "buy",
            "limit",
            "999",
            "10.00",
            "gtc",
            "filled",
            "",
            "2026-01-05T09:30:00Z",
            "",
        ],
        Some("client_order_id: a-1 was already used with a different order"),
    ),
    (
        &[
            "bob",
            "b-3",
            "ACME.SIM",
            "buy",
            "limit",
            "100000",
            "10.00",
            "gtc",
            "accepted",
            "",
            "2026-01-05T09:35:00Z",
            "",
        ],
        Some("insufficient_funds"),
    ),
    (
        &[
            "alice",
            "a-8",
            "ACME.SIM",
            "buy",
            "limit",
            "10",
            "10.00",
            "gtc",
            "submitted",
            "",
            "2026-01-05T09:35:00Z",
            "",
        ],
        Some("status: submitted orders cannot be imported"),
    ),
    (
        &[
            "bob",
            "b-4",
            "ACME.SIM",
            "buy",
            "limit",
            "10",
            "9.00",
            "gtc",
            "triggered",
            "",
            "2026-01-05T09:35:00Z",
            "",
        ],
        Some("status: order in status accepted cannot take event triggered"),
    ),
    (
        &[
            "alice",
            "a-9",
            "ACME.SIM",
            "buy",
            "market",
            "10",
            "10.00",
            "gtc",
            "filled",
            "",
            "2026-01-05T09:35:00Z",
            "",
        ],
        Some("market orders must not have a price"),
    ),
    // Same body again: already there, skipped.
    (
        &[
            "bob",
            "b-1",
            "ACME.SIM",
            "buy",
            "limit",
            "20",
            "9.90",
            "gtc",
            "accepted",
            "",
            "2026-01-05T09:33:00Z",
            "",
        ],
        None,
    ),
];

const FILL_HEADER: &[&str] = &[
    "user_id",
    "client_order_id",
    "trade_id",
    "quantity",
    "price",
    "commission",
    "liquidity_side",
    "ts_event",
];

const FILL_ROWS: &[(&[&str], Option<&str>)] = &[
    (
        &[
            "alice",
            "a-1",
            "t1",
            "60",
            "9.99",
            "0.60",
            "maker",
            "2026-01-05T09:35:00Z",
        ],
        None,
    ),
    (
        &[
            "alice",
            "a-1",
            "t2",
            "40",
            "10.00",
            "0.40",
            "taker",
            "2026-01-05T09:36:00Z",
        ],
        None,
    ),
    (
        &[
            "alice",
            "a-2",
            "t3",
            "20",
            "10.50",
            "0.21",
            "",
            "2026-01-05T09:37:00Z",
        ],
        None,
    ),
    (
        &[
            "alice",
            "a-3",
            "t4",
            "15",
            "11.00",
            "0.15",
            "",
            "2026-01-05T09:38:00Z",
        ],
        None,
    ),
    // The same trade again: skipped.
    (
        &[
            "alice",
            "a-1",
            "t1",
            "60",
            "9.99",
            "0.60",
            "maker",
            "2026-01-05T09:35:00Z",
        ],
        None,
    ),
    (
        &[
            "alice",
            "zz",
            "t5",
            "1",
            "10.00",
            "",
            "",
            "2026-01-05T09:39:00Z",
        ],
        Some("order: unknown order"),
    ),
    (
        &[
            "bob",
            "a-1",
            "t6",
            "1",
            "10.00",
            "",
            "",
            "2026-01-05T09:39:00Z",
        ],
        Some("order: unknown order"),
    ),
    (
        &[
            "alice",
            "a-2",
            "t7",
            "31",
            "10.50",
            "",
            "",
            "2026-01-05T09:39:00Z",
        ],
        Some("overfill"),
    ),
    (
        &[
            "bob",
            "b-2",
            "t8",
            "1",
            "9.80",
            "",
            "",
            "2026-01-05T09:39:00Z",
        ],
        Some("order in status rejected cannot take event filled"),
    ),
    (
        &[
            "alice",
            "a-2",
            "t9",
            "0",
            "10.50",
            "",
            "",
            "2026-01-05T09:39:00Z",
        ],
        Some("quantity: fill quantity must be positive"),
    ),
    (
        &[
            "",
            "a-2",
            "t10",
            "1",
            "10.50",
            "",
            "",
            "2026-01-05T09:39:00Z",
        ],
        Some("user_id: required with client_order_id"),
    ),
    (
        &[
            "alice",
            "a-2",
            "t11",
            "1",
            "10.50",
            "",
            "sideways",
            "2026-01-05T09:39:00Z",
        ],
        Some("liquidity_side: unknown variant"),
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fmt {
    Csv,
    Jsonl,
}

struct Files {
    dir: PathBuf,
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes the rows in `fmt`, plus one row only that format can get wrong;
/// returns the path and each row's line number.
fn write(
    dir: &Path,
    name: &str,
    fmt: Fmt,
    header: &[&str],
    rows: &[(&[&str], Option<&str>)],
) -> (PathBuf, Vec<u64>) {
    let mut text = String::new();
    let mut lines = Vec::new();
    let mut line = 0;
    match fmt {
        Fmt::Csv => {
            text.push_str(&header.join(","));
            text.push('\n');
            line += 1;
            for (row, _) in rows {
                line += 1;
                lines.push(line);
                text.push_str(&row.join(","));
                text.push('\n');
            }
            // A row with a field too few.
            text.push_str(
                &header[..header.len() - 1]
                    .iter()
                    .map(|_| "x")
                    .collect::<Vec<_>>()
                    .join(","),
            );
            text.push('\n');
        }
        Fmt::Jsonl => {
            for (row, _) in rows {
                line += 1;
                lines.push(line);
                let object: serde_json::Map<String, serde_json::Value> = header
                    .iter()
                    .zip(row.iter())
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String((*v).to_owned())))
                    .collect();
                text.push_str(&serde_json::to_string(&object).unwrap());
                text.push('\n');
                // Blank lines are not rows.
                if line == 3 {
                    text.push('\n');
                    line += 1;
                }
            }
            // A decimal as a JSON number.
            text.push_str("{\"quantity\":10}\n");
        }
    }
    lines.push(line + 1);
    let ext = if fmt == Fmt::Csv { "csv" } else { "jsonl" };
    let path = dir.join(format!("{name}.{ext}"));
    std::fs::write(&path, text).unwrap();
    (path, lines)
}

fn files() -> Files {
    let dir = std::env::temp_dir().join(format!(
        "ordermon-backfill-{}",
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    Files { dir }
}

/// `(line, reason)` of every row in a rejects file.
fn rejects_of(path: &Path, fmt: Fmt) -> Vec<(u64, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    match fmt {
        Fmt::Csv => {
            let mut r = csv::ReaderBuilder::new()
                .flexible(true)
                .from_reader(text.as_bytes());
            let header = r.headers().unwrap().clone();
            assert_eq!(&header[0], "reject_line");
            assert_eq!(&header[1], "reject_reason");
            r.records()
                .map(|rec| {
                    let rec = rec.unwrap();
                    (rec[0].parse().unwrap(), rec[1].to_owned())
                })
                .collect()
        }
        Fmt::Jsonl => text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["reject_line"].as_u64().unwrap(),
                    v["reject_reason"].as_str().unwrap().to_owned(),
                )
            })
            .collect(),
    }
}

/// Checks the rejects file against the expectations of `rows`.
fn check_rejects(path: &Path, fmt: Fmt, rows: &[(&[&str], Option<&str>)], lines: &[u64]) {
    let got = rejects_of(path, fmt);
    let mut want: Vec<(u64, &str)> = rows
        .iter()
        .zip(lines)
        .filter_map(|((_, reason), line)| reason.map(|r| (*line, r)))
        .collect();
    let last = *lines.last().unwrap();
    want.push((
        last,
        if fmt == Fmt::Csv {
            "fields as in the header"
        } else {
            "must be a string"
        },
    ));
    assert_eq!(got.len(), want.len(), "rejects: {got:#?}");
    for ((line, reason), (want_line, fragment)) in got.iter().zip(&want) {
        assert_eq!(line, want_line, "{reason}");
        assert!(
            reason.contains(fragment),
            "line {line}: {reason:?} lacks {fragment:?}"
        );
    }
}

async fn run(
    kind: ImportKind,
    path: &Path,
    ctx: &ImportContext,
    dry_run: bool,
    batch_size: usize,
) -> ImportSummary {
    let opts = ImportOptions {
        rejects: None,
        dry_run,
        batch_size,
        publish: false,
    };
    run_with(kind, path, ctx, &opts).await
}

async fn run_with(
    kind: ImportKind,
    path: &Path,
    ctx: &ImportContext,
    opts: &ImportOptions,
) -> ImportSummary {
    import(kind, path, opts, ctx, &Progress::hidden("test"))
        .await
        .unwrap()
}

async fn event_count(p: &Persistence) -> usize {
    p.events.events_after(0, None, 10_000).await.unwrap().len()
}

/// Feeds the same history through the engine (external venue: every report scripted).
async fn through_engine(engine: &Engine) {
    let alice = UserId::new("alice").unwrap();
    let bob = UserId::new("bob").unwrap();
    let new = |user: &UserId, cid: &str, side: Side, qty: &str, px: &str| NewOrder {
        client_order_id: ClientOrderId::new(cid).unwrap(),
        user_id: user.clone(),
        strategy_id: None,
        instrument_id: acme(),
        side,
        order_type: OrderType::Limit,
        quantity: Quantity::new(d(qty)).unwrap(),
        price: Some(Price::new(d(px)).unwrap()),
        trigger_price: None,
        time_in_force: TimeInForce::Gtc,
        expire_at: None,
        reduce_only: false,
        post_only: false,
    };
    let report = |user: &UserId, order: &Order, kind: ExecutionReportKind| ExecutionReport {
        order_id: order.id,
        user_id: user.clone(),
        kind,
        ts_event: chrono::Utc::now(),
    };
    let fill = |trade: &str, qty: &str, px: &str, fee: &str, side: LiquiditySide| {
        ExecutionReportKind::Fill {
            trade_id: TradeId::new(trade).unwrap(),
            quantity: Quantity::new(d(qty)).unwrap(),
            price: Price::new(d(px)).unwrap(),
            commission: Money::new(d(fee), usd()).unwrap(),
            liquidity_side: side,
        }
    };
    let accepted = ExecutionReportKind::Accepted {
        venue_order_id: None,
    };
    let a1 = engine
        .orders
        .submit(new(&alice, "a-1", Side::Buy, "100", "10.00"))
        .await
        .unwrap()
        .order;
    engine
        .orders
        .execution_report(report(&alice, &a1, accepted.clone()))
        .await
        .unwrap();
    engine
        .orders
        .execution_report(report(
            &alice,
            &a1,
            fill("t1", "60", "9.99", "0.60", LiquiditySide::Maker),
        ))
        .await
        .unwrap();
    engine
        .orders
        .execution_report(report(
            &alice,
            &a1,
            fill("t2", "40", "10.00", "0.40", LiquiditySide::Taker),
        ))
        .await
        .unwrap();
    let a2 = engine
        .orders
        .submit(new(&alice, "a-2", Side::Buy, "50", "10.50"))
        .await
        .unwrap()
        .order;
    engine
        .orders
        .execution_report(report(&alice, &a2, accepted.clone()))
        .await
        .unwrap();
    engine
        .orders
        .execution_report(report(
            &alice,
            &a2,
            fill("t3", "20", "10.50", "0.21", LiquiditySide::None),
        ))
        .await
        .unwrap();
    let a3 = engine
        .orders
        .submit(new(&alice, "a-3", Side::Sell, "40", "11.00"))
        .await
        .unwrap()
        .order;
    engine
        .orders
        .execution_report(report(&alice, &a3, accepted.clone()))
        .await
        .unwrap();
    engine
        .orders
        .execution_report(report(
            &alice,
            &a3,
            fill("t4", "15", "11.00", "0.15", LiquiditySide::None),
        ))
        .await
        .unwrap();
    engine
        .orders
        .execution_report(report(&alice, &a3, ExecutionReportKind::Canceled))
        .await
        .unwrap();
    let b1 = engine
        .orders
        .submit(new(&bob, "b-1", Side::Buy, "20", "9.90"))
        .await
        .unwrap()
        .order;
    engine
        .orders
        .execution_report(report(&bob, &b1, accepted.clone()))
        .await
        .unwrap();
    let b2 = engine
        .orders
        .submit(new(&bob, "b-2", Side::Buy, "10", "9.80"))
        .await
        .unwrap()
        .order;
    engine
        .orders
        .execution_report(report(
            &bob,
            &b2,
            ExecutionReportKind::Rejected {
                reason: "price band".into(),
            },
        ))
        .await
        .unwrap();
}

/// A position as compared: instrument, quantity, cost, realized, commissions.
type PositionRow = (String, Decimal, Decimal, Decimal, Decimal);

/// What must agree between the imported and the engine-fed database.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    balances: BTreeMap<String, Vec<(String, Decimal, Decimal)>>,
    reservations: BTreeMap<String, Vec<(String, Decimal)>>,
    positions: BTreeMap<String, Vec<PositionRow>>,
    orders: BTreeMap<String, (String, Decimal, Option<Decimal>, Decimal)>,
    fills: usize,
}

async fn outcome(p: &Persistence) -> Outcome {
    let mut out = Outcome {
        balances: BTreeMap::new(),
        reservations: BTreeMap::new(),
        positions: BTreeMap::new(),
        orders: BTreeMap::new(),
        fills: 0,
    };
    for id in ["alice", "bob"] {
        let user = UserId::new(id).unwrap();
        let account = p.accounts.get_account(&user).await.unwrap().unwrap();
        assert!(account.invariants_hold());
        out.balances.insert(
            id.to_owned(),
            account
                .balances
                .values()
                .map(|b| {
                    (
                        b.currency.to_string(),
                        b.total.normalize(),
                        b.reserved.normalize(),
                    )
                })
                .collect(),
        );
        let orders = p
            .orders
            .list_orders(&OrderQuery {
                user_id: Some(user.clone()),
                limit: 1000,
                ..OrderQuery::default()
            })
            .await
            .unwrap();
        let cid_of = |oid| {
            orders
                .iter()
                .find(|o| o.id == oid)
                .map(|o| o.client_order_id.to_string())
                .unwrap()
        };
        out.reservations.insert(
            id.to_owned(),
            account
                .reservations
                .values()
                .map(|r| (cid_of(r.order_id), r.remaining_qty.normalize()))
                .collect(),
        );
        out.positions.insert(
            id.to_owned(),
            p.positions
                .list_positions(&user)
                .await
                .unwrap()
                .iter()
                .map(|pos| {
                    (
                        pos.instrument_id.to_string(),
                        pos.quantity.normalize(),
                        pos.cost.normalize(),
                        pos.realized_pnl.normalize(),
                        pos.commissions.normalize(),
                    )
                })
                .collect(),
        );
        for o in &orders {
            out.orders.insert(
                format!("{id}/{}", o.client_order_id),
                (
                    o.status.to_string(),
                    o.filled_qty.get().normalize(),
                    o.avg_px.map(|p| p.normalize()),
                    o.leaves_qty().get().normalize(),
                ),
            );
        }
        out.fills += p
            .fills
            .list_fills(&ordermon_domain::ports::FillQuery {
                user_id: Some(user.clone()),
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
            .len();
    }
    out
}

/// The event log rebuilds every account, position and order it holds.
async fn replay_agrees(p: &Persistence) {
    for id in ["alice", "bob"] {
        let user = UserId::new(id).unwrap();
        let stored = p.accounts.get_account(&user).await.unwrap().unwrap();
        let events = p
            .events
            .aggregate_events(AggregateType::Account, id)
            .await
            .unwrap();
        let payloads: Vec<_> = events
            .iter()
            .filter_map(|e| match &e.event.payload {
                EventPayload::Account(a) => Some(a.clone()),
                _ => None,
            })
            .collect();
        let mut replayed = Account::replay(&user, payloads.iter()).unwrap();
        replayed.version = stored.version;
        assert_eq!(replayed.balances, stored.balances, "{id}'s balances");
        assert_eq!(
            replayed.reservations, stored.reservations,
            "{id}'s reservations"
        );
        assert_eq!(
            replayed.position_holds, stored.position_holds,
            "{id}'s position holds"
        );
        assert_eq!(replayed.sequence, stored.sequence);

        for pos in p.positions.list_positions(&user).await.unwrap() {
            let agg = position_aggregate_id(&user, &pos.instrument_id);
            let events = p
                .events
                .aggregate_events(AggregateType::Position, &agg)
                .await
                .unwrap();
            let start = Position::flat(
                user.clone(),
                pos.instrument_id.clone(),
                pos.quote_currency.clone(),
                pos.multiplier,
                events.first().unwrap().event.occurred_at,
            );
            let steps: Vec<_> = events
                .iter()
                .filter_map(|e| match &e.event.payload {
                    EventPayload::Position(pe) => Some((pe.clone(), e.event.occurred_at)),
                    _ => None,
                })
                .collect();
            let mut replayed = Position::replay(start, steps.iter().map(|(e, at)| (e, *at)));
            replayed.version = pos.version;
            assert_eq!(replayed, pos, "{agg}");
        }
        let orders = p
            .orders
            .list_orders(&OrderQuery {
                user_id: Some(user.clone()),
                limit: 1000,
                ..OrderQuery::default()
            })
            .await
            .unwrap();
        for o in orders {
            let events = p
                .events
                .aggregate_events(AggregateType::Order, &o.id.to_string())
                .await
                .unwrap();
            let timed: Vec<_> = events
                .iter()
                .filter_map(|e| match &e.event.payload {
                    EventPayload::Order(oe) => Some(ordermon_domain::order::TimedOrderEvent {
                        at: e.event.occurred_at,
                        event: oe.clone(),
                    }),
                    _ => None,
                })
                .collect();
            let mut replayed = Order::replay(timed.iter()).unwrap();
            replayed.version = o.version;
            assert_eq!(replayed, o, "order {}", o.client_order_id);
        }
    }
}

async fn stores(backend: Backend) -> Option<(TestStore, TestStore)> {
    let a = provision(backend).await?;
    let b = provision(backend).await?;
    Some((a, b))
}

/// Good and bad rows, re-run, and the twin comparison, in one format.
async fn import_matches_the_engine(backend: Backend, fmt: Fmt) {
    let Some((imported, twin)) = stores(backend).await else {
        return;
    };
    let files = files();
    let (p, q) = (persistence(&imported), persistence(&twin));
    let setup = engine(p.clone()).await;
    reference_data(&setup).await;
    setup.shutdown().await;
    let fed = engine(q.clone()).await;
    reference_data(&fed).await;
    through_engine(&fed).await;
    fed.shutdown().await;

    let ctx = ImportContext::new(p.clone(), RiskParams::default());
    let (orders, order_lines) = write(&files.dir, "orders", fmt, ORDER_HEADER, ORDER_ROWS);
    let (fills, fill_lines) = write(&files.dir, "fills", fmt, FILL_HEADER, FILL_ROWS);
    let queued = p.outbox.pending_count().await.unwrap();
    // Small batches: rows of one order span batches and commits overlap.
    let s = run(ImportKind::Orders, &orders, &ctx, false, 3).await;
    // By default the imported events go to the log only, not to the bus.
    assert_eq!(p.outbox.pending_count().await.unwrap(), queued);
    let logged = event_count(&p).await;
    let bad_orders = ORDER_ROWS.iter().filter(|r| r.1.is_some()).count() as u64 + 1;
    assert_eq!(
        (s.read, s.written, s.skipped, s.rejected),
        (ORDER_ROWS.len() as u64 + 1, 5, 1, bad_orders),
        "{s}"
    );
    let rejects = s.rejects.clone().unwrap();
    check_rejects(&rejects, fmt, ORDER_ROWS, &order_lines);
    let publish = ImportOptions {
        batch_size: 2,
        publish: true,
        ..ImportOptions::default()
    };
    let s = run_with(ImportKind::Fills, &fills, &ctx, &publish).await;
    // With --publish, every event the fills logged is queued for the relay.
    let published = event_count(&p).await - logged;
    assert!(published >= 12, "{published} events for 4 fills");
    assert_eq!(
        p.outbox.pending_count().await.unwrap(),
        queued + published as u64
    );
    let bad_fills = FILL_ROWS.iter().filter(|r| r.1.is_some()).count() as u64 + 1;
    assert_eq!(
        (s.read, s.written, s.skipped, s.rejected),
        (FILL_ROWS.len() as u64 + 1, 4, 1, bad_fills),
        "{s}"
    );
    check_rejects(&s.rejects.clone().unwrap(), fmt, FILL_ROWS, &fill_lines);

    let got = outcome(&p).await;
    assert_eq!(got, outcome(&q).await);
    assert_eq!(got.fills, 4);
    assert_eq!(got.orders["alice/a-1"].0, "filled");
    assert_eq!(got.orders["alice/a-2"].0, "partially_filled");
    assert_eq!(got.orders["alice/a-3"].0, "canceled");
    replay_agrees(&p).await;

    // A re-run skips everything it wrote and changes nothing.
    let events = event_count(&p).await;
    let s = run(ImportKind::Orders, &orders, &ctx, false, 1000).await;
    assert_eq!(
        (s.written, s.skipped, s.rejected),
        (0, 6, bad_orders),
        "{s}"
    );
    let s = run(ImportKind::Fills, &fills, &ctx, false, 1000).await;
    assert_eq!((s.written, s.skipped, s.rejected), (0, 5, bad_fills), "{s}");
    assert_eq!(event_count(&p).await, events);
    assert_eq!(outcome(&p).await, got);
}

/// A dry run checks every row and writes the rejects file, and nothing else.
async fn dry_run_changes_nothing(backend: Backend) {
    let Some(t) = provision(backend).await else {
        return;
    };
    let files = files();
    let p = persistence(&t);
    let setup = engine(p.clone()).await;
    reference_data(&setup).await;
    setup.shutdown().await;
    let before = (event_count(&p).await, outcome(&p).await);

    let ctx = ImportContext::new(p.clone(), RiskParams::default());
    let (orders, lines) = write(&files.dir, "orders", Fmt::Csv, ORDER_HEADER, ORDER_ROWS);
    let bad = ORDER_ROWS.iter().filter(|r| r.1.is_some()).count() as u64 + 1;
    let s = run(ImportKind::Orders, &orders, &ctx, true, 4).await;
    assert!(s.dry_run);
    assert_eq!((s.written, s.skipped, s.rejected), (5, 1, bad), "{s}");
    check_rejects(&s.rejects.clone().unwrap(), Fmt::Csv, ORDER_ROWS, &lines);
    assert_eq!((event_count(&p).await, outcome(&p).await), before);
    let outbox = p.outbox.pending_count().await.unwrap();
    // Only the setup's events are waiting to be relayed.
    assert_eq!(outbox, before.0 as u64);
}

/// Errors that stop an import: an unknown extension, an unreadable file, a bad header.
async fn file_errors(backend: Backend) {
    let Some(t) = provision(backend).await else {
        return;
    };
    let files = files();
    let ctx = ImportContext::new(persistence(&t), RiskParams::default());
    let opts = ImportOptions::default();
    let progress = Progress::hidden("test");
    let json = files.dir.join("orders.json");
    std::fs::write(&json, "{}").unwrap();
    let e = import(ImportKind::Orders, &json, &opts, &ctx, &progress)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("use .csv or .jsonl"), "{e}");
    let missing = files.dir.join("missing.csv");
    let e = import(ImportKind::Orders, &missing, &opts, &ctx, &progress)
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("cannot open"), "{e}");
    let bad = files.dir.join("fills.csv");
    std::fs::write(&bad, "trade_id,qty\n").unwrap();
    let e = import(ImportKind::Fills, &bad, &opts, &ctx, &progress)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("unknown column(s) \"qty\""), "{e}");
    let same = ImportOptions {
        rejects: Some(bad.clone()),
        ..ImportOptions::default()
    };
    std::fs::write(&bad, "trade_id,quantity,price,ts_event,order_id\n").unwrap();
    let e = import(ImportKind::Fills, &bad, &same, &ctx, &progress)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("input file"), "{e}");
    // An empty JSONL file is no error: nothing to import.
    let empty = files.dir.join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let s = import(ImportKind::Fills, &empty, &opts, &ctx, &progress)
        .await
        .unwrap();
    assert_eq!((s.read, s.written, s.rejects), (0, 0, None));
}

macro_rules! backend_suite {
    ($name:ident, $backend:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn csv_import_matches_the_engine() {
                import_matches_the_engine($backend, Fmt::Csv).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn jsonl_import_matches_the_engine() {
                import_matches_the_engine($backend, Fmt::Jsonl).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dry_run() {
                dry_run_changes_nothing($backend).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn errors() {
                file_errors($backend).await;
            }
        }
    };
}

backend_suite!(memory, Backend::Memory);
backend_suite!(sqlite, Backend::Sqlite);
backend_suite!(postgres, Backend::Postgres);
backend_suite!(mysql, Backend::MySql);
