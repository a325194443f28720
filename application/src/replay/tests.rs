//! Rebuild and comparison rules on hand-made histories.

#![allow(clippy::unwrap_used)]

use std::str::FromStr;

use chrono::Utc;
use ordermon_domain::Decimal;
use ordermon_domain::account::{Account, AccountType};
use ordermon_domain::event::{AccountEvent, DomainEvent, EventPayload};
use ordermon_domain::ids::UserId;
use ordermon_domain::ports::StoredRow;
use ordermon_domain::values::{Currency, Money};

use super::diff;
use super::rebuild::Rebuilt;

fn account_event(user: &str, seq: u64, e: AccountEvent) -> DomainEvent {
    DomainEvent::new(
        user,
        seq,
        Some(UserId::new(user).unwrap()),
        Utc::now(),
        None,
        EventPayload::Account(e),
    )
}

fn deposit(amount: &str) -> AccountEvent {
    AccountEvent::CashAdjusted {
        amount: Money::new(
            Decimal::from_str(amount).unwrap(),
            Currency::new("USD").unwrap(),
        )
        .unwrap(),
        reason: "test".to_owned(),
    }
}

#[test]
fn an_account_is_rebuilt_and_a_changed_balance_is_named() {
    let mut r = Rebuilt::new(Vec::new());
    r.apply(&account_event(
        "alice",
        1,
        AccountEvent::Opened {
            account_type: AccountType::Cash,
        },
    ));
    r.apply(&account_event("alice", 2, deposit("100")));
    r.apply(&account_event("alice", 3, deposit("-30")));
    let alice = UserId::new("alice").unwrap();
    let replayed = r.accounts.get(&alice).unwrap().clone();
    assert_eq!(replayed.sequence, 3);
    assert!(r.broken.is_empty());

    let mut stored = replayed.clone();
    stored.version = 7; // versions count commits: never compared
    assert!(diff::account(&StoredRow::same(stored.clone()), &replayed).is_empty());

    let mut columns = stored.clone();
    let usd = Currency::new("USD").unwrap();
    columns.balances.get_mut(&usd).unwrap().total = Decimal::from(99);
    let found = diff::account(
        &StoredRow {
            columns,
            data: stored,
        },
        &replayed,
    );
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].to_string(),
        "accounts alice: balances.USD.total stored 99, replayed 70"
    );
}

#[test]
fn a_refused_or_skipping_history_is_a_log_problem_not_a_panic() {
    let mut r = Rebuilt::new(Vec::new());
    // A deposit before the account was opened.
    r.apply(&account_event("bob", 1, deposit("5")));
    // A withdrawal beyond the cash there is.
    r.apply(&account_event(
        "carol",
        1,
        AccountEvent::Opened {
            account_type: AccountType::Cash,
        },
    ));
    r.apply(&account_event("carol", 2, deposit("-5")));
    // A sequence gap.
    r.apply(&account_event(
        "dave",
        1,
        AccountEvent::Opened {
            account_type: AccountType::Cash,
        },
    ));
    r.apply(&account_event("dave", 3, deposit("5")));
    let mut ids: Vec<&str> = r.broken.values().map(|p| p.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["bob", "carol", "dave"]);
    assert_eq!(r.events, 5);
}

#[test]
fn values_read_as_people_write_them() {
    assert_eq!(diff::show(&Decimal::from_str("10.000").unwrap()), "10");
    assert_eq!(diff::show(&Option::<Decimal>::None), "none");
    assert_eq!(diff::show(&AccountType::Margin), "margin");
    let _ = Account::new(UserId::new("x").unwrap(), AccountType::Cash);
}
