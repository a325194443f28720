//! The consumer group's backlog in messages, read from the broker every few
//! seconds while the consumer runs (`ordermon_consumer_lag_messages{group}`).
//!
//! It complements `ordermon_consumer_lag_seconds`, which is measured on each
//! event received and so says nothing while the consumer receives nothing — a
//! consumer stuck in a handler, or not consuming at all, shows here as a
//! growing count. A reading that fails (the broker is down, or cannot tell)
//! keeps the last value: consuming goes on regardless, and the failure is
//! logged once per streak at `warn` (then at `debug`).

use std::sync::Arc;
use std::time::Duration;

use ordermon_domain::ports::MessageBus;
use parking_lot::Mutex;

use super::ConsumerStatus;

/// The most one reading may take; a slower broker is skipped until the next.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads the backlog of `group` every `interval` (the first at once), sets
/// the gauge and the status; never returns. A zero `interval` reads nothing.
pub(super) async fn sample(
    bus: Arc<dyn MessageBus>,
    group: String,
    interval: Duration,
    status: Arc<Mutex<ConsumerStatus>>,
) {
    if interval.is_zero() {
        return std::future::pending().await;
    }
    let gauge = metrics::gauge!("ordermon_consumer_lag_messages", "group" => group.clone());
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        ticks.tick().await;
        let failure = match tokio::time::timeout(READ_TIMEOUT, bus.backlog(&group)).await {
            Ok(Ok(Some(n))) => {
                #[allow(clippy::cast_precision_loss)]
                gauge.set(n as f64);
                status.lock().backlog = Some(n);
                None
            }
            Ok(Ok(None)) => Some("the broker cannot tell".to_owned()),
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!("no answer within {READ_TIMEOUT:?}")),
        };
        match failure {
            None => failing = false,
            Some(why) if !failing => {
                failing = true;
                tracing::warn!(%group, bus = bus.name(), %why, "cannot read the consumer group's backlog; keeping the last value");
            }
            Some(why) => tracing::debug!(%group, %why, "cannot read the consumer group's backlog"),
        }
    }
}
