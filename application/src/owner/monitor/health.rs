//! The health checks of a user's monitor: a failing strategy's restarts
//! (suspended with backoff once it keeps failing), the strategies that went
//! silent (or were heard from again) and the orders the venue has not
//! answered for too long. Each finding is a monitor event,
//! which the alerting service's rules turn into alerts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use ordermon_domain::event::MonitorEvent;
use ordermon_domain::ids::{OrderId, StrategyId};
use ordermon_domain::order::{Order, OrderStatus};

use crate::owner::MonitorConfig;
use crate::owner::lanes::{Running, Slot};

/// Counts a failure of `run` at `at`: once it failed more than
/// `max_restarts_per_minute` times within a minute it is suspended, for
/// 2, 4, 8 … seconds (capped at 5 minutes). Returns the failures of the last
/// minute, this one included.
pub(super) fn note_failure(run: &mut Running, at: DateTime<Utc>, cfg: &MonitorConfig) -> u32 {
    let limit = cfg.max_restarts_per_minute.max(1);
    run.restarts.push_back(at);
    while run
        .restarts
        .front()
        .is_some_and(|t| at - *t > Duration::minutes(1))
    {
        run.restarts.pop_front();
    }
    let attempt = u32::try_from(run.restarts.len()).unwrap_or(u32::MAX);
    if attempt > limit {
        // Keeps failing: back off exponentially (capped at 5 minutes).
        let secs = 2_i64.saturating_pow((attempt - limit).min(8)).min(300);
        run.suspended_until = Some(at + Duration::seconds(secs));
    }
    attempt
}

/// The strategies that have not completed a callback within the heartbeat
/// timeout, then those heard from again since they were reported (each
/// silence is reported once).
pub(super) fn silent_strategies(
    running: &BTreeMap<StrategyId, Arc<Slot>>,
    at: DateTime<Utc>,
    cfg: &MonitorConfig,
) -> Vec<MonitorEvent> {
    let timeout = Duration::from_std(cfg.heartbeat_timeout).unwrap_or(Duration::seconds(60));
    let mut silent = Vec::new();
    let mut resumed = Vec::new();
    for (id, slot) in running {
        let mut st = slot.state.lock();
        let run = &mut st.run;
        let quiet = at - run.last_beat > timeout;
        if !run.heartbeat_reported && quiet {
            run.heartbeat_reported = true;
            silent.push(MonitorEvent::StrategyHeartbeatMissing {
                strategy_id: id.clone(),
                silent_secs: u64::try_from((at - run.last_beat).num_seconds()).unwrap_or(0),
            });
        } else if run.heartbeat_reported && !quiet {
            run.heartbeat_reported = false;
            resumed.push(MonitorEvent::StrategyHeartbeatResumed {
                strategy_id: id.clone(),
            });
        }
    }
    silent.extend(resumed);
    silent
}

/// The orders waiting for the venue longer than allowed (a submission not
/// acknowledged, a cancel not confirmed) and not in `reported` yet; they are
/// added to it, so each is reported once.
pub(super) fn stuck_orders(
    reported: &mut HashSet<OrderId>,
    orders: &HashMap<OrderId, Order>,
    at: DateTime<Utc>,
    cfg: &MonitorConfig,
) -> Vec<MonitorEvent> {
    let submit = Duration::from_std(cfg.stuck_submit_after).unwrap_or(Duration::seconds(30));
    let cancel = Duration::from_std(cfg.stuck_cancel_after).unwrap_or(Duration::seconds(30));
    let stuck: Vec<(OrderId, OrderStatus, i64)> = orders
        .values()
        .filter(|o| !reported.contains(&o.id))
        .filter_map(|o| {
            let waited = at - o.updated_at;
            let limit = match o.status {
                OrderStatus::Submitted => submit,
                OrderStatus::PendingCancel => cancel,
                _ => return None,
            };
            (waited > limit).then(|| (o.id, o.status, waited.num_seconds()))
        })
        .collect();
    stuck
        .into_iter()
        .map(|(id, status, secs)| {
            reported.insert(id);
            MonitorEvent::StuckOrder {
                order_id: id,
                status,
                waited_secs: u64::try_from(secs).unwrap_or(0),
            }
        })
        .collect()
}
