#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Telemetry: span attributes, content capture and redaction, JSON-lines records, the export
//! queue, metrics and histograms, drift rules.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use llmkit_core::telemetry::semconv as sc;
use llmkit_core::telemetry::{
    CallRecord, CaptureConfig, DriftAlert, DriftMonitor, DriftRule, ExportQueue, JsonLinesSink,
    LogHistogram, MemorySink, MetricsRegistry, RecordSink, Signal, TraceLayer, TraceLayerBuilder,
};
use llmkit_core::{
    ChatModel, ChatRequest, ChatResponse, ChatStream, ErrorKind, Layer, Message, ModelInfo,
    Pipeline, PromptRef, Reply, ScriptedModel, collect_stream,
};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};

// ------------------------------------------------------------------ a recording subscriber

#[derive(Debug, Clone, Default)]
struct SpanData {
    name: String,
    fields: BTreeMap<String, String>,
    events: Vec<(String, BTreeMap<String, String>)>,
    closed: bool,
}

#[derive(Clone, Default)]
struct Recorder {
    spans: Arc<Mutex<BTreeMap<u64, SpanData>>>,
}

struct FieldVisitor<'a>(&'a mut BTreeMap<String, String>);

impl Visit for FieldVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>>
    tracing_subscriber::Layer<S> for Recorder
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _ctx: Context<'_, S>) {
        let mut data = SpanData {
            name: attrs.metadata().name().to_owned(),
            ..Default::default()
        };
        attrs.record(&mut FieldVisitor(&mut data.fields));
        self.spans.lock().unwrap().insert(id.into_u64(), data);
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        if let Some(d) = self.spans.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut FieldVisitor(&mut d.fields));
        }
    }
    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let Some(parent) = ctx.event_span(event) else {
            return;
        };
        let mut fields = BTreeMap::new();
        event.record(&mut FieldVisitor(&mut fields));
        if let Some(d) = self.spans.lock().unwrap().get_mut(&parent.id().into_u64()) {
            d.events.push((event.metadata().name().to_owned(), fields));
        }
    }
    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        if let Some(d) = self.spans.lock().unwrap().get_mut(&id.into_u64()) {
            d.closed = true;
        }
    }
}

impl Recorder {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let guard =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(self.clone()));
        // Callsite interest is cached process-wide: a callsite first hit on another test
        // thread while no recorder was live can stay cached as "never", and this thread's
        // recorder then sees no span (seen as a flaky failure under full-suite load).
        // Rebuilding after the recorder is live makes every callsite ask it again.
        tracing::callsite::rebuild_interest_cache();
        guard
    }
    fn calls(&self) -> Vec<SpanData> {
        self.spans
            .lock()
            .unwrap()
            .values()
            .filter(|s| s.name == sc::SPAN_CALL)
            .cloned()
            .collect()
    }
}

/// A traced pipeline over `provider` whose records land in a memory sink.
fn traced(
    trace: TraceLayerBuilder,
    provider: Arc<ScriptedModel>,
) -> (Arc<dyn ChatModel>, MemorySink, ExportQueue) {
    let sink = MemorySink::new();
    let queue = ExportQueue::spawn(Arc::new(sink.clone()), 16);
    let model = Pipeline::builder()
        .layer(trace.export(queue.clone()).build())
        .build(provider);
    (model, sink, queue)
}

fn prompt(version: &str) -> PromptRef {
    PromptRef {
        id: "refund_verdict".into(),
        version: version.into(),
        hash: "a1b2c3d4e5f6a7b8".into(),
    }
}

fn openai(builder: llmkit_core::ScriptedModelBuilder) -> Arc<ScriptedModel> {
    Arc::new(builder.provider("openai").model("gpt-4o-mini").build())
}

// ------------------------------------------------------------------------------- spans

