//! Provider batch lanes: `OpenAiBatchLane` (OpenAI Batch API, with the `openai` feature) and `AnthropicBatchLane`
//! (Anthropic Message Batches, with the `anthropic` feature), implementing
//! [`llmkit_core::batch::BatchLane`], run with [`llmkit_core::batch::run_batch`].
//!
//! Request bodies and responses go through the provider's own body builder and response
//! parser, so a batch item is exactly the call the interactive model would make. Results are
//! priced at the batch rate ([`PricingMode::Batch`]) and the trail says so (`batch`/`priced`).
//! No retries happen here: llmkit's retry layer owns retries.
//!
//! ```
//! # #[cfg(feature = "openai")] {
//! use llmkit_providers::batch::OpenAiBatchLane;
//! use llmkit_providers::openai::OpenAiModel;
//!
//! let model = OpenAiModel::compatible("http://127.0.0.1:9/v1", "gpt-4o-mini").unwrap();
//! let lane = OpenAiBatchLane::new(model);
//! assert_eq!(lane.base_url(), "http://127.0.0.1:9/v1");
//! # }
//! ```

#[cfg(feature = "anthropic")]
mod anthropic;
#[cfg(feature = "openai")]
mod openai;

#[cfg(feature = "anthropic")]
pub use anthropic::{AnthropicBatchLane, parse_anthropic_results};
#[cfg(feature = "openai")]
pub use openai::{OpenAiBatchLane, parse_openai_results};

use llmkit_core::ChatResponse;
use llmkit_core::cost::{PriceTable, PricingMode};

/// Prices `response` at the batch rate and notes it in the trail; an unknown model leaves the
/// cost empty ("unknown", never zero).
pub(crate) fn price_batch(table: &PriceTable, response: &mut ChatResponse) {
    let cost = table.cost_with_mode(
        &response.provider,
        &response.model,
        &response.usage,
        PricingMode::Batch,
    );
    let detail = match &cost {
        Some(c) => format!("batch rate, total_usd {}", c.total_usd),
        None => "batch rate, model not in the price table".to_string(),
    };
    response.cost = cost;
    response.trail.push("batch", "priced", detail);
}
