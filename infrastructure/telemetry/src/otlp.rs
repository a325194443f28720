//! Traces exported over OTLP/HTTP (protobuf): the `tracing` spans of the
//! ordermon crates become OpenTelemetry spans through `tracing-opentelemetry`,
//! batched on the SDK's export thread and sent with the process's `reqwest`
//! client on the Tokio runtime it was started on.
//!
//! Also the [`Propagator`] the application carries trace contexts with
//! (W3C `traceparent`), installed by [`crate::init_with_layers`] together with
//! the layer.

use std::time::Duration;

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider,
};
use ordermon_application::trace_context::{Propagator, TRACEPARENT};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;

use crate::{BoxedLayer, TelemetryError};

/// Where and how traces are exported.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpConfig {
    /// The OTLP/HTTP receiver: a base URL (`http://collector:4318`, to which
    /// `/v1/traces` is added) or the full traces URL (any other path).
    pub endpoint: String,
    /// Fraction of new traces recorded, 0 to 1; a trace begun elsewhere
    /// follows the caller's decision (parent-based sampling).
    pub sample_ratio: f64,
    /// `service.name` of every span.
    pub service_name: String,
    /// `service.instance.id` of every span (this instance's name).
    pub instance: String,
    /// `service.version`.
    pub version: String,
    /// How long finished spans wait before they are sent in one batch.
    pub batch_delay: Duration,
    /// Most time one export may take.
    pub timeout: Duration,
}

/// The traces URL for an endpoint (`/v1/traces` added to a bare base URL).
///
/// # Errors
/// [`TelemetryError::Otlp`] when it is not an `http(s)` URL.
pub fn traces_url(endpoint: &str) -> Result<String, TelemetryError> {
    let invalid = |why: &str| TelemetryError::Otlp(format!("telemetry.otlp.endpoint {why}"));
    let (scheme, rest) = endpoint
        .split_once("://")
        .ok_or_else(|| invalid("must be an http:// or https:// URL"))?;
    if !matches!(scheme, "http" | "https") {
        return Err(invalid("must be an http:// or https:// URL"));
    }
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    if authority.is_empty() || authority.contains('@') {
        return Err(invalid("must name a host and no credentials"));
    }
    if path.is_empty() {
        Ok(format!("{scheme}://{authority}/v1/traces"))
    } else {
        Ok(endpoint.to_owned())
    }
}

/// The export pipeline: the layer to add to the subscriber and the provider
/// to flush on shutdown.
pub(crate) fn pipeline(
    config: &OtlpConfig,
) -> Result<(BoxedLayer, SdkTracerProvider), TelemetryError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
        TelemetryError::Otlp("trace export needs a Tokio runtime to send from".to_owned())
    })?;
    if !(0.0..=1.0).contains(&config.sample_ratio) {
        return Err(TelemetryError::Otlp(format!(
            "telemetry.otlp.sample_ratio must be between 0 and 1, not {}",
            config.sample_ratio
        )));
    }
    let client = reqwest::Client::builder()
        .timeout(config.timeout)
        .build()
        .map_err(|e| TelemetryError::Otlp(format!("building the OTLP HTTP client: {e}")))?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(TokioReqwest { client, runtime })
        .with_endpoint(traces_url(&config.endpoint)?)
        .with_timeout(config.timeout)
        .build()
        .map_err(|e| TelemetryError::Otlp(format!("building the OTLP exporter: {e}")))?;
    let batch = BatchConfigBuilder::default()
        .with_scheduled_delay(config.batch_delay)
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(
            BatchSpanProcessor::builder(exporter)
                .with_batch_config(batch)
                .build(),
        )
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            config.sample_ratio,
        ))))
        .with_resource(
            Resource::builder_empty()
                .with_service_name(config.service_name.clone())
                .with_attributes([
                    KeyValue::new("service.instance.id", config.instance.clone()),
                    KeyValue::new("service.version", config.version.clone()),
                ])
                .build(),
        )
        .build();
    let tracer = provider.tracer("ordermon");
    // The project's own spans only: a library's (sqlx, hyper, lapin) would
    // cost an OpenTelemetry span each and say little an operator can act on.
    // (`ordermon` prefixes every crate of the project.)
    let targets = Targets::new().with_target("ordermon", tracing::Level::INFO);
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_filter(targets)
        .boxed();
    Ok((layer, provider))
}

/// The OTLP exporter's HTTP client: the workspace's `reqwest`, run on the
/// Tokio runtime (the SDK exports from a thread of its own, where no runtime
/// is entered).
#[derive(Debug)]
struct TokioReqwest {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for TokioReqwest {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let sent = self.runtime.spawn(async move {
            let (parts, body) = request.into_parts();
            let mut outgoing = client.request(parts.method, parts.uri.to_string());
            for (name, value) in &parts.headers {
                outgoing = outgoing.header(name, value);
            }
            let response = outgoing.body(body).send().await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            let mut built = Response::new(body);
            *built.status_mut() = status;
            *built.headers_mut() = headers;
            Ok::<_, reqwest::Error>(built)
        });
        Ok(sent.await??)
    }
}

/// W3C trace context through `tracing-opentelemetry`.
#[derive(Debug, Default)]
pub(crate) struct W3cPropagator {
    inner: TraceContextPropagator,
}

/// One `traceparent` as a carrier.
struct OneHeader<'a>(&'a str);

impl Extractor for OneHeader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == TRACEPARENT).then_some(self.0)
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT]
    }
}

impl Propagator for W3cPropagator {
    fn traceparent(&self, span: &Span) -> Option<String> {
        if span.is_none() {
            return None;
        }
        let cx = span.context();
        let sc = cx.span().span_context().clone();
        sc.is_valid().then(|| {
            format!(
                "00-{}-{}-{:02x}",
                sc.trace_id(),
                sc.span_id(),
                sc.trace_flags().to_u8()
            )
        })
    }

    fn set_parent(&self, span: &Span, traceparent: &str) {
        let parent = self
            .inner
            .extract_with_context(&Context::new(), &OneHeader(traceparent));
        if parent.span().span_context().is_valid() {
            // Fails only for a span already started or not recorded: it then
            // stays where it is.
            let _ = span.set_parent(parent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::traces_url;

    #[test]
    fn a_base_url_gets_the_traces_path_and_a_full_one_is_kept() {
        assert_eq!(
            traces_url("http://collector:4318").unwrap(),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("https://collector:4318/").unwrap(),
            "https://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://c:4318/custom/traces").unwrap(),
            "http://c:4318/custom/traces"
        );
        for bad in ["collector:4318", "ftp://c/", "http://", "http://u:p@c:4318"] {
            assert!(traces_url(bad).is_err(), "{bad}");
        }
    }
}