#[tokio::test]
async fn chat_span_carries_genai_and_llmkit_attributes() {
    let rec = Recorder::default();
    let _guard = rec.install();
    let model = Pipeline::builder()
        .layer(TraceLayer::new())
        .build(openai(ScriptedModel::builder().reply("approve")));
    let mut req = ChatRequest::new(vec![Message::system("Decide."), Message::user("refund?")])
        .with_temperature(0.7)
        .with_max_tokens(100)
        .with_seed(7)
        .with_prompt(prompt("3"))
        .with_tenant("acme");
    req.top_p = Some(0.5);
    req.meta.context_ids = vec!["doc1#0".into(), "doc2#3".into()];
    let resp = model.chat(req).await.unwrap();

    let calls = rec.calls();
    assert_eq!(calls.len(), 1);
    let f = &calls[0].fields;
    let get = |k: &str| {
        f.get(k)
            .cloned()
            .unwrap_or_else(|| panic!("missing {k} in {f:?}"))
    };
    assert_eq!(get(sc::GEN_AI_OPERATION_NAME), "chat");
    assert_eq!(get(sc::GEN_AI_PROVIDER_NAME), "openai");
    assert_eq!(get(sc::GEN_AI_REQUEST_MODEL), "gpt-4o-mini");
    assert_eq!(get(sc::GEN_AI_RESPONSE_MODEL), "gpt-4o-mini");
    assert_eq!(
        get(sc::GEN_AI_USAGE_INPUT_TOKENS),
        resp.usage.input_tokens.to_string()
    );
    assert_eq!(
        get(sc::GEN_AI_USAGE_OUTPUT_TOKENS),
        resp.usage.output_tokens.to_string()
    );
    assert_eq!(get(sc::GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS), "0");
    assert_eq!(get(sc::GEN_AI_RESPONSE_FINISH_REASONS), "[\"stop\"]");
    assert_eq!(get(sc::GEN_AI_RESPONSE_ID), "scripted-1");
    assert_eq!(
        get(sc::GEN_AI_REQUEST_TEMPERATURE),
        "0.7",
        "no f32 widening noise"
    );
    assert_eq!(get(sc::GEN_AI_REQUEST_TOP_P), "0.5");
    assert_eq!(get(sc::GEN_AI_REQUEST_MAX_TOKENS), "100");
    assert_eq!(get(sc::GEN_AI_REQUEST_SEED), "7");
    assert_eq!(get(sc::LLMKIT_REQUEST_ID), resp.request_id.clone().unwrap());
    assert_eq!(get(sc::LLMKIT_PROMPT_ID), "refund_verdict");
    assert_eq!(get(sc::LLMKIT_PROMPT_VERSION), "3");
    assert_eq!(get(sc::LLMKIT_PROMPT_HASH), "a1b2c3d4e5f6a7b8");
    assert_eq!(get(sc::LLMKIT_CONTEXT_IDS), "doc1#0,doc2#3");
    assert_eq!(get(sc::LLMKIT_TENANT), "acme");
    assert_eq!(get(sc::LLMKIT_CACHE_HIT), "false");
    assert_eq!(get(sc::LLMKIT_ATTEMPTS), "1");
    assert_eq!(get(sc::LLMKIT_STREAM), "false");
    let cost = resp.cost.clone().expect("gpt-4o-mini is priced");
    assert_eq!(get(sc::LLMKIT_COST_USD), cost.total_usd.to_string());
    assert_eq!(get(sc::LLMKIT_PRICE_TABLE), cost.price_table);
    assert_eq!(get(sc::LLMKIT_COST_UNKNOWN), "false");
    assert_eq!(get(sc::OTEL_NAME), "chat gpt-4o-mini");
    assert!(!f.contains_key(sc::ERROR_TYPE));
    for absent in [
        sc::GEN_AI_SYSTEM,
        sc::GEN_AI_OUTPUT_TYPE,
        sc::GEN_AI_CONVERSATION_ID,
        sc::GEN_AI_REQUEST_STOP_SEQUENCES,
        sc::GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
        sc::SERVER_ADDRESS,
        sc::GEN_AI_INPUT_MESSAGES,
    ] {
        assert!(
            !f.contains_key(absent),
            "{absent} recorded without a source"
        );
    }
    assert!(calls[0].closed);
}

/// A scripted provider that says where it lives, as HTTP providers do, and reports reasoning
/// tokens, as reasoning models do.
struct AtServer(Arc<ScriptedModel>, ModelInfo);

#[async_trait]
impl ChatModel for AtServer {
    fn info(&self) -> &ModelInfo {
        &self.1
    }
    async fn chat(&self, request: ChatRequest) -> llmkit_core::Result<ChatResponse> {
        let mut resp = self.0.chat(request).await?;
        resp.usage.output_tokens += 25;
        resp.usage.reasoning_tokens = 25;
        Ok(resp)
    }
    async fn stream(&self, request: ChatRequest) -> llmkit_core::Result<ChatStream> {
        self.0.stream(request).await
    }
}

