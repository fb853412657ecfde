//! The reference service: the llmkit support agent behind a typed JSON API and an
//! OpenAI-compatible route, through the recommended stack. See `docs/service.md`.
//!
//! - [`config`]: TOML + `SUPPORT__SECTION__KEY` environment overrides; secrets from environment
//!   variables or files, never printed.
//! - [`agent`]: grounded answers with citations, a structured refund verdict from a versioned
//!   prompt, the human-review gate.
//! - [`app`]: the stack per model version, routes, canary prompt labels, tenant limits and
//!   budgets, JSON access logs.
//! - [`eval`]: the service's eval set run through the real handler, gated.
//! - [`scripted`]: the offline model used by default.

pub mod agent;
pub mod app;
pub mod config;
pub mod eval;
pub mod scripted;

pub use app::App;
pub use config::{Config, Secrets};
