//! [`TraceLayer`]: one span and one [`CallRecord`] per model call.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures::{Stream, StreamExt};
use tokio::time::Instant;
use tracing::field::Empty;
use tracing::{Instrument, Span};

use super::capture::CaptureConfig;
use super::drift::DriftMonitor;
use super::metrics::MetricsRegistry;
use super::semconv as sc;
use super::sink::{CallRecord, ExportQueue, RECORD_SCHEMA_VERSION, RequestParams};
use crate::cost::PriceTable;
use crate::error::{Error, ErrorKind, Result};
use crate::layer::Layer;
use crate::model::{ChatModel, ChatStream, ModelInfo, StreamAccumulator};
use crate::request::{ChatRequest, ResponseFormat};
use crate::response::{ChatResponse, StreamEvent, Trail};

/// The observability layer: put it **outermost** so its span covers guards, cache hits, every
/// attempt and every fallback link.
///
/// For every call (`chat` and `stream`) it
/// - opens a span named [`SPAN_CALL`](sc::SPAN_CALL) with the OpenTelemetry GenAI attributes and
///   llmkit's own (all keys in [`semconv`](super::semconv)), declared empty and recorded when
///   the call ends (for a stream: when the stream ends, is cut off or dropped);
/// - stamps `latency` on the response and prices it with the [`PriceTable`] when no layer did;
/// - records content as span events only if [`CaptureConfig`] enables it (redacted and capped);
/// - builds one [`CallRecord`] and hands it to the [`MetricsRegistry`], the [`DriftMonitor`] and
///   every [`ExportQueue`] (never blocking: a full queue drops and counts).
///
/// Defaults: the bundled price table, a fresh registry (read it with [`TraceLayer::metrics`]),
/// no export queue, no drift monitor, capture off.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use llmkit_core::telemetry::{MemorySink, TraceLayer, ExportQueue};
/// use llmkit_core::{ChatModel, ChatRequest, Pipeline, ScriptedModel};
///
/// let sink = MemorySink::new();
/// let queue = ExportQueue::spawn(Arc::new(sink.clone()), 1024);
/// let trace = TraceLayer::builder().export(queue.clone()).build();
/// let metrics = trace.metrics().clone();
/// let provider = Arc::new(ScriptedModel::builder().model("gpt-4o-mini").provider("openai").reply("hi").build());
/// let model = Pipeline::builder().layer(trace).build(provider);
///
/// let resp = model.chat(ChatRequest::user("hello")).await?;
/// assert!(resp.cost.is_some(), "priced from the bundled table");
/// queue.flush().await;
/// assert_eq!(sink.records()[0].request_id, resp.request_id);
/// assert_eq!(metrics.snapshot().total().requests, 1);
/// # Ok::<(), llmkit_core::Error>(()) }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct TraceLayer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    prices: Arc<PriceTable>,
    metrics: MetricsRegistry,
    exports: Vec<ExportQueue>,
    drift: Option<DriftMonitor>,
    capture: CaptureConfig,
    legacy_system: bool,
}

/// Builds a [`TraceLayer`]; see it for the defaults.
#[derive(Debug)]
#[must_use]
pub struct TraceLayerBuilder {
    prices: Option<Arc<PriceTable>>,
    metrics: Option<MetricsRegistry>,
    exports: Vec<ExportQueue>,
    drift: Option<DriftMonitor>,
    capture: CaptureConfig,
    legacy_system: bool,
}

impl TraceLayerBuilder {
    /// Prices responses with this table (default: [`PriceTable::bundled`]).
    pub fn price_table(mut self, table: Arc<PriceTable>) -> Self {
        self.prices = Some(table);
        self
    }

    /// Records into this registry (default: a fresh one).
    pub fn metrics(mut self, registry: MetricsRegistry) -> Self {
        self.metrics = Some(registry);
        self
    }

    /// Sends each record to this queue too (default: none). May be called several times.
    pub fn export(mut self, queue: ExportQueue) -> Self {
        self.exports.push(queue);
        self
    }

    /// Feeds each record to this drift monitor (default: none).
    pub fn drift(mut self, monitor: DriftMonitor) -> Self {
        self.drift = Some(monitor);
        self
    }

