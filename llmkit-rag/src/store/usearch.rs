//! An approximate vector store on USearch (Unum's HNSW: a C++ core compiled by the build with
//! SIMD distance kernels). `benches/ann.rs` measures it against hnsw_rs (the library under
//! `HnswVectorStore`) on the same vectors with the same graph parameters.
//!
//! The same [`HnswConfig`] as `HnswVectorStore` and the same file
//! format ([`save`](UsearchVectorStore::save) / [`load`](UsearchVectorStore::load)), so either
//! store opens the other's file. Unlike hnsw_rs, USearch removes points: a delete or a
//! replacement frees the old entry, whose slot the next insert reuses, so there are no
//! tombstones to compact. Metadata filters run inside the graph walk (USearch's filtered
//! search), so a selective filter still returns `k` hits when `k` exist.
//!
//! Building the crate needs a C++17 compiler (the `cc` crate finds it: g++ or clang++).
//! Upserts and deletes run on tokio's blocking pool and insert on every core; searches run
//! inline, and wait while a write holds the index.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use llmkit_core::ScriptedModel;
//! use llmkit_rag::{Document, HnswConfig, Index, SearchMode, UsearchVectorStore, store::Filter};
//!
//! let store = UsearchVectorStore::with_config(HnswConfig { ef_search: 128, ..Default::default() })?;
//! let embedder = Arc::new(ScriptedModel::builder().embedding_dimensions(64).build());
//! let index = Index::new(embedder).with_vector_store(Arc::new(store));
//! index.sync(vec![Document::new("refunds", "Refunds are accepted within 30 days.")]).await?;
//! let hits = index.search("refunds", 1, &Filter::new(), SearchMode::Vector).await?;
//! assert_eq!(hits[0].chunk.doc_id, "refunds");
//! # Ok::<(), llmkit_core::Error>(()) }).unwrap();
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use llmkit_core::vector::normalize;
use llmkit_core::{Error, ErrorKind, Result};
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use crate::chunk::Chunk;

use super::file::poisoned;
pub use super::graph::HnswConfig;
use super::graph::{Row, load_rows, off_the_runtime, save_rows, unit_rows};
use super::{Filter, Hit, VectorStore, matches};

/// Batches larger than this are inserted from one thread per core.
const PARALLEL_BATCH: usize = 64;

/// Search contexts per core. USearch keeps one scratch context per concurrent operation and
/// fails a search that finds none free; searches run on the caller's thread, so concurrent
/// searches are bounded by the threads calling in (tokio's workers, about one per core, plus
/// any blocking threads), and four per core leaves room.
const CONTEXTS_PER_CORE: usize = 4;

/// Approximate nearest-neighbour search on USearch's HNSW index. See the [module docs](self).
pub struct UsearchVectorStore {
    config: HnswConfig,
    state: Arc<RwLock<State>>,
}

struct State {
    dims: usize,
    /// Created with the first vector, when the dimension is known.
    index: Option<Index>,
    /// Keyed by the index's key; a replaced chunk gets a new key.
    rows: HashMap<u64, Row>,
    by_chunk: HashMap<String, u64>,
    next_key: u64,
}

impl std::fmt::Debug for UsearchVectorStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsearchVectorStore")
            .field("config", &self.config)
            .field("chunks", &self.len())
            .finish()
    }
}

fn index_error(what: &str, e: &impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Other, format!("usearch {what}: {e}"))
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

impl UsearchVectorStore {
    /// An empty store with the default [`HnswConfig`].
    pub fn new() -> Self {
        // The default configuration is valid, so it skips `with_config`'s checks.
        Self::unchecked(HnswConfig::default())
    }

    fn unchecked(config: HnswConfig) -> Self {
        UsearchVectorStore {
            config,
            state: Arc::new(RwLock::new(State {
                dims: 0,
                index: None,
                rows: HashMap::new(),
                by_chunk: HashMap::new(),
                next_key: 0,
            })),
        }
    }

