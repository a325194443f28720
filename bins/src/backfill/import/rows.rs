//! The two row formats (orders, fills) and their decoding into validated
//! domain values: the same newtypes, enums and decimal rules as the API, so a
//! row is refused for exactly the reasons a request would be (plus what only
//! history has: statuses and timestamps).
//!
//! The columns are documented in `docs/operations.md` ("backfill orders|fills").

use chrono::{DateTime, Utc};
use ordermon_domain::fill::LiquiditySide;
use ordermon_domain::ids::{ClientOrderId, InstrumentId, OrderId, StrategyId, TradeId, UserId};
use ordermon_domain::order::{NewOrder, OrderStatus, OrderType, Side, TimeInForce};
use ordermon_domain::risk::DeniedReason;
use ordermon_domain::values::{Currency, Price, Quantity, parse_decimal};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::read::{Columns, Row};

/// The columns of an order row, in the order the docs list them.
pub(crate) const ORDER_COLUMNS: Columns = Columns {
    known: &[
        "user_id",
        "client_order_id",
        "instrument_id",
        "side",
        "type",
        "quantity",
        "price",
        "trigger_price",
        "time_in_force",
        "expire_at",
        "reduce_only",
        "post_only",
        "strategy_id",
        "status",
        "reason",
        "venue_order_id",
        "order_id",
        "created_at",
        "updated_at",
    ],
    required: &[
        "user_id",
        "client_order_id",
        "instrument_id",
        "side",
        "type",
        "quantity",
        "time_in_force",
        "status",
        "created_at",
    ],
};

/// The columns of a fill row.
pub(crate) const FILL_COLUMNS: Columns = Columns {
    known: &[
        "user_id",
        "order_id",
        "client_order_id",
        "trade_id",
        "quantity",
        "price",
        "commission",
        "commission_currency",
        "liquidity_side",
        "ts_event",
    ],
    required: &["trade_id", "quantity", "price", "ts_event"],
};

/// The statuses an order row may have, and what importing each means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ImportStatus {
    /// Working at the venue: reserves like a live order.
    Accepted,
    /// A stop order whose trigger traded: working, reserves.
    Triggered,
    /// Partly filled and still working: reserves for its whole quantity; its
    /// fills (`backfill fills`) consume the reservation.
    PartiallyFilled,
    /// Completely filled: imported as accepted *without* a reservation; its
    /// fills (`backfill fills`) make it filled.
    Filled,
    /// Canceled (any fills it had are imported afterwards as late fills).
    Canceled,
    /// Expired.
    Expired,
    /// Refused by the venue (`reason` says why).
    Rejected,
    /// Refused by pre-trade risk (`reason` is the risk code).
    Denied,
}

impl ImportStatus {
    fn parse(text: &str) -> Result<Self, String> {
        Ok(match text {
            "accepted" => Self::Accepted,
            "triggered" => Self::Triggered,
            "partially_filled" => Self::PartiallyFilled,
            "filled" => Self::Filled,
            "canceled" => Self::Canceled,
            "expired" => Self::Expired,
            "rejected" => Self::Rejected,
            "denied" => Self::Denied,
            other => {
                return Err(match other.parse::<OrderStatus>() {
                    Ok(s) => format!(
                        "status: {s} orders cannot be imported (use accepted, triggered, \
                         partially_filled, filled, canceled, expired, rejected or denied)"
                    ),
                    Err(e) => format!("status: {e}"),
                });
            }
        })
    }

    /// True when the order is still working after the import (it reserves).
    pub(crate) fn reserves(self) -> bool {
        matches!(
            self,
            Self::Accepted | Self::Triggered | Self::PartiallyFilled
        )
    }
}

/// A decoded order row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OrderRow {
    pub(crate) new: NewOrder,
    pub(crate) status: ImportStatus,
    /// `reason` of a rejected order.
    pub(crate) reason: Option<String>,
    /// `reason` of a denied order.
    pub(crate) denied: Option<DeniedReason>,
    pub(crate) venue_order_id: Option<String>,
    /// The id to keep (UUIDv7), when the source system had ordermon ids.
    pub(crate) order_id: Option<OrderId>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
}

/// How a fill row names its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OrderRef {
    /// By ordermon's id (`user_id`, when given, must own it).
    Id(OrderId, Option<UserId>),
    /// By the user's client order id.
    Client(UserId, ClientOrderId),
}

