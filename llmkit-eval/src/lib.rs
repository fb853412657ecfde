//! # llmkit-eval
//!
//! An eval harness for LLM applications, built on [`llmkit_core::ChatModel`].
//!
//! ```
//! let model = llmkit_core::ScriptedModel::always("ok");
//! assert_eq!(model.call_count(), 0);
//! ```
