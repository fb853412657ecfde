//! An approximate vector store for large corpora: an HNSW graph from the `hnsw_rs` crate.
//!
//! Exact search ([`MemoryVectorStore`](crate::MemoryVectorStore)) reads every vector on every
//! query: fine up to ~100k chunks, slow beyond. [`HnswVectorStore`] answers from a hierarchical
//! navigable small-world graph in roughly logarithmic time, at the price of recall (the true
//! nearest chunk is occasionally missed; `benches/rag.rs` measures recall@10 against exact
//! search) and of insertion time (each vector is linked into the graph).
//!
//! The graph cannot remove points, so deletes and replacements leave tombstones that searches
//! skip; when tombstones outnumber live chunks the graph is rebuilt from the live rows.
//! Metadata filters are applied inside the graph walk (`hnsw_rs`'s filtered search), so a
//! selective filter still returns `k` hits when `k` exist, at the cost of a longer walk.
//!
//! Upserts and deletes run on tokio's blocking pool (linking 100k vectors takes minutes on a
//! small machine, a rebuild likewise); searches take milliseconds and run inline. Searches
//! wait while a write holds the graph.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use llmkit_core::ScriptedModel;
//! use llmkit_rag::{Document, HnswConfig, HnswVectorStore, Index, SearchMode, store::Filter};
//!
//! let store = HnswVectorStore::with_config(HnswConfig { ef_search: 128, ..Default::default() })?;
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
use hnsw_rs::anndists::dist::Distance;
use hnsw_rs::hnsw::Hnsw;
use llmkit_core::{Error, ErrorKind, Result};

use crate::chunk::Chunk;
use llmkit_core::vector::{dot, normalize};

use super::file::poisoned;
pub use super::graph::HnswConfig;
use super::graph::{Row, load_rows, off_the_runtime, save_rows, unit_rows};
use super::{Filter, Hit, VectorStore, matches};

/// Cosine distance of unit vectors, `1 - a·b`, clamped at zero. `hnsw_rs`'s own `DistDot`
/// asserts `a·b <= 1`, which rounding of normalized vectors can break (a panic in a search);
/// this one also reuses the store's vectorised dot product.
#[derive(Debug, Clone, Copy, Default)]
struct UnitCosine;

impl Distance<f32> for UnitCosine {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - dot(a, b)).max(0.0)
    }
}

/// `None` in the row table is a tombstone.
struct State {
    dims: usize,
    graph: Hnsw<'static, f32, UnitCosine>,
    /// Indexed by the graph's data id.
    rows: Vec<Option<Row>>,
    by_chunk: HashMap<String, usize>,
    live: usize,
}

/// Approximate nearest-neighbour search over an HNSW graph. See the [module docs](self).
pub struct HnswVectorStore {
    config: HnswConfig,
    state: Arc<RwLock<State>>,
}

impl std::fmt::Debug for HnswVectorStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HnswVectorStore")
            .field("config", &self.config)
            .field("chunks", &self.len())
            .finish()
    }
}

fn new_graph(config: &HnswConfig, capacity: usize) -> Hnsw<'static, f32, UnitCosine> {
    Hnsw::new(
        config.max_connections,
        capacity.max(config.expected_chunks).max(1),
        16,
        config.ef_construction,
        UnitCosine,
    )
}

impl HnswVectorStore {
    /// An empty store with the default [`HnswConfig`].
    pub fn new() -> Self {
        // The default configuration is valid, so it skips `with_config`'s checks.
        Self::unchecked(HnswConfig::default())
    }

    fn unchecked(config: HnswConfig) -> Self {
        HnswVectorStore {
            config,
            state: Arc::new(RwLock::new(State::empty(&config))),
        }
    }

    /// An empty store with `config`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidRequest`] when `max_connections` is not in 1..=255 (the graph
    /// library would otherwise end the process) or `ef_construction` / `ef_search` is zero.
    pub fn with_config(config: HnswConfig) -> Result<Self> {
        config.check(1)?;
        Ok(Self::unchecked(config))
    }