    /// Content capture settings (default: off).
    pub fn capture(mut self, capture: CaptureConfig) -> Self {
        self.capture = capture;
        self
    }

    /// Also records the provider as `gen_ai.system` (the name semantic conventions v1.36 and
    /// earlier used, with their values: see [`semconv::legacy_system_name`](sc::legacy_system_name))
    /// next to `gen_ai.provider.name`, for backends pinned to the older conventions. Default: off.
    pub fn legacy_system_attribute(mut self, on: bool) -> Self {
        self.legacy_system = on;
        self
    }

    /// Builds the layer.
    pub fn build(self) -> TraceLayer {
        TraceLayer {
            shared: Arc::new(Shared {
                prices: self.prices.unwrap_or_else(PriceTable::bundled),
                metrics: self.metrics.unwrap_or_default(),
                exports: self.exports,
                drift: self.drift,
                capture: self.capture,
                legacy_system: self.legacy_system,
            }),
        }
    }
}

impl Default for TraceLayer {
    fn default() -> Self {
        Self::builder().build()
    }
}

impl TraceLayer {
    /// A layer with every default.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a builder.
    pub fn builder() -> TraceLayerBuilder {
        TraceLayerBuilder {
            prices: None,
            metrics: None,
            exports: Vec::new(),
            drift: None,
            capture: CaptureConfig::default(),
            legacy_system: false,
        }
    }

    /// The registry this layer records into.
    pub fn metrics(&self) -> &MetricsRegistry {
        &self.shared.metrics
    }

    /// The price table this layer prices with.
    pub fn price_table(&self) -> &Arc<PriceTable> {
        &self.shared.prices
    }
}

impl Layer for TraceLayer {
    fn layer(&self, inner: Arc<dyn ChatModel>) -> Arc<dyn ChatModel> {
        Arc::new(Traced {
            inner,
            shared: self.shared.clone(),
        })
    }

    fn layer_embedding(
        &self,
        inner: Arc<dyn crate::model::EmbeddingModel>,
    ) -> Option<Arc<dyn crate::model::EmbeddingModel>> {
        Some(Arc::new(embeddings::TracedEmbedding {
            inner,
            shared: self.shared.clone(),
        }))
    }
}

struct Traced {
    inner: Arc<dyn ChatModel>,
    shared: Arc<Shared>,
}

/// What is known about a call before it runs.
struct CallCtx {
    span: Span,
    /// The span is exported by `tracing-opentelemetry`: string arrays go on it natively.
    otel: bool,
    start: Instant,
    /// Boxed from the start: the record (~1 KiB) is handed to the export queue boxed, and a
    /// box moves through the call's future as a pointer instead of being copied at every move
    /// (issue 23).
    record: Box<CallRecord>,
}

