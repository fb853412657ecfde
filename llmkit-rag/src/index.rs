//! The index: chunking, cached embeddings, vector + BM25 stores, incremental re-indexing.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use llmkit_core::sync::lock;
use llmkit_core::{EmbeddingModel, EmbeddingRequest, Error, ErrorKind, Result};

use crate::chunk::{Chunk, Chunker};
use crate::document::Document;
use crate::hybrid::rrf;
use crate::lexical::Bm25;
use crate::store::memory::MemoryVectorStore;
use crate::store::{Filter, Hit, VectorStore};

/// Which retriever answers a search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchMode {
    /// Embedding similarity only.
    Vector,
    /// BM25 only.
    Lexical,
    /// Both, fused with reciprocal rank fusion (k = 60). The default.
    #[default]
    Hybrid,
}

/// What a re-index did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexReport {
    /// New documents.
    pub added: usize,
    /// Documents whose content changed.
    pub updated: usize,
    /// Documents skipped because their content hash is unchanged.
    pub unchanged: usize,
    /// Documents removed (absent from a [`Index::sync`]).
    pub deleted: usize,
    /// Chunks sent to the embedding model.
    pub embedded_chunks: usize,
    /// Chunks whose vector came from the content-hash cache.
    pub cached_chunks: usize,
}

/// A content hash and its vector.
type Embedded = (String, Vec<f32>);

struct DocState {
    hash: String,
    indexed_ms: u64,
    meta: BTreeMap<String, String>,
}

