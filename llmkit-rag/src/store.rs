//! Vector store, BM25 lexical index, reciprocal rank fusion and reranking.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::path::Path;
use std::sync::RwLock;

use async_trait::async_trait;
use llmkit_core::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};

use crate::chunk::Chunk;

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
}

#[derive(Default, Serialize, Deserialize)]
struct Rows {
    dims: usize,
    chunks: Vec<Chunk>,
    meta: Vec<BTreeMap<String, String>>,
    /// Unit vectors, contiguous: row i is `vectors[i*dims..(i+1)*dims]`.
    vectors: Vec<f32>,
    /// Row of each chunk id, so an upsert does not scan every row (rebuilt on load).
    #[serde(skip)]
    by_chunk: HashMap<String, usize>,
}

impl Rows {
    fn reindex(&mut self) {
        self.by_chunk = self
            .chunks
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.clone(), i))
            .collect();
    }
}

/// Exact cosine search over contiguous, pre-normalized vectors. The inner loop works on 16
/// lanes at a time so the compiler vectorizes it; at 100k × 384 a query is a ~150 MB scan.
#[derive(Default)]
pub struct MemoryVectorStore {
    rows: RwLock<Rows>,
}

impl std::fmt::Debug for MemoryVectorStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryVectorStore")
            .field("chunks", &self.len())
            .finish()
    }
}

// Vector math is llmkit-core's (`llmkit_core::vector`); `dot` stays at this path.
pub use llmkit_core::vector::dot;
pub(crate) use llmkit_core::vector::normalize;

impl MemoryVectorStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Chunks stored.
    pub fn len(&self) -> usize {
        self.rows.read().map(|r| r.chunks.len()).unwrap_or(0)
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the store to a JSON file (atomically: temp file then rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let rows = self.rows.read().map_err(|_| poisoned())?;
        write_atomically(path, &serde_json::to_vec(&*rows)?)
    }

    /// Reads a store written by [`save`](Self::save).
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = read_file(path)?;
        let mut rows: Rows = serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(
                ErrorKind::InvalidRequest,
                format!("{} is not a vector store file: {e}", path.display()),
            )
        })?;
        if rows.chunks.len() != rows.meta.len()
            || rows.chunks.len().saturating_mul(rows.dims) != rows.vectors.len()
        {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "{} is a damaged vector store file: chunk, metadata and vector counts disagree",
                    path.display()
                ),
            ));
        }
        rows.reindex();
        Ok(MemoryVectorStore {
            rows: RwLock::new(rows),
        })
    }
}

pub(crate) fn poisoned() -> Error {
    Error::new(
        ErrorKind::Other,
        "vector store lock poisoned by a panicking thread",
    )
}

