//! Read models: the owner's consistent snapshot of a user, and what the API
//! returns from it (account, balances, positions, portfolio).

use chrono::{DateTime, Utc};
use ordermon_domain::Decimal;
use ordermon_domain::account::{Account, AccountType};
use ordermon_domain::ids::{InstrumentId, UserId};
use ordermon_domain::order::Order;
use ordermon_domain::position::{Position, PositionSide};
use ordermon_domain::risk::TradingState;
use ordermon_domain::user::User;
use ordermon_domain::values::{Currency, Price, decimal_string, opt_decimal_string};
use serde::Serialize;

use crate::market::QuoteBook;

/// A consistent view of a user's state, taken by the owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The user.
    pub user: User,
    /// The account.
    pub account: Account,
    /// Every position (open and flat).
    pub positions: Vec<Position>,
    /// Open orders.
    pub open_orders: Vec<Order>,
    /// Realized PnL today.
    pub day_realized: Decimal,
}

/// One currency of an account, valued at the latest marks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BalanceView {
    /// Currency.
    pub currency: Currency,
    /// Cash held.
    #[serde(with = "decimal_string")]
    pub total: Decimal,
    /// Cash held back for open orders.
    #[serde(with = "decimal_string")]
    pub reserved: Decimal,
    /// `total - reserved`.
    #[serde(with = "decimal_string")]
    pub free: Decimal,
    /// Signed market value of positions quoted in this currency.
    #[serde(with = "decimal_string")]
    pub market_value: Decimal,
    /// Gross exposure (sum of absolute market values).
    #[serde(with = "decimal_string")]
    pub exposure: Decimal,
    /// `total + market_value`.
    #[serde(with = "decimal_string")]
    pub equity: Decimal,
    /// Realized PnL of positions in this currency (net of commissions).
    #[serde(with = "decimal_string")]
    pub realized_pnl: Decimal,
    /// Unrealized PnL at the latest marks.
    #[serde(with = "decimal_string")]
    pub unrealized_pnl: Decimal,
}

/// `GET /api/v1/account`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountView {
    /// Owner.
    pub user_id: UserId,
    /// Cash or margin.
    pub account_type: AccountType,
    /// The user's own kill switch.
    pub trading_state: TradingState,
    /// Per currency.
    pub balances: Vec<BalanceView>,
    /// Open orders.
    pub open_orders: usize,
    /// Realized PnL since midnight UTC.
    #[serde(with = "decimal_string")]
    pub realized_pnl_today: Decimal,
    /// Highest equity seen in the account's first currency.
    #[serde(with = "decimal_string")]
    pub high_water_mark: Decimal,
    /// `high_water_mark - equity` in that currency.
    #[serde(with = "decimal_string")]
    pub drawdown: Decimal,
}

/// One position valued at the latest mark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PositionView {
    /// Instrument.
    pub instrument_id: InstrumentId,
    /// Long, short or flat.
    pub side: PositionSide,
    /// Signed quantity.
    #[serde(with = "decimal_string")]
    pub quantity: Decimal,
    /// Average open price.
    #[serde(with = "opt_decimal_string")]
    pub avg_open_price: Option<Decimal>,
    /// Mark used.
    pub mark: Option<Price>,
    /// Signed market value.
    #[serde(with = "decimal_string")]
    pub market_value: Decimal,
    /// Realized PnL (net of commissions).
    #[serde(with = "decimal_string")]
    pub realized_pnl: Decimal,
    /// Unrealized PnL.
    #[serde(with = "decimal_string")]
    pub unrealized_pnl: Decimal,
    /// Commissions paid.
    #[serde(with = "decimal_string")]
    pub commissions: Decimal,
    /// Quote currency.
    pub currency: Currency,
    /// Opened.
    pub opened_at: Option<DateTime<Utc>>,
    /// Last went flat.
    pub closed_at: Option<DateTime<Utc>>,
}

impl PositionView {
    /// Values a position at the book's latest mark (or its last fill price).
    #[must_use]
    pub fn of(p: &Position, quotes: &QuoteBook) -> Self {
        let mark = quotes.last_price(&p.instrument_id).or(p.last_mark);
        Self {
            instrument_id: p.instrument_id.clone(),
            side: p.side(),
            quantity: p.quantity,
            avg_open_price: p.avg_open_price(),
            mark,
            market_value: p.market_value(mark),
            realized_pnl: p.realized_pnl,
            unrealized_pnl: p.unrealized_pnl(mark),
            commissions: p.commissions,
            currency: p.quote_currency.clone(),
            opened_at: p.opened_at,
            closed_at: p.closed_at,
        }
    }
}

/// `GET /api/v1/portfolio`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortfolioView {
    /// The account summary.
    pub account: AccountView,
    /// Open positions.
    pub positions: Vec<PositionView>,
}

/// Builds the account and portfolio views from an owner snapshot.
#[must_use]
pub fn portfolio(snap: &Snapshot, quotes: &QuoteBook, high_water: Decimal) -> PortfolioView {
    let positions: Vec<PositionView> = snap
        .positions
        .iter()
        .map(|p| PositionView::of(p, quotes))
        .collect();
    let mut balances: Vec<BalanceView> = snap
        .account
        .balances
        .values()
        .map(|b| BalanceView {
            currency: b.currency.clone(),
            total: b.total,
            reserved: b.reserved,
            free: b.free(),
            market_value: Decimal::ZERO,
            exposure: Decimal::ZERO,
            equity: b.total,
            realized_pnl: Decimal::ZERO,
            unrealized_pnl: Decimal::ZERO,
        })
        .collect();
    for p in &positions {
        let idx = match balances.iter().position(|b| b.currency == p.currency) {
            Some(i) => i,
            None => {
                balances.push(BalanceView {
                    currency: p.currency.clone(),
                    total: Decimal::ZERO,
                    reserved: Decimal::ZERO,
                    free: Decimal::ZERO,
                    market_value: Decimal::ZERO,
                    exposure: Decimal::ZERO,
                    equity: Decimal::ZERO,
                    realized_pnl: Decimal::ZERO,
                    unrealized_pnl: Decimal::ZERO,
                });
                balances.len() - 1
            }
        };
        let b = &mut balances[idx];
        b.market_value += p.market_value;
        b.exposure += p.market_value.abs();
        b.equity += p.market_value;
        b.realized_pnl += p.realized_pnl;
        b.unrealized_pnl += p.unrealized_pnl;
    }
    let equity = balances.first().map_or(Decimal::ZERO, |b| b.equity);
    let hwm = high_water.max(equity);
    PortfolioView {
        account: AccountView {
            user_id: snap.user.id.clone(),
            account_type: snap.account.account_type,
            trading_state: snap.user.trading_state,
            balances,
            open_orders: snap.open_orders.len(),
            realized_pnl_today: snap.day_realized,
            high_water_mark: hwm,
            drawdown: hwm - equity,
        },
        positions: positions
            .into_iter()
            .filter(|p| !p.quantity.is_zero())
            .collect(),
    }
}
