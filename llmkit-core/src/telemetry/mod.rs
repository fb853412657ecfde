//! Observability: a traced span and a structured record per model call, metrics, drift alerts
//! and exporters.
//!
//! - [`TraceLayer`] (outermost in a [`Pipeline`](crate::Pipeline)) opens one span per call with
//!   the OpenTelemetry GenAI attributes and llmkit's own ([`semconv`] names them all), prices the
//!   response with the [`PriceTable`](crate::cost::PriceTable), and emits one [`CallRecord`].
//! - [`CaptureConfig`] turns content capture on (off by default); text passes a [`Redactor`]
//!   ([`DefaultRedactor`] masks e-mails, phone and card numbers, API keys) and a size cap.
//! - [`MetricsRegistry`] counts requests, errors by class, tokens and cost and keeps latency
//!   histograms ([`LogHistogram`]) by provider, model and prompt version; read it as a
//!   [`MetricsSnapshot`] or Prometheus text. The `metrics` feature mirrors it to the `metrics`
//!   facade.
//! - [`DriftMonitor`] evaluates [`DriftRule`]s over sliding windows and sends [`DriftAlert`]s to
//!   an [`AlertSink`].
//! - [`ExportQueue`] hands records to a [`RecordSink`] ([`JsonLinesSink`], [`MemorySink`]) on a
//!   background thread; it never blocks a call and counts what it drops.
//! - The `otel` feature adds [`otel`]: OTLP export of spans through `tracing-opentelemetry` and
//!   of the GenAI client histograms, and [`propagation`] then puts a W3C `traceparent` on every
//!   provider request.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use llmkit_core::telemetry::TraceLayer;
//! use llmkit_core::{ChatModel, ChatRequest, PromptRef, Pipeline, ScriptedModel};
//!
//! let trace = TraceLayer::new();
//! let metrics = trace.metrics().clone();
//! let provider = Arc::new(ScriptedModel::builder().provider("anthropic").model("claude-haiku-4-5").fallback("ok").build());
//! let model = Pipeline::builder().layer(trace).build(provider);
//! let prompt = PromptRef { id: "triage".into(), version: "2".into(), hash: "9f2c".into() };
//! model.chat(ChatRequest::user("hi").with_prompt(prompt)).await?;
//!
//! let snap = metrics.snapshot();
//! let series = snap.get("anthropic", "claude-haiku-4-5", "triage@2").unwrap();
//! assert_eq!(series.requests, 1);
//! assert!(series.cost_usd > llmkit_core::Decimal::ZERO);
//! assert!(metrics.render_prometheus().contains("llmkit_requests_total{provider=\"anthropic\""));
//! # Ok::<(), llmkit_core::Error>(()) }).unwrap();
//! ```

#[cfg(feature = "telemetry")]
pub mod capture;
#[cfg(feature = "telemetry")]
pub mod drift;
#[cfg(feature = "telemetry")]
pub mod layer;
#[cfg(feature = "telemetry")]
pub mod metrics;
#[cfg(feature = "otel")]
pub mod otel;
pub mod propagation;
// Names only: compiled without the `telemetry` feature because other layers (fallback's trail
// notes) use the same conventions.
pub mod semconv;
#[cfg(feature = "telemetry")]
pub mod sink;

#[cfg(feature = "telemetry")]
pub use capture::{CaptureConfig, DefaultRedactor, Redactor};
#[cfg(feature = "telemetry")]
pub use drift::{
    AlertSink, DriftAlert, DriftMonitor, DriftMonitorBuilder, DriftRule, Expected, Signal,
};
#[cfg(feature = "telemetry")]
pub use layer::{TraceLayer, TraceLayerBuilder};
#[cfg(feature = "telemetry")]
pub use metrics::{
    BucketHistogram, GenAiKey, GenAiSeries, LogHistogram, MetricsRegistry, MetricsSnapshot,
    SeriesKey, SeriesSnapshot,
};
#[cfg(feature = "telemetry")]
pub use sink::{
    CallRecord, ExportQueue, JsonLinesSink, MemorySink, RECORD_SCHEMA_VERSION, RecordSink,
    RequestParams,
};
