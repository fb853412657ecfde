//! Structured output overhead: JSON extraction, the cached schema validator against compiling one per call, and a whole `generate` on the scripted model.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use llmkit::core::schema::schema_for;
use llmkit::core::structured::{StructuredExt, json_candidates};
use llmkit::core::{Capabilities, ChatRequest, ScriptedModel};
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum Decision {
    Approve,
    Reject,
    Escalate,
}

#[derive(Deserialize, JsonSchema)]
#[allow(dead_code)]
struct Verdict {
    decision: Decision,
    #[schemars(range(min = 0.0, max = 1.0))]
    confidence: f64,
    reasons: Vec<String>,
}

const GOOD: &str =
    r#"{"decision": "approve", "confidence": 0.9, "reasons": ["clause 1: unopened, 12 days"]}"#;

fn noisy_reply() -> String {
    let prose = "The customer bought the item twelve days ago and it is unopened. ".repeat(20);
    format!("{prose}\n```json\n{GOOD}\n```\n{prose}")
}

fn bench(c: &mut Criterion) {
    let reply = noisy_reply();
    let mut g = c.benchmark_group("extract");
    g.bench_function("bare_object", |b| {
        b.iter(|| json_candidates(black_box(GOOD)))
    });
    g.bench_function("fenced_in_2_6kb_prose", |b| {
        b.iter(|| json_candidates(black_box(&reply)))
    });
    g.finish();

    let instance: serde_json::Value = serde_json::from_str(GOOD).unwrap();
    let schema = schema_for::<Verdict>();
    let cached = jsonschema::validator_for(&schema).unwrap();
    let mut g = c.benchmark_group("validate");
    g.bench_function("cached_validator", |b| {
        b.iter(|| cached.is_valid(black_box(&instance)))
    });
    // Baseline: what every call would pay without the per-type cache.
    g.bench_function("baseline_compile_per_call", |b| {
        b.iter(|| {
            let v = jsonschema::validator_for(&schema_for::<Verdict>()).unwrap();
            v.is_valid(black_box(&instance))
        })
    });
    g.finish();

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let model = ScriptedModel::builder()
        .capabilities(Capabilities::default())
        .fallback(reply.as_str())
        .build();
    let mut g = c.benchmark_group("generate");
    g.bench_function("scripted_noisy_reply", |b| {
        b.iter(|| {
            rt.block_on(model.generate::<Verdict>(ChatRequest::user("refund?")))
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
