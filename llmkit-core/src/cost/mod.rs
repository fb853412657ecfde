//! Cost accounting: a dated price table and exact decimal costs.
//!
//! - [`PriceTable`] holds per provider and model prices ([`ModelPrice`], USD per million tokens)
//!   for uncached input, cached input, cache writes, output and the batch API. The bundled table
//!   ([`PriceTable::bundled`]) is a dated data file compiled into the crate; applications
//!   override or extend it from TOML or JSON ([`PriceTable::extend_from_toml`]).
//! - [`PriceTable::cost`] prices a [`Usage`](crate::Usage) into a [`Cost`](crate::Cost) with
//!   `rust_decimal` arithmetic and names the table version it used. An unknown model yields
//!   `None` ("cost unknown") and one `tracing` warning per model, never a silent zero.
//! - [`TokenSplit`] is the single place usage is normalized: cache-read and cache-write tokens
//!   are part of `input_tokens`, so uncached = input − cached − cache writes.
//! - [`caching`] holds each provider's prompt-caching rules (minimum prefix, increments,
//!   lifetime, write premium) and a [`PromptCacheSimulator`](caching::PromptCacheSimulator)
//!   that applies them to projected traffic.
//!
//! ```
//! use llmkit_core::cost::PriceTable;
//! use llmkit_core::{Decimal, Usage};
//!
//! let table = PriceTable::bundled();
//! let usage = Usage { input_tokens: 1_000_000, cached_input_tokens: 400_000, output_tokens: 100_000, ..Default::default() };
//! // A dated snapshot name matches its model by longest prefix.
//! let cost = table.cost("openai", "gpt-4o-2024-08-06", &usage).expect("gpt-4o is in the bundled table");
//! // 600k uncached at $2.50/M + 400k cached at $1.25/M + 100k output at $10/M
//! assert_eq!(cost.total_usd, Decimal::new(300, 2));
//! assert_eq!(cost.price_table, table.version());
//! assert!(table.cost("openai", "my-finetune", &usage).is_none(), "unknown is None, never zero");
//! ```

pub mod caching;
pub mod price;

pub use price::{ModelPrice, PriceTable, PricingMode, TokenSplit};
