//! Structured output: ask any [`ChatModel`] for a Rust type and get it validated.
//!
//! - [`StructuredExt::generate`] (blanket-implemented for every `ChatModel`, including
//!   `Arc<dyn ChatModel>` and `&dyn ChatModel`) and the [`Structured`] builder (attempts, dollar
//!   bound, semantic validators) return a [`Generated`] value with attempts, summed usage and
//!   cost, the raw reply and the [`PromptRef`](crate::PromptRef) of the request.
//! - The schema comes from schemars, is compiled once per type, and is sent as
//!   [`ResponseFormat::JsonSchema`](crate::ResponseFormat) when the model declares
//!   `capabilities.json_schema` (providers turn it into their dialect with [`schema`]);
//!   otherwise it is appended to the system message as instructions.
//! - Every reply is searched for JSON ([`json_candidates`]: fences, prose, several candidates,
//!   tool-call arguments), validated with `jsonschema` against the **full** schema, parsed with
//!   serde, then checked by the semantic validators. A failure re-asks with the bad reply and the
//!   precise errors; a reply cut off by the token limit fails as
//!   [`ErrorKind::Truncated`](crate::ErrorKind) and is never re-asked.
//! - [`Structured::generate_streaming`] streams each attempt and reports partial objects
//!   ([`partial_json`]) as they grow.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use llmkit_core::structured::StructuredExt;
//! use llmkit_core::{ChatModel, ChatRequest, ScriptedModel};
//!
//! #[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
//! struct City { name: String, population: u64 }
//!
//! let model: Arc<dyn ChatModel> = Arc::new(ScriptedModel::builder()
//!     .reply("Sure:\n```json\n{\"name\": \"Lyon\", \"population\": 522000}\n```")
//!     .build());
//! let city = model.generate::<City>(ChatRequest::user("Largest city of the Rhône?")).await?;
//! assert_eq!(city.value.name, "Lyon");
//! assert_eq!(city.attempts, 1);
//! # Ok::<(), llmkit_core::Error>(()) }).unwrap();
//! ```

mod extract;
mod generate;
mod partial;
pub mod schema;
mod violations;

use std::future::Future;

use serde::de::DeserializeOwned;

pub use extract::{json_candidates, looks_truncated};
pub use generate::{Generated, RejectedAttempt, Structured, compiled_schema_count};
pub use partial::partial_json;
pub use violations::violations;

use crate::error::Result;
use crate::model::ChatModel;
use crate::request::ChatRequest;

/// `model.generate::<T>(request)` on every [`ChatModel`], with the [`Structured`] defaults
/// (3 attempts, no cost bound, no semantic validators). Use [`Structured`] to change them.
pub trait StructuredExt: ChatModel {
    /// Asks for a `T`, validates the reply and re-asks on failure; see [`Structured::generate`].
    fn generate<T>(
        &self,
        request: ChatRequest,
    ) -> impl Future<Output = Result<Generated<T>>> + Send
    where
        T: DeserializeOwned + schemars::JsonSchema + Send + 'static;
}

impl<M: ChatModel + ?Sized> StructuredExt for M {
    async fn generate<T>(&self, request: ChatRequest) -> Result<Generated<T>>
    where
        T: DeserializeOwned + schemars::JsonSchema + Send + 'static,
    {
        Structured::<T>::new().generate(self, request).await
    }
}
