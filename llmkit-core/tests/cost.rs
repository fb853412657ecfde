#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Price table: bundled lookups, snapshot matching, overrides, exact sums, unknown models.

use std::sync::{Arc, Mutex};

use llmkit_core::cost::{ModelPrice, PriceTable, PricingMode};
use llmkit_core::telemetry::{ExportQueue, MemorySink, TraceLayer};
use llmkit_core::{ChatModel, ChatRequest, Decimal, ErrorKind, Pipeline, ScriptedModel, Usage};

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn usage(input: u64, cached: u64, write: u64, output: u64) -> Usage {
    Usage {
        input_tokens: input,
        cached_input_tokens: cached,
        cache_write_tokens: write,
        output_tokens: output,
        reasoning_tokens: 0,
    }
}

#[test]
fn bundled_prices_for_common_models_and_their_snapshots() {
    let t = PriceTable::bundled();
    let cases = [
        ("openai", "gpt-4o-2024-08-06", "gpt-4o", "2.50", "10.00"),
        (
            "openai",
            "gpt-4o-mini-2024-07-18",
            "gpt-4o-mini",
            "0.15",
            "0.60",
        ),
        (
            "openai",
            "gpt-4.1-mini-2025-04-14",
            "gpt-4.1-mini",
            "0.40",
            "1.60",
        ),
        ("azure.ai.openai", "gpt-4o", "gpt-4o", "2.50", "10.00"),
        (
            "anthropic",
            "claude-sonnet-4-5-20250929",
            "claude-sonnet-4-5",
            "3.00",
            "15.00",
        ),
        (
            "anthropic",
            "claude-sonnet-4-20250514",
            "claude-sonnet-4",
            "3.00",
            "15.00",
        ),
        (
            "anthropic",
            "claude-3-5-haiku@20241022",
            "claude-3-5-haiku",
            "0.80",
            "4.00",
        ),
        (
            "gcp.gemini",
            "models/gemini-2.5-flash",
            "gemini-2.5-flash",
            "0.30",
            "2.50",
        ),
        (
            "gcp.gemini",
            "gemini-2.0-flash-001",
            "gemini-2.0-flash",
            "0.10",
            "0.40",
        ),
        (
            "gemini",
            "gemini-2.5-pro",
            "gemini-2.5-pro",
            "1.25",
            "10.00",
        ),
    ];
    for (provider, asked, matched, input, output) in cases {
        let (name, price) = t
            .lookup(provider, asked)
            .unwrap_or_else(|| panic!("{provider}/{asked} not found"));
        assert_eq!(name, matched, "{asked}");
        assert_eq!(price.input, d(input), "{asked}");
        assert_eq!(price.output, d(output), "{asked}");
    }
    assert!(
        t.lookup("openai", "gpt-4o-mini-realtime").is_none(),
        "a different model, not a snapshot"
    );
    assert!(t.lookup("anthropic", "claude-sonnet-4-7").is_none());
    assert!(
        t.lookup("openai", "claude-sonnet-4-5").is_none(),
        "provider matters"
    );
}

#[test]
fn anthropic_cache_reads_and_writes_are_priced_inside_input() {
    let t = PriceTable::bundled();
    // 10k input of which 6k cache reads and 3k cache writes; 1k output.
    let c = t
        .cost(
            "anthropic",
            "claude-sonnet-4-5",
            &usage(10_000, 6_000, 3_000, 1_000),
        )
        .unwrap();
    assert_eq!(c.input_usd, d("0.003")); // 1k × $3/M
    assert_eq!(c.cached_input_usd, d("0.0018")); // 6k × $0.30/M
    assert_eq!(c.cache_write_usd, d("0.01125")); // 3k × $3.75/M
    assert_eq!(c.output_usd, d("0.015")); // 1k × $15/M
    assert_eq!(c.total_usd, d("0.03105"));
    assert_eq!(c.price_table, "2026-11-28");
}

#[test]
fn batch_mode_uses_batch_prices() {
    let t = PriceTable::bundled();
    let u = usage(1_000_000, 0, 0, 1_000_000);
    let interactive = t.cost("openai", "gpt-4.1", &u).unwrap();
    let batch = t
        .cost_with_mode("openai", "gpt-4.1", &u, PricingMode::Batch)
        .unwrap();
    assert_eq!(interactive.total_usd, d("10"));
    assert_eq!(batch.total_usd, d("5"));
}

#[test]
fn a_million_calls_sum_exactly() {
    let t = PriceTable::bundled();
    let one = t
        .cost("openai", "gpt-4o-mini", &usage(1_234, 0, 0, 567))
        .unwrap();
    let mut sum = llmkit_core::Cost::default();
    for _ in 0..1_000_000 {
        sum.add(&one);
    }
    assert_eq!(sum.total_usd, one.total_usd * Decimal::from(1_000_000u32));
    assert_eq!(sum.total_usd, d("525.3")); // (1234 × 0.15 + 567 × 0.60) / 1e6 × 1e6
    assert_eq!(sum.price_table, "2026-11-28");
}