impl Shared {
    fn begin(&self, info: &ModelInfo, req: &ChatRequest, stream: bool) -> CallCtx {
        let request_model = req.model.clone().unwrap_or_else(|| info.model.clone());
        let span = tracing::info_span!(
            target: sc::TARGET,
            sc::SPAN_CALL,
            { sc::OTEL_NAME } = %format_args!("chat {request_model}"),
            { sc::OTEL_KIND } = "client",
            { sc::OTEL_STATUS_CODE } = Empty,
            { sc::GEN_AI_OPERATION_NAME } = sc::OPERATION_CHAT,
            { sc::GEN_AI_PROVIDER_NAME } = %info.provider,
            { sc::GEN_AI_SYSTEM } = Empty,
            { sc::GEN_AI_CONVERSATION_ID } = Empty,
            { sc::GEN_AI_OUTPUT_TYPE } = Empty,
            { sc::SERVER_ADDRESS } = Empty,
            { sc::SERVER_PORT } = Empty,
            { sc::GEN_AI_REQUEST_MODEL } = %request_model,
            { sc::GEN_AI_RESPONSE_MODEL } = Empty,
            { sc::GEN_AI_USAGE_INPUT_TOKENS } = Empty,
            { sc::GEN_AI_USAGE_OUTPUT_TOKENS } = Empty,
            { sc::GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS } = Empty,
            { sc::GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS } = Empty,
            { sc::GEN_AI_USAGE_REASONING_OUTPUT_TOKENS } = Empty,
            { sc::GEN_AI_RESPONSE_FINISH_REASONS } = Empty,
            { sc::GEN_AI_RESPONSE_ID } = Empty,
            { sc::GEN_AI_REQUEST_TEMPERATURE } = Empty,
            { sc::GEN_AI_REQUEST_MAX_TOKENS } = Empty,
            { sc::GEN_AI_REQUEST_TOP_P } = Empty,
            { sc::GEN_AI_REQUEST_SEED } = Empty,
            { sc::GEN_AI_REQUEST_STOP_SEQUENCES } = Empty,
            { sc::GEN_AI_SYSTEM_INSTRUCTIONS } = Empty,
            { sc::GEN_AI_INPUT_MESSAGES } = Empty,
            { sc::GEN_AI_OUTPUT_MESSAGES } = Empty,
            { sc::ERROR_TYPE } = Empty,
            { sc::LLMKIT_REQUEST_ID } = Empty,
            { sc::LLMKIT_PROMPT_ID } = Empty,
            { sc::LLMKIT_PROMPT_VERSION } = Empty,
            { sc::LLMKIT_PROMPT_HASH } = Empty,
            { sc::LLMKIT_CONTEXT_IDS } = Empty,
            { sc::LLMKIT_CACHE_HIT } = Empty,
            { sc::LLMKIT_ATTEMPTS } = Empty,
            { sc::LLMKIT_COST_USD } = Empty,
            { sc::LLMKIT_COST_UNKNOWN } = Empty,
            { sc::LLMKIT_PRICE_TABLE } = Empty,
            { sc::LLMKIT_TENANT } = Empty,
            { sc::LLMKIT_STREAM } = stream,
        );
        let otel = exported_to_otel(&span);
        if self.legacy_system {
            span.record(sc::GEN_AI_SYSTEM, sc::legacy_system_name(&info.provider));
        }
        if let Some(server) = &info.server {
            span.record(sc::SERVER_ADDRESS, server.host.as_str());
            span.record(sc::SERVER_PORT, i64::from(server.port));
        }
        if let Some(t) = output_type(&req.response_format) {
            span.record(sc::GEN_AI_OUTPUT_TYPE, t);
        }
        if !req.stop.is_empty() && !span.is_disabled() {
            let stops: Vec<&str> = req.stop.iter().map(String::as_str).collect();
            record_strings(&span, otel, sc::GEN_AI_REQUEST_STOP_SEQUENCES, &stops);
        }
        if let Some(t) = req.temperature {
            span.record(sc::GEN_AI_REQUEST_TEMPERATURE, widen(t));
        }
        if let Some(n) = req.max_tokens {
            span.record(sc::GEN_AI_REQUEST_MAX_TOKENS, i64::from(n));
        }
        if let Some(p) = req.top_p {
            span.record(sc::GEN_AI_REQUEST_TOP_P, widen(p));
        }
        if let Some(s) = req.seed {
            span.record(sc::GEN_AI_REQUEST_SEED, int(s));
        }
        let meta = &req.meta;
        if let Some(id) = &meta.request_id {
            span.record(sc::LLMKIT_REQUEST_ID, id.as_str());
        }
        if let Some(p) = &meta.prompt {
            span.record(sc::LLMKIT_PROMPT_ID, p.id.as_str());
            span.record(sc::LLMKIT_PROMPT_VERSION, p.version.as_str());
            span.record(sc::LLMKIT_PROMPT_HASH, p.hash.as_str());
        }
        if !meta.context_ids.is_empty() {
            span.record(sc::LLMKIT_CONTEXT_IDS, meta.context_ids.join(",").as_str());
        }
        if let Some(t) = &meta.tenant {
            span.record(sc::LLMKIT_TENANT, t.as_str());
        }
        if let Some(c) = &meta.conversation_id {
            span.record(sc::GEN_AI_CONVERSATION_ID, c.as_str());
        }

        let mut record = CallRecord {
            schema: RECORD_SCHEMA_VERSION,
            request_id: meta.request_id.clone(),
            idempotency_key: meta.idempotency_key.clone(),
            operation: sc::OPERATION_CHAT.to_owned(),
            stream,
            provider: info.provider.clone(),
            request_model,
            prompt: meta.prompt.clone(),
            tenant: meta.tenant.clone(),
            conversation_id: meta.conversation_id.clone(),
            server: info.server.clone(),
            context_ids: meta.context_ids.clone(),
            params: RequestParams {
                temperature: req.temperature,
                top_p: req.top_p,
                max_tokens: req.max_tokens,
                seed: req.seed,
            },
            attempts: 1,
            ..Default::default()
        };
        if self.capture.is_enabled() {
            let (system, messages) = self.capture.input(&req.messages, info.system_instructions);
            if let Some(system) = &system {
                span.record(sc::GEN_AI_SYSTEM_INSTRUCTIONS, system.as_str());
            }
            span.record(sc::GEN_AI_INPUT_MESSAGES, messages.as_str());
            record.system_instructions = system;
            record.input = Some(messages);
        }
        CallCtx {
            span,
            otel,
            start: Instant::now(),
            record: Box::new(record),
        }
    }

