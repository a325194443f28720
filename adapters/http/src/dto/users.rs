//! Users as the API shows them: creation, changes, limits and cash adjustments.

use chrono::{DateTime, Utc};
use ordermon_application::CreateUser;
use ordermon_domain::Decimal;
use ordermon_domain::account::AccountType;
use ordermon_domain::ids::UserId;
use ordermon_domain::risk::{RiskLimits, TradingState};
use ordermon_domain::user::{Role, User, UserStatus};
use ordermon_domain::values::{Currency, Money, decimal_string, opt_decimal_string};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Per-user risk limits; absent means unlimited. Decimals are strings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest notional of one order.
    #[serde(
        default,
        serialize_with = "opt_decimal_string::serialize",
        deserialize_with = "crate::dto::wire::opt_decimal"
    )]
    #[schema(value_type = Option<crate::dto::formats::SignedDecimal>)]
    pub max_order_notional: Option<Decimal>,
    /// Most open orders at once.
    #[serde(default, deserialize_with = "crate::dto::wire::opt_count")]
    #[schema(value_type = Option<u64>, minimum = 0, maximum = 4_294_967_295_u64)]
    pub max_open_orders: Option<u32>,
    /// Largest absolute position per instrument.
    #[serde(
        default,
        serialize_with = "opt_decimal_string::serialize",
        deserialize_with = "crate::dto::wire::opt_decimal"
    )]
    #[schema(value_type = Option<crate::dto::formats::SignedDecimal>)]
    pub max_position: Option<Decimal>,
    /// Largest loss in a day (positive).
    #[serde(
        default,
        serialize_with = "opt_decimal_string::serialize",
        deserialize_with = "crate::dto::wire::opt_decimal"
    )]
    #[schema(value_type = Option<crate::dto::formats::SignedDecimal>)]
    pub max_daily_loss: Option<Decimal>,
    /// Most orders per second.
    #[serde(default, deserialize_with = "crate::dto::wire::opt_count")]
    #[schema(value_type = Option<u64>, minimum = 0, maximum = 4_294_967_295_u64)]
    pub max_orders_per_second: Option<u32>,
}

impl From<Limits> for RiskLimits {
    fn from(l: Limits) -> Self {
        Self {
            max_order_notional: l.max_order_notional,
            max_open_orders: l.max_open_orders,
            max_position: l.max_position,
            max_daily_loss: l.max_daily_loss,
            max_orders_per_second: l.max_orders_per_second,
        }
    }
}

impl From<RiskLimits> for Limits {
    fn from(l: RiskLimits) -> Self {
        Self {
            max_order_notional: l.max_order_notional,
            max_open_orders: l.max_open_orders,
            max_position: l.max_position,
            max_daily_loss: l.max_daily_loss,
            max_orders_per_second: l.max_orders_per_second,
        }
    }
}

/// `POST /api/v1/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// 1–64 of `[A-Za-z0-9_.-]`.
    #[schema(value_type = crate::dto::formats::UserId, example = "alice")]
    pub id: UserId,
    /// Display name (1–200 characters).
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    /// Default `active`.
    #[serde(default)]
    #[schema(value_type = crate::dto::enums::UserStatus)]
    pub status: UserStatus,
    /// Default `trader`.
    #[serde(default)]
    #[schema(value_type = crate::dto::enums::Role)]
    pub role: Role,
    /// Default `cash`.
    #[serde(default)]
    #[schema(value_type = crate::dto::enums::AccountType)]
    pub account_type: AccountType,
    /// Default unlimited.
    #[serde(default, deserialize_with = "crate::dto::wire::object")]
    pub limits: Limits,
}

impl From<CreateUserRequest> for CreateUser {
    fn from(r: CreateUserRequest) -> Self {
        Self {
            id: r.id,
            name: r.name,
            status: r.status,
            role: r.role,
            account_type: r.account_type,
            limits: r.limits.into(),
        }
    }
}

/// `PATCH /api/v1/users/{id}`: every field optional.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchUserRequest {
    /// Enable or disable monitoring.
    #[serde(default)]
    #[schema(value_type = Option<crate::dto::enums::UserStatus>)]
    pub status: Option<UserStatus>,
    /// New limits (replaces all).
    #[serde(default, deserialize_with = "crate::dto::wire::opt_object")]
    pub limits: Option<Limits>,
    /// The user's kill switch.
    #[serde(default)]
    #[schema(value_type = Option<crate::dto::enums::TradingState>)]
    pub trading_state: Option<TradingState>,
    /// The API role: the user's tokens act with at most this role from the
    /// next request (on other instances within `auth.user_check_ttl`).
    #[serde(default)]
    #[schema(value_type = Option<crate::dto::enums::Role>)]
    pub role: Option<Role>,
    /// Why (audited).
    #[serde(default)]
    pub reason: Option<String>,
}

/// A user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    /// Id.
    #[schema(value_type = String)]
    pub id: UserId,
    /// Display name.
    pub name: String,
    /// Monitored or not.
    #[schema(value_type = crate::dto::enums::UserStatus)]
    pub status: UserStatus,
    /// Role.
    #[schema(value_type = crate::dto::enums::Role)]
    pub role: Role,
    /// Cash or margin.
    #[schema(value_type = crate::dto::enums::AccountType)]
    pub account_type: AccountType,
    /// Risk limits.
    pub limits: Limits,
    /// The user's kill switch.
    #[schema(value_type = crate::dto::enums::TradingState)]
    pub trading_state: TradingState,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Version.
    pub version: u64,
    /// Tokens issued up to this moment (to the second) are refused: when an
    /// admin last revoked the user's tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_valid_after: Option<DateTime<Utc>>,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            name: u.name,
            status: u.status,
            role: u.role,
            account_type: u.account_type,
            limits: u.limits.into(),
            trading_state: u.trading_state,
            created_at: u.created_at,
            updated_at: u.updated_at,
            version: u.version,
            tokens_valid_after: u.tokens_valid_after,
        }
    }
}

/// A page of users, by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserPage {
    /// The users.
    pub items: Vec<UserView>,
    /// Pass as `cursor` for the next page.
    pub next_cursor: Option<String>,
}

/// `POST /api/v1/users/{id}/cash`: an audited deposit (positive) or withdrawal (negative).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CashRequest {
    /// Currency code.
    #[schema(value_type = crate::dto::formats::Currency, example = "USD")]
    pub currency: Currency,
    /// Signed amount, as a string.
    #[serde(
        serialize_with = "decimal_string::serialize",
        deserialize_with = "crate::dto::wire::decimal"
    )]
    #[schema(value_type = crate::dto::formats::SignedDecimal, example = "10000")]
    pub amount: Decimal,
    /// Why (audited): not blank.
    #[schema(min_length = 1, pattern = r"\S")]
    pub reason: String,
}

impl CashRequest {
    /// The amount as money.
    ///
    /// # Errors
    /// A field error when the amount is out of range.
    pub fn money(&self) -> Result<Money, crate::error::ApiError> {
        Money::new(self.amount, self.currency.clone())
            .map_err(|e| crate::error::ApiError::field("amount", e.to_string()))
    }
}
