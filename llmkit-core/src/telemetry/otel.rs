//! OTLP export (cargo feature `otel`): spans through `tracing-opentelemetry`, metrics from the
//! [`MetricsRegistry`] as observable instruments, both over OTLP **HTTP/JSON** to a collector.
//!
//! HTTP/JSON is used because it needs neither `protoc` nor a second TLS stack: the exporter
//! reuses the workspace's `reqwest` (rustls). gRPC (tonic) is deliberately left out.
//!
//! - [`OtlpConfig`]: endpoint (default `http://localhost:4318`), service name, export interval.
//! - [`OtlpConfig::install`] returns an [`OtlpExport`] holding the providers: add
//!   [`OtlpExport::tracing_layer`] to your `tracing_subscriber::registry()` and call
//!   [`OtlpExport::shutdown`] before exit to flush.
//!
//! ```
//! use llmkit_core::telemetry::{MetricsRegistry, otel::OtlpConfig};
//! // Building the exporters does not connect; export happens in the background.
//! let export = OtlpConfig::new("checkout-service").install(MetricsRegistry::new())?;
//! export.shutdown();
//! # Ok::<(), llmkit_core::Error>(())
//! ```

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use rust_decimal::prelude::ToPrimitive;

use super::metrics::{MetricsRegistry, SeriesKey, names};
use crate::error::{Error, Result};

/// Where and how to send OTLP data.
#[derive(Debug, Clone)]
#[must_use]
pub struct OtlpConfig {
    endpoint: String,
    service_name: String,
    interval: Duration,
}

impl OtlpConfig {
    /// Defaults: endpoint `http://localhost:4318` (signal paths `/v1/traces` and `/v1/metrics`
    /// are appended), metrics exported every 30 s.
    pub fn new(service_name: impl Into<String>) -> Self {
        OtlpConfig {
            endpoint: "http://localhost:4318".to_owned(),
            service_name: service_name.into(),
            interval: Duration::from_secs(30),
        }
    }

    /// The collector's OTLP/HTTP base URL.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self
    }

    /// How often metrics are exported (default 30 s).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Builds the span and metric pipelines. Metrics are read from `registry` at each export.
    ///
    /// The blocking HTTP client the exporters use owns a small runtime, which must not be
    /// created or dropped on an async worker; building happens on a short-lived thread so this
    /// is safe to call from `#[tokio::main]`.
    pub fn install(self, registry: MetricsRegistry) -> Result<OtlpExport> {
        std::thread::spawn(move || self.build(registry))
            .join()
            .map_err(|_| Error::config("otlp exporter setup panicked"))?
    }

    fn build(self, registry: MetricsRegistry) -> Result<OtlpExport> {
        let base = self.endpoint.trim_end_matches('/');
        let resource = Resource::builder()
            .with_service_name(self.service_name.clone())
            .build();
        let spans = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpJson)
            .with_endpoint(format!("{base}/v1/traces"))
            .build()
            .map_err(|e| Error::config(format!("cannot build the otlp span exporter: {e}")))?;
        let tracer_provider = SdkTracerProvider::builder()
            .with_batch_exporter(spans)
            .with_resource(resource.clone())
            .build();
        let metrics = opentelemetry_otlp::MetricExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpJson)
            .with_endpoint(format!("{base}/v1/metrics"))
            .build()
            .map_err(|e| Error::config(format!("cannot build the otlp metric exporter: {e}")))?;
        let reader = PeriodicReader::builder(metrics)
            .with_interval(self.interval)
            .build();
        let meter_provider = SdkMeterProvider::builder()
            .with_reader(reader)
            .with_resource(resource)
            .build();
        register_instruments(&meter_provider, registry);
        Ok(OtlpExport {
            tracer_provider,
            meter_provider,
        })
    }
}

fn attrs(k: &SeriesKey) -> Vec<KeyValue> {
    vec![
        KeyValue::new("provider", k.provider.clone()),
        KeyValue::new("model", k.model.clone()),
        KeyValue::new("prompt_version", k.prompt_version.clone()),
    ]
}

/// Observable instruments read the registry at export time, so the call path pays nothing
/// extra for OTLP metrics.
fn register_instruments(provider: &SdkMeterProvider, registry: MetricsRegistry) {
    let meter = provider.meter("llmkit");
    let r = registry.clone();
    let _requests = meter
        .u64_observable_counter(names::REQUESTS)
        .with_description("model calls finished")
        .with_callback(move |obs| {
            for (k, s) in r.snapshot().series {
                obs.observe(s.requests, &attrs(&k));
            }
        })
        .build();
    let r = registry.clone();
    let _errors = meter
        .u64_observable_counter(names::ERRORS)
        .with_description("failed model calls by error type")
        .with_callback(move |obs| {
            for (k, s) in r.snapshot().series {
                for (ty, n) in &s.errors {
                    let mut a = attrs(&k);
                    a.push(KeyValue::new("error_type", ty.clone()));
                    obs.observe(*n, &a);
                }
            }
        })
        .build();
    let r = registry.clone();
    let _tokens = meter
        .u64_observable_counter(names::TOKENS)
        .with_description("tokens by kind")
        .with_callback(move |obs| {
            for (k, s) in r.snapshot().series {
                for (kind, n) in [
                    ("input", s.input_tokens),
                    ("cached_input", s.cached_input_tokens),
                    ("cache_write", s.cache_write_tokens),
                    ("output", s.output_tokens),
                ] {
                    let mut a = attrs(&k);
                    a.push(KeyValue::new("kind", kind));
                    obs.observe(n, &a);
                }
            }
        })
        .build();
    let r = registry.clone();
    let _cost = meter
        .f64_observable_counter(names::COST)
        .with_description("known cost in usd")
        .with_callback(move |obs| {
            for (k, s) in r.snapshot().series {
                obs.observe(s.cost_usd.to_f64().unwrap_or(0.0), &attrs(&k));
            }
        })
        .build();
    let r = registry.clone();
    let _latency = meter
        .f64_observable_gauge("llmkit_request_duration_p95_seconds")
        .with_description("p95 model call latency")
        .with_callback(move |obs| {
            for (k, s) in r.snapshot().series {
                obs.observe(s.latency_p95_ms / 1000.0, &attrs(&k));
            }
        })
        .build();
    let r = registry;
    let _dropped = meter
        .u64_observable_counter(names::EXPORT_DROPPED)
        .with_description("trace records dropped because the export queue was full")
        .with_callback(move |obs| obs.observe(r.snapshot().export_dropped, &[]))
        .build();
}

/// The installed OTLP pipelines.
#[derive(Debug)]
pub struct OtlpExport {
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
}

impl OtlpExport {
    /// A tracer for `tracing_opentelemetry::layer().with_tracer(..)`.
    pub fn tracer(&self) -> SdkTracer {
        self.tracer_provider.tracer("llmkit")
    }

    /// A `tracing_subscriber` layer exporting every span (llmkit's included) over OTLP.
    pub fn tracing_layer<S>(&self) -> tracing_opentelemetry::OpenTelemetryLayer<S, SdkTracer>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        tracing_opentelemetry::layer().with_tracer(self.tracer())
    }

    /// Flushes and stops both pipelines (on a helper thread, for the same reason as
    /// [`OtlpConfig::install`]).
    pub fn shutdown(self) {
        let _ = std::thread::spawn(move || {
            let _ = self.tracer_provider.shutdown();
            let _ = self.meter_provider.shutdown();
        })
        .join();
    }
}