    /// An empty store with `config`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidRequest`] when `max_connections` is not in 2..=255 (USearch needs
    /// two links per node) or `ef_construction` / `ef_search` is zero.
    pub fn with_config(config: HnswConfig) -> Result<Self> {
        config.check(2)?;
        Ok(Self::unchecked(config))
    }

    /// Live chunks stored.
    pub fn len(&self) -> usize {
        self.state.read().map(|s| s.rows.len()).unwrap_or(0)
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the chunks, metadata and vectors to a JSON file (atomically), in the format
    /// `HnswVectorStore` writes; the index is rebuilt on
    /// [`load`](Self::load).
    pub fn save(&self, path: &Path) -> Result<()> {
        let state = self.state.read().map_err(|_| poisoned())?;
        // Key order is insertion order, so a saved store reloads in the order it was built.
        let mut keys: Vec<&u64> = state.rows.keys().collect();
        keys.sort_unstable();
        save_rows(path, keys.into_iter().filter_map(|k| state.rows.get(k)))
    }

    /// Reads a file written by [`save`](Self::save) or by
    /// `HnswVectorStore::save` and builds the index with
    /// `config`.
    pub fn load(path: &Path, config: HnswConfig) -> Result<Self> {
        let rows = load_rows(path)?;
        let store = Self::with_config(config)?;
        {
            let mut state = store.state.write().map_err(|_| poisoned())?;
            state.insert_rows(&config, rows)?;
        }
        Ok(store)
    }
}

impl Default for UsearchVectorStore {
    fn default() -> Self {
        Self::new()
    }
}

impl State {
    fn new_index(config: &HnswConfig, dims: usize) -> Result<Index> {
        let options = IndexOptions {
            dimensions: dims,
            // Vectors are unit length, so the inner product is the cosine, as in the other
            // stores; f32 storage (USearch's default is bf16, which would change the scores).
            metric: MetricKind::IP,
            quantization: ScalarKind::F32,
            connectivity: config.max_connections,
            expansion_add: config.ef_construction,
            expansion_search: config.ef_search,
            multi: false,
        };
        Index::new(&options).map_err(|e| {
            Error::new(
                ErrorKind::InvalidRequest,
                format!("usearch rejected the configuration: {e}"),
            )
        })
    }

    /// Removes the previous version of each chunk, then adds the rows (from one thread per
    /// core when there are many).
    fn insert_rows(&mut self, config: &HnswConfig, rows: Vec<Row>) -> Result<()> {
        let dims = match (self.dims, rows.first()) {
            (0, Some(first)) => first.vector.len(),
            (dims, _) => dims,
        };
        for row in &rows {
            if row.vector.len() != dims || dims == 0 {
                return Err(Error::new(
                    ErrorKind::InvalidRequest,
                    format!(
                        "vector for chunk `{}` has {} dimensions, the store holds {dims}",
                        row.chunk.id,
                        row.vector.len(),
                    ),
                ));
            }
        }
        if rows.is_empty() {
            return Ok(());
        }
        self.dims = dims;
        if self.index.is_none() {
            self.index = Some(Self::new_index(config, self.dims)?);
        }
        let Some(index) = self.index.as_ref() else {
            return Ok(());
        };
        // A chunk given twice in one batch keeps its last version, like a sequence of upserts.
        let mut batch: Vec<(u64, Row)> = Vec::with_capacity(rows.len());
        let mut in_batch: HashMap<String, usize> = HashMap::new();
        for row in rows {
            match in_batch.get(&row.chunk.id) {
                Some(&at) => {
                    if let Some(slot) = batch.get_mut(at) {
                        slot.1 = row;
                    }
                }
                None => {
                    in_batch.insert(row.chunk.id.clone(), batch.len());
                    batch.push((self.next_key, row));
                    self.next_key += 1;
                }
            }
        }
        for (_, row) in &batch {
            if let Some(old) = self.by_chunk.get(&row.chunk.id).copied() {
                index
                    .remove(old)
                    .map_err(|e| index_error("remove failed", &e))?;
                self.rows.remove(&old);
                self.by_chunk.remove(&row.chunk.id);
            }
        }
        let threads = cores();
        let needed = index.size() + batch.len();
        if needed > index.capacity() {
            // Doubling keeps a stream of small upserts from reallocating on every call.
            let capacity = needed.max(index.capacity() * 2).max(config.expected_chunks);
            index
                .reserve_capacity_and_threads(capacity, threads * CONTEXTS_PER_CORE)
                .map_err(|e| index_error("reserve failed", &e))?;
        }
        let add = |part: &[(u64, Row)]| -> Result<()> {
            for (key, row) in part {
                index
                    .add(*key, &row.vector)
                    .map_err(|e| index_error("insert failed", &e))?;
            }
            Ok(())
        };
        if batch.len() > PARALLEL_BATCH && threads > 1 {
            let per = batch.len().div_ceil(threads);
            std::thread::scope(|s| {
                let workers: Vec<_> = batch
                    .chunks(per)
                    .map(|part| s.spawn(|| add(part)))
                    .collect();
                workers.into_iter().try_for_each(|w| {
                    w.join().map_err(|_| {
                        Error::new(ErrorKind::Other, "usearch insert thread panicked")
                    })?
                })
            })?;
        } else {
            add(&batch)?;
        }
        for (key, row) in batch {
            self.by_chunk.insert(row.chunk.id.clone(), key);
            self.rows.insert(key, row);
        }
        Ok(())
    }

