//! Overhead of the trace layer per call (span, pricing, metrics, drift, export) against a bare model.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use llmkit::core::telemetry::{
    CallRecord, DriftMonitor, DriftRule, ExportQueue, RecordSink, Signal, TraceLayer,
};
use llmkit::core::{
    ChatModel, ChatRequest, ChatResponse, Message, ModelInfo, Pipeline, PriceTable, Usage,
    async_trait,
};

/// A model that answers instantly without recording anything, so only layer cost is measured.
struct Instant(ModelInfo);

#[async_trait]
impl ChatModel for Instant {
    fn info(&self) -> &ModelInfo {
        &self.0
    }
    async fn chat(&self, _request: ChatRequest) -> llmkit::core::Result<ChatResponse> {
        Ok(ChatResponse {
            message: Message::assistant("ok"),
            usage: Usage {
                input_tokens: 1200,
                cached_input_tokens: 800,
                output_tokens: 150,
                ..Default::default()
            },
            model: "gpt-4o-mini-2024-07-18".into(),
            provider: "openai".into(),
            ..Default::default()
        })
    }
}

/// Discards records (measures the queue hand-off, not disk speed).
struct Discard;
impl RecordSink for Discard {
    fn write(&self, record: &CallRecord) -> std::io::Result<()> {
        black_box(record);
        Ok(())
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let provider: Arc<dyn ChatModel> = Arc::new(Instant(ModelInfo::new("openai", "gpt-4o-mini")));
    let bare = Pipeline::builder().build(provider.clone());
    let queue = ExportQueue::spawn(Arc::new(Discard), 1 << 16);
    let traced = Pipeline::builder()
        .layer(
            TraceLayer::builder()
                .export(queue)
                .drift(
                    DriftMonitor::builder()
                        .rule(DriftRule::new("p95", Signal::LatencyP95, 100).vs_baseline(2.0))
                        .build(),
                )
                .build(),
        )
        .build(provider);
    let req = ChatRequest::user("What is the refund window?");

    let mut g = c.benchmark_group("trace_layer");
    g.bench_function("baseline: pipeline without tracing", |b| {
        b.to_async(&rt).iter(|| bare.chat(black_box(req.clone())))
    });
    g.bench_function("with TraceLayer + export + drift", |b| {
        b.to_async(&rt).iter(|| traced.chat(black_box(req.clone())))
    });
    g.finish();

    let table = PriceTable::bundled();
    let usage = Usage {
        input_tokens: 1200,
        cached_input_tokens: 800,
        output_tokens: 150,
        ..Default::default()
    };
    c.bench_function("price lookup + cost (dated snapshot name)", |b| {
        b.iter(|| {
            table.cost(
                black_box("openai"),
                black_box("gpt-4o-mini-2024-07-18"),
                &usage,
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
