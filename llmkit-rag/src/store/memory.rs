//! [`MemoryVectorStore`]: exact cosine search over contiguous, pre-normalized vectors, kept
//! in memory and persistable to one JSON file.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::path::Path;
use std::sync::RwLock;

use async_trait::async_trait;
use llmkit_core::vector::{dot, normalize};
use llmkit_core::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};

use super::file::{poisoned, read_file, write_atomically};
use super::{Filter, Hit, VectorStore, matches};
use crate::chunk::Chunk;

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
