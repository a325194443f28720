//! Shared setup for the application's tests: an engine over the in-memory store.

#![allow(dead_code)]

use std::str::FromStr;
use std::sync::Arc;

use chrono::Utc;
use ordermon_application::committer::CommitConfig;
use ordermon_application::market::QuoteBook;
use ordermon_application::persistence::Persistence;
use ordermon_application::{CreateUser, Engine, EngineConfig, VenueMode};
use ordermon_domain::Decimal;
use ordermon_domain::fill::LiquiditySide;
use ordermon_domain::ids::{ClientOrderId, InstrumentId, OrderId, TradeId, UserId};
use ordermon_domain::instrument::Instrument;
use ordermon_domain::order::{NewOrder, OrderType, Side, TimeInForce};
use ordermon_domain::ports::{ExecutionReport, ExecutionReportKind, SystemClock};
use ordermon_domain::values::{Currency, Money, Price, Quantity};
use ordermon_memory::MemoryStore;
use tokio_util::sync::CancellationToken;

pub(crate) fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

pub(crate) fn usd() -> Currency {
    Currency::new("USD").unwrap()
}

pub(crate) fn acme() -> InstrumentId {
    InstrumentId::new("ACME.SIM").unwrap()
}

pub(crate) struct Harness {
    pub(crate) engine: Arc<Engine>,
    pub(crate) store: Arc<MemoryStore>,
}

pub(crate) async fn engine(mode: VenueMode) -> Harness {
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::start(
        Persistence::from_backend(store.clone()),
        Arc::new(QuoteBook::new(1024)),
        Arc::new(SystemClock),
        EngineConfig {
            venue_mode: mode,
            ..EngineConfig::default()
        },
        CommitConfig::default(),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let h = Harness { engine, store };
    add_acme(&h).await;
    h
}

pub(crate) async fn add_acme(h: &Harness) {
    h.engine
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
}

pub(crate) async fn funded_user(h: &Harness, id: &str, cash: &str) -> UserId {
    let user = UserId::new(id).unwrap();
    h.engine
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
    h.engine
        .accounts
        .adjust_cash(
            &user,
            Money::new(d(cash), usd()).unwrap(),
            "initial deposit".to_owned(),
        )
        .await
        .unwrap();
    user
}

pub(crate) fn limit(user: &UserId, cid: &str, side: Side, qty: &str, px: &str) -> NewOrder {
    NewOrder {
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
    }
}

pub(crate) fn report(user: &UserId, order: OrderId, kind: ExecutionReportKind) -> ExecutionReport {
    ExecutionReport {
        order_id: order,
        user_id: user.clone(),
        kind,
        ts_event: Utc::now(),
    }
}

pub(crate) fn fill(trade: &str, qty: &str, px: &str, fee: &str) -> ExecutionReportKind {
    ExecutionReportKind::Fill {
        trade_id: TradeId::new(trade).unwrap(),
        quantity: Quantity::new(d(qty)).unwrap(),
        price: Price::new(d(px)).unwrap(),
        commission: Money::new(d(fee), usd()).unwrap(),
        liquidity_side: LiquiditySide::Taker,
    }
}