/// A decoded fill row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FillRow {
    pub(crate) order: OrderRef,
    pub(crate) trade_id: TradeId,
    pub(crate) quantity: Quantity,
    pub(crate) price: Price,
    /// Commission amount (zero when absent; negative for a rebate).
    pub(crate) commission: ordermon_domain::Decimal,
    /// Its currency; the instrument's quote currency when absent.
    pub(crate) commission_currency: Option<Currency>,
    pub(crate) liquidity_side: LiquiditySide,
    pub(crate) ts_event: DateTime<Utc>,
}

/// Reads named columns of a row, collecting every field at fault so a reject
/// names them all at once (as the API's `errors` list does).
struct Fields<'a> {
    row: &'a Row,
    columns: Columns,
    errors: Vec<String>,
}

impl<'a> Fields<'a> {
    fn new(row: &'a Row, columns: Columns) -> Self {
        Self {
            row,
            columns,
            errors: Vec::new(),
        }
    }

    fn raw(&self, name: &str) -> Option<&'a str> {
        let i = self.columns.known.iter().position(|c| *c == name)?;
        self.row.get(i)
    }

    /// An optional column, parsed.
    fn opt<T>(&mut self, name: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Option<T> {
        let text = self.raw(name)?;
        match parse(text) {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors.push(format!("{name}: {e}"));
                None
            }
        }
    }

    /// A required column, parsed.
    fn req<T>(&mut self, name: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Option<T> {
        if self.raw(name).is_none() {
            self.errors.push(format!("{name}: required"));
            return None;
        }
        self.opt(name, parse)
    }

    fn finish<T>(self, value: Option<T>) -> Result<T, String> {
        match value {
            Some(v) if self.errors.is_empty() => Ok(v),
            _ if !self.errors.is_empty() => Err(self.errors.join("; ")),
            _ => Err("incomplete row".to_owned()),
        }
    }
}

fn text<T: std::str::FromStr>(s: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    s.parse::<T>().map_err(|e| e.to_string())
}

/// A unit enum by its snake-case serde name (`buy`, `stop_limit`, `gtc`, …).
fn name<T: DeserializeOwned>(s: &str) -> Result<T, String> {
    use serde::de::IntoDeserializer as _;
    let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> = s.into_deserializer();
    T::deserialize(de).map_err(|e| e.to_string())
}

fn timestamp(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{e} (want RFC 3339, e.g. 2026-01-05T09:30:00Z)"))
}

fn flag(s: &str) -> Result<bool, String> {
    match s {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err("must be true or false".to_owned()),
    }
}

fn order_id(s: &str) -> Result<OrderId, String> {
    let uuid = Uuid::parse_str(s).map_err(|e| e.to_string())?;
    OrderId::from_uuid(uuid).map_err(|e| e.to_string())
}

fn free_text(s: &str) -> Result<String, String> {
    if s.len() > 500 {
        Err("at most 500 characters".to_owned())
    } else {
        Ok(s.to_owned())
    }
}

/// Decodes an order row. `now` bounds the timestamps (history is not in the future).
pub(crate) fn order_row(row: &Row, now: DateTime<Utc>) -> Result<OrderRow, String> {
    let mut f = Fields::new(row, ORDER_COLUMNS);
    let user_id = f.req("user_id", text::<UserId>);
    let client_order_id = f.req("client_order_id", text::<ClientOrderId>);
    let instrument_id = f.req("instrument_id", text::<InstrumentId>);
    let side = f.req("side", name::<Side>);
    let order_type = f.req("type", name::<OrderType>);
    let quantity = f.req("quantity", text::<Quantity>);
    let price = f.opt("price", text::<Price>);
    let trigger_price = f.opt("trigger_price", text::<Price>);
    let time_in_force = f.req("time_in_force", name::<TimeInForce>);
    let expire_at = f.opt("expire_at", timestamp);
    let reduce_only = f.opt("reduce_only", flag).unwrap_or(false);
    let post_only = f.opt("post_only", flag).unwrap_or(false);
    let strategy_id = f.opt("strategy_id", text::<StrategyId>);
    let status = f.req("status", ImportStatus::parse);
    let reason = f.opt("reason", free_text);
    let venue_order_id = f.opt("venue_order_id", free_text);
    let order_id = f.opt("order_id", order_id);
    let created_at = f.req("created_at", timestamp);
    let updated_at = f.opt("updated_at", timestamp);

    let mut denied = None;
    if let (Some(ImportStatus::Denied), Some(reason)) = (status, reason.as_deref()) {
        match name::<DeniedReason>(reason) {
            Ok(r) => denied = Some(r),
            Err(_) => f.errors.push(format!(
                "reason: {reason:?} is not a risk code (e.g. insufficient_funds)"
            )),
        }
    }
    if status == Some(ImportStatus::Denied) && reason.is_none() {
        f.errors
            .push("reason: required for a denied order".to_owned());
    }
    if let Some(c) = created_at {
        if c > now {
            f.errors.push("created_at: in the future".to_owned());
        }
        if let Some(u) = updated_at
            && u < c
        {
            f.errors.push("updated_at: before created_at".to_owned());
        }
    }
    if updated_at.is_some_and(|u| u > now) {
        f.errors.push("updated_at: in the future".to_owned());
    }
    let value = (|| {
        let created_at = created_at?;
        Some(OrderRow {
            new: NewOrder {
                client_order_id: client_order_id?,
                user_id: user_id?,
                strategy_id,
                instrument_id: instrument_id?,
                side: side?,
                order_type: order_type?,
                quantity: quantity?,
                price,
                trigger_price,
                time_in_force: time_in_force?,
                expire_at,
                reduce_only,
                post_only,
            },
            status: status?,
            reason,
            denied,
            venue_order_id,
            order_id,
            created_at,
            updated_at: updated_at.unwrap_or(created_at),
        })
    })();
    f.finish(value)
}