/// A searchable index over documents. See the [crate docs](crate).
pub struct Index {
    chunker: Chunker,
    embedder: Arc<dyn EmbeddingModel>,
    vectors: Arc<dyn VectorStore>,
    lexical: Mutex<Bm25>,
    docs: Mutex<HashMap<String, DocState>>,
    chunks: Mutex<HashMap<String, Chunk>>,
    embed_cache: Mutex<HashMap<String, Vec<f32>>>,
    batch_size: usize,
    concurrency: usize,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("chunker", &self.chunker)
            .field("embedder", &self.embedder.info().model)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Index {
    /// An index embedding with `embedder`, chunking with the default [`Chunker`], storing vectors
    /// in a [`MemoryVectorStore`]. Embeddings go in batches of 64, four batches at a time
    /// ([`Index::with_embedding_batches`] changes both).
    pub fn new(embedder: Arc<dyn EmbeddingModel>) -> Self {
        Index {
            chunker: Chunker::default(),
            embedder,
            vectors: Arc::new(MemoryVectorStore::new()),
            lexical: Mutex::new(Bm25::new()),
            docs: Mutex::new(HashMap::new()),
            chunks: Mutex::new(HashMap::new()),
            embed_cache: Mutex::new(HashMap::new()),
            batch_size: 64,
            concurrency: 4,
        }
    }

    /// Uses another chunker.
    #[must_use]
    pub fn with_chunker(mut self, chunker: Chunker) -> Self {
        self.chunker = chunker;
        self
    }

    /// Sends at most `batch_size` texts per embedding call and keeps at most `concurrency`
    /// calls in flight. Larger batches mean fewer round trips; the concurrency bound keeps a
    /// big first index from tripping the provider's rate limit. Zero is read as one.
    #[must_use]
    pub fn with_embedding_batches(mut self, batch_size: usize, concurrency: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self.concurrency = concurrency.max(1);
        self
    }

    /// Wraps the embedding model in `layers` (retry, breaker, timeout, trace, cache, budget: the
    /// same [`Pipeline`](llmkit_core::Pipeline) a chat model uses), so indexing and queries get
    /// the same failure handling, tracing and spend limits as chat calls. Fails with
    /// [`ErrorKind::Config`] when a layer has no embedding form.
    pub fn with_embedding_layers(mut self, layers: &llmkit_core::Pipeline) -> Result<Self> {
        self.embedder = layers.build_embedding(self.embedder)?;
        Ok(self)
    }

    /// Uses another vector store (pgvector, Qdrant, ...).
    #[must_use]
    pub fn with_vector_store(mut self, store: Arc<dyn VectorStore>) -> Self {
        self.vectors = store;
        self
    }

    /// Adds new and updates changed documents; unchanged ones (same content hash) are skipped.
    ///
    /// The chunks of every changed document are embedded together before anything is written,
    /// so batches span documents (a thousand one-chunk documents are 16 calls, not a thousand)
    /// and a failed embedding call leaves the index as it was. When an id appears twice in
    /// `docs`, the last one wins.
    pub async fn upsert(&self, docs: Vec<Document>) -> Result<IndexReport> {
        let mut report = IndexReport::default();
        let mut last: HashMap<String, usize> = HashMap::new();
        for (i, doc) in docs.iter().enumerate() {
            last.insert(doc.id.clone(), i);
        }
        let mut changed: Vec<(Document, bool)> = Vec::new();
        for (i, doc) in docs.into_iter().enumerate() {
            if last.get(&doc.id) != Some(&i) {
                continue;
            }
            let previous = lock(&self.docs).get(&doc.id).map(|d| d.hash.clone());
            match previous {
                Some(h) if h == doc.content_hash => report.unchanged += 1,
                Some(_) => {
                    report.updated += 1;
                    changed.push((doc, true));
                }
                None => {
                    report.added += 1;
                    changed.push((doc, false));
                }
            }
        }
        let chunked: Vec<Vec<Chunk>> = changed
            .iter()
            .map(|(doc, _)| self.chunker.chunk(doc))
            .collect();
        let all: Vec<Chunk> = chunked.iter().flatten().cloned().collect();
        let mut vectors = self.embed_chunks(&all, &mut report).await?.into_iter();
        for ((doc, replaces), chunks) in changed.into_iter().zip(chunked) {
            if replaces {
                self.remove(&doc.id).await?;
            }
            let doc_vectors: Vec<Vec<f32>> = vectors.by_ref().take(chunks.len()).collect();
            self.index_document(doc, chunks, doc_vectors).await?;
        }
        Ok(report)
    }

    /// Makes the index hold exactly `docs`: adds, updates, and deletes documents not listed.
    pub async fn sync(&self, docs: Vec<Document>) -> Result<IndexReport> {
        let keep: std::collections::HashSet<String> = docs.iter().map(|d| d.id.clone()).collect();
        let gone: Vec<String> = lock(&self.docs)
            .keys()
            .filter(|id| !keep.contains(*id))
            .cloned()
            .collect();
        let mut report = self.upsert(docs).await?;
        for id in gone {
            self.remove(&id).await?;
            report.deleted += 1;
        }
        Ok(report)
    }

    /// Removes a document.
    pub async fn remove(&self, doc_id: &str) -> Result<()> {
        self.vectors.delete_document(doc_id).await?;
        lock(&self.lexical).delete_document(doc_id);
        lock(&self.chunks).retain(|_, c| c.doc_id != doc_id);
        lock(&self.docs).remove(doc_id);
        Ok(())
    }

    /// Documents indexed longer ago than `max_age`: re-fetch them or refuse to answer from them.
    pub fn stale(&self, max_age: Duration) -> Vec<String> {
        let cutoff =
            now_ms().saturating_sub(u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX));
        let mut out: Vec<String> = lock(&self.docs)
            .iter()
            .filter(|(_, d)| d.indexed_ms <= cutoff)
            .map(|(id, _)| id.clone())
            .collect();
        out.sort();
        out
    }

    /// When a document was indexed (unix milliseconds).
    pub fn indexed_at(&self, doc_id: &str) -> Option<u64> {
        lock(&self.docs).get(doc_id).map(|d| d.indexed_ms)
    }

    /// A chunk by id.
    pub fn chunk(&self, id: &str) -> Option<Chunk> {
        lock(&self.chunks).get(id).cloned()
    }

    /// Number of chunks indexed.
    pub fn chunk_count(&self) -> usize {
        lock(&self.chunks).len()
    }

