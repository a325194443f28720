//! ordermon's telemetry: the tracing subscriber (pretty or JSON logs) and the
//! Prometheus metrics recorder, each installed once per process.
//!
//! Binaries call [`init`] once at start and keep the returned [`Telemetry`];
//! its [`Telemetry::render`] is what `GET /metrics` serves. Libraries and tests
//! that only need the metrics text call [`install_metrics`], which is idempotent.
//! Tests call [`test_subscriber`], which logs only when `TEST_LOG` is set.
//!
//! # Process-level metrics
//!
//! | name | type | meaning |
//! |---|---|---|
//! | `ordermon_build_info{version, service}` | gauge | always 1; labels say what runs |
//! | `ordermon_process_start_time_seconds` | gauge | Unix time the recorder was installed |
//! | `ordermon_process_uptime_seconds` | gauge | seconds since then, refreshed on every render |
//!
//! Histograms whose name ends in `_seconds` are rendered as Prometheus histograms
//! with latency buckets from 100 µs to 10 s; other histograms as summaries.

pub mod catalog;
mod metrics_setup;
pub mod otlp;
mod process;
pub mod user_logs;

use std::io::IsTerminal;
use std::sync::{Mutex, Once, PoisonError};

use serde::{Deserialize, Serialize};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

pub use metrics_setup::{Metrics, install_metrics};

/// The default filter when neither `RUST_LOG` nor the configuration sets one.
pub const DEFAULT_FILTER: &str = "info";

/// An extra layer added to the subscriber, e.g. the per-user log files.
///
/// Extension point: such a layer sees every event the process emits, so it
/// should carry its own filter (`layer.with_filter(...)`); the console filter
/// of [`TelemetryConfig::filter`] applies to the console output only.
pub type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync + 'static>;

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines, coloured on a terminal.
    #[default]
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// What [`init`] needs to know.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// Pretty or JSON.
    pub format: LogFormat,
    /// A `RUST_LOG`-style filter (`info`, `ordermon=debug,sqlx=warn`). `RUST_LOG`
    /// wins when it is set; [`DEFAULT_FILTER`] applies when neither is.
    pub filter: Option<String>,
    /// The service name in `ordermon_build_info`.
    pub service: String,
    /// The version in `ordermon_build_info`.
    pub version: String,
    /// Traces exported over OTLP; `None` (the default): no spans are
    /// exported and no trace context is carried.
    pub otlp: Option<otlp::OtlpConfig>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            filter: None,
            service: "ordermon".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            otlp: None,
        }
    }
}

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The log filter does not parse.
    #[error("invalid log filter `{filter}`: {reason}")]
    Filter {
        /// The filter text.
        filter: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Another metrics recorder was installed by someone else first.
    #[error("a different metrics recorder is already installed: {0}")]
    Recorder(String),
    /// Trace export could not start.
    #[error("trace export: {0}")]
    Otlp(String),
}

/// The running telemetry: keep it for the life of the process.
#[derive(Debug, Clone)]
pub struct Telemetry {
    metrics: Metrics,
    subscriber_installed: bool,
    traces: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// The Prometheus text exposition of every metric recorded so far.
    #[must_use]
    pub fn render(&self) -> String {
        self.metrics.render()
    }

    /// The metrics handle (cheap to clone; share it with the HTTP layer).
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// False when another global subscriber was already set (by an embedder or
    /// a test), in which case events go to that one.
    #[must_use]
    pub fn subscriber_installed(&self) -> bool {
        self.subscriber_installed
    }

    /// True when spans are exported over OTLP.
    #[must_use]
    pub fn exports_traces(&self) -> bool {
        self.traces.is_some()
    }

    /// Sends the spans still waiting and stops trace export (waits at most
    /// `timeout`); call once, at the end of the process. Blocks: call it
    /// off the async workers (`spawn_blocking`).
    pub fn shutdown(&self, timeout: std::time::Duration) {
        if let Some(provider) = &self.traces
            && let Err(e) = provider.shutdown_with_timeout(timeout)
        {
            tracing::warn!(error = %e, "trace export did not shut down cleanly");
        }
    }
}

/// Builds the subscriber and installs it as the global default, then installs
/// the Prometheus recorder. Safe to call more than once: the subscriber is set
/// only by the first call that succeeds, and every call returns the same metrics.
///
/// # Errors
/// [`TelemetryError::Filter`] for a filter that does not parse;
/// [`TelemetryError::Recorder`] when a foreign metrics recorder is installed.
pub fn init(config: &TelemetryConfig) -> Result<Telemetry, TelemetryError> {
    init_with_layers(config, Vec::new())
}

