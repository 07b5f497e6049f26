//! Logging and tracing: JSON logs in a cluster, text on a terminal, level from
//! a flag; spans (one per reconcile, one per IWD call) exported over OTLP/HTTP
//! when an endpoint is given, and kept in-process otherwise.
//!
//! Export is off by default. With `--otlp-endpoint` (or the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT`), spans are batched and sent as protobuf to
//! `<endpoint>/v1/traces`, the path the OTLP specification gives a base
//! endpoint. Only spans are exported, not log events: a span carries the
//! tenant's name, namespace and generation, or the call's method and HTTP
//! status, never a header, a body or IWD's error text. A collector that is
//! down costs nothing but the spans: the batch queue is bounded, and failed
//! exports are logged by the SDK (targets `opentelemetry_sdk`,
//! `opentelemetry_otlp`).

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::{FilterExt, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::cli::LogFormat;

/// Spans exported over OTLP: the operator's own, whatever the log level.
const EXPORTED_SPANS: &str = "iwd_operator=info";

/// Keeps the span exporter alive; [`Telemetry::shutdown`] flushes it.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still queued (the SDK gives this 5 s at most).
    pub fn shutdown(self) {
        if let Some(provider) = self.provider {
            // Blocking: the exporter's HTTP client runs on its own thread.
            let _ = std::thread::spawn(move || provider.shutdown()).join();
        }
    }
}

pub fn init(
    format: Option<LogFormat>,
    level: &str,
    otlp_endpoint: Option<&str>,
) -> anyhow::Result<Telemetry> {
    let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    let format = format.unwrap_or(if in_cluster {
        LogFormat::Json
    } else {
        LogFormat::Text
    });
    let logs = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
    }
    .with_filter(EnvFilter::try_new(level)?);

    // An empty value means unset, as the OpenTelemetry specification says.
    let otlp_endpoint = otlp_endpoint.filter(|e| !e.trim().is_empty());
    if let Some(endpoint) = otlp_endpoint
        && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
    {
        anyhow::bail!("--otlp-endpoint must be an http:// or https:// URL, got {endpoint:?}");
    }
    let provider = otlp_endpoint.map(tracer_provider).transpose()?;
    let traces = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("iwd-operator"))
            .with_filter(EnvFilter::new(EXPORTED_SPANS).and(filter_fn(|m| m.is_span())))
    });
    tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init()?;
    if let Some(endpoint) = otlp_endpoint {
        tracing::info!(endpoint, "exporting spans over OTLP/HTTP");
    }
    Ok(Telemetry { provider })
}

fn tracer_provider(endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .build()?;
    let resource = Resource::builder()
        .with_service_name("iwd-operator")
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}