fn io_error(path: &Path, e: &std::io::Error) -> Error {
    Error::new(
        ErrorKind::Other,
        format!("vector store file {}: {e}", path.display()),
    )
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`: a crash
/// mid-write leaves the previous store intact, never half a file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| io_error(path, &e))
}

/// Reads a store file; the error names the path.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| io_error(path, &e))
}

pub(crate) fn matches(meta: &BTreeMap<String, String>, filter: &Filter) -> bool {
    filter.iter().all(|(k, v)| meta.get(k) == Some(v))
}

#[async_trait]
impl VectorStore for MemoryVectorStore {
    async fn upsert(&self, items: Vec<(Chunk, Vec<f32>, BTreeMap<String, String>)>) -> Result<()> {
        let mut rows = self.rows.write().map_err(|_| poisoned())?;
        for (chunk, mut vector, meta) in items {
            if rows.dims == 0 {
                rows.dims = vector.len();
            }
            if vector.len() != rows.dims {
                return Err(Error::new(
                    ErrorKind::InvalidRequest,
                    format!(
                        "vector for chunk `{}` has {} dimensions, the store holds {}",
                        chunk.id,
                        vector.len(),
                        rows.dims
                    ),
                ));
            }
            normalize(&mut vector);
            let dims = rows.dims;
            if let Some(i) = rows.by_chunk.get(&chunk.id).copied() {
                if let Some(slot) = rows.vectors.get_mut(i * dims..(i + 1) * dims) {
                    slot.copy_from_slice(&vector);
                }
                if let Some(c) = rows.chunks.get_mut(i) {
                    *c = chunk;
                }
                if let Some(m) = rows.meta.get_mut(i) {
                    *m = meta;
                }
            } else {
                let row = rows.chunks.len();
                rows.by_chunk.insert(chunk.id.clone(), row);
                rows.chunks.push(chunk);
                rows.meta.push(meta);
                rows.vectors.extend_from_slice(&vector);
            }
        }
        Ok(())
    }

    async fn delete_document(&self, doc_id: &str) -> Result<()> {
        let mut rows = self.rows.write().map_err(|_| poisoned())?;
        let dims = rows.dims;
        let keep: Vec<bool> = rows.chunks.iter().map(|c| c.doc_id != doc_id).collect();
        let mut i = 0;
        rows.chunks.retain(|_| {
            i += 1;
            keep.get(i - 1).copied().unwrap_or(true)
        });
        let mut i = 0;
        rows.meta.retain(|_| {
            i += 1;
            keep.get(i - 1).copied().unwrap_or(true)
        });
        let old = std::mem::take(&mut rows.vectors);
        rows.vectors = old
            .chunks(dims.max(1))
            .zip(&keep)
            .filter(|(_, k)| **k)
            .flat_map(|(v, _)| v.iter().copied())
            .collect();
        rows.reindex();
        Ok(())
    }

    async fn search(&self, query: &[f32], k: usize, filter: &Filter) -> Result<Vec<Hit>> {
        let rows = self.rows.read().map_err(|_| poisoned())?;
        if rows.chunks.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        if query.len() != rows.dims {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "query has {} dimensions, the store holds {}",
                    query.len(),
                    rows.dims
                ),
            ));
        }
        let mut q = query.to_vec();
        normalize(&mut q);
        // A bounded min-heap of the best k: O(n log k) and k entries of memory, instead of
        // scoring into an n-long vector and sorting it.
        let mut best: BinaryHeap<Reverse<Scored>> = BinaryHeap::with_capacity(k + 1);
        for (i, v) in rows.vectors.chunks_exact(rows.dims).enumerate() {
            if !rows.meta.get(i).is_some_and(|m| matches(m, filter)) {
                continue;
            }
            let score = dot(v, &q);
            if best.len() < k {
                best.push(Reverse(Scored(score, i)));
            } else if best.peek().is_some_and(|Reverse(worst)| score > worst.0) {
                best.pop();
                best.push(Reverse(Scored(score, i)));
            }
        }
        let mut ranked: Vec<Scored> = best.into_iter().map(|Reverse(s)| s).collect();
        ranked.sort_by(|a, b| b.cmp(a));
        Ok(ranked
            .into_iter()
            .filter_map(|Scored(score, i)| {
                rows.chunks.get(i).map(|c| Hit {
                    chunk: c.clone(),
                    score,
                })
            })
            .collect())
    }
}

/// A score and its row, ordered by score (total order, so NaN cannot break the heap), then
/// by earlier row first among equal scores.
#[derive(Clone, Copy, PartialEq)]
struct Scored(f32, usize);

impl Eq for Scored {}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(other.1.cmp(&self.1))
    }
}

/// Lower-cased alphanumeric words: the shared notion of a term for BM25 and overlap checks.
pub fn terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// One indexed chunk: term frequencies, length in terms, document metadata.
type Posting = (
    Chunk,
    HashMap<String, usize>,
    usize,
    BTreeMap<String, String>,
);

/// Okapi BM25 over chunks. Defaults k1 = 1.2, b = 0.75.
#[derive(Debug, Clone)]
pub struct Bm25 {
    k1: f32,
    b: f32,
    docs: Vec<Posting>,
    df: HashMap<String, usize>,
    total_len: usize,
}

impl Default for Bm25 {
    fn default() -> Self {
        Bm25 {
            k1: 1.2,
            b: 0.75,
            docs: Vec::new(),
            df: HashMap::new(),
            total_len: 0,
        }
    }
}

impl Bm25 {
    /// An empty index with the default parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets k1 (term-frequency saturation) and b (length normalization).
    #[must_use]
    pub fn params(mut self, k1: f32, b: f32) -> Self {
        self.k1 = k1;
        self.b = b;
        self
    }

    /// Adds (or replaces) a chunk.
    pub fn insert(&mut self, chunk: Chunk, meta: BTreeMap<String, String>) {
        self.remove(|c| c.id == chunk.id);
        let words = terms(&chunk.text);
        let mut tf = HashMap::new();
        for w in &words {
            *tf.entry(w.clone()).or_default() += 1;
        }
        for w in tf.keys() {
            *self.df.entry(w.clone()).or_default() += 1;
        }
        self.total_len += words.len();
        self.docs.push((chunk, tf, words.len(), meta));
    }

    /// Removes every chunk of a document.
    pub fn delete_document(&mut self, doc_id: &str) {
        self.remove(|c| c.doc_id == doc_id);
    }

    fn remove(&mut self, pred: impl Fn(&Chunk) -> bool) {
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.docs)
            .into_iter()
            .partition(|(c, ..)| pred(c));
        self.docs = kept;
        for (_, tf, len, _) in gone {
            self.total_len -= len;
            for w in tf.keys() {
                if let Some(n) = self.df.get_mut(w) {
                    *n -= 1;
                    if *n == 0 {
                        self.df.remove(w);
                    }
                }
            }
        }
    }

    /// The `k` best chunks for `query` matching `filter`.
    pub fn search(&self, query: &str, k: usize, filter: &Filter) -> Vec<Hit> {
        let n = self.docs.len() as f32;
        if n == 0.0 {
            return Vec::new();
        }
        let avg = self.total_len as f32 / n;
        let q = terms(query);
        let mut scored: Vec<Hit> = self
            .docs
            .iter()
            .filter(|(.., meta)| matches(meta, filter))
            .filter_map(|(chunk, tf, len, _)| {
                let mut score = 0f32;
                for t in &q {
                    let Some(&f) = tf.get(t) else { continue };
                    let df = self.df.get(t).copied().unwrap_or(0) as f32;
                    let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
                    let f = f as f32;
                    score += idf * f * (self.k1 + 1.0)
                        / (f + self.k1 * (1.0 - self.b + self.b * *len as f32 / avg));
                }
                (score > 0.0).then(|| Hit {
                    chunk: chunk.clone(),
                    score,
                })
            })
            .collect();
        scored.sort_by(|a, b| b.score.total_cmp(&a.score));
        scored.truncate(k);
        scored
    }
}

/// Reciprocal rank fusion: each list contributes `1 / (k + rank)` (rank from 1) per chunk; the
/// usual `k` is 60. Robust to the lists' incomparable score scales.
pub fn rrf(lists: &[Vec<Hit>], k: f32, top: usize) -> Vec<Hit> {
    let mut fused: Vec<Hit> = Vec::new();
    for list in lists {
        for (rank, hit) in list.iter().enumerate() {
            let add = 1.0 / (k + rank as f32 + 1.0);
            match fused.iter_mut().find(|h| h.chunk.id == hit.chunk.id) {
                Some(h) => h.score += add,
                None => fused.push(Hit {
                    chunk: hit.chunk.clone(),
                    score: add,
                }),
            }
        }
    }
    fused.sort_by(|a, b| b.score.total_cmp(&a.score));
    fused.truncate(top);
    fused
}

/// Reorders hits for a query.
#[async_trait]
pub trait Reranker: Send + Sync {
    /// Returns the hits best first, at most `top`.
    async fn rerank(&self, query: &str, hits: Vec<Hit>, top: usize) -> Result<Vec<Hit>>;
}

/// A cheap reranker: the share of query terms present in the chunk, ties kept in input order.
#[derive(Debug, Clone, Copy, Default)]
pub struct LexicalOverlapReranker;

#[async_trait]
impl Reranker for LexicalOverlapReranker {
    async fn rerank(&self, query: &str, hits: Vec<Hit>, top: usize) -> Result<Vec<Hit>> {
        let q: std::collections::HashSet<String> = terms(query).into_iter().collect();
        let mut scored: Vec<Hit> = hits
            .into_iter()
            .map(|mut h| {
                let words: std::collections::HashSet<String> =
                    terms(&h.chunk.text).into_iter().collect();
                h.score = if q.is_empty() {
                    0.0
                } else {
                    q.intersection(&words).count() as f32 / q.len() as f32
                };
                h
            })
            .collect();
        scored.sort_by(|a, b| b.score.total_cmp(&a.score));
        scored.truncate(top);
        Ok(scored)
    }
}
