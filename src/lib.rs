//! # llmkit
//!
//! The production engineering around LLM calls, in-process and composable: provider-neutral
//! types and traits, providers chosen by configuration, structured output, resilience, tracing
//! and cost, RAG that cites, guardrails and evals. This facade re-exports the member crates
//! behind cargo features so an application adds one dependency.
//!
//! The default features cover calling any provider through the recommended stack: the core
//! layers (structured output, prompts, cache, resilience, cost, budget, trace) are always on,
//! and `default` adds every provider and the guard layer. Everything else is opt-in:
//!
//! | feature | default | what it brings |
//! |---|---|---|
//! | `openai`, `azure`, `anthropic`, `gemini`, `ollama` | yes | provider modules in [`providers`] |
//! | `guard` | yes | [`guard`]: input/output guardrails and the action gate |
//! | `rag` | no | [`rag`]: chunking, retrieval, grounded answers (exact vector store) |
//! | `hnsw` | no | `rag::HnswVectorStore`, approximate search for large corpora on hnsw_rs (implies `rag`) |
//! | `usearch` | no | `rag::UsearchVectorStore`, approximate search on USearch; compiles C++ (implies `rag`) |
//! | `ann-bench` | no | `benches/ann.rs` only: hnsw_rs against USearch at up to 1M vectors |
//! | `eval` | no | [`eval`]: datasets, evaluators, reports and the CI gate |
//! | `graph` | no | [`graph`]: checkpointed graphs, crash resume, interrupts, the human-in-the-loop gate |
//! | `postgres` | no | [`postgres`]: pooled PostgreSQL checkpoints with leases, the review queue, migrations (implies `graph`) |
//! | `pgvector` | no | `postgres::PgVectorStore`: pgvector with full-text hybrid search (implies `postgres`, `rag`) |
//! | `sqlite` | no | `graph::SqliteCheckpointer`: checkpoints in one SQLite file (implies `graph`) |
//! | `tower` | no | [`tower`]: a model as a `tower::Service`, a tower `Layer` around a model |
//! | `metrics`, `otel` | no | the `metrics` facade mirror; OTLP export of spans and metrics |
//! | `axum` | no | [`serve`]: axum serving helpers (health, readiness, metrics, OpenAI-compatible route) |
//! | `redis` | no | `redis`: shared cache, idempotency, budget ledger and rate limits for N replicas |
//! | `full` | no | every feature above |
//! | `local-embeddings` | no | `local`: in-process sentence embeddings (all-MiniLM-L6-v2 on candle); not in `full` (a large build) |
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use llmkit::prelude::*;
//!
//! let model: Arc<dyn ChatModel> = Pipeline::builder()
//!     .build(Arc::new(ScriptedModel::always("hello")));
//! let reply = model.chat(ChatRequest::user("hi")).await?;
//! assert_eq!(reply.text(), "hello");
//! # Ok::<(), llmkit::core::Error>(()) }).unwrap();
//! ```
//!
//! Structured output through the re-exported [`schemars`], so an application needs no schemars
//! dependency of its own and always derives with the version llmkit validates against:
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use llmkit::prelude::*;
//!
//! #[derive(serde::Deserialize, JsonSchema)]
//! #[schemars(crate = "llmkit::schemars")]
//! struct Verdict {
//!     refundable: bool,
//! }
//!
//! let model = ScriptedModel::always(r#"{"refundable": true}"#);
//! let out = model.generate::<Verdict>(ChatRequest::user("Refund after 10 days?")).await?;
//! assert!(out.value.refundable);
//! # Ok::<(), llmkit::core::Error>(()) }).unwrap();
//! ```

pub use llmkit_core as core;
pub use llmkit_providers as providers;
/// The schemars version llmkit builds JSON schemas with. Derive through it with
/// `#[derive(llmkit::schemars::JsonSchema)]` and `#[schemars(crate = "llmkit::schemars")]`
/// (the derive otherwise names a `schemars` crate your package would have to depend on).
pub use schemars;

