//! # llmkit-guard
//!
//! Input and output guardrails for any [`llmkit_core::ChatModel`].
//!
//! ```
//! let text = llmkit_core::Message::user("hello").text();
//! assert_eq!(text, "hello");
//! ```
