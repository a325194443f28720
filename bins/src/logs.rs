//! Per-user log files for the binary: the tracing layer that writes
//! `logs/users/user_{id}/user_{id}_{date}.log` and the system log.

use std::sync::Arc;

use anyhow::Context;
use ordermon_telemetry::BoxedLayer;
use ordermon_telemetry::user_logs::{FileLogSink, UserLogLayer, UserLogWriter};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;

use crate::Config;
use crate::app::USER_LOG_OPEN_FILES;

/// Lines waiting for the writer thread before new ones are dropped (and counted).
const QUEUE: usize = 65_536;

/// The layer writing per-user and system log files under `logs.dir`, at INFO
/// and above, and the writer thread's handle (keep it for the process's life).
///
/// # Errors
/// When the writer thread cannot start.
pub fn user_log_layer(config: &Config) -> anyhow::Result<(BoxedLayer, UserLogWriter)> {
    let sink = Arc::new(FileLogSink::new(&config.logs.dir, USER_LOG_OPEN_FILES));
    let (layer, writer) =
        UserLogLayer::start(sink, QUEUE).context("starting the log file writer")?;
    Ok((layer.with_filter(LevelFilter::INFO).boxed(), writer))
}