    async fn index_document(
        &self,
        doc: Document,
        chunks: Vec<Chunk>,
        vectors: Vec<Vec<f32>>,
    ) -> Result<()> {
        let items = chunks
            .iter()
            .cloned()
            .zip(vectors)
            .map(|(c, v)| (c, v, doc.metadata.clone()))
            .collect();
        self.vectors.upsert(items).await?;
        {
            let mut lexical = lock(&self.lexical);
            for c in &chunks {
                lexical.insert(c.clone(), doc.metadata.clone());
            }
        }
        lock(&self.chunks).extend(chunks.into_iter().map(|c| (c.id.clone(), c)));
        lock(&self.docs).insert(
            doc.id.clone(),
            DocState {
                hash: doc.content_hash,
                indexed_ms: now_ms(),
                meta: doc.metadata,
            },
        );
        Ok(())
    }

    /// Vectors for `chunks`, from the content-hash cache where possible; the rest are embedded
    /// in batches with bounded concurrency.
    async fn embed_chunks(
        &self,
        chunks: &[Chunk],
        report: &mut IndexReport,
    ) -> Result<Vec<Vec<f32>>> {
        let keys: Vec<String> = chunks
            .iter()
            .map(|c| crate::document::content_hash(&c.text))
            .collect();
        let missing: Vec<(String, String)> = {
            let cache = lock(&self.embed_cache);
            let mut seen = std::collections::HashSet::new();
            keys.iter()
                .zip(chunks)
                .filter(|(k, _)| !cache.contains_key(*k) && seen.insert((*k).clone()))
                .map(|(k, c)| (k.clone(), c.text.clone()))
                .collect()
        };
        report.cached_chunks += chunks.len() - missing.len();
        report.embedded_chunks += missing.len();
        let batches: Vec<Vec<(String, String)>> = missing
            .chunks(self.batch_size)
            .map(<[(String, String)]>::to_vec)
            .collect();
        let results: Vec<Result<Vec<Embedded>>> =
            futures::stream::iter(batches.into_iter().map(|batch| {
                let embedder = self.embedder.clone();
                async move {
                    let texts: Vec<String> = batch.iter().map(|(_, t)| t.clone()).collect();
                    let resp = embedder.embed(EmbeddingRequest::new(texts)).await?;
                    if resp.embeddings.len() != batch.len() {
                        return Err(Error::new(
                            ErrorKind::InvalidResponse,
                            format!(
                                "embedding model returned {} vectors for {} inputs",
                                resp.embeddings.len(),
                                batch.len()
                            ),
                        ));
                    }
                    Ok(batch
                        .into_iter()
                        .map(|(k, _)| k)
                        .zip(resp.embeddings)
                        .collect())
                }
            }))
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        {
            let mut cache = lock(&self.embed_cache);
            for r in results {
                cache.extend(r?);
            }
        }
        let cache = lock(&self.embed_cache);
        keys.iter()
            .map(|k| {
                cache.get(k).cloned().ok_or_else(|| {
                    Error::new(ErrorKind::Other, "embedding missing after embedding step")
                })
            })
            .collect()
    }

    /// The `k` best chunks for `query`.
    pub async fn search(
        &self,
        query: &str,
        k: usize,
        filter: &Filter,
        mode: SearchMode,
    ) -> Result<Vec<Hit>> {
        let vector = || async {
            let resp = self.embedder.embed(EmbeddingRequest::new([query])).await?;
            let q = resp.embeddings.into_iter().next().unwrap_or_default();
            self.vectors.search(&q, k.max(1) * 2, filter).await
        };
        let hits = match mode {
            SearchMode::Vector => {
                let mut v = vector().await?;
                v.truncate(k);
                v
            }
            SearchMode::Lexical => lock(&self.lexical).search(query, k, filter),
            SearchMode::Hybrid => {
                let v = vector().await?;
                let l = lock(&self.lexical).search(query, k.max(1) * 2, filter);
                rrf(&[v, l], 60.0, k)
            }
        };
        Ok(hits)
    }

    /// Metadata of an indexed document.
    pub fn document_metadata(&self, doc_id: &str) -> Option<BTreeMap<String, String>> {
        lock(&self.docs).get(doc_id).map(|d| d.meta.clone())
    }
}