    fn succeed(&self, ctx: CallCtx, resp: &mut ChatResponse) {
        let CallCtx {
            span,
            otel,
            start,
            mut record,
        } = ctx;
        resp.latency = start.elapsed();
        self.prices.price_response(resp);
        let trail = TrailFacts::of(&resp.trail);

        span.record(sc::GEN_AI_RESPONSE_MODEL, resp.model.as_str());
        span.record(sc::GEN_AI_USAGE_INPUT_TOKENS, int(resp.usage.input_tokens));
        span.record(
            sc::GEN_AI_USAGE_OUTPUT_TOKENS,
            int(resp.usage.output_tokens),
        );
        span.record(
            sc::GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
            int(resp.usage.cached_input_tokens),
        );
        span.record(
            sc::GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
            int(resp.usage.cache_write_tokens),
        );
        if resp.usage.reasoning_tokens > 0 {
            span.record(
                sc::GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
                int(resp.usage.reasoning_tokens),
            );
        }
        // Formatted values cost an allocation each: only build them for a span someone reads.
        let live = !span.is_disabled();
        if live {
            record_strings(
                &span,
                otel,
                sc::GEN_AI_RESPONSE_FINISH_REASONS,
                &[resp.finish_reason.as_str()],
            );
        }
        if let Some(id) = &resp.provider_request_id {
            span.record(sc::GEN_AI_RESPONSE_ID, id.as_str());
        }
        if record.request_id.is_none() {
            if let Some(id) = &resp.request_id {
                span.record(sc::LLMKIT_REQUEST_ID, id.as_str());
            }
            record.request_id.clone_from(&resp.request_id);
        }
        span.record(sc::LLMKIT_CACHE_HIT, trail.cache_hit);
        span.record(sc::LLMKIT_ATTEMPTS, i64::from(trail.attempts));
        self.record_cost(&span, resp.cost.as_ref());
        if self.capture.is_enabled() {
            let messages = self
                .capture
                .output_messages(&resp.message, &resp.finish_reason);
            span.record(sc::GEN_AI_OUTPUT_MESSAGES, messages.as_str());
            record.output = Some(messages);
        }

        record
            .provider_request_id
            .clone_from(&resp.provider_request_id);
        record.provider.clone_from(&resp.provider);
        record.response_model = Some(resp.model.clone());
        if record.prompt.is_none() {
            record.prompt.clone_from(&resp.prompt);
        }
        record.usage = Some(resp.usage);
        record.cost.clone_from(&resp.cost);
        record.cost_unknown = resp.cost.is_none();
        record.finish_reason = Some(resp.finish_reason.as_str().to_owned());
        record.attempts = trail.attempts;
        record.cache_hit = trail.cache_hit;
        record.fallback = trail.fallback;
        record.reasks = trail.reasks;
        record.trail = resp.trail.clone();
        self.finish(record, resp.latency);
    }

