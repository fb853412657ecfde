#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! With the `metrics` feature, every registry update is mirrored to the `metrics` facade.
#![cfg(feature = "metrics")]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use llmkit_core::telemetry::TraceLayer;
use llmkit_core::telemetry::metrics::names;
use llmkit_core::{ChatRequest, Pipeline, Reply, ScriptedModel};
use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

/// Sums counters and counts histogram samples by `name{label=value,...}`.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<BTreeMap<String, f64>>>);

struct Handle(Arc<Mutex<BTreeMap<String, f64>>>, String);
impl CounterFn for Handle {
    fn increment(&self, value: u64) {
        *self.0.lock().unwrap().entry(self.1.clone()).or_default() += value as f64;
    }
    fn absolute(&self, value: u64) {
        self.0.lock().unwrap().insert(self.1.clone(), value as f64);
    }
}
impl HistogramFn for Handle {
    fn record(&self, _value: f64) {
        *self.0.lock().unwrap().entry(self.1.clone()).or_default() += 1.0;
    }
}

fn name(key: &Key) -> String {
    let labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Recorder for Collect {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::new(Handle(self.0.clone(), name(key))))
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(Handle(self.0.clone(), name(key))))
    }
}

#[test]
fn registry_updates_reach_the_metrics_facade() {
    let recorder = Collect::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        rt.block_on(async {
            let provider = Arc::new(
                ScriptedModel::builder()
                    .provider("openai")
                    .model("gpt-4o")
                    .reply("ok")
                    .reply(Reply::timeout())
                    .build(),
            );
            let model = Pipeline::builder().layer(TraceLayer::new()).build(provider);
            let ok = model.chat(ChatRequest::user("hello there")).await.unwrap();
            let _ = model.chat(ChatRequest::user("again")).await;
            let seen = recorder.0.lock().unwrap().clone();
            let labels = "provider=openai,model=gpt-4o,prompt_version=";
            assert_eq!(
                seen[&format!("{}{{{labels}}}", names::REQUESTS)],
                2.0,
                "{seen:?}"
            );
            assert_eq!(
                seen[&format!("{}{{{labels},error_type=timeout}}", names::ERRORS)],
                1.0
            );
            assert_eq!(
                seen[&format!("{}{{{labels},kind=output}}", names::TOKENS)],
                ok.usage.output_tokens as f64
            );
            assert_eq!(
                seen[&format!("{}{{{labels}}}", names::LATENCY)],
                2.0,
                "two latency samples"
            );
            assert_eq!(
                seen["llmkit_cost_usd{provider=openai,model=gpt-4o,prompt_version=}"],
                1.0
            );
        });
    });
}

/// Handles are cached per series; a recorder installed after the first calls (registered with
/// the no-op recorder) must still receive everything that happens from then on.
#[test]
fn a_recorder_installed_after_the_first_calls_still_receives_updates() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let provider = Arc::new(
        ScriptedModel::builder()
            .provider("openai")
            .model("gpt-4o")
            .fallback(Reply::text("ok"))
            .build(),
    );
    let model = Pipeline::builder().layer(TraceLayer::new()).build(provider);
    rt.block_on(model.chat(ChatRequest::user("before")))
        .unwrap();
    let recorder = Collect::default();
    metrics::with_local_recorder(&recorder, || {
        rt.block_on(async {
            model.chat(ChatRequest::user("after")).await.unwrap();
            model.chat(ChatRequest::user("again")).await.unwrap();
        });
    });
    let seen = recorder.0.lock().unwrap().clone();
    let labels = "provider=openai,model=gpt-4o,prompt_version=";
    assert_eq!(
        seen[&format!("{}{{{labels}}}", names::REQUESTS)],
        2.0,
        "{seen:?}"
    );
}
