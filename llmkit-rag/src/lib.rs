//! # llmkit-rag
//!
//! Retrieval-augmented generation that cites its sources. Built on [`llmkit_core::EmbeddingModel`].
//!
//! ```
//! use llmkit_core::{EmbeddingModel, ScriptedModel};
//! let embedder = ScriptedModel::always("unused");
//! assert_eq!(embedder.dimensions(), Some(64));
//! ```