    fn fail(&self, ctx: CallCtx, err: &Error) {
        let CallCtx {
            span,
            start,
            mut record,
            ..
        } = ctx;
        let latency = start.elapsed();
        // Requests actually sent: an open circuit or a refused budget sent none (issue 17).
        let attempts = u32::try_from(err.requests_sent()).unwrap_or(u32::MAX);
        span.record(sc::ERROR_TYPE, err.kind().as_str());
        span.record(sc::OTEL_STATUS_CODE, "error");
        span.record(sc::LLMKIT_ATTEMPTS, i64::from(attempts));
        if let Some(id) = err.provider_request_id() {
            span.record(sc::GEN_AI_RESPONSE_ID, id);
        }
        if record.request_id.is_none() {
            record.request_id = err.request_id().map(str::to_owned);
        }
        if record.prompt.is_none() {
            record.prompt = err.prompt().cloned();
        }
        record.provider_request_id = err.provider_request_id().map(str::to_owned);
        record.error_type = Some(err.kind());
        record.error_message = Some(err.message().to_owned());
        record.attempts = attempts;
        drop(span);
        self.finish(record, latency);
    }

    fn finish(&self, mut record: Box<CallRecord>, latency: Duration) {
        // Whole microseconds, so paused-clock tests see exact milliseconds.
        record.latency_ms = latency.as_micros() as f64 / 1000.0;
        record.ts_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.metrics.record(&record);
        if let Some(d) = &self.drift {
            d.observe(&record);
        }
        if let Some((last, rest)) = self.exports.split_last() {
            for q in rest {
                if !q.try_export_boxed(record.clone()) {
                    self.metrics.record_dropped(1);
                }
            }
            if !last.try_export_boxed(record) {
                self.metrics.record_dropped(1);
            }
        }
    }
}

/// A count as a signed integer field: `tracing-opentelemetry` exports `i64` fields as OTLP
/// integers but `u64` ones as text (found by reading spans back from Phoenix, issue 19).
fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `gen_ai.output.type` of a request: `json` when it asks for JSON, none for plain text (the
/// conventions set it only when the request names an output format).
fn output_type(format: &ResponseFormat) -> Option<&'static str> {
    match format {
        ResponseFormat::Text => None,
        ResponseFormat::Json | ResponseFormat::JsonSchema { .. } => Some("json"),
    }
}

/// Whether `tracing-opentelemetry` exports this span (its layer is in the subscriber).
#[cfg(feature = "otel")]
fn exported_to_otel(span: &Span) -> bool {
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    !span.is_disabled() && span.context().span().span_context().is_valid()
}

#[cfg(not(feature = "otel"))]
fn exported_to_otel(_span: &Span) -> bool {
    false
}

/// Records a string-array attribute: as an OpenTelemetry string array when the span is exported
/// by `tracing-opentelemetry` (a `tracing` field cannot hold an array), else as JSON text in the
/// declared field so other subscribers see the same list. Never both, so an exported span
/// carries the key once.
fn record_strings(span: &Span, otel: bool, key: &'static str, values: &[&str]) {
    #[cfg(feature = "otel")]
    if otel {
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        let values: Vec<opentelemetry::StringValue> =
            values.iter().map(|v| (*v).to_owned().into()).collect();
        span.set_attribute(key, opentelemetry::Value::Array(values.into()));
        return;
    }
    let _ = otel;
    let json = serde_json::to_string(values).unwrap_or_default();
    span.record(key, json.as_str());
}

/// `0.7f32` as `0.7f64`, not `0.699999988…`: through the shortest decimal text of the `f32`.
fn widen(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(f64::from(v))
}

/// What the layers below wrote in the trail, read by the conventions in
/// [`semconv`](super::semconv).
struct TrailFacts {
    attempts: u32,
    cache_hit: bool,
    fallback: bool,
    reasks: u32,
}

