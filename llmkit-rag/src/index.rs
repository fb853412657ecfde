//! The index: chunking, cached embeddings, vector + BM25 stores, incremental re-indexing.

use std::collections::{BTreeMap, HashMap, VecDeque};
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
use crate::versions::{DocumentVersion, DocumentVersions};

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

/// Vectors by chunk-text hash, bounded: past `capacity` entries the oldest insertion goes
/// first (FIFO). An unbounded map grew with every distinct chunk a long-lived index ever saw.
struct EmbedCache {
    capacity: usize,
    map: HashMap<String, Vec<f32>>,
    order: VecDeque<String>,
}

impl EmbedCache {
    fn new(capacity: usize) -> Self {
        EmbedCache {
            capacity,
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn insert(&mut self, key: String, vector: Vec<f32>) {
        if self.capacity == 0 {
            return;
        }
        if self.map.insert(key.clone(), vector).is_none() {
            self.order.push_back(key);
        }
        while self.map.len() > self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
    }
}

/// A searchable index over documents. See the [crate docs](crate).
pub struct Index {
    chunker: Chunker,
    embedder: Arc<dyn EmbeddingModel>,
    vectors: Arc<dyn VectorStore>,
    lexical: Mutex<Bm25>,
    docs: Mutex<HashMap<String, DocState>>,
    chunks: Mutex<HashMap<String, Chunk>>,
    embed_cache: Mutex<EmbedCache>,
    versions: Option<Arc<dyn DocumentVersions>>,
    versions_loaded: tokio::sync::OnceCell<()>,
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

/// Default bound of the embedding cache, in vectors (about 15 MB at 384 dimensions).
const DEFAULT_EMBED_CACHE: usize = 10_000;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Index {
    /// An index embedding with `embedder`, chunking with the default [`Chunker`], storing vectors
    /// in a [`MemoryVectorStore`]. Embeddings go in batches of 64, four batches at a time
    /// ([`Index::with_embedding_batches`] changes both); the embedding cache keeps the vectors
    /// of at most 10,000 distinct chunk texts ([`Index::with_embedding_cache`]).
    pub fn new(embedder: Arc<dyn EmbeddingModel>) -> Self {
        Index {
            chunker: Chunker::default(),
            embedder,
            vectors: Arc::new(MemoryVectorStore::new()),
            lexical: Mutex::new(Bm25::new()),
            docs: Mutex::new(HashMap::new()),
            chunks: Mutex::new(HashMap::new()),
            embed_cache: Mutex::new(EmbedCache::new(DEFAULT_EMBED_CACHE)),
            versions: None,
            versions_loaded: tokio::sync::OnceCell::new(),
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

    /// Uses another vector store (pgvector, Qdrant, ...). A store that ranks text itself
    /// ([`VectorStore::ranks_text`]) also answers the lexical half of searches, and the index
    /// then keeps no in-memory BM25.
    #[must_use]
    pub fn with_vector_store(mut self, store: Arc<dyn VectorStore>) -> Self {
        self.vectors = store;
        self
    }

    /// Keeps at most `capacity` vectors in the embedding cache (by chunk-text hash; the oldest
    /// insertion is evicted first). Zero disables the cache. Default 10,000.
    #[must_use]
    pub fn with_embedding_cache(self, capacity: usize) -> Self {
        *lock(&self.embed_cache) = EmbedCache::new(capacity);
        self
    }

    /// Persists document versions in `versions` (see [`crate::versions`]): loaded before the
    /// first change, written per document after its vectors are stored, so an index restarted
    /// over a persistent vector store re-embeds only documents whose content changed.
    #[must_use]
    pub fn with_document_versions(mut self, versions: Arc<dyn DocumentVersions>) -> Self {
        self.versions = Some(versions);
        self
    }

    /// Loads stored document versions once (no-op without a versions store).
    async fn load_versions(&self) -> Result<()> {
        let Some(versions) = &self.versions else {
            return Ok(());
        };
        self.versions_loaded
            .get_or_try_init(|| async {
                let stored = versions.load().await?;
                let mut docs = lock(&self.docs);
                for v in stored {
                    docs.entry(v.doc_id).or_insert(DocState {
                        hash: v.hash,
                        indexed_ms: v.indexed_ms,
                        meta: v.metadata,
                    });
                }
                Ok::<(), Error>(())
            })
            .await?;
        Ok(())
    }

    /// Number of embedding vectors cached.
    pub fn embedding_cache_len(&self) -> usize {
        lock(&self.embed_cache).map.len()
    }

    /// Adds new and updates changed documents; unchanged ones (same content hash) are skipped.
    ///
    /// The chunks of every changed document are embedded together before anything is written,
    /// so batches span documents (a thousand one-chunk documents are 16 calls, not a thousand)
    /// and a failed embedding call leaves the index as it was. When an id appears twice in
    /// `docs`, the last one wins.
    pub async fn upsert(&self, docs: Vec<Document>) -> Result<IndexReport> {
        self.load_versions().await?;
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
        self.load_versions().await?;
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
        if let Some(versions) = &self.versions {
            versions.remove(doc_id).await?;
        }
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
        if !self.vectors.ranks_text() {
            let mut lexical = lock(&self.lexical);
            for c in &chunks {
                lexical.insert(c.clone(), doc.metadata.clone());
            }
        }
        lock(&self.chunks).extend(chunks.into_iter().map(|c| (c.id.clone(), c)));
        let indexed_ms = now_ms();
        if let Some(versions) = &self.versions {
            versions
                .save(&DocumentVersion {
                    doc_id: doc.id.clone(),
                    hash: doc.content_hash.clone(),
                    indexed_ms,
                    metadata: doc.metadata.clone(),
                })
                .await?;
        }
        lock(&self.docs).insert(
            doc.id.clone(),
            DocState {
                hash: doc.content_hash,
                indexed_ms,
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
        // Cached vectors are copied out now: a bounded cache may evict them while this batch
        // is being embedded.
        let mut found: HashMap<String, Vec<f32>> = HashMap::new();
        let missing: Vec<(String, String)> = {
            let cache = lock(&self.embed_cache);
            let mut seen = std::collections::HashSet::new();
            let mut missing = Vec::new();
            for (k, c) in keys.iter().zip(chunks) {
                if !seen.insert(k.clone()) {
                    continue;
                }
                match cache.map.get(k) {
                    Some(v) => {
                        found.insert(k.clone(), v.clone());
                    }
                    None => missing.push((k.clone(), c.text.clone())),
                }
            }
            missing
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
        for r in results {
            found.extend(r?);
        }
        {
            // In chunk order, so "oldest first" eviction follows the order texts arrived in.
            let mut cache = lock(&self.embed_cache);
            for k in &keys {
                if let Some(v) = found.get(k) {
                    cache.insert(k.clone(), v.clone());
                }
            }
        }
        keys.iter()
            .map(|k| {
                found.get(k).cloned().ok_or_else(|| {
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
            SearchMode::Lexical => self.lexical_search(query, k, filter).await?,
            SearchMode::Hybrid => {
                let v = vector().await?;
                let l = self.lexical_search(query, k.max(1) * 2, filter).await?;
                rrf(&[v, l], 60.0, k)
            }
        };
        Ok(hits)
    }

    /// The lexical half: the store's own text ranking when it has one, else the in-memory BM25.
    async fn lexical_search(&self, query: &str, k: usize, filter: &Filter) -> Result<Vec<Hit>> {
        if self.vectors.ranks_text()
            && let Some(hits) = self.vectors.search_text(query, k, filter).await?
        {
            return Ok(hits);
        }
        Ok(lock(&self.lexical).search(query, k, filter))
    }

    /// Metadata of an indexed document.
    pub fn document_metadata(&self, doc_id: &str) -> Option<BTreeMap<String, String>> {
        lock(&self.docs).get(doc_id).map(|d| d.meta.clone())
    }
}