#[cfg(feature = "eval")]
pub use llmkit_eval as eval;
#[cfg(feature = "graph")]
pub use llmkit_graph as graph;
#[cfg(feature = "guard")]
pub use llmkit_guard as guard;
#[cfg(feature = "local-embeddings")]
pub use llmkit_local as local;
#[cfg(feature = "postgres")]
pub use llmkit_postgres as postgres;
#[cfg(feature = "rag")]
pub use llmkit_rag as rag;
#[cfg(feature = "redis")]
pub use llmkit_redis as redis;
/// Serving helpers for axum: health, readiness, metrics and an OpenAI-compatible route.
#[cfg(feature = "axum")]
pub use llmkit_serve as serve;
#[cfg(feature = "tower")]
pub use llmkit_tower as tower;

/// docs/scale-out.md, compiled as a doctest with the `redis` feature.
#[cfg(all(doctest, feature = "redis"))]
#[doc = include_str!("../docs/scale-out.md")]
pub struct ScaleOutGuide;

/// docs/tower.md, compiled as a doctest so the guide cannot drift from the code.
#[cfg(all(doctest, feature = "tower"))]
#[doc = include_str!("../docs/tower.md")]
pub struct TowerGuide;

/// The names an application of the recommended stack needs, for `use llmkit::prelude::*`:
/// the vocabulary, the scripted test model, structured output, prompts, the layers in their
/// recommended order (Trace → Deadline → InputGuard → Cache → Budget → Fallback → Retry →
/// Breaker → Limit → Timeout), the price table, the provider factory and, with `guard`, the guard
/// pipeline. `JsonSchema` is the derive macro; add `#[schemars(crate = "llmkit::schemars")]`
/// to the type.
pub mod prelude {
    pub use llmkit_core::budget::BudgetLayer;
    pub use llmkit_core::cache::{CacheLayer, CachePolicy};
    pub use llmkit_core::prelude::*;
    pub use llmkit_core::resilience::{
        CircuitBreakerLayer, DeadlineLayer, FallbackLayer, LimitLayer, RetryLayer, TimeoutLayer,
        target_pipeline,
    };
    pub use llmkit_core::structured::{Generated, Structured, StructuredExt};
    pub use llmkit_core::telemetry::{ExportQueue, JsonLinesSink, TraceLayer};
    pub use llmkit_core::{
        Cost, Decimal, PriceTable, PromptRef, PromptRegistry, Reply, ScriptedModel, Usage,
    };
    #[cfg(feature = "guard")]
    pub use llmkit_guard::{GuardPipeline, InjectionGuard};
    pub use llmkit_providers::{ProviderConfig, ProviderKind, from_config, from_env};
    pub use schemars::JsonSchema;
}

/// README.md, compiled as doctests with the default features (its snippets promise no more).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct Readme;

/// The guides in `docs/` and the README, compiled as doctests with facade paths, so a snippet
/// that no longer matches the code fails `cargo test` (issue 17: "Rust snippets in docs compile").
/// Blocks that are not Rust are fenced as `text`, `sh`, `toml`, ...; Rust blocks that need a
/// network or a file are `no_run` but still compiled. The guides span every member crate, so
/// they are compiled with `full`; the README (above) needs only the default features.
#[cfg(all(doctest, feature = "full"))]
mod guides {
    #[doc = include_str!("../docs/README.md")]
    struct DocsIndex;
    #[doc = include_str!("../docs/architecture.md")]
    struct Architecture;
    #[doc = include_str!("../docs/benchmarks.md")]
    struct Benchmarks;
    #[doc = include_str!("../docs/cost.md")]
    struct Cost;
    #[doc = include_str!("../docs/evals.md")]
    struct Evals;
    #[doc = include_str!("../docs/guardrails.md")]
    struct Guardrails;
    #[doc = include_str!("../docs/observability.md")]
    struct Observability;
    #[doc = include_str!("../docs/orchestration.md")]
    struct Orchestration;
    #[doc = include_str!("../docs/production-checklist.md")]
    struct ProductionChecklist;
    #[doc = include_str!("../docs/prompts.md")]
    struct Prompts;
    #[doc = include_str!("../docs/providers.md")]
    struct Providers;
    #[doc = include_str!("../docs/rag.md")]
    struct Rag;
    #[doc = include_str!("../docs/resilience.md")]
    struct Resilience;
    #[doc = include_str!("../docs/service.md")]
    struct Service;
    #[doc = include_str!("../docs/scale-out.md")]
    struct ScaleOut;
    #[doc = include_str!("../docs/structured-output.md")]
    struct StructuredOutput;
    #[doc = include_str!("../examples/README.md")]
    struct ExamplesIndex;
}