impl TrailFacts {
    fn of(trail: &Trail) -> Self {
        let count = |f: &dyn Fn(&crate::response::TrailEntry) -> bool| {
            u32::try_from(trail.entries().iter().filter(|e| f(e)).count()).unwrap_or(u32::MAX)
        };
        let cache_hit = trail.has(sc::TRAIL_LAYER_CACHE, sc::TRAIL_EVENT_HIT);
        // A hit or a duplicate's shared result sent nothing for this call, whatever the stored
        // response's own trail says.
        let reused = cache_hit
            || trail.has(sc::TRAIL_LAYER_IDEMPOTENCY, sc::TRAIL_EVENT_REPLAYED)
            || trail.has(sc::TRAIL_LAYER_IDEMPOTENCY, sc::TRAIL_EVENT_JOINED);
        // A fallback's cached answer or static default is not a request either.
        let answered_locally = trail.entries().iter().any(|e| {
            e.layer == sc::TRAIL_LAYER_FALLBACK
                && e.event == sc::TRAIL_EVENT_ANSWERED
                && (e.detail == sc::FALLBACK_CACHED_ANSWER
                    || e.detail == sc::FALLBACK_STATIC_DEFAULT)
        });
        let attempts = if reused {
            0
        } else {
            count(&|e| {
                e.event == sc::TRAIL_EVENT_ATTEMPT_FAILED
                    || (e.layer == sc::TRAIL_LAYER_ROUTER && e.event == sc::TRAIL_EVENT_ESCALATED)
            })
            .saturating_add(u32::from(!answered_locally))
        };
        TrailFacts {
            attempts,
            cache_hit,
            fallback: trail.has(sc::TRAIL_LAYER_FALLBACK, sc::TRAIL_EVENT_SKIPPED),
            reasks: count(&|e| {
                e.event == sc::TRAIL_EVENT_REASK
                    || (e.layer == sc::TRAIL_LAYER_STRUCTURED && e.event == sc::TRAIL_EVENT_INVALID)
            }),
        }
    }
}

#[async_trait]
impl ChatModel for Traced {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    fn candidates(&self) -> Vec<crate::model::Candidate> {
        self.inner.candidates()
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let ctx = self.shared.begin(self.inner.info(), &request, false);
        let result = self.inner.chat(request).instrument(ctx.span.clone()).await;
        match result {
            Ok(mut resp) => {
                self.shared.succeed(ctx, &mut resp);
                Ok(resp)
            }
            Err(e) => {
                self.shared.fail(ctx, &e);
                Err(e)
            }
        }
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream> {
        let ctx = self.shared.begin(self.inner.info(), &request, true);
        let result = self
            .inner
            .stream(request)
            .instrument(ctx.span.clone())
            .await;
        match result {
            Ok(inner) => Ok(Box::pin(TracedStream {
                inner,
                acc: StreamAccumulator::new(),
                ctx: Some(ctx),
                shared: self.shared.clone(),
                info: self.inner.info().clone(),
            })),
            Err(e) => {
                self.shared.fail(ctx, &e);
                Err(e)
            }
        }
    }
}

/// Forwards a stream unchanged and closes the call's span when it ends: with usage and cost
/// after `Done`, with an error when it fails, is cut off, or is dropped early (`cancelled`).
struct TracedStream {
    inner: ChatStream,
    acc: StreamAccumulator,
    ctx: Option<CallCtx>,
    shared: Arc<Shared>,
    info: ModelInfo,
}

impl TracedStream {
    fn end_ok_or_cut(&mut self) {
        let Some(ctx) = self.ctx.take() else { return };
        let acc = std::mem::take(&mut self.acc);
        match acc.finish(&self.info) {
            Ok(mut resp) => {
                resp.request_id.clone_from(&ctx.record.request_id);
                resp.prompt.clone_from(&ctx.record.prompt);
                self.shared.succeed(ctx, &mut resp);
            }
            Err(e) => self.shared.fail(ctx, &e),
        }
    }
}

impl Stream for TracedStream {
    type Item = Result<StreamEvent>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let polled = match &this.ctx {
            Some(ctx) => {
                let _entered = ctx.span.enter();
                this.inner.poll_next_unpin(cx)
            }
            None => this.inner.poll_next_unpin(cx),
        };
        match &polled {
            Poll::Ready(Some(Ok(event))) => {
                // Usage may follow `Done` (OpenAI sends it last), so the call is closed at the
                // end of the stream, or on drop once `Done` was seen.
                this.acc.push(event);
            }
            Poll::Ready(Some(Err(e))) => {
                if let Some(ctx) = this.ctx.take() {
                    this.shared.fail(ctx, e);
                }
            }
            Poll::Ready(None) => this.end_ok_or_cut(),
            Poll::Pending => {}
        }
        polled
    }
}

