//! What the two HNSW stores (`HnswVectorStore` on hnsw_rs,
//! `UsearchVectorStore` on USearch) share: the graph parameters,
//! the stored row and its file format, and running index maintenance off the async runtime.
//! One file format means a store saved by one loads into the other.

use std::collections::BTreeMap;
use std::path::Path;

use llmkit_core::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};

use crate::chunk::Chunk;

use super::file::{read_file, write_atomically};

/// HNSW graph parameters, the same for both graph libraries. The defaults (M = 16,
/// ef_construction = 200, ef_search = 64) are the usual starting point; raise `ef_search` for
/// recall, lower it for speed (`benches/ann.rs` sweeps it at up to 1M vectors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswConfig {
    /// Links per node and layer (M; USearch's `connectivity`). 1..=255 (USearch: 2..=255).
    pub max_connections: usize,
    /// Candidates considered while inserting (USearch's `expansion_add`): higher builds a
    /// better graph, slower.
    pub ef_construction: usize,
    /// Candidates considered while searching (USearch's `expansion_search`; at least `k` is
    /// used).
    pub ef_search: usize,
    /// Expected number of chunks: sizes the graph's tables up front.
    pub expected_chunks: usize,
}

impl Default for HnswConfig {
    fn default() -> Self {
        HnswConfig {
            max_connections: 16,
            ef_construction: 200,
            ef_search: 64,
            expected_chunks: 10_000,
        }
    }
}

impl HnswConfig {
    /// `max_connections` within `min_connections..=255` (a graph library given more ends the
    /// process) and non-zero candidate counts.
    pub(crate) fn check(&self, min_connections: usize) -> Result<()> {
        if !(min_connections..=255).contains(&self.max_connections) {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "HnswConfig::max_connections must be {min_connections}..=255, got {}",
                    self.max_connections
                ),
            ));
        }
        if self.ef_construction == 0 || self.ef_search == 0 {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                "HnswConfig::ef_construction and ef_search must be at least 1",
            ));
        }
        Ok(())
    }
}

/// One stored chunk with its document's metadata and its unit vector.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Row {
    pub(crate) chunk: Chunk,
    pub(crate) meta: BTreeMap<String, String>,
    /// Kept so the graph can be rebuilt (after deletes, on load) and the store saved.
    pub(crate) vector: Vec<f32>,
}

/// The rows an `upsert` stores, each vector scaled to unit length: both graph stores rank by
/// cosine as the inner product of unit vectors.
pub(crate) fn unit_rows(items: Vec<(Chunk, Vec<f32>, BTreeMap<String, String>)>) -> Vec<Row> {
    items
        .into_iter()
        .map(|(chunk, mut vector, meta)| {
            llmkit_core::vector::normalize(&mut vector);
            Row {
                chunk,
                meta,
                vector,
            }
        })
        .collect()
}

/// Writes rows to a JSON file (atomically); the graph is rebuilt on load, which keeps the file
/// format independent of either graph library's.
pub(crate) fn save_rows<'a>(path: &Path, rows: impl Iterator<Item = &'a Row>) -> Result<()> {
    let rows: Vec<&Row> = rows.collect();
    write_atomically(path, &serde_json::to_vec(&rows)?)
}

/// Reads a file written by [`save_rows`].
pub(crate) fn load_rows(path: &Path) -> Result<Vec<Row>> {
    let bytes = read_file(path)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::new(
            ErrorKind::InvalidRequest,
            format!("{} is not an HNSW vector store file: {e}", path.display()),
        )
    })
}

/// Runs graph maintenance (linking thousands of vectors, a rebuild) on tokio's blocking pool
/// when there is a runtime: it can take seconds to minutes, and on an async worker thread it
/// would stall every other task scheduled there.
pub(crate) async fn off_the_runtime<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle.spawn_blocking(work).await.map_err(|e| {
            Error::new(
                ErrorKind::Other,
                format!("vector index maintenance task failed: {e}"),
            )
        })?,
        Err(_) => work(),
    }
}
