//! OTLP export (cargo feature `otel`): spans through `tracing-opentelemetry`, metrics from the
//! [`MetricsRegistry`] (llmkit's counters as observable instruments and the OpenTelemetry GenAI
//! client histograms `gen_ai.client.operation.duration` and `gen_ai.client.token.usage` with the
//! conventions' bucket boundaries), both over OTLP/HTTP to a collector: JSON by default, binary
//! protobuf with [`OtlpProtocol::HttpProtobuf`] (what collectors such as Arize Phoenix accept).
//!
//! OTLP/HTTP is used because it needs neither `protoc` nor a second TLS stack: the exporter
//! reuses the workspace's `reqwest` (rustls). gRPC (tonic) is deliberately left out.
//!
//! - [`OtlpConfig`]: endpoint (default `http://localhost:4318`), service name, export interval,
//!   request headers (e.g. a vendor's API key: values never print), TLS (a private CA, a client
//!   certificate for mutual TLS), export timeout, and whether to install the W3C trace-context
//!   propagator that puts `traceparent` on provider requests ([`super::propagation`]).
//! - Bring your own providers: [`OtlpConfig::tracer_provider`] / [`OtlpConfig::meter_provider`]
//!   use the application's `SdkTracerProvider` / `SdkMeterProvider` instead of building
//!   exporters (llmkit then never shuts them down), and [`register_metrics`] adds llmkit's
//!   instruments to any meter provider.
//! - [`OtlpConfig::install`] returns an [`OtlpExport`] holding the providers: add
//!   [`OtlpExport::tracing_layer`] to your `tracing_subscriber::registry()` and call
//!   [`OtlpExport::shutdown`] before exit to flush.
//!
//! ```
//! use llmkit_core::telemetry::{MetricsRegistry, otel::OtlpConfig};
//! // Building the exporters does not connect; export happens in the background.
//! let export = OtlpConfig::new("checkout-service")
//!     .header("authorization", "Bearer not-a-real-key")
//!     .install(MetricsRegistry::new())?;
//! export.shutdown();
//! # Ok::<(), llmkit_core::Error>(())
//! ```

/// The `opentelemetry` API crate llmkit is built against, so an application's own tracer or
/// meter provider is of the same version.
pub use opentelemetry;
/// The `opentelemetry_sdk` crate llmkit is built against (for [`OtlpConfig::tracer_provider`]).
pub use opentelemetry_sdk;

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Meter, MeterProvider};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use rust_decimal::prelude::ToPrimitive;

use super::metrics::{GenAiKey, MetricsRegistry, SeriesKey, names};
use super::semconv as sc;
use crate::error::{Error, Result};

/// The OTLP/HTTP body encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OtlpProtocol {
    /// `application/json` (the default here: readable on the wire).
    #[default]
    HttpJson,
    /// `application/x-protobuf`: the OTLP default, and the only HTTP encoding some collectors
    /// (Arize Phoenix) accept.
    HttpProtobuf,
}

impl OtlpProtocol {
    fn sdk(self) -> Protocol {
        match self {
            OtlpProtocol::HttpJson => Protocol::HttpJson,
            OtlpProtocol::HttpProtobuf => Protocol::HttpBinary,
        }
    }
}

/// Where and how to send OTLP data.
#[derive(Clone)]
#[must_use]
pub struct OtlpConfig {
    endpoint: String,
    protocol: OtlpProtocol,
    service_name: String,
    resource: Vec<(String, String)>,
    interval: Duration,
    timeout: Option<Duration>,
    headers: Vec<(String, String)>,
    ca_pem: Option<Vec<u8>>,
    identity_pem: Option<Vec<u8>>,
    propagate: bool,
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: Option<SdkMeterProvider>,
}

impl fmt::Debug for OtlpConfig {
    /// Header values may be credentials: only their names print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpConfig")
            .field("endpoint", &self.endpoint)
            .field("protocol", &self.protocol)
            .field("service_name", &self.service_name)
            .field("resource", &self.resource)
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("custom_ca", &self.ca_pem.is_some())
            .field("client_identity", &self.identity_pem.is_some())
            .field("propagate", &self.propagate)
            .field("own_tracer_provider", &self.tracer_provider.is_some())
            .field("own_meter_provider", &self.meter_provider.is_some())
            .finish()
    }
}

impl OtlpConfig {
    /// Defaults: endpoint `http://localhost:4318` (signal paths `/v1/traces` and `/v1/metrics`
    /// are appended), metrics exported every 30 s, no extra headers, the system's trusted roots,
    /// the W3C trace-context propagator installed.
    pub fn new(service_name: impl Into<String>) -> Self {
        OtlpConfig {
            endpoint: "http://localhost:4318".to_owned(),
            protocol: OtlpProtocol::default(),
            service_name: service_name.into(),
            resource: Vec::new(),
            interval: Duration::from_secs(30),
            timeout: None,
            headers: Vec::new(),
            ca_pem: None,
            identity_pem: None,
            propagate: true,
            tracer_provider: None,
            meter_provider: None,
        }
    }