impl Drop for TracedStream {
    fn drop(&mut self) {
        if self.acc.is_done() {
            self.end_ok_or_cut();
        }
        if let Some(ctx) = self.ctx.take() {
            let err = Error::new(
                ErrorKind::Cancelled,
                "stream dropped by the caller before it ended",
            );
            self.shared.fail(ctx, &err);
        }
    }
}

/// Embedding calls: one `embeddings {model}` span and one [`CallRecord`] (operation
/// `embeddings`) per call, priced with the same [`PriceTable`]. Kept apart from the chat code
/// above so the two evolve independently.
mod embeddings {
    use std::sync::Arc;

    use async_trait::async_trait;
    use tokio::time::Instant;
    use tracing::field::Empty;
    use tracing::{Instrument as _, Span};

    use super::{CallCtx, Shared, TrailFacts, sc};
    use crate::error::Result;
    use crate::model::{EmbeddingModel, ModelInfo};
    use crate::response::{Cost, EmbeddingRequest, EmbeddingResponse};
    use crate::telemetry::sink::{CallRecord, RECORD_SCHEMA_VERSION};

    /// The operation name of embedding calls (`gen_ai.operation.name`).
    pub(super) const OPERATION: &str = sc::OPERATION_EMBEDDINGS;

    pub(super) struct TracedEmbedding {
        pub(super) inner: Arc<dyn EmbeddingModel>,
        pub(super) shared: Arc<Shared>,
    }

    impl Shared {
        /// Records a call's cost (or that it is unknown) and the price table on its span, for
        /// chat and embedding calls alike.
        pub(super) fn record_cost(&self, span: &Span, cost: Option<&Cost>) {
            match cost {
                Some(c) => {
                    // Formatted values cost an allocation: only for a span someone reads.
                    if !span.is_disabled() {
                        span.record(sc::LLMKIT_COST_USD, c.total_usd.to_string().as_str());
                    }
                    span.record(sc::LLMKIT_PRICE_TABLE, c.price_table.as_str());
                    span.record(sc::LLMKIT_COST_UNKNOWN, false);
                }
                None => {
                    span.record(sc::LLMKIT_PRICE_TABLE, self.prices.version());
                    span.record(sc::LLMKIT_COST_UNKNOWN, true);
                }
            }
        }

