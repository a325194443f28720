//! Per-user log files: every event that carries a `user_id` (on itself or on an
//! enclosing span) is also written to
//! `{dir}/users/user_{id}/user_{id}_{YYYY-MM-DD}.log`, and every event to the
//! system log `{dir}/system/ordermon_{YYYY-MM-DD}.log`. Files older than the
//! retention are deleted by [`FileLogSink::purge_before`].
//!
//! Writing happens on one background thread fed by a bounded channel, so a
//! slow disk never blocks an async task; when the channel is full, lines are
//! dropped and counted (`ordermon_log_lines_dropped_total`) rather than
//! stalling the trading path.

mod layer;
mod sink;

pub use layer::{UserLogLayer, UserLogWriter};
pub use sink::FileLogSink;
