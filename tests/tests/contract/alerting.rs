//! The alerting contract: silences, notification records and rule overrides
//! round-trip whole and are versioned like every other row; a claim is won by
//! exactly one writer; the notification queue (due, latest per group, purge)
//! and the alert and silence listings select and order alike on every backend.

mod queries;
mod writes;

use chrono::Duration;
use ordermon_domain::alert::NotificationRecord;
use ordermon_domain::ports::StoreError;

use crate::fixtures::at;

pub(crate) use queries::{alert_listing_filters, notification_queue, silence_listing};
pub(crate) use writes::{
    alerting_round_trips, alerting_version_conflicts, failed_alerting_batch_leaves_nothing,
    notification_claim_race, rule_overrides_and_delete,
};

/// Asserts a refusal is a version conflict with these versions.
#[track_caller]
fn assert_conflict<T: std::fmt::Debug>(
    r: &Result<T, StoreError>,
    want_expected: u64,
    want_actual: Option<u64>,
) {
    assert!(
        matches!(r, Err(StoreError::Conflict { expected, actual, .. })
            if *expected == want_expected && *actual == want_actual),
        "want conflict (expected {want_expected}, actual {want_actual:?}), got {r:?}"
    );
}

/// The next state of a record claimed by `instance` at `now` for 30 s.
fn claimed(r: &NotificationRecord, instance: &str, now: i64) -> NotificationRecord {
    let mut next = r.clone();
    next.claim(instance, at(now), Duration::seconds(30));
    next
}