#[test]
fn overrides_replace_and_extend_and_the_version_says_so() {
    let t = PriceTable::default()
        .extend_from_toml(
            r#"
            version = "acme-2026-12"
            [aliases]
            "my-gateway" = "openai"
            [[model]]
            provider = "openai"
            model = "gpt-4o"
            input = 2.0          # a negotiated discount, written as a number
            output = "8"
            [[model]]
            provider = "vllm"
            model = "llama-3.1-70b"
            input = "0.20"
            output = "0.20"
            "#,
        )
        .unwrap();
    assert_eq!(t.version(), "2026-11-28+acme-2026-12");
    let c = t
        .cost(
            "my-gateway",
            "gpt-4o-2024-11-20",
            &usage(1_000_000, 0, 0, 0),
        )
        .unwrap();
    assert_eq!(c.total_usd, d("2"));
    assert_eq!(c.price_table, "2026-11-28+acme-2026-12");
    assert!(t.lookup("vllm", "llama-3.1-70b").is_some());
    assert!(
        t.lookup("openai", "gpt-4o-mini").is_some(),
        "the rest of the bundle remains"
    );

    let j = PriceTable::empty("base")
        .extend_from_json(r#"{"version":"j1","model":[{"provider":"p","model":"m","input":"1","cached_input":"0.1","output":"2"}]}"#)
        .unwrap();
    let c = j
        .cost("p", "m", &usage(2_000_000, 1_000_000, 0, 0))
        .unwrap();
    assert_eq!(c.total_usd, d("1.1"));
    assert_eq!(c.price_table, "base+j1");
}

#[test]
fn price_files_load_from_disk_and_bad_config_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prices.toml");
    std::fs::write(
        &path,
        "[[model]]\nprovider = \"x\"\nmodel = \"y\"\ninput = \"1\"\noutput = \"1\"\n",
    )
    .unwrap();
    let t = PriceTable::from_path(&path).unwrap();
    assert_eq!(t.version(), "custom");
    assert_eq!(t.len(), 1);

    for bad in [
        "[[model]]\nprovider = \"x\"\nmodel = \"y\"\ninput = \"cheap\"\noutput = \"1\"",
        "[[model]]\nprovider = \"x\"\nmodel = \"y\"\ninput = \"-1\"\noutput = \"1\"",
        "[[model]]\nprovider = \"x\"\n",
    ] {
        let e = PriceTable::from_toml_str(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.to_string().contains("price table"), "{e}");
    }
    let e = PriceTable::from_path(dir.path().join("prices.yaml")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
}

#[test]
fn set_builds_a_table_in_code() {
    let mut t = PriceTable::empty("inline");
    t.set(
        "openai",
        "ft:gpt-4o-mini:acme",
        ModelPrice::new(d("0.30"), d("1.20")).with_cached_input(d("0.15")),
    );
    let c = t
        .cost(
            "openai",
            "ft:gpt-4o-mini:acme",
            &usage(1_000_000, 500_000, 0, 0),
        )
        .unwrap();
    assert_eq!(c.total_usd, d("0.225"));
}

/// Counts `warn` events mentioning "cost unknown".
#[derive(Clone, Default)]
struct WarnCounter(Arc<Mutex<usize>>);
impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for WarnCounter {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        struct V(bool);
        impl tracing::field::Visit for V {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                if f.name() == "message" && format!("{v:?}").contains("cost unknown") {
                    self.0 = true;
                }
            }
        }
        let mut v = V(false);
        event.record(&mut v);
        if v.0 && *event.metadata().level() == tracing::Level::WARN {
            *self.0.lock().unwrap() += 1;
        }
    }
}

#[tokio::test]
async fn unknown_models_cost_none_warn_once_and_are_counted() {
    use tracing_subscriber::layer::SubscriberExt;
    let warns = WarnCounter::default();
    let _g = tracing::subscriber::set_default(tracing_subscriber::registry().with(warns.clone()));

    let sink = MemorySink::new();
    let queue = ExportQueue::spawn(Arc::new(sink.clone()), 16);
    let trace = TraceLayer::builder().export(queue.clone()).build();
    let metrics = trace.metrics().clone();
    let provider = Arc::new(
        ScriptedModel::builder()
            .provider("openai")
            .model("my-private-finetune")
            .fallback("ok")
            .build(),
    );
    let model = Pipeline::builder().layer(trace).build(provider);
    for _ in 0..3 {
        let r = model.chat(ChatRequest::user("hi")).await.unwrap();
        assert!(r.cost.is_none(), "unknown is None, never zero");
    }
    assert_eq!(*warns.0.lock().unwrap(), 1, "one warning per model");
    queue.flush().await;
    assert!(
        sink.records()
            .iter()
            .all(|r| r.cost_unknown && r.cost.is_none())
    );
    let total = metrics.snapshot().total();
    assert_eq!(total.cost_unknown, 3);
    assert_eq!(total.cost_usd, Decimal::ZERO);
    assert_eq!(total.cost_per_request(), None, "no priced call, no average");
}

#[tokio::test]
async fn a_custom_price_table_prices_responses() {
    let provider = Arc::new(
        ScriptedModel::builder()
            .provider("openai")
            .model("gpt-4o")
            .fallback("ok")
            .build(),
    );
    let custom = Arc::new(
        PriceTable::empty("mine")
            .extend_from_toml(
                "[[model]]\nprovider=\"openai\"\nmodel=\"gpt-4o\"\ninput=\"1\"\noutput=\"1\"",
            )
            .unwrap(),
    );
    let model = Pipeline::builder()
        .layer(TraceLayer::builder().price_table(custom).build())
        .build(provider);
    let r = model.chat(ChatRequest::user("hello world")).await.unwrap();
    let c = r.cost.unwrap();
    assert_eq!(c.price_table, "mine+custom");
    let expected =
        Decimal::from(r.usage.input_tokens + r.usage.output_tokens) / Decimal::from(1_000_000u32);
    assert_eq!(c.total_usd, expected.normalize());
}
