//! Turning cells back into domain values. Bad stored data becomes
//! [`StoreError::Corrupt`], never a panic.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use ordermon_domain::account::{Account, Reservation};
use ordermon_domain::ports::StoreError;
use ordermon_domain::values::Currency;
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::conn::Cell;

/// A corrupt-data error.
pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// The cell at `i`, or a corrupt-data error when the row is short.
fn at(row: &[Cell], i: usize) -> Result<&Cell, StoreError> {
    row.get(i)
        .ok_or_else(|| corrupt(format!("missing column {i}")))
}

/// A non-null text cell.
pub(crate) fn text(row: &[Cell], i: usize) -> Result<&str, StoreError> {
    match at(row, i)? {
        Cell::Text(s) => Ok(s),
        other => Err(corrupt(format!(
            "column {i}: expected text, found {other:?}"
        ))),
    }
}

/// A non-null integer cell.
pub(crate) fn int(row: &[Cell], i: usize) -> Result<i64, StoreError> {
    match at(row, i)? {
        Cell::Int(v) => Ok(*v),
        other => Err(corrupt(format!(
            "column {i}: expected an integer, found {other:?}"
        ))),
    }
}

/// A non-negative integer cell (versions, counts).
pub(crate) fn uint(row: &[Cell], i: usize) -> Result<u64, StoreError> {
    let v = int(row, i)?;
    u64::try_from(v).map_err(|_| corrupt(format!("column {i}: negative value {v}")))
}

/// A non-null decimal cell.
pub(crate) fn dec(row: &[Cell], i: usize) -> Result<Decimal, StoreError> {
    match at(row, i)? {
        Cell::Dec(d) => Ok(*d),
        other => Err(corrupt(format!(
            "column {i}: expected a decimal, found {other:?}"
        ))),
    }
}

/// A non-null timestamp cell.
pub(crate) fn ts(row: &[Cell], i: usize) -> Result<DateTime<Utc>, StoreError> {
    match at(row, i)? {
        Cell::Ts(t) => Ok(*t),
        other => Err(corrupt(format!(
            "column {i}: expected a timestamp, found {other:?}"
        ))),
    }
}

/// A non-null UUID cell.
pub(crate) fn uuid(row: &[Cell], i: usize) -> Result<Uuid, StoreError> {
    match at(row, i)? {
        Cell::Uuid(u) => Ok(*u),
        other => Err(corrupt(format!(
            "column {i}: expected a uuid, found {other:?}"
        ))),
    }
}

/// Parses a text cell through the type's validating `FromStr`.
pub(crate) fn parsed<T>(row: &[Cell], i: usize, what: &str) -> Result<T, StoreError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    let s = text(row, i)?;
    s.parse()
        .map_err(|e| corrupt(format!("bad {what} {s:?}: {e}")))
}

/// Deserializes the entity JSON in a text cell.
pub(crate) fn json<T: DeserializeOwned>(
    row: &[Cell],
    i: usize,
    what: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text(row, i)?).map_err(|e| corrupt(format!("bad stored {what}: {e}")))
}

/// Makes an account's balances those of the `account_balances` rows (the columns
/// operators read and may correct), keeping the JSON's exact text of a value when
/// it is numerically the same.
pub(crate) fn overlay_balances(
    account: &mut Account,
    rows: &[Vec<Cell>],
    first: usize,
) -> Result<(), StoreError> {
    let mut balances = std::collections::BTreeMap::new();
    for row in rows {
        if matches!(row.get(first), Some(Cell::Null) | None) {
            continue; // LEFT JOIN with no balance rows
        }
        let currency: Currency = parsed(row, first, "currency")?;
        let (total, reserved) = (dec(row, first + 1)?, dec(row, first + 2)?);
        let mut balance = account.balance(&currency);
        if balance.total != total {
            balance.total = total;
        }
        if balance.reserved != reserved {
            balance.reserved = reserved;
        }
        balances.insert(currency, balance);
    }
    account.balances = balances;
    Ok(())
}

/// Makes an account's reservations those of the `account_reservations` rows,
/// whose column `column` holds each reservation's JSON.
pub(crate) fn overlay_reservations(
    account: &mut Account,
    rows: &[Vec<Cell>],
    column: usize,
) -> Result<(), StoreError> {
    let mut reservations = std::collections::BTreeMap::new();
    for row in rows {
        let r: Reservation = json(row, column, "reservation")?;
        reservations.insert(r.order_id, r);
    }
    account.reservations = reservations;
    Ok(())
}
