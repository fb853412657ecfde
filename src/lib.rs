//! # llmkit
//!
//! The production engineering around LLM calls, in-process and composable: provider-neutral
//! types and traits, providers chosen by configuration, structured output, resilience, tracing
//! and cost, RAG that cites, guardrails and evals. This facade re-exports the member crates
//! behind cargo features so an application adds one dependency.
//!
//! | feature | what it brings |
//! |---|---|
//! | `openai`, `azure`, `anthropic`, `gemini`, `ollama` | provider modules in [`providers`] |
//! | `rag` | [`rag`]: chunking, retrieval, grounded answers |
//! | `guard` | [`guard`]: input/output guardrails and the action gate |
//! | `eval` | [`eval`]: datasets, evaluators, reports and the CI gate |
//! | `graph` | [`graph`]: checkpointed graphs, crash resume, interrupts, the human-in-the-loop gate |
//! | `postgres` | [`postgres`]: the PostgreSQL checkpointer (implies `graph`) |
//! | `tower` | [`tower`]: a model as a `tower::Service`, a tower `Layer` around a model |
//! | `full` | everything |
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use llmkit::prelude::*;
//!
//! let model: Arc<dyn ChatModel> = Pipeline::builder()
//!     .build(Arc::new(llmkit::core::ScriptedModel::always("hello")));
//! let reply = model.chat(ChatRequest::user("hi")).await?;
//! assert_eq!(reply.text(), "hello");
//! # Ok::<(), llmkit::core::Error>(()) }).unwrap();
//! ```

pub use llmkit_core as core;
pub use llmkit_providers as providers;

#[cfg(feature = "eval")]
pub use llmkit_eval as eval;
#[cfg(feature = "graph")]
pub use llmkit_graph as graph;
#[cfg(feature = "guard")]
pub use llmkit_guard as guard;
#[cfg(feature = "postgres")]
pub use llmkit_postgres as postgres;
#[cfg(feature = "rag")]
pub use llmkit_rag as rag;
/// Serving helpers for axum: health, readiness, metrics and an OpenAI-compatible route.
#[cfg(feature = "axum")]
pub use llmkit_serve as serve;
#[cfg(feature = "tower")]
pub use llmkit_tower as tower;

/// docs/tower.md, compiled as a doctest so the guide cannot drift from the code.
#[cfg(all(doctest, feature = "tower"))]
#[doc = include_str!("../docs/tower.md")]
pub struct TowerGuide;

/// The names most applications need, for `use llmkit::prelude::*`.
pub mod prelude {
    pub use llmkit_core::prelude::*;
}

/// The guides in `docs/` and the README, compiled as doctests with facade paths, so a snippet
/// that no longer matches the code fails `cargo test` (issue 17: "Rust snippets in docs compile").
/// Blocks that are not Rust are fenced as `text`, `sh`, `toml`, ...; Rust blocks that need a
/// network or a file are `no_run` but still compiled. The guides span every member crate, so
/// they are compiled with `full` (the default); the `otel` snippet carries its own `cfg`.
#[cfg(all(doctest, feature = "full"))]
mod guides {
    #[doc = include_str!("../README.md")]
    struct Readme;
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
    #[doc = include_str!("../docs/structured-output.md")]
    struct StructuredOutput;
    #[doc = include_str!("../examples/README.md")]
    struct ExamplesIndex;
}