    fn delete_document(&mut self, doc_id: &str) -> Result<()> {
        let keys: Vec<u64> = self
            .rows
            .iter()
            .filter(|(_, r)| r.chunk.doc_id == doc_id)
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            if let Some(index) = &self.index {
                index
                    .remove(key)
                    .map_err(|e| index_error("remove failed", &e))?;
            }
            if let Some(row) = self.rows.remove(&key) {
                self.by_chunk.remove(&row.chunk.id);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl VectorStore for UsearchVectorStore {
    async fn upsert(&self, items: Vec<(Chunk, Vec<f32>, BTreeMap<String, String>)>) -> Result<()> {
        let rows = unit_rows(items);
        let (state, config) = (self.state.clone(), self.config);
        off_the_runtime(move || {
            let mut state = state.write().map_err(|_| poisoned())?;
            state.insert_rows(&config, rows)
        })
        .await
    }

    async fn delete_document(&self, doc_id: &str) -> Result<()> {
        let (state, doc_id) = (self.state.clone(), doc_id.to_owned());
        off_the_runtime(move || {
            let mut state = state.write().map_err(|_| poisoned())?;
            state.delete_document(&doc_id)
        })
        .await
    }

    async fn search(&self, query: &[f32], k: usize, filter: &Filter) -> Result<Vec<Hit>> {
        let state = self.state.read().map_err(|_| poisoned())?;
        let Some(index) = state.index.as_ref() else {
            return Ok(Vec::new());
        };
        if state.rows.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        if query.len() != state.dims {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "query has {} dimensions, the store holds {}",
                    query.len(),
                    state.dims
                ),
            ));
        }
        let mut q = query.to_vec();
        normalize(&mut q);
        let found = if filter.is_empty() {
            index.search(&q, k)
        } else {
            index.filtered_search(&q, k, |key| {
                state
                    .rows
                    .get(&key)
                    .is_some_and(|r| matches(&r.meta, filter))
            })
        }
        .map_err(|e| {
            // The one failure a valid query meets: every search context is busy.
            Error::new(ErrorKind::Overloaded, format!("usearch search failed: {e}"))
        })?;
        Ok(found
            .keys
            .iter()
            .zip(&found.distances)
            .filter_map(|(key, distance)| {
                let row = state.rows.get(key)?;
                // USearch's inner-product distance is `1 - a·b`.
                Some(Hit {
                    chunk: row.chunk.clone(),
                    score: 1.0 - distance,
                })
            })
            .take(k)
            .collect())
    }
}