    /// Live chunks stored.
    pub fn len(&self) -> usize {
        self.state.read().map(|s| s.live).unwrap_or(0)
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Chunks deleted or replaced but still in the graph (skipped by searches).
    pub fn tombstones(&self) -> usize {
        self.state
            .read()
            .map(|s| s.rows.len() - s.live)
            .unwrap_or(0)
    }

    /// Rebuilds the graph from the live chunks only. Runs by itself when tombstones outnumber
    /// live chunks; call it after a large deletion to get the memory back now.
    pub fn compact(&self) -> Result<()> {
        let mut state = self.state.write().map_err(|_| poisoned())?;
        state.rebuild(&self.config);
        Ok(())
    }

    /// Writes the live chunks, metadata and vectors to a JSON file (atomically); the graph is
    /// rebuilt on [`load`](Self::load), which keeps the file format independent of the graph
    /// library's (a `UsearchVectorStore` loads it too).
    pub fn save(&self, path: &Path) -> Result<()> {
        let state = self.state.read().map_err(|_| poisoned())?;
        save_rows(path, state.rows.iter().flatten())
    }

    /// Reads a file written by [`save`](Self::save) (or by
    /// `UsearchVectorStore::save`) and builds the graph
    /// with `config`.
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

impl Default for HnswVectorStore {
    fn default() -> Self {
        Self::new()
    }
}

impl State {
    fn empty(config: &HnswConfig) -> Self {
        State {
            dims: 0,
            graph: new_graph(config, 0),
            rows: Vec::new(),
            by_chunk: HashMap::new(),
            live: 0,
        }
    }

    /// Tombstones the previous version of each chunk, appends the rows and links them into
    /// the graph (in parallel when there are many).
    fn insert_rows(&mut self, config: &HnswConfig, rows: Vec<Row>) -> Result<()> {
        for row in &rows {
            if self.dims == 0 {
                self.dims = row.vector.len();
            }
            if row.vector.len() != self.dims || self.dims == 0 {
                return Err(Error::new(
                    ErrorKind::InvalidRequest,
                    format!(
                        "vector for chunk `{}` has {} dimensions, the store holds {}",
                        row.chunk.id,
                        row.vector.len(),
                        self.dims
                    ),
                ));
            }
        }
        let first = self.rows.len();
        for row in rows {
            if let Some(old) = self.by_chunk.insert(row.chunk.id.clone(), self.rows.len())
                && let Some(slot) = self.rows.get_mut(old)
                && slot.take().is_some()
            {
                self.live -= 1;
            }
            self.rows.push(Some(row));
            self.live += 1;
        }
        let batch: Vec<(&[f32], usize)> = self
            .rows
            .iter()
            .enumerate()
            .skip(first)
            .filter_map(|(id, r)| r.as_ref().map(|r| (r.vector.as_slice(), id)))
            .collect();
        if batch.len() > 64 {
            self.graph.parallel_insert_slice(&batch);
        } else {
            for item in batch {
                self.graph.insert_slice(item);
            }
        }
        if self.rows.len() - self.live > self.live {
            self.rebuild(config);
        }
        Ok(())
    }

    fn delete_document(&mut self, config: &HnswConfig, doc_id: &str) {
        for slot in &mut self.rows {
            if slot.as_ref().is_some_and(|r| r.chunk.doc_id == doc_id)
                && let Some(row) = slot.take()
            {
                self.by_chunk.remove(&row.chunk.id);
                self.live -= 1;
            }
        }
        if self.rows.len() - self.live > self.live {
            self.rebuild(config);
        }
    }

    fn rebuild(&mut self, config: &HnswConfig) {
        let rows: Vec<Row> = std::mem::take(&mut self.rows)
            .into_iter()
            .flatten()
            .collect();
        let dims = self.dims;
        *self = State::empty(config);
        self.dims = dims;
        self.graph = new_graph(config, rows.len());
        // Every row was validated when it first came in.
        let _ = self.insert_rows(config, rows);
    }
}

#[async_trait]
impl VectorStore for HnswVectorStore {
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
        let (state, config, doc_id) = (self.state.clone(), self.config, doc_id.to_owned());
        off_the_runtime(move || {
            let mut state = state.write().map_err(|_| poisoned())?;
            state.delete_document(&config, &doc_id);
            Ok(())
        })
        .await
    }

    async fn search(&self, query: &[f32], k: usize, filter: &Filter) -> Result<Vec<Hit>> {
        let state = self.state.read().map_err(|_| poisoned())?;
        if state.live == 0 || k == 0 {
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
        let keep = |id: &usize| {
            state
                .rows
                .get(*id)
                .and_then(Option::as_ref)
                .is_some_and(|r| matches(&r.meta, filter))
        };
        let ef = self.config.ef_search.max(k);
        let found = state.graph.search_filter(&q, k, ef, Some(&keep));
        Ok(found
            .into_iter()
            .filter_map(|n| {
                let row = state.rows.get(n.d_id)?.as_ref()?;
                Some(Hit {
                    chunk: row.chunk.clone(),
                    score: 1.0 - n.distance,
                })
            })
            .take(k)
            .collect())
    }
}
