//! # llmkit-rag
//!
//! Retrieval-augmented generation that cites, built on [`llmkit_core::EmbeddingModel`] and
//! [`llmkit_core::ChatModel`]:
//!
//! - [`Document`] (id, source, text, metadata, content hash), [`clean`] for messy text,
//!   [`Document::from_markup`] for HTML/Markdown, [`near_duplicates`];
//! - [`Chunker`]: structure-aware splitting (headings, paragraphs, sentences, words) with exact
//!   byte offsets (`&doc.text[c.start..c.end] == c.text`) and ids stable across re-indexing;
//! - [`load_file`] / [`load_dir`] (glob patterns) for `.txt`, `.md` and `.html` files;
//! - [`Index`]: embeddings cached by content hash, a [`VectorStore`] ([`MemoryVectorStore`] by
//!   default, exact cosine, persistable; for large corpora the approximate HNSW stores
//!   `UsearchVectorStore` (feature `usearch`) and `HnswVectorStore` (feature `hnsw`)),
//!   [`Bm25`], hybrid search fused with [`rrf`], incremental [`Index::sync`] and staleness
//!   reports;
//! - reranking: [`LexicalOverlapReranker`] and [`LlmReranker`] (structured relevance scores);
//! - [`GroundedAnswerer`]: retrieves, marks every chunk as untrusted data (llmkit-guard's
//!   spotlighting with the `guard` feature), asks for claims with citations through
//!   `generate::<GroundedAnswer>()`, and checks that every cited chunk was retrieved and supports
//!   its claim (lexically, and optionally with a judge model);
//! - [`eval`]: retrieved ids per labelled query, recall@k and MRR.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use llmkit_core::ScriptedModel;
//! use llmkit_rag::{Document, Index, SearchMode, store::Filter};
//!
//! // Offline: the scripted model's embeddings are a hashed bag of words.
//! let index = Index::new(Arc::new(ScriptedModel::builder().embedding_dimensions(256).build()));
//! index.sync(vec![
//!     Document::new("refunds", "# Refunds\n\nRefunds are accepted within 30 days of delivery."),
//!     Document::new("shipping", "# Shipping\n\nOrders ship within two business days."),
//! ]).await?;
//! let hits = index.search("are refunds accepted", 1, &Filter::new(), SearchMode::Hybrid).await?;
//! assert_eq!(hits[0].chunk.doc_id, "refunds");
//! # Ok::<(), llmkit_core::Error>(()) }).unwrap();
//! ```

pub mod answer;
pub mod chunk;
pub mod document;
pub mod eval;
pub mod hybrid;
pub mod index;
pub mod lexical;
pub mod load;
mod passages;
pub mod rerank;
pub mod store;
pub mod versions;

pub use answer::{
    AnswerReport, CheckedClaim, Claim, GroundedAnswer, GroundedAnswerer, SupportVerdict,
    SupportVerdicts, UnsupportedPolicy,
};
pub use chunk::{ApproxTokens, Chars, Chunk, Chunker, Tokenizer};
pub use document::{Document, clean, near_duplicates};
pub use hybrid::rrf;
pub use index::{Index, IndexReport, SearchMode};
pub use lexical::Bm25;
pub use load::{load_dir, load_file};
pub use rerank::{LexicalOverlapReranker, LlmReranker, RerankFailure, Reranker};
#[cfg(any(feature = "hnsw", feature = "usearch"))]
pub use store::graph::HnswConfig;
#[cfg(feature = "hnsw")]
pub use store::hnsw::HnswVectorStore;
pub use store::memory::MemoryVectorStore;
#[cfg(feature = "usearch")]
pub use store::usearch::UsearchVectorStore;
pub use store::{Hit, VectorStore};
pub use versions::{DocumentVersion, DocumentVersions};
