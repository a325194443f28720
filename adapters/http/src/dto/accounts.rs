//! Accounts, positions, portfolio and fills as the API shows them.

use chrono::{DateTime, Utc};
use ordermon_application::views::{AccountView, BalanceView, PortfolioView, PositionView};
use ordermon_domain::Decimal;
use ordermon_domain::account::AccountType;
use ordermon_domain::fill::{Fill, LiquiditySide};
use ordermon_domain::ids::{InstrumentId, OrderId, TradeId, UserId};
use ordermon_domain::order::Side;
use ordermon_domain::position::PositionSide;
use ordermon_domain::risk::TradingState;
use ordermon_domain::values::{
    Currency, Money, Price, Quantity, decimal_string, opt_decimal_string,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One currency of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Balance {
    /// Currency.
    #[schema(value_type = String)]
    pub currency: Currency,
    /// Cash held.
    #[serde(with = "decimal_string")]
    #[schema(value_type = String)]
    pub total: Decimal,
    /// Held for open orders.
    #[serde(with = "decimal_string")]
    #[schema(value_type = String)]
    pub reserved: Decimal,
    /// `total - reserved`.
    #[serde(with = "decimal_string")]
    #[schema(value_type = String)]
    pub free: Decimal,
    /// Signed market value of positions in this currency.
    #[serde(with = "decimal_string")]
    #[schema(value_type = String)]
    pub market_value: Decimal,
    /// Gross exposure.
    #[serde(with = "decimal_string")]
    #[schema(value_type = String)]
    pub exposure: Decimal,
    /// `total + market_value`.
    #[serde(with = "decimal_string")]
    #[schema(value_type = String)]
    pub equity: Decimal,
    /// Realized PnL (net of commissions).
    #[serde(with = "decimal_string")]
    #[schema(value_type = String)]
    pub realized_pnl: Decimal,
    /// Unrealized PnL.
    #[serde(with = "decimal_string")]
    #[schema(value_type = String)]
    pub unrealized_pnl: Decimal,
}

impl From<BalanceView> for Balance {
    fn from(b: BalanceView) -> Self {
        Self {
            currency: b.currency,
            total: b.total,
            reserved: b.reserved,
            free: b.free,
            market_value: b.market_value,
            exposure: b.exposure,
            equity: b.equity,
            realized_pnl: b.realized_pnl,
            unrealized_pnl: b.unrealized_pnl,
        }
    }
}

/// `GET /api/v1/account`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccountSummary {
    /// Owner.
    #[schema(value_type = String)]
    pub user_id: UserId,
    /// Cash or margin.
    #[schema(value_type = crate::dto::enums::AccountType)]
    pub account_type: AccountType,
    /// The user's kill switch.
    #[schema(value_type = crate::dto::enums::TradingState)]
    pub trading_state: TradingState,
    /// Per currency.
    pub balances: Vec<Balance>,
    /// Open orders.
    pub open_orders: usize,
    /// Realized PnL since midnight UTC.
    #[serde(with = "decimal_string")]
    #[schema(value_type = String)]
    pub realized_pnl_today: Decimal,
    /// Highest equity seen.
    #[serde(with = "decimal_string")]
    #[schema(value_type = String)]
    pub high_water_mark: Decimal,
    /// `high_water_mark - equity`.
    #[serde(with = "decimal_string")]
    #[schema(value_type = String)]
    pub drawdown: Decimal,
}

impl From<AccountView> for AccountSummary {
    fn from(a: AccountView) -> Self {
        Self {
            user_id: a.user_id,
            account_type: a.account_type,
            trading_state: a.trading_state,
            balances: a.balances.into_iter().map(Balance::from).collect(),
            open_orders: a.open_orders,
            realized_pnl_today: a.realized_pnl_today,
            high_water_mark: a.high_water_mark,
            drawdown: a.drawdown,
        }
    }
}