        fn begin_embedding(
            &self,
            info: &ModelInfo,
            req: &EmbeddingRequest,
            dimensions: Option<usize>,
        ) -> CallCtx {
            let request_model = req.model.clone().unwrap_or_else(|| info.model.clone());
            let span = tracing::info_span!(
                target: sc::TARGET,
                sc::SPAN_CALL,
                { sc::OTEL_NAME } = %format_args!("{OPERATION} {request_model}"),
                { sc::OTEL_KIND } = "client",
                { sc::OTEL_STATUS_CODE } = Empty,
                { sc::GEN_AI_OPERATION_NAME } = OPERATION,
                { sc::GEN_AI_PROVIDER_NAME } = %info.provider,
                { sc::GEN_AI_SYSTEM } = Empty,
                { sc::SERVER_ADDRESS } = Empty,
                { sc::SERVER_PORT } = Empty,
                { sc::GEN_AI_EMBEDDINGS_DIMENSION_COUNT } = Empty,
                { sc::GEN_AI_REQUEST_MODEL } = %request_model,
                { sc::GEN_AI_RESPONSE_MODEL } = Empty,
                { sc::GEN_AI_USAGE_INPUT_TOKENS } = Empty,
                { sc::GEN_AI_RESPONSE_ID } = Empty,
                { sc::ERROR_TYPE } = Empty,
                { sc::LLMKIT_REQUEST_ID } = Empty,
                { sc::LLMKIT_CACHE_HIT } = Empty,
                { sc::LLMKIT_ATTEMPTS } = Empty,
                { sc::LLMKIT_COST_USD } = Empty,
                { sc::LLMKIT_COST_UNKNOWN } = Empty,
                { sc::LLMKIT_PRICE_TABLE } = Empty,
                { sc::LLMKIT_TENANT } = Empty,
                { sc::LLMKIT_STREAM } = false,
            );
            // The same spec attributes as a chat span where the conventions define them for
            // embeddings (server, legacy provider name), plus the dimension count.
            if self.legacy_system {
                span.record(sc::GEN_AI_SYSTEM, sc::legacy_system_name(&info.provider));
            }
            if let Some(server) = &info.server {
                span.record(sc::SERVER_ADDRESS, server.host.as_str());
                span.record(sc::SERVER_PORT, i64::from(server.port));
            }
            if let Some(d) = dimensions {
                span.record(
                    sc::GEN_AI_EMBEDDINGS_DIMENSION_COUNT,
                    i64::try_from(d).unwrap_or(i64::MAX),
                );
            }
            let meta = &req.meta;
            if let Some(id) = &meta.request_id {
                span.record(sc::LLMKIT_REQUEST_ID, id.as_str());
            }
            if let Some(t) = &meta.tenant {
                span.record(sc::LLMKIT_TENANT, t.as_str());
            }
            let record = CallRecord {
                schema: RECORD_SCHEMA_VERSION,
                request_id: meta.request_id.clone(),
                idempotency_key: meta.idempotency_key.clone(),
                operation: OPERATION.to_owned(),
                provider: info.provider.clone(),
                request_model,
                tenant: meta.tenant.clone(),
                server: info.server.clone(),
                context_ids: meta.context_ids.clone(),
                attempts: 1,
                ..Default::default()
            };
            CallCtx {
                otel: super::exported_to_otel(&span),
                span,
                start: Instant::now(),
                record: Box::new(record),
            }
        }

        fn succeed_embedding(&self, ctx: CallCtx, resp: &mut EmbeddingResponse) {
            let CallCtx {
                span,
                start,
                mut record,
                ..
            } = ctx;
            let latency = start.elapsed();
            self.prices.price_embedding(resp);
            let trail = TrailFacts::of(&resp.trail);
            span.record(sc::GEN_AI_RESPONSE_MODEL, resp.model.as_str());
            span.record(
                sc::GEN_AI_USAGE_INPUT_TOKENS,
                super::int(resp.usage.input_tokens),
            );
            span.record(sc::LLMKIT_CACHE_HIT, trail.cache_hit);
            span.record(sc::LLMKIT_ATTEMPTS, i64::from(trail.attempts));
            if record.request_id.is_none() {
                if let Some(id) = &resp.request_id {
                    span.record(sc::LLMKIT_REQUEST_ID, id.as_str());
                }
                record.request_id.clone_from(&resp.request_id);
            }
            self.record_cost(&span, resp.cost.as_ref());
            record.provider.clone_from(&resp.provider);
            record.response_model = Some(resp.model.clone());
            record.usage = Some(resp.usage);
            record.cost.clone_from(&resp.cost);
            record.cost_unknown = resp.cost.is_none();
            record.attempts = trail.attempts;
            record.cache_hit = trail.cache_hit;
            record.trail = resp.trail.clone();
            self.finish(record, latency);
        }
    }

    #[async_trait]
    impl EmbeddingModel for TracedEmbedding {
        fn info(&self) -> &ModelInfo {
            self.inner.info()
        }

        fn dimensions(&self) -> Option<usize> {
            self.inner.dimensions()
        }

        async fn embed(&self, request: EmbeddingRequest) -> Result<EmbeddingResponse> {
            let ctx =
                self.shared
                    .begin_embedding(self.inner.info(), &request, self.inner.dimensions());
            let result = self.inner.embed(request).instrument(ctx.span.clone()).await;
            match result {
                Ok(mut resp) => {
                    self.shared.succeed_embedding(ctx, &mut resp);
                    Ok(resp)
                }
                Err(e) => {
                    self.shared.fail(ctx, &e);
                    Err(e)
                }
            }
        }
    }
}
