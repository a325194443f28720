//! The Prometheus recorder: installed once per process, with the process-level metrics.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::TelemetryError;

/// Latency buckets (seconds) for every histogram named `*_seconds`.
const SECONDS_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Buckets for every histogram of a count of things per batch (`*_size`):
/// group commits, relayed outbox batches, id lookups.
const SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// How often buffered histogram samples are folded in when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The installed recorder's handle. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
    started: Arc<Instant>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// The Prometheus text exposition, with the uptime refreshed and the
    /// process's own figures (CPU, memory, file descriptors, threads) read
    /// now.
    #[must_use]
    pub fn render(&self) -> String {
        metrics::gauge!("ordermon_process_uptime_seconds")
            .set(self.started.elapsed().as_secs_f64());
        let mut text = self.handle.render();
        crate::process::render(&mut text);
        text
    }
}

/// Installs the Prometheus recorder as the global `metrics` recorder the first
/// time it is called, and registers the process-level metrics
/// (`ordermon_build_info{version, service}`, `ordermon_process_start_time_seconds`,
/// `ordermon_process_uptime_seconds`). Later calls return the same handle.
///
/// # Errors
/// [`TelemetryError::Recorder`] when a foreign recorder was installed first.
pub fn install_metrics(service: &str, version: &str) -> Result<Metrics, TelemetryError> {
    static INSTALLED: Mutex<Option<Metrics>> = Mutex::new(None);
    let mut slot = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(m) = slot.as_ref() {
        return Ok(m.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)
        .map_err(|e| TelemetryError::Recorder(e.to_string()))?
        .set_buckets_for_metric(Matcher::Suffix("_size".to_owned()), SIZE_BUCKETS)
        .map_err(|e| TelemetryError::Recorder(e.to_string()))?
        .install_recorder()
        .map_err(|e| TelemetryError::Recorder(e.to_string()))?;
    crate::catalog::describe_all();
    metrics::gauge!(
        "ordermon_build_info",
        "version" => version.to_owned(),
        "service" => service.to_owned()
    )
    .set(1.0);
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    metrics::gauge!("ordermon_process_start_time_seconds").set(since_epoch.as_secs_f64());
    spawn_upkeep(handle.clone());
    let m = Metrics {
        handle,
        started: Arc::new(Instant::now()),
    };
    *slot = Some(m.clone());
    Ok(m)
}

/// Folds buffered histogram samples into their distributions every few seconds,
/// so memory stays bounded when nothing scrapes. A plain thread: this crate does
/// not assume a runtime, and the work is tiny.
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        // Rendering also folds samples in, so scraping keeps memory bounded anyway.
        tracing::warn!(error = %e, "could not start the metrics upkeep thread");
    }
}