/// One position valued at the latest mark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PositionDto {
    /// Instrument.
    #[schema(value_type = String)]
    pub instrument_id: InstrumentId,
    /// Long, short or flat.
    #[schema(value_type = crate::dto::enums::PositionSide)]
    pub side: PositionSide,
    /// Signed quantity.
    #[serde(with = "decimal_string")]
    #[schema(value_type = String)]
    pub quantity: Decimal,
    /// Average open price.
    #[serde(with = "opt_decimal_string")]
    #[schema(value_type = Option<String>)]
    pub avg_open_price: Option<Decimal>,
    /// Mark used.
    #[schema(value_type = Option<String>)]
    pub mark: Option<Price>,
    /// Signed market value.
    #[serde(with = "decimal_string")]
    #[schema(value_type = String)]
    pub market_value: Decimal,
    /// Realized PnL (net of commissions).
    #[serde(with = "decimal_string")]
    #[schema(value_type = String)]
    pub realized_pnl: Decimal,
    /// Unrealized PnL.
    #[serde(with = "decimal_string")]
    #[schema(value_type = String)]
    pub unrealized_pnl: Decimal,
    /// Commissions paid.
    #[serde(with = "decimal_string")]
    #[schema(value_type = String)]
    pub commissions: Decimal,
    /// Quote currency.
    #[schema(value_type = String)]
    pub currency: Currency,
    /// Opened.
    pub opened_at: Option<DateTime<Utc>>,
    /// Last went flat.
    pub closed_at: Option<DateTime<Utc>>,
}

impl From<PositionView> for PositionDto {
    fn from(p: PositionView) -> Self {
        Self {
            instrument_id: p.instrument_id,
            side: p.side,
            quantity: p.quantity,
            avg_open_price: p.avg_open_price,
            mark: p.mark,
            market_value: p.market_value,
            realized_pnl: p.realized_pnl,
            unrealized_pnl: p.unrealized_pnl,
            commissions: p.commissions,
            currency: p.currency,
            opened_at: p.opened_at,
            closed_at: p.closed_at,
        }
    }
}

/// `GET /api/v1/portfolio`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Portfolio {
    /// The account summary.
    pub account: AccountSummary,
    /// Open positions.
    pub positions: Vec<PositionDto>,
}

impl From<PortfolioView> for Portfolio {
    fn from(p: PortfolioView) -> Self {
        Self {
            account: p.account.into(),
            positions: p.positions.into_iter().map(PositionDto::from).collect(),
        }
    }
}

/// One execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FillView {
    /// The venue's execution id.
    #[schema(value_type = String)]
    pub trade_id: TradeId,
    /// The order.
    #[schema(value_type = String, format = Uuid)]
    pub order_id: OrderId,
    /// Owner.
    #[schema(value_type = String)]
    pub user_id: UserId,
    /// Instrument.
    #[schema(value_type = String)]
    pub instrument_id: InstrumentId,
    /// Side.
    #[schema(value_type = crate::dto::enums::Side)]
    pub side: Side,
    /// Quantity.
    #[schema(value_type = String)]
    pub quantity: Quantity,
    /// Price.
    #[schema(value_type = String)]
    pub price: Price,
    /// Commission.
    #[schema(value_type = Object)]
    pub commission: Money,
    /// Maker or taker.
    #[schema(value_type = crate::dto::enums::LiquiditySide)]
    pub liquidity_side: LiquiditySide,
    /// When it happened at the venue.
    pub ts_event: DateTime<Utc>,
}

impl From<Fill> for FillView {
    fn from(f: Fill) -> Self {
        Self {
            trade_id: f.trade_id,
            order_id: f.order_id,
            user_id: f.user_id,
            instrument_id: f.instrument_id,
            side: f.side,
            quantity: f.quantity,
            price: f.price,
            commission: f.commission,
            liquidity_side: f.liquidity_side,
            ts_event: f.ts_event,
        }
    }
}

/// A page of fills, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FillPage {
    /// The fills.
    pub items: Vec<FillView>,
    /// Pass as `cursor` for the next page.
    pub next_cursor: Option<String>,
}
