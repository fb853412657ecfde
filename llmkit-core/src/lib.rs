//! # llmkit-core
//!
//! The vocabulary every llmkit crate speaks, and the contract a provider author implements.
//!
//! - [`ChatModel`] and [`EmbeddingModel`]: the two object-safe traits. Application code holds
//!   `Arc<dyn ChatModel>`; a provider, a [`ScriptedModel`] test double or a whole resilient stack
//!   are interchangeable behind it.
//! - [`ChatRequest`] (messages, sampling, tools, [`ResponseFormat`], [`RequestMeta`]) goes in;
//!   [`ChatResponse`] (message, [`FinishReason`], [`Usage`], [`Cost`], [`Trail`]) comes out,
//!   normalized at the provider boundary. Streams are [`ChatStream`]s of [`StreamEvent`]s, folded
//!   back into a response by [`collect_stream`].
//! - [`Error`] is the one error type, classified by [`ErrorKind`] so retry, fallback and breaker
//!   layers can act on it ([`Error::is_retryable`]).
//! - [`Layer`] and [`Pipeline`] stack capabilities around a model; the first layer added is the
//!   outermost.
//!
//! ## Features
//!
//! With `default-features = false` this crate is only the contract above (plus [`route`],
//! [`batch`] and [`ScriptedModel`]): a provider crate builds it without jsonschema, minijinja,
//! moka, toml, regex or backon. Each capability is a feature, all on by default (and always on
//! in the `llmkit` facade): `structured` (`structured`, `schema`), `prompt`, `cache`,
//! `resilience`, `cost`, `budget` (implies `cost` and `resilience`), `telemetry` (implies
//! `cost`); `metrics` and `otel`
//! extend `telemetry` and are off by default.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use llmkit_core::{ChatModel, ChatRequest, Message, Pipeline, ScriptedModel};
//!
//! // Offline: the scripted model is a test double that replies what it was told to.
//! let provider = Arc::new(ScriptedModel::builder().reply("Refunds are accepted within 30 days.").build());
//! let model: Arc<dyn ChatModel> = Pipeline::builder().build(provider);
//!
//! let request = ChatRequest::new(vec![
//!     Message::system("Answer from the refund policy."),
//!     Message::user("Can I get a refund after 60 days?"),
//! ]);
//! let response = model.chat(request).await?;
//! println!("{} answered: {}", response.model, response.text());
//! assert!(response.usage.output_tokens > 0);
//! # Ok::<(), llmkit_core::Error>(()) }).unwrap();
//! ```

pub mod batch;
#[cfg(feature = "budget")]
pub mod budget;
#[cfg(feature = "cache")]
pub mod cache;
#[cfg(feature = "cost")]
pub mod cost;
pub mod error;
pub mod hex;
pub mod layer;
pub mod message;
pub mod model;
#[cfg(feature = "prompt")]
pub mod prompt;
pub mod request;
#[cfg(feature = "resilience")]
pub mod resilience;
pub mod response;
pub mod retrieval;
pub mod route;
// Schema dialect transforms live with structured output; this path stays.
#[cfg(feature = "structured")]
pub use structured::schema;
pub mod scripted;
pub mod secrets;
#[cfg(feature = "structured")]
pub mod structured;
pub mod sync;
pub mod tokens;
// Always present: `telemetry::semconv` (names only, no dependency) is used by resilience's trail
// notes too; the layer, sinks and metrics inside are behind the `telemetry` feature.
pub mod telemetry;
pub mod vector;

#[cfg(feature = "cost")]
pub use cost::PriceTable;
pub use error::{Error, ErrorKind, Result};
pub use layer::{Layer, MapRequestLayer, Pipeline, layer_fn, new_request_id};
pub use message::{
    ContentPart, ImageSource, Message, Role, ToolCall, ToolChoice, ToolDefinition, ToolResult,
};
pub use model::{
    Candidate, Capabilities, ChatModel, ChatStream, EmbeddingModel, ModelInfo, ServerAddress,
    StreamAccumulator, SystemInstructions, collect_stream, response_to_events,
};
#[cfg(feature = "prompt")]
pub use prompt::{PromptRegistry, RenderedPrompt};
pub use request::{ChatRequest, PromptRef, RequestMeta, ResponseFormat};
pub use response::{
    ChatResponse, Cost, EmbeddingRequest, EmbeddingResponse, FinishReason, StreamEvent, Trail,
    TrailEntry, Usage,
};
#[cfg(feature = "structured")]
pub use schema::{DroppedConstraint, SchemaDialect, TransformedSchema, to_dialect};
pub use scripted::{Reply, ScriptedModel, ScriptedModelBuilder, estimate_tokens, hashed_embedding};
#[cfg(feature = "structured")]
pub use structured::{Generated, Structured, StructuredExt};
#[cfg(feature = "telemetry")]
pub use telemetry::TraceLayer;

/// Re-exports for `use llmkit_core::prelude::*`.
pub mod prelude {
    pub use crate::{
        ChatModel, ChatRequest, ChatResponse, EmbeddingModel, Error, ErrorKind, Layer, Message,
        Pipeline, Result, Role,
    };
}

/// Re-exported so provider authors implement the traits with the same macro version.
pub use async_trait::async_trait;
/// Exact decimal type used for costs.
pub use rust_decimal::Decimal;