/// [`init`] with extra layers, e.g. the per-user log files (see [`BoxedLayer`]).
///
/// # Errors
/// As for [`init`].
pub fn init_with_layers(
    config: &TelemetryConfig,
    extra: Vec<BoxedLayer>,
) -> Result<Telemetry, TelemetryError> {
    let filter = build_filter(config.filter.as_deref(), std::env::var("RUST_LOG").ok())?;
    let metrics = install_metrics(&config.service, &config.version)?;
    static SUBSCRIBER: Mutex<bool> = Mutex::new(false);
    let mut installed = SUBSCRIBER.lock().unwrap_or_else(PoisonError::into_inner);
    let mut subscriber_installed = *installed;
    let mut traces = None;
    let mut extra = extra;
    if !*installed {
        if let Some(otlp) = &config.otlp {
            let (layer, provider) = otlp::pipeline(otlp)?;
            extra.push(layer);
            traces = Some(provider);
        }
        let ansi = config.format == LogFormat::Pretty && std::io::stderr().is_terminal();
        subscriber_installed = subscriber(config.format, filter, extra, ansi, std::io::stderr)
            .try_init()
            .is_ok();
        *installed = true;
        if subscriber_installed && traces.is_some() {
            ordermon_application::trace_context::install(Box::new(otlp::W3cPropagator::default()));
        } else {
            traces = None;
        }
    }
    Ok(Telemetry {
        metrics,
        subscriber_installed,
        traces,
    })
}

/// The subscriber: the extra layers, then the console layer under `filter`.
fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    extra: Vec<BoxedLayer>,
    ansi: bool,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let console = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(writer)
            .with_filter(filter)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .with_writer(writer)
            .with_filter(filter)
            .boxed(),
    };
    // An empty `Vec` layer would declare no interest in any callsite and so
    // silence the console too; `None` is neutral.
    let extra = (!extra.is_empty()).then_some(extra);
    Registry::default().with(extra).with(console)
}

/// The console filter: `RUST_LOG` first, then the configured filter, then
/// [`DEFAULT_FILTER`].
fn build_filter(
    configured: Option<&str>,
    rust_log: Option<String>,
) -> Result<EnvFilter, TelemetryError> {
    let text = rust_log
        .filter(|s| !s.trim().is_empty())
        .or_else(|| {
            configured
                .filter(|s| !s.trim().is_empty())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| DEFAULT_FILTER.to_owned());
    EnvFilter::builder()
        .parse(&text)
        .map_err(|e| TelemetryError::Filter {
            filter: text.clone(),
            reason: e.to_string(),
        })
}

/// For tests: installs a subscriber writing through the test harness's capture
/// when `TEST_LOG` is set (filter from `RUST_LOG`, default `debug`), and does
/// nothing otherwise, so test output stays quiet. Safe to call from every test.
pub fn test_subscriber() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_none() {
            return;
        }
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("debug"));
        // Another test framework may have set one already; that one wins.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_precedence_rust_log_then_config_then_default() {
        let f = build_filter(Some("warn"), Some("debug".to_owned())).unwrap();
        assert_eq!(f.to_string(), "debug");
        let f = build_filter(Some("warn"), None).unwrap();
        assert_eq!(f.to_string(), "warn");
        let f = build_filter(None, Some("  ".to_owned())).unwrap();
        assert_eq!(f.to_string(), "info");
        let f = build_filter(Some("ordermon=debug,sqlx=warn"), None).unwrap();
        assert!(f.to_string().contains("ordermon=debug"));
    }

    /// A `MakeWriter` into a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for Buffer {
        type Writer = Self;
        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    fn captured(format: LogFormat, extra: Vec<BoxedLayer>) -> String {
        let buffer = Buffer::default();
        let filter = build_filter(Some("info"), None).unwrap();
        let sub = subscriber(format, filter, extra, false, buffer.clone());
        tracing::subscriber::with_default(sub, || {
            tracing::info!(user_id = "alice", "shown");
            tracing::debug!("hidden");
        });
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn console_output_honours_format_and_filter_with_or_without_extra_layers() {
        let pretty = captured(LogFormat::Pretty, Vec::new());
        assert!(
            pretty.contains("shown") && pretty.contains("alice"),
            "{pretty}"
        );
        assert!(!pretty.contains("hidden"), "{pretty}");
        let json = captured(LogFormat::Json, Vec::new());
        let line: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
        assert_eq!(line["fields"]["message"], "shown");
        let extra: Vec<BoxedLayer> = vec![
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::sink)
                .boxed(),
        ];
        assert!(captured(LogFormat::Pretty, extra).contains("shown"));
    }

    #[test]
    fn bad_filter_is_refused() {
        let err = build_filter(Some("ordermon=loud"), None).unwrap_err();
        assert!(err.to_string().contains("ordermon=loud"), "{err}");
    }

    #[test]
    fn init_twice_returns_the_same_metrics() {
        test_subscriber();
        let config = TelemetryConfig {
            service: "telemetry-test".to_owned(),
            ..TelemetryConfig::default()
        };
        let a = init(&config).unwrap();
        let b = init(&config).unwrap();
        metrics::counter!("ordermon_telemetry_test_total").increment(2);
        let text = a.render();
        assert!(text.contains("ordermon_telemetry_test_total 2"), "{text}");
        assert!(text.contains("ordermon_build_info{"), "{text}");
        assert!(text.contains("ordermon_process_uptime_seconds"), "{text}");
        assert!(b.render().contains("ordermon_telemetry_test_total 2"));
    }

    #[test]
    fn seconds_histograms_have_buckets() {
        let m = install_metrics("telemetry-test", "0").unwrap();
        metrics::histogram!("ordermon_telemetry_test_seconds").record(0.003);
        let text = m.render();
        assert!(
            text.contains("ordermon_telemetry_test_seconds_bucket{le=\"0.005\"} 1"),
            "{text}"
        );
    }
}