#[tokio::test]
async fn spec_attributes_server_conversation_output_type_stops_reasoning_and_legacy_system() {
    let rec = Recorder::default();
    let _guard = rec.install();
    let scripted = Arc::new(
        ScriptedModel::builder()
            .provider("azure.ai.openai")
            .model("gpt-4o")
            .reply("{\"ok\":true}")
            .build(),
    );
    let info = ModelInfo::new("azure.ai.openai", "gpt-4o")
        .with_server_url("https://acme.openai.azure.com/openai/deployments/gpt-4o");
    let model = Pipeline::builder()
        .layer(TraceLayer::builder().legacy_system_attribute(true).build())
        .build(Arc::new(AtServer(scripted, info)));
    let mut req = ChatRequest::user("json please")
        .with_conversation_id("conv_42")
        .with_response_format(llmkit_core::ResponseFormat::Json);
    req.stop = vec!["END".into(), "\n\n".into()];
    model.chat(req).await.unwrap();
    let f = &rec.calls()[0].fields;
    assert_eq!(f[sc::GEN_AI_PROVIDER_NAME], "azure.ai.openai");
    assert_eq!(f[sc::GEN_AI_SYSTEM], "az.ai.openai", "the v1.36 value");
    assert_eq!(f[sc::SERVER_ADDRESS], "acme.openai.azure.com");
    assert_eq!(f[sc::SERVER_PORT], "443");
    assert_eq!(f[sc::GEN_AI_CONVERSATION_ID], "conv_42");
    assert_eq!(f[sc::GEN_AI_OUTPUT_TYPE], "json");
    assert_eq!(f[sc::GEN_AI_REQUEST_STOP_SEQUENCES], r#"["END","\n\n"]"#);
    assert_eq!(f[sc::GEN_AI_USAGE_REASONING_OUTPUT_TOKENS], "25");
    assert_eq!(f[sc::GEN_AI_RESPONSE_FINISH_REASONS], r#"["stop"]"#);
}

#[tokio::test]
async fn failed_call_records_error_type_and_attempts() {
    let rec = Recorder::default();
    let _guard = rec.install();
    let (model, sink, queue) = traced(
        TraceLayer::builder(),
        openai(ScriptedModel::builder().reply(Reply::rate_limited(Duration::from_secs(1)))),
    );
    let err = model
        .chat(ChatRequest::user("hi").with_prompt(prompt("1")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    let f = &rec.calls()[0].fields;
    assert_eq!(f[sc::ERROR_TYPE], "rate_limited");
    assert_eq!(f[sc::OTEL_STATUS_CODE], "error");
    assert_eq!(f[sc::LLMKIT_ATTEMPTS], "1");
    assert!(!f.contains_key(sc::GEN_AI_USAGE_INPUT_TOKENS));
    queue.flush().await;
    let r = &sink.records()[0];
    assert_eq!(r.error_type, Some(ErrorKind::RateLimited));
    assert_eq!(r.prompt.as_ref().unwrap().version, "1");
    assert!(r.usage.is_none() && r.cost.is_none() && !r.cost_unknown);
}

#[tokio::test]
async fn stream_span_closes_with_usage_when_the_stream_ends() {
    let rec = Recorder::default();
    let _guard = rec.install();
    let sink = MemorySink::new();
    let queue = ExportQueue::spawn(Arc::new(sink.clone()), 16);
    let provider = openai(ScriptedModel::builder().reply("a streamed answer of some length"));
    let model = Pipeline::builder()
        .layer(TraceLayer::builder().export(queue.clone()).build())
        .build(provider.clone());
    let stream = model
        .stream(ChatRequest::user("go").with_prompt(prompt("2")))
        .await
        .unwrap();
    assert!(
        !rec.calls()[0]
            .fields
            .contains_key(sc::GEN_AI_USAGE_OUTPUT_TOKENS),
        "not before the end"
    );
    let resp = collect_stream(stream, provider.info()).await.unwrap();
    let span = &rec.calls()[0];
    assert!(span.closed);
    assert_eq!(span.fields[sc::LLMKIT_STREAM], "true");
    assert_eq!(
        span.fields[sc::GEN_AI_USAGE_OUTPUT_TOKENS],
        resp.usage.output_tokens.to_string()
    );
    assert!(span.fields.contains_key(sc::LLMKIT_COST_USD));
    queue.flush().await;
    let r = &sink.records()[0];
    assert!(r.stream);
    assert_eq!(r.usage, Some(resp.usage));
    assert!(r.cost.is_some());
    assert_eq!(r.prompt.as_ref().unwrap().version, "2");
}

#[tokio::test]
async fn stream_dropped_early_is_recorded_as_cancelled_and_cut_stream_as_truncated() {
    let (model, sink, queue) = traced(
        TraceLayer::builder(),
        openai(
            ScriptedModel::builder()
                .reply("a long reply that the caller abandons")
                .reply(Reply::CutStream("half an ans".into())),
        ),
    );
    let mut s = model.stream(ChatRequest::user("a")).await.unwrap();
    let _first = s.next().await;
    drop(s);
    let s: ChatStream = model.stream(ChatRequest::user("b")).await.unwrap();
    let _all: Vec<_> = s.collect().await;
    queue.flush().await;
    let kinds: Vec<_> = sink.records().iter().map(|r| r.error_type).collect();
    assert_eq!(
        kinds,
        vec![Some(ErrorKind::Cancelled), Some(ErrorKind::Truncated)]
    );
}

// ----------------------------------------------------------------------------- capture

#[tokio::test]
async fn content_is_not_captured_by_default() {
    let rec = Recorder::default();
    let _guard = rec.install();
    let (model, sink, queue) = traced(
        TraceLayer::builder(),
        openai(ScriptedModel::builder().reply("secret answer")),
    );
    model
        .chat(ChatRequest::user("my email is a@b.com"))
        .await
        .unwrap();
    queue.flush().await;
    let f = &rec.calls()[0].fields;
    assert!(
        !f.contains_key(sc::GEN_AI_INPUT_MESSAGES) && !f.contains_key(sc::GEN_AI_OUTPUT_MESSAGES)
    );
    let line = serde_json::to_string(&sink.records()[0]).unwrap();
    assert!(!line.contains("a@b.com") && !line.contains("secret answer"));
}

#[tokio::test]
async fn captured_content_is_redacted_before_it_is_recorded_and_capped() {
    let rec = Recorder::default();
    let _guard = rec.install();
    let (model, sink, queue) = traced(
        TraceLayer::builder().capture(CaptureConfig::enabled().max_chars(40)),
        openai(ScriptedModel::builder().reply(
            "Sure, I emailed jane.doe@corp.example and used key sk-proj-ABCDEFGHIJKLMNOPQRSTUV",
        )),
    );
    model
        .chat(ChatRequest::user(
            "card 4242 4242 4242 4242, phone +44 20 7946 0958",
        ))
        .await
        .unwrap();
    let f = &rec.calls()[0].fields;
    let input = &f[sc::GEN_AI_INPUT_MESSAGES];
    let output = &f[sc::GEN_AI_OUTPUT_MESSAGES];
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(input).unwrap(),
        serde_json::json!([{"role": "user", "parts": [
            {"type": "text", "content": "card [CARD], phone [PHONE]"}]}])
    );
    let out: serde_json::Value = serde_json::from_str(output).unwrap();
    assert_eq!(out[0]["role"], "assistant");
    assert_eq!(out[0]["finish_reason"], "stop");
    let text = out[0]["parts"][0]["content"].as_str().unwrap();
    assert!(
        text.contains("[EMAIL]") && !text.contains("jane.doe"),
        "{text}"
    );
    assert!(!output.contains("sk-proj"));
    assert_eq!(text.chars().count(), 41, "40 kept plus the ellipsis");
    queue.flush().await;
    assert_eq!(sink.records()[0].input.as_deref(), Some(input.as_str()));
    assert_eq!(sink.records()[0].output.as_deref(), Some(output.as_str()));
}

#[tokio::test]
async fn system_instructions_are_recorded_apart_where_the_provider_takes_them_apart() {
    let request = || {
        ChatRequest::new(vec![
            llmkit_core::Message::system("You triage refunds for ann@example.com's shop."),
            llmkit_core::Message::user("refund order 7"),
        ])
    };
    // Anthropic-shaped: `system` is a field of its own on the wire.
    let rec = Recorder::default();
    let _guard = rec.install();
    let (model, sink, queue) = traced(
        TraceLayer::builder().capture(CaptureConfig::enabled()),
        Arc::new(
            ScriptedModel::builder()
                .provider("anthropic")
                .system_instructions(llmkit_core::SystemInstructions::Separate)
                .reply("ok")
                .build(),
        ),
    );
    model.chat(request()).await.unwrap();
    let f = &rec.calls()[0].fields;
    let system: serde_json::Value =
        serde_json::from_str(&f[sc::GEN_AI_SYSTEM_INSTRUCTIONS]).unwrap();
    assert_eq!(
        system,
        serde_json::json!([{"type": "text",
            "content": "You triage refunds for [EMAIL]'s shop."}])
    );
    let input: serde_json::Value = serde_json::from_str(&f[sc::GEN_AI_INPUT_MESSAGES]).unwrap();
    assert_eq!(
        input,
        serde_json::json!([{"role": "user", "parts": [
            {"type": "text", "content": "refund order 7"}]}])
    );
    queue.flush().await;
    assert_eq!(
        sink.records()[0].system_instructions.as_deref(),
        Some(f[sc::GEN_AI_SYSTEM_INSTRUCTIONS].as_str())
    );

    // OpenAI-shaped: the system message is part of the history.
    let rec = Recorder::default();
    let _guard = rec.install();
    let (model, sink, queue) = traced(
        TraceLayer::builder().capture(CaptureConfig::enabled()),
        openai(ScriptedModel::builder().reply("ok")),
    );
    model.chat(request()).await.unwrap();
    let f = &rec.calls()[0].fields;
    assert!(!f.contains_key(sc::GEN_AI_SYSTEM_INSTRUCTIONS));
    let input: serde_json::Value = serde_json::from_str(&f[sc::GEN_AI_INPUT_MESSAGES]).unwrap();
    assert_eq!(input[0]["role"], "system");
    assert_eq!(input[1]["role"], "user");
    queue.flush().await;
    assert!(sink.records()[0].system_instructions.is_none());
}

#[tokio::test]
async fn a_closure_is_a_redactor() {
    let (model, sink, queue) = traced(
        TraceLayer::builder()
            .capture(CaptureConfig::enabled().redactor(|s: &str| s.replace("Alice", "[NAME]"))),
        openai(ScriptedModel::builder().reply("hello Alice")),
    );
    model.chat(ChatRequest::user("I am Alice")).await.unwrap();
    queue.flush().await;
    let r = &sink.records()[0];
    let json = |s: &Option<String>| {
        serde_json::from_str::<serde_json::Value>(s.as_deref().unwrap()).unwrap()
    };
    assert_eq!(
        json(&r.input),
        serde_json::json!([{"role": "user", "parts": [{"type": "text", "content": "I am [NAME]"}]}])
    );
    assert_eq!(
        json(&r.output),
        serde_json::json!([{"role": "assistant", "parts": [{"type": "text", "content": "hello [NAME]"}],
            "finish_reason": "stop"}])
    );
}

// ------------------------------------------------------------------- trail conventions

/// A stand-in for retry, cache and fallback layers: writes their trail notes.
struct Notes(Vec<(&'static str, &'static str)>);
struct NotesModel(Arc<dyn ChatModel>, Vec<(&'static str, &'static str)>);

impl Layer for Notes {
    fn layer(&self, inner: Arc<dyn ChatModel>) -> Arc<dyn ChatModel> {
        Arc::new(NotesModel(inner, self.0.clone()))
    }
}

#[async_trait]
impl ChatModel for NotesModel {
    fn info(&self) -> &ModelInfo {
        self.0.info()
    }
    async fn chat(&self, request: ChatRequest) -> llmkit_core::Result<ChatResponse> {
        let mut resp = self.0.chat(request).await?;
        for (layer, event) in &self.1 {
            resp.trail.push(*layer, *event, "");
        }
        Ok(resp)
    }
}

#[tokio::test]
async fn attempts_cache_hits_fallbacks_and_reasks_are_read_from_the_trail() {
    let sink = MemorySink::new();
    let queue = ExportQueue::spawn(Arc::new(sink.clone()), 16);
    let model = Pipeline::builder()
        .layer(TraceLayer::builder().export(queue.clone()).build())
        .layer(Notes(vec![
            (sc::TRAIL_LAYER_RETRY, sc::TRAIL_EVENT_ATTEMPT_FAILED),
            (sc::TRAIL_LAYER_RETRY, sc::TRAIL_EVENT_ATTEMPT_FAILED),
            (sc::TRAIL_LAYER_CACHE, sc::TRAIL_EVENT_HIT),
            (sc::TRAIL_LAYER_FALLBACK, sc::TRAIL_EVENT_SKIPPED),
            (sc::TRAIL_LAYER_FALLBACK, "answered"),
            (sc::TRAIL_LAYER_STRUCTURED, sc::TRAIL_EVENT_INVALID),
            ("custom", sc::TRAIL_EVENT_REASK),
        ]))
        .build(openai(ScriptedModel::builder().reply("ok")));
    model.chat(ChatRequest::user("x")).await.unwrap();
    queue.flush().await;
    let r = &sink.records()[0];
    // A cache hit sent no request, whatever the stored trail says (issue 17: attempts are the
    // requests actually sent).
    assert_eq!(r.attempts, 0);
    assert!(r.cache_hit && r.fallback);
    assert_eq!(r.reasks, 2);
    assert_eq!(r.trail.entries().len(), 7);
}

#[tokio::test]
async fn a_fallback_whose_primary_answered_is_not_a_fallback() {
    let sink = MemorySink::new();
    let queue = ExportQueue::spawn(Arc::new(sink.clone()), 16);
    let model = Pipeline::builder()
        .layer(TraceLayer::builder().export(queue.clone()).build())
        .layer(Notes(vec![(sc::TRAIL_LAYER_FALLBACK, "answered")]))
        .build(openai(ScriptedModel::builder().reply("ok")));
    model.chat(ChatRequest::user("x")).await.unwrap();
    queue.flush().await;
    let r = &sink.records()[0];
    assert!(!r.fallback && !r.cache_hit);
    assert_eq!((r.attempts, r.reasks), (1, 0));
}

// -------------------------------------------------------------------- JSON-lines + queue

#[tokio::test]
async fn json_lines_records_answer_which_prompt_version_produced_a_call() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.jsonl");
    let queue = ExportQueue::spawn(Arc::new(JsonLinesSink::create(&path).unwrap()), 64);
    let model = Pipeline::builder()
        .layer(TraceLayer::builder().export(queue.clone()).build())
        .build(openai(
            ScriptedModel::builder()
                .reply("one")
                .reply(Reply::server_error(503))
                .reply("three"),
        ));
    for (i, v) in ["1", "2", "2"].iter().enumerate() {
        let _ = model
            .chat(ChatRequest::user(format!("q{i}")).with_prompt(prompt(v)))
            .await;
    }
    queue.flush().await;
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for l in &lines {
        for key in [
            "schema",
            "ts_unix_ms",
            "request_id",
            "operation",
            "stream",
            "provider",
            "request_model",
            "prompt",
            "latency_ms",
            "attempts",
            "params",
        ] {
            assert!(l.get(key).is_some(), "missing {key} in {l}");
        }
        assert_eq!(l["schema"], 2);
        assert_eq!(l["prompt"]["id"], "refund_verdict");
    }
    assert_eq!(lines[0]["prompt"]["version"], "1");
    assert_eq!(lines[0]["response_model"], "gpt-4o-mini");
    assert_eq!(lines[0]["provider_request_id"], "scripted-1");
    assert!(lines[0]["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(lines[0]["cost"]["price_table"], "2026-11-28");
    assert!(
        lines[0]["cost"]["total_usd"].is_string(),
        "exact decimal as a string"
    );
    assert_eq!(lines[0]["finish_reason"], "stop");
    assert_eq!(lines[1]["error_type"], "server");
    assert_eq!(lines[1]["prompt"]["version"], "2");
    assert!(lines[1].get("usage").is_none());
    // Round trip: the record type reads its own lines.
    let back: CallRecord = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(back.prompt.unwrap().version, "1");
}

/// A sink that blocks until the test opens the gate.
struct Gate(Arc<Mutex<()>>, MemorySink);
impl RecordSink for Gate {
    fn write(&self, record: &CallRecord) -> std::io::Result<()> {
        let _open = self.0.lock().unwrap();
        self.1.write(record)
    }
}

#[tokio::test]
#[allow(clippy::await_holding_lock)] // the held lock is the point: it stalls the sink thread
async fn a_full_export_queue_drops_counts_and_never_blocks_the_call() {
    let gate = Arc::new(Mutex::new(()));
    let closed = gate.lock().unwrap();
    let inner = MemorySink::new();
    let queue = ExportQueue::spawn(Arc::new(Gate(gate.clone(), inner.clone())), 2);
    let metrics = MetricsRegistry::new();
    let model = Pipeline::builder()
        .layer(
            TraceLayer::builder()
                .export(queue.clone())
                .metrics(metrics.clone())
                .build(),
        )
        .build(openai(ScriptedModel::builder().fallback("ok")));
    for _ in 0..10 {
        model.chat(ChatRequest::user("x")).await.unwrap();
    }
    // One record is held by the blocked writer, two wait in the queue, the rest are dropped.
    assert!(queue.dropped() >= 7, "dropped {}", queue.dropped());
    assert_eq!(metrics.snapshot().export_dropped, queue.dropped());
    assert!(
        metrics
            .render_prometheus()
            .contains(&format!("llmkit_export_dropped_total {}", queue.dropped()))
    );
    drop(closed);
    queue.flush().await;
    assert_eq!(inner.records().len() as u64 + queue.dropped(), 10);
    assert_eq!(
        metrics.snapshot().total().requests,
        10,
        "metrics see every call"
    );
}

// -------------------------------------------------------------------------- metrics

#[tokio::test(start_paused = true)]
async fn genai_client_histograms_use_the_conventions_buckets_and_labels() {
    let trace = TraceLayer::new();
    let metrics = trace.metrics().clone();
    let provider = openai(
        ScriptedModel::builder()
            .reply(Reply::Delayed(
                Duration::from_millis(300),
                Box::new(Reply::text("ok")),
            ))
            .reply(Reply::timeout()),
    );
    let model = Pipeline::builder().layer(trace).build(provider);
    let resp = model.chat(ChatRequest::user("hello there")).await.unwrap();
    model.chat(ChatRequest::user("again")).await.unwrap_err();

    let snap = metrics.snapshot();
    assert_eq!(
        snap.genai.len(),
        2,
        "success and failure are separate series"
    );
    let (ok_key, ok) = snap
        .genai
        .iter()
        .find(|(k, _)| k.error_type.is_none())
        .unwrap();
    assert_eq!(ok_key.error_type, None);
    assert_eq!(ok_key.operation, "chat");
    assert_eq!(ok_key.response_model.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(
        ok.duration_s.bounds,
        sc::OPERATION_DURATION_BUCKETS.to_vec()
    );
    assert_eq!(ok.input_tokens.bounds, sc::TOKEN_USAGE_BUCKETS.to_vec());
    // 0.3 s falls in (0.16, 0.32]: the sixth bucket.
    assert_eq!(ok.duration_s.counts[5], 1, "{:?}", ok.duration_s.counts);
    assert_eq!(ok.input_tokens.sum, resp.usage.input_tokens as f64);
    assert_eq!(ok.output_tokens.count, 1);
    let (err_key, err) = snap
        .genai
        .iter()
        .find(|(k, _)| k.error_type.is_some())
        .unwrap();
    assert_eq!(err_key.error_type.as_deref(), Some("timeout"));
    assert_eq!((err.duration_s.count, err.input_tokens.count), (1, 0));

    let text = metrics.render_prometheus();
    assert!(text.contains("# TYPE gen_ai_client_operation_duration_seconds histogram"));
    assert!(text.contains(
        "gen_ai_client_operation_duration_seconds_bucket{gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"openai\",gen_ai_request_model=\"gpt-4o-mini\",gen_ai_response_model=\"gpt-4o-mini\",le=\"0.32\"} 1"
    ), "{text}");
    assert!(
        text.contains("error_type=\"timeout\",le=\"+Inf\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("gen_ai_token_type=\"input\",le=\"16\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_are_labelled_by_provider_model_and_prompt_version() {
    let trace = TraceLayer::new();
    let metrics = trace.metrics().clone();
    let model = Pipeline::builder().layer(trace).build(openai(
        ScriptedModel::builder()
            .reply("a")
            .reply(Reply::timeout())
            .reply("c")
            .reply(Reply::rate_limited(Duration::from_millis(1))),
    ));
    for v in ["1", "1", "2", "2"] {
        let _ = model
            .chat(ChatRequest::user("q").with_prompt(prompt(v)))
            .await;
    }
    let snap = metrics.snapshot();
    let v1 = snap
        .get("openai", "gpt-4o-mini", "refund_verdict@1")
        .unwrap();
    let v2 = snap
        .get("openai", "gpt-4o-mini", "refund_verdict@2")
        .unwrap();
    assert_eq!((v1.requests, v2.requests), (2, 2));
    assert_eq!(v1.errors.get("timeout"), Some(&1));
    assert_eq!(v2.errors.get("rate_limited"), Some(&1));
    assert!(v1.cost_usd > llmkit_core::Decimal::ZERO);
    assert!(v1.cost_per_request().unwrap() > llmkit_core::Decimal::ZERO);
    let total = snap.total();
    assert_eq!(total.requests, 4);
    assert_eq!(total.error_count(), 2);
    assert_eq!(total.input_tokens, v1.input_tokens + v2.input_tokens);
    let text = metrics.render_prometheus();
    assert!(text.contains(
        "llmkit_errors_total{provider=\"openai\",model=\"gpt-4o-mini\",prompt_version=\"refund_verdict@1\",error_type=\"timeout\"} 1"
    ), "{text}");
    assert!(text.contains("llmkit_request_duration_seconds{provider=\"openai\",model=\"gpt-4o-mini\",prompt_version=\"refund_verdict@2\",quantile=\"0.95\"}"));
    assert!(text.contains("# TYPE llmkit_requests_total counter"));
}

fn exact_percentile(sorted: &[u64], q: f64) -> u64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[test]
fn histogram_percentiles_match_known_data_within_bucket_error() {
    let mut h = LogHistogram::new();
    for v in 1..=10_000u64 {
        h.record(v);
    }
    for (q, want) in [(0.5, 5_000.0), (0.95, 9_500.0), (0.99, 9_900.0)] {
        let got = h.percentile(q).unwrap() as f64;
        assert!((got - want).abs() / want < 0.016, "p{q}: {got} vs {want}");
    }
    assert_eq!(h.count(), 10_000);
    assert_eq!(h.sum(), 50_005_000);
    assert_eq!((h.min(), h.max()), (Some(1), Some(10_000)));
    assert_eq!(h.percentile(1.0), Some(10_000));

    // A skewed, latency-like distribution (deterministic LCG, heavy tail).
    let mut x: u64 = 42;
    let mut samples = Vec::new();
    let mut h = LogHistogram::new();
    for _ in 0..50_000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let u = ((x >> 11) as f64 / (1u64 << 53) as f64).max(1e-12);
        let v = (20_000.0 * -u.ln()) as u64 + 1_000; // exponential around 21 ms, in µs
        samples.push(v);
        h.record(v);
    }
    samples.sort_unstable();
    for q in [0.5, 0.9, 0.95, 0.99, 0.999] {
        let want = exact_percentile(&samples, q) as f64;
        let got = h.percentile(q).unwrap() as f64;
        assert!((got - want).abs() / want < 0.016, "p{q}: {got} vs {want}");
    }
}

// ---------------------------------------------------------------------------- drift

fn collecting() -> (
    Arc<Mutex<Vec<DriftAlert>>>,
    impl Fn(&DriftAlert) + Send + Sync + 'static,
) {
    let alerts = Arc::new(Mutex::new(Vec::new()));
    let a = alerts.clone();
    (alerts, move |alert: &DriftAlert| {
        a.lock().unwrap().push(alert.clone())
    })
}

#[tokio::test(start_paused = true)]
async fn p95_latency_rule_fires_when_the_provider_slows_and_is_quiet_before() {
    let (alerts, sink) = collecting();
    let monitor = DriftMonitor::builder()
        .rule(DriftRule::new("p95 latency", Signal::LatencyP95, 10).vs_baseline(2.0))
        .sink(sink)
        .build();
    let provider = openai(
        ScriptedModel::builder()
            .replies((0..20).map(|_| Reply::text("fast").after(Duration::from_millis(100))))
            .replies((0..10).map(|_| Reply::text("slow").after(Duration::from_millis(900)))),
    );
    let model = Pipeline::builder()
        .layer(TraceLayer::builder().drift(monitor).build())
        .build(provider);
    for _ in 0..20 {
        model.chat(ChatRequest::user("q")).await.unwrap();
    }
    assert!(
        alerts.lock().unwrap().is_empty(),
        "steady latency stays quiet"
    );
    for _ in 0..10 {
        model.chat(ChatRequest::user("q")).await.unwrap();
    }
    let alerts = alerts.lock().unwrap();
    assert_eq!(
        alerts.len(),
        1,
        "one alert for a sustained slowdown: {alerts:?}"
    );
    let a = &alerts[0];
    assert_eq!(a.signal, Signal::LatencyP95);
    assert_eq!(a.baseline, Some(100.0));
    assert_eq!(a.expected, 200.0);
    assert_eq!(a.observed, 900.0);
    assert!(a.to_string().contains("p95 latency"));
}

fn record(f: impl FnOnce(&mut CallRecord)) -> CallRecord {
    let mut r = CallRecord {
        latency_ms: 100.0,
        ..Default::default()
    };
    f(&mut r);
    r
}

#[test]
fn error_rate_bound_fires_once_recovers_and_fires_again() {
    let (alerts, sink) = collecting();
    let m = DriftMonitor::builder()
        .rule(DriftRule::new("errors", Signal::ErrorRate, 10).at_most(0.2))
        .sink(sink)
        .build();
    let ok = record(|_| {});
    let bad = record(|r| r.error_type = Some(ErrorKind::Server));
    for i in 0..30 {
        m.observe(if i % 10 == 0 { &bad } else { &ok }); // 10 % errors
    }
    assert!(alerts.lock().unwrap().is_empty());
    for _ in 0..3 {
        m.observe(&bad);
    }
    assert_eq!(alerts.lock().unwrap().len(), 1);
    let a = alerts.lock().unwrap()[0].clone();
    assert!((a.observed - 0.3).abs() < 1e-9 && a.expected == 0.2 && a.baseline.is_none());
    for _ in 0..5 {
        m.observe(&bad);
    }
    assert_eq!(
        alerts.lock().unwrap().len(),
        1,
        "quiet while still breaching"
    );
    for _ in 0..10 {
        m.observe(&ok);
    }
    for _ in 0..3 {
        m.observe(&bad);
    }
    assert_eq!(
        alerts.lock().unwrap().len(),
        2,
        "fires again after recovery"
    );
}

#[test]
fn cost_fallback_validation_and_quality_rules() {
    let (alerts, sink) = collecting();
    let m = DriftMonitor::builder()
        .rule(DriftRule::new("cost", Signal::CostPerRequest, 5).vs_preceding(1.5))
        .rule(DriftRule::new("fallback", Signal::FallbackRate, 5).at_most(0.2))
        .rule(DriftRule::new("validation", Signal::ValidationFailureRate, 5).at_most(0.2))
        .rule(DriftRule::new("quality", Signal::QualityScore, 5).vs_baseline(1.25))
        .sink(sink)
        .build();
    let priced = |usd: i64| {
        record(|r| {
            r.cost = Some(llmkit_core::Cost {
                total_usd: llmkit_core::Decimal::new(usd, 4),
                ..Default::default()
            })
        })
    };
    for _ in 0..10 {
        m.observe(&priced(10));
        m.record_quality(0.9);
    }
    assert!(
        alerts.lock().unwrap().is_empty(),
        "{:?}",
        alerts.lock().unwrap()
    );
    for _ in 0..5 {
        m.observe(&priced(30));
    }
    for _ in 0..2 {
        m.observe(&record(|r| r.fallback = true));
        m.observe(&record(|r| r.reasks = 1));
    }
    for _ in 0..5 {
        m.record_quality(0.5);
    }
    let names: Vec<String> = alerts
        .lock()
        .unwrap()
        .iter()
        .map(|a| a.rule.clone())
        .collect();
    assert_eq!(names, vec!["cost", "fallback", "validation", "quality"]);
    let q = alerts.lock().unwrap()[3].clone();
    assert_eq!(q.baseline, Some(0.9));
    assert!((q.expected - 0.72).abs() < 1e-9 && q.observed < q.expected);
}

/// A scripted embedder that says where it lives, as HTTP providers do.
struct EmbedAt(Arc<ScriptedModel>, ModelInfo);

#[async_trait]
impl llmkit_core::EmbeddingModel for EmbedAt {
    fn info(&self) -> &ModelInfo {
        &self.1
    }
    fn dimensions(&self) -> Option<usize> {
        llmkit_core::EmbeddingModel::dimensions(&*self.0)
    }
    async fn embed(
        &self,
        request: llmkit_core::EmbeddingRequest,
    ) -> llmkit_core::Result<llmkit_core::EmbeddingResponse> {
        llmkit_core::EmbeddingModel::embed(&*self.0, request).await
    }
}

#[tokio::test]
async fn embedding_span_carries_server_dimensions_and_legacy_system() {
    let rec = Recorder::default();
    let _guard = rec.install();
    let scripted = Arc::new(
        ScriptedModel::builder()
            .provider("x_ai")
            .model("text-embedding-3-small")
            .embedding_dimensions(16)
            .build(),
    );
    let info =
        ModelInfo::new("x_ai", "text-embedding-3-small").with_server_url("http://10.0.0.7:8080/v1");
    let trace = TraceLayer::builder().legacy_system_attribute(true).build();
    let metrics = trace.metrics().clone();
    let model = Pipeline::builder()
        .layer(trace)
        .build_embedding(Arc::new(EmbedAt(scripted, info)))
        .unwrap();
    model
        .embed(llmkit_core::EmbeddingRequest::new(["refund policy"]))
        .await
        .unwrap();
    let span = rec.calls().pop().unwrap();
    let f = &span.fields;
    assert_eq!(f[sc::GEN_AI_OPERATION_NAME], sc::OPERATION_EMBEDDINGS);
    assert_eq!(f[sc::OTEL_NAME], "embeddings text-embedding-3-small");
    assert_eq!(f[sc::GEN_AI_SYSTEM], "xai", "the v1.36 value");
    assert_eq!(f[sc::SERVER_ADDRESS], "10.0.0.7");
    assert_eq!(f[sc::SERVER_PORT], "8080");
    assert_eq!(f[sc::GEN_AI_EMBEDDINGS_DIMENSION_COUNT], "16");
    let snap = metrics.snapshot();
    let (key, series) = &snap.genai[0];
    assert_eq!(key.operation, "embeddings");
    assert_eq!(key.server_port, Some(8080));
    assert_eq!(series.input_tokens.count, 1);
    assert_eq!(
        series.output_tokens.count, 0,
        "embeddings have no output tokens"
    );
}
