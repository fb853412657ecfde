//! Vector stores: the [`VectorStore`] trait with the [`Hit`] and [`Filter`] every retriever
//! shares, [`memory`] (exact search, persistable) and two approximate HNSW stores for large
//! corpora, `hnsw` (hnsw_rs; feature `hnsw`) and `usearch` (USearch; feature `usearch`).
//! Implement the trait over pgvector or Qdrant for shared corpora.

pub(crate) mod file;
#[cfg(any(feature = "hnsw", feature = "usearch"))]
pub(crate) mod graph;
#[cfg(feature = "hnsw")]
pub mod hnsw;
pub mod memory;
#[cfg(feature = "usearch")]
pub mod usearch;

use std::collections::BTreeMap;

use async_trait::async_trait;
use llmkit_core::Result;
use serde::{Deserialize, Serialize};

use crate::chunk::Chunk;

// Vector math is llmkit-core's (`llmkit_core::vector`); `dot` stays at this path.
pub use llmkit_core::vector::dot;

/// A search hit: a chunk and its score (higher is better; scales differ per retriever).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    /// The chunk.
    pub chunk: Chunk,
    /// The score.
    pub score: f32,
}

/// Metadata filter: every key must equal the given value on the chunk's document.
pub type Filter = BTreeMap<String, String>;

/// Stores chunk vectors and answers filtered top-k queries. Implement it over pgvector or Qdrant
/// for large or shared corpora; callers do not change.
#[async_trait]
pub trait VectorStore: Send + Sync {
    /// Inserts or replaces chunks with their vectors and their document's metadata.
    async fn upsert(&self, items: Vec<(Chunk, Vec<f32>, BTreeMap<String, String>)>) -> Result<()>;
    /// Removes every chunk of a document.
    async fn delete_document(&self, doc_id: &str) -> Result<()>;
    /// The `k` chunks most similar (cosine) to `query` that match `filter`.
    async fn search(&self, query: &[f32], k: usize, filter: &Filter) -> Result<Vec<Hit>>;

    /// Whether [`search_text`](Self::search_text) ranks text (a database with full-text
    /// search). When it does, `Index` uses it for the lexical half of searches and keeps no
    /// in-memory BM25. Default: `false`.
    fn ranks_text(&self) -> bool {
        false
    }

    /// The `k` chunks that best match the words of `query` and `filter`, by the store's own
    /// text ranking; `None` when the store has none (the default).
    async fn search_text(
        &self,
        query: &str,
        k: usize,
        filter: &Filter,
    ) -> Result<Option<Vec<Hit>>> {
        let _ = (query, k, filter);
        Ok(None)
    }
}

/// Whether a chunk's document metadata has every key of `filter` with the same value.
pub(crate) fn matches(meta: &BTreeMap<String, String>, filter: &Filter) -> bool {
    filter.iter().all(|(k, v)| meta.get(k) == Some(v))
}