/// Decodes a fill row.
pub(crate) fn fill_row(row: &Row, now: DateTime<Utc>) -> Result<FillRow, String> {
    let mut f = Fields::new(row, FILL_COLUMNS);
    let user_id = f.opt("user_id", text::<UserId>);
    let order_id = f.opt("order_id", order_id);
    let client_order_id = f.opt("client_order_id", text::<ClientOrderId>);
    let trade_id = f.req("trade_id", text::<TradeId>);
    let quantity = f.req("quantity", text::<Quantity>);
    let price = f.req("price", text::<Price>);
    let commission = f
        .opt("commission", |s| {
            parse_decimal(s).map_err(|e| e.to_string())
        })
        .unwrap_or_default();
    let commission_currency = f.opt("commission_currency", text::<Currency>);
    let liquidity_side = f
        .opt("liquidity_side", name::<LiquiditySide>)
        .unwrap_or(LiquiditySide::None);
    let ts_event = f.req("ts_event", timestamp);

    if quantity.is_some_and(Quantity::is_zero) {
        f.errors
            .push("quantity: fill quantity must be positive".to_owned());
    }
    if ts_event.is_some_and(|t| t > now) {
        f.errors.push("ts_event: in the future".to_owned());
    }
    let order = match (order_id, client_order_id, user_id) {
        (Some(id), _, user) => Some(OrderRef::Id(id, user)),
        (None, Some(cid), Some(user)) => Some(OrderRef::Client(user, cid)),
        (None, Some(_), None) => {
            f.errors
                .push("user_id: required with client_order_id".to_owned());
            None
        }
        (None, None, _) => {
            if f.raw("order_id").is_none() && f.raw("client_order_id").is_none() {
                f.errors
                    .push("order_id or client_order_id: one is required".to_owned());
            }
            None
        }
    };
    let value = (|| {
        Some(FillRow {
            order: order?,
            trade_id: trade_id?,
            quantity: quantity?,
            price: price?,
            commission,
            commission_currency,
            liquidity_side,
            ts_event: ts_event?,
        })
    })();
    f.finish(value)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use chrono::TimeZone as _;

    use super::*;

    fn row(columns: Columns, pairs: &[(&str, &str)]) -> Row {
        let mut values = vec![None; columns.known.len()];
        for (k, v) in pairs {
            let i = columns.known.iter().position(|c| c == k).unwrap();
            values[i] = Some((*v).to_owned());
        }
        Row { values }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap()
    }

    const GOOD_ORDER: &[(&str, &str)] = &[
        ("user_id", "alice"),
        ("client_order_id", "c-1"),
        ("instrument_id", "ACME.SIM"),
        ("side", "buy"),
        ("type", "limit"),
        ("quantity", "10"),
        ("price", "10.00"),
        ("time_in_force", "gtc"),
        ("status", "filled"),
        ("created_at", "2026-01-05T09:30:00+08:00"),
    ];

    #[test]
    fn a_good_order_row() {
        let o = order_row(&row(ORDER_COLUMNS, GOOD_ORDER), now()).unwrap();
        assert_eq!(o.new.user_id.as_str(), "alice");
        assert_eq!(o.new.side, Side::Buy);
        assert_eq!(o.new.order_type, OrderType::Limit);
        assert_eq!(o.status, ImportStatus::Filled);
        assert_eq!(
            o.created_at,
            Utc.with_ymd_and_hms(2026, 1, 5, 1, 30, 0).unwrap()
        );
        assert_eq!(o.updated_at, o.created_at);
        assert!(!o.status.reserves());
    }

    #[test]
    fn every_fault_is_named() {
        let mut pairs = GOOD_ORDER.to_vec();
        pairs.retain(|(k, _)| *k != "user_id");
        pairs.push(("side", "long"));
        let mut r = row(ORDER_COLUMNS, &pairs);
        let q = ORDER_COLUMNS
            .known
            .iter()
            .position(|c| *c == "quantity")
            .unwrap();
        r.values[q] = Some("1e3".to_owned());
        let e = order_row(&r, now()).unwrap_err();
        assert!(e.contains("user_id: required"), "{e}");
        assert!(e.contains("side: unknown variant `long`"), "{e}");
        assert!(e.contains("quantity: not a decimal number"), "{e}");
    }

    #[test]
    fn statuses_and_reasons() {
        let with = |extra: &[(&str, &str)]| {
            let mut pairs: Vec<(&str, &str)> = GOOD_ORDER
                .iter()
                .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
                .copied()
                .collect();
            pairs.extend_from_slice(extra);
            order_row(&row(ORDER_COLUMNS, &pairs), now())
        };
        assert!(
            with(&[("status", "submitted")])
                .unwrap_err()
                .contains("cannot be imported")
        );
        assert!(
            with(&[("status", "done")])
                .unwrap_err()
                .contains("unknown order status")
        );
        assert!(
            with(&[("status", "denied")])
                .unwrap_err()
                .contains("reason: required")
        );
        assert!(
            with(&[("status", "denied"), ("reason", "bad")])
                .unwrap_err()
                .contains("risk code")
        );
        let d = with(&[("status", "denied"), ("reason", "insufficient_funds")]).unwrap();
        assert_eq!(d.denied, Some(DeniedReason::InsufficientFunds));
        assert!(
            with(&[("created_at", "2027-01-01T00:00:00Z")])
                .unwrap_err()
                .contains("future")
        );
        assert!(
            with(&[("updated_at", "2025-01-01T00:00:00Z")])
                .unwrap_err()
                .contains("before created_at")
        );
        assert!(
            with(&[("created_at", "yesterday")])
                .unwrap_err()
                .contains("RFC 3339")
        );
        assert!(
            with(&[("reduce_only", "yes")])
                .unwrap_err()
                .contains("true or false")
        );
        assert!(
            with(&[("order_id", "not-a-uuid")])
                .unwrap_err()
                .contains("order_id")
        );
    }

    #[test]
    fn fill_rows() {
        let f = fill_row(
            &row(
                FILL_COLUMNS,
                &[
                    ("user_id", "alice"),
                    ("client_order_id", "c-1"),
                    ("trade_id", "t-1"),
                    ("quantity", "4"),
                    ("price", "9.99"),
                    ("commission", "0.04"),
                    ("liquidity_side", "maker"),
                    ("ts_event", "2026-01-05T09:31:00Z"),
                ],
            ),
            now(),
        )
        .unwrap();
        assert!(matches!(f.order, OrderRef::Client(_, _)));
        assert_eq!(f.liquidity_side, LiquiditySide::Maker);
        assert_eq!(f.commission.to_string(), "0.04");

        let e = fill_row(
            &row(
                FILL_COLUMNS,
                &[
                    ("client_order_id", "c-1"),
                    ("trade_id", "t-1"),
                    ("quantity", "0"),
                    ("price", "-1"),
                    ("ts_event", "2026-01-05T09:31:00Z"),
                ],
            ),
            now(),
        )
        .unwrap_err();
        assert!(e.contains("user_id: required with client_order_id"), "{e}");
        assert!(
            e.contains("quantity: fill quantity must be positive"),
            "{e}"
        );
        assert!(e.contains("price: must be positive"), "{e}");

        let e = fill_row(
            &row(
                FILL_COLUMNS,
                &[
                    ("trade_id", "t"),
                    ("quantity", "1"),
                    ("price", "1"),
                    ("ts_event", "2026-01-05T09:31:00Z"),
                ],
            ),
            now(),
        )
        .unwrap_err();
        assert!(e.contains("one is required"), "{e}");
    }
}