    /// The collector's OTLP/HTTP base URL.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self
    }

    /// Adds a resource attribute to every span and metric (`deployment.environment.name`, or
    /// `openinference.project.name`, which Arize Phoenix files traces under).
    pub fn resource_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.resource.push((key.into(), value.into()));
        self
    }

    /// The body encoding (default [`OtlpProtocol::HttpJson`]).
    pub fn protocol(mut self, protocol: OtlpProtocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// How often metrics are exported (default 30 s).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Bounds each export request (the exporter's default otherwise).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sends this header with every export request (a vendor's API key, a tenant id). The value
    /// never appears in `Debug` output or errors.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Trusts this PEM certificate (or bundle) in addition to the system roots, for a collector
    /// behind a private CA.
    pub fn ca_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Presents this client certificate for mutual TLS: one PEM holding the certificate chain
    /// and its private key.
    pub fn client_identity_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.identity_pem = Some(pem.into());
        self
    }

    /// Whether [`install`](Self::install) sets the global text-map propagator to W3C trace
    /// context, so provider requests carry `traceparent` (default: yes). Turn it off when the
    /// application sets its own propagator, or must not reveal trace ids to providers.
    pub fn propagate_trace_context(mut self, on: bool) -> Self {
        self.propagate = on;
        self
    }

    /// Uses the application's tracer provider instead of building an OTLP span exporter; the
    /// endpoint, headers and TLS settings then apply to metrics only, and
    /// [`OtlpExport::shutdown`] leaves this provider running.
    pub fn tracer_provider(mut self, provider: SdkTracerProvider) -> Self {
        self.tracer_provider = Some(provider);
        self
    }

    /// Registers llmkit's instruments on the application's meter provider instead of building
    /// an OTLP metric exporter; [`OtlpExport::shutdown`] leaves it running.
    pub fn meter_provider(mut self, provider: SdkMeterProvider) -> Self {
        self.meter_provider = Some(provider);
        self
    }

    /// Builds the span and metric pipelines. Metrics are read from `registry` at each export;
    /// the GenAI histograms are fed by `registry` as calls finish.
    ///
    /// The blocking HTTP client the exporters use owns a small runtime, which must not be
    /// created or dropped on an async worker; building happens on a short-lived thread so this
    /// is safe to call from `#[tokio::main]`. Fails with a config error when a header or a PEM
    /// is invalid.
    pub fn install(self, registry: MetricsRegistry) -> Result<OtlpExport> {
        std::thread::spawn(move || self.build(registry))
            .join()
            .map_err(|_| Error::config("otlp exporter setup panicked"))?
    }

    /// The HTTP client the exporters share: TLS settings and timeout applied.
    fn http_client(&self) -> Result<reqwest::blocking::Client> {
        let mut builder = reqwest::blocking::Client::builder();
        if let Some(pem) = &self.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| Error::config("the otlp ca certificate is not valid pem"))?;
            builder = builder.tls_certs_merge(certs);
        }
        if let Some(pem) = &self.identity_pem {
            let identity = reqwest::Identity::from_pem(pem).map_err(|_| {
                Error::config("the otlp client identity is not a valid pem certificate and key")
            })?;
            builder = builder.identity(identity);
        }
        if let Some(t) = self.timeout {
            builder = builder.timeout(t);
        }
        builder
            .build()
            .map_err(|e| Error::config(format!("cannot build the otlp http client: {e}")))
    }

    fn header_map(&self) -> Result<HashMap<String, String>> {
        let mut map = HashMap::new();
        for (name, value) in &self.headers {
            let valid_name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_ok();
            if !valid_name || reqwest::header::HeaderValue::from_str(value).is_err() {
                // The value may be a credential: name the header, never the value.
                return Err(Error::config(format!(
                    "otlp header {name:?} is not a valid http header"
                )));
            }
            map.insert(name.clone(), value.clone());
        }
        Ok(map)
    }

    fn build(self, registry: MetricsRegistry) -> Result<OtlpExport> {
        let base = self.endpoint.trim_end_matches('/').to_owned();
        let resource = Resource::builder()
            .with_service_name(self.service_name.clone())
            .with_attributes(
                self.resource
                    .iter()
                    .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
            )
            .build();
        let headers = self.header_map()?;
        let client = self.http_client()?;
        let (tracer_provider, owns_tracer) = match self.tracer_provider.clone() {
            Some(p) => (p, false),
            None => {
                let mut spans = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(self.protocol.sdk())
                    .with_endpoint(format!("{base}/v1/traces"))
                    .with_http_client(client.clone())
                    .with_headers(headers.clone());
                if let Some(t) = self.timeout {
                    spans = spans.with_timeout(t);
                }
                let spans = spans.build().map_err(|e| {
                    Error::config(format!("cannot build the otlp span exporter: {e}"))
                })?;
                let provider = SdkTracerProvider::builder()
                    .with_batch_exporter(spans)
                    .with_resource(resource.clone())
                    .build();
                (provider, true)
            }
        };
        let (meter_provider, owns_meter) = match self.meter_provider.clone() {
            Some(p) => (p, false),
            None => {
                let mut metrics = opentelemetry_otlp::MetricExporter::builder()
                    .with_http()
                    .with_protocol(self.protocol.sdk())
                    .with_endpoint(format!("{base}/v1/metrics"))
                    .with_http_client(client)
                    .with_headers(headers);
                if let Some(t) = self.timeout {
                    metrics = metrics.with_timeout(t);
                }
                let metrics = metrics.build().map_err(|e| {
                    Error::config(format!("cannot build the otlp metric exporter: {e}"))
                })?;
                let reader = PeriodicReader::builder(metrics)
                    .with_interval(self.interval)
                    .build();
                let provider = SdkMeterProvider::builder()
                    .with_reader(reader)
                    .with_resource(resource)
                    .build();
                (provider, true)
            }
        };
        register_metrics(&meter_provider, registry);
        if self.propagate {
            opentelemetry::global::set_text_map_propagator(
                opentelemetry_sdk::propagation::TraceContextPropagator::new(),
            );
        }
        Ok(OtlpExport {
            tracer_provider,
            owns_tracer,
            meter_provider,
            owns_meter,
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

/// Registers llmkit's instruments on `provider`, reading `registry`: its counters as observable
/// instruments (read at export time, so the call path pays nothing for them) and the GenAI
/// client histograms `gen_ai.client.operation.duration` (seconds) and
/// `gen_ai.client.token.usage` (`{token}`, one record per `gen_ai.token.type`) with the
/// conventions' explicit bucket boundaries, recorded as each call finishes.
///
/// [`OtlpConfig::install`] calls it; call it yourself to add llmkit's metrics to a meter
/// provider you built. Register a registry once per provider, or values count twice.
pub fn register_metrics<P: MeterProvider + ?Sized>(provider: &P, registry: MetricsRegistry) {
    let meter = provider.meter("llmkit");
    register_genai_histograms(&meter, &registry);
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
    let r = registry;
    let _dropped = meter
        .u64_observable_counter(names::EXPORT_DROPPED)
        .with_description("trace records dropped because the export queue was full")
        .with_callback(move |obs| obs.observe(r.snapshot().export_dropped, &[]))
        .build();
}

/// The two GenAI client histograms, fed from `registry` as calls finish.
fn register_genai_histograms(meter: &Meter, registry: &MetricsRegistry) {
    let duration = meter
        .f64_histogram(sc::METRIC_CLIENT_OPERATION_DURATION)
        .with_description("GenAI operation duration")
        .with_unit("s")
        .with_boundaries(sc::OPERATION_DURATION_BUCKETS.to_vec())
        .build();
    let tokens = meter
        .u64_histogram(sc::METRIC_CLIENT_TOKEN_USAGE)
        .with_description("Number of input and output tokens used")
        .with_unit("{token}")
        .with_boundaries(sc::TOKEN_USAGE_BUCKETS.to_vec())
        .build();
    registry.on_record(move |record| {
        let key = GenAiKey::of_record(record);
        let mut attrs: Vec<KeyValue> = key
            .attributes()
            .into_iter()
            .map(|(k, v)| {
                if k == sc::SERVER_PORT {
                    KeyValue::new(k, v.parse::<i64>().unwrap_or_default())
                } else {
                    KeyValue::new(k, v)
                }
            })
            .collect();
        duration.record(record.latency_ms / 1000.0, &attrs);
        if let Some(u) = &record.usage {
            attrs.push(KeyValue::new(sc::GEN_AI_TOKEN_TYPE, "input"));
            tokens.record(u.input_tokens, &attrs);
            if record.operation != sc::OPERATION_EMBEDDINGS {
                attrs.pop();
                attrs.push(KeyValue::new(sc::GEN_AI_TOKEN_TYPE, "output"));
                tokens.record(u.output_tokens, &attrs);
            }
        }
    });
}

/// The installed OTLP pipelines.
#[derive(Debug)]
pub struct OtlpExport {
    tracer_provider: SdkTracerProvider,
    owns_tracer: bool,
    meter_provider: SdkMeterProvider,
    owns_meter: bool,
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

    /// Flushes and stops the pipelines llmkit built (on a helper thread, for the same reason as
    /// [`OtlpConfig::install`]); providers the application passed in are flushed, not stopped.
    pub fn shutdown(self) {
        let _ = std::thread::spawn(move || {
            if self.owns_tracer {
                let _ = self.tracer_provider.shutdown();
            } else {
                let _ = self.tracer_provider.force_flush();
            }
            if self.owns_meter {
                let _ = self.meter_provider.shutdown();
            } else {
                let _ = self.meter_provider.force_flush();
            }
        })
        .join();
    }
}
