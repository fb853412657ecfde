//! Embedding calls made by the index: batch size, bounded concurrency, the content-hash cache.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use llmkit_core::{
    EmbeddingModel, EmbeddingRequest, EmbeddingResponse, ModelInfo, Result, ScriptedModel,
};
use llmkit_rag::{Document, Index};

/// Counts calls and inputs, and the most calls in flight at once; vectors come from a
/// scripted model. Each call sleeps so concurrent calls overlap.
struct CountingEmbedder {
    inner: ScriptedModel,
    info: ModelInfo,
    state: Mutex<State>,
    fail: AtomicBool,
}

#[derive(Default, Debug, Clone)]
struct State {
    batches: Vec<Vec<String>>,
    in_flight: usize,
    max_in_flight: usize,
}

impl CountingEmbedder {
    fn new() -> Arc<Self> {
        Arc::new(CountingEmbedder {
            inner: ScriptedModel::builder().embedding_dimensions(32).build(),
            info: ModelInfo::new("test", "counting-embedder"),
            state: Mutex::new(State::default()),
            fail: AtomicBool::new(false),
        })
    }

    fn state(&self) -> State {
        self.state.lock().unwrap().clone()
    }
}

#[async_trait]
impl EmbeddingModel for CountingEmbedder {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    async fn embed(&self, request: EmbeddingRequest) -> Result<EmbeddingResponse> {
        {
            let mut s = self.state.lock().unwrap();
            s.batches.push(request.inputs.clone());
            s.in_flight += 1;
            s.max_in_flight = s.max_in_flight.max(s.in_flight);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let out = if self.fail.load(Ordering::SeqCst) {
            Err(llmkit_core::Error::new(
                llmkit_core::ErrorKind::Other,
                "embedding service down",
            ))
        } else {
            self.inner.embed(request).await
        };
        self.state.lock().unwrap().in_flight -= 1;
        out
    }
}

fn docs(n: usize) -> Vec<Document> {
    (0..n)
        .map(|i| {
            Document::new(
                format!("doc-{i}"),
                format!(
                    "Policy number {i}: parcels to zone {i} ship in {} days.",
                    i + 2
                ),
            )
        })
        .collect()
}

#[tokio::test]
async fn batches_are_bounded_and_run_concurrently_up_to_the_limit() {
    let embedder = CountingEmbedder::new();
    let index = Index::new(embedder.clone()).with_embedding_batches(3, 2);
    let report = index.sync(docs(10)).await.unwrap();
    assert_eq!(report.embedded_chunks, 10, "{report:?}");
    let s = embedder.state();
    // 10 texts in batches of at most 3: 3 + 3 + 3 + 1.
    assert_eq!(s.batches.len(), 4, "{:?}", s.batches);
    assert!(s.batches.iter().all(|b| !b.is_empty() && b.len() <= 3));
    assert_eq!(s.batches.iter().map(Vec::len).sum::<usize>(), 10);
    assert_eq!(s.max_in_flight, 2, "two calls overlap, never more");
    assert_eq!(s.in_flight, 0);
}

#[tokio::test]
async fn unchanged_and_duplicate_chunks_are_never_embedded_again() {
    let embedder = CountingEmbedder::new();
    let index = Index::new(embedder.clone()).with_embedding_batches(64, 4);
    let mut corpus = docs(5);
    // Same text under two ids: one embedding serves both chunks.
    corpus.push(Document::new("copy-of-doc-0", corpus[0].text.clone()));
    let report = index.sync(corpus.clone()).await.unwrap();
    assert_eq!(report.embedded_chunks, 5, "{report:?}");
    assert_eq!(report.cached_chunks, 1, "{report:?}");
    assert_eq!(embedder.state().batches.len(), 1);

    // Nothing changed: no call at all.
    let report = index.sync(corpus.clone()).await.unwrap();
    assert_eq!(report.embedded_chunks, 0, "{report:?}");
    assert_eq!(embedder.state().batches.len(), 1);

    // One document edited: one call with exactly its new text.
    corpus[2] = Document::new("doc-2", "Policy number 2 was withdrawn.");
    let report = index.sync(corpus.clone()).await.unwrap();
    assert_eq!(report.embedded_chunks, 1, "{report:?}");
    let s = embedder.state();
    assert_eq!(s.batches.len(), 2);
    assert_eq!(
        s.batches[1],
        vec!["Policy number 2 was withdrawn.".to_string()]
    );

    // A document deleted and re-added with its old text: served from the cache.
    let without: Vec<Document> = corpus.iter().filter(|d| d.id != "doc-4").cloned().collect();
    index.sync(without).await.unwrap();
    let report = index.sync(corpus).await.unwrap();
    assert_eq!(report.embedded_chunks, 0, "{report:?}");
    assert_eq!(embedder.state().batches.len(), 2);
}

#[tokio::test]
async fn zero_batch_size_and_concurrency_are_read_as_one() {
    let embedder = CountingEmbedder::new();
    let index = Index::new(embedder.clone()).with_embedding_batches(0, 0);
    index.sync(docs(3)).await.unwrap();
    let s = embedder.state();
    assert_eq!(s.batches.len(), 3);
    assert_eq!(s.max_in_flight, 1);
}

#[tokio::test]
async fn a_failed_embedding_call_leaves_the_index_unchanged() {
    let embedder = CountingEmbedder::new();
    let index = Index::new(embedder.clone());
    index.sync(docs(3)).await.unwrap();
    let before = index.chunk_count();
    let old_chunk = index.chunk(&llmkit_rag::Chunker::default().chunk(&docs(3)[1])[0].id);
    assert!(old_chunk.is_some());

    embedder.fail.store(true, Ordering::SeqCst);
    let edited = vec![
        Document::new("doc-1", "Policy number 1 now ships in one day."),
        Document::new("doc-new", "A brand new policy."),
    ];
    assert!(index.upsert(edited.clone()).await.is_err());
    assert_eq!(index.chunk_count(), before);
    assert!(index.document_metadata("doc-new").is_none());
    assert_eq!(
        index.chunk(&old_chunk.as_ref().unwrap().id),
        old_chunk,
        "the old version of an updated document is still served"
    );

    embedder.fail.store(false, Ordering::SeqCst);
    let report = index.upsert(edited).await.unwrap();
    assert_eq!((report.added, report.updated), (1, 1), "{report:?}");
    assert!(index.chunk(&old_chunk.unwrap().id).is_none());
}

#[tokio::test]
async fn the_last_duplicate_id_wins() {
    let embedder = CountingEmbedder::new();
    let index = Index::new(embedder.clone());
    let report = index
        .upsert(vec![
            Document::new("a", "First version."),
            Document::new("a", "Second version."),
        ])
        .await
        .unwrap();
    assert_eq!((report.added, report.updated), (1, 0), "{report:?}");
    assert_eq!(index.chunk_count(), 1);
    assert_eq!(
        embedder.state().batches,
        vec![vec!["Second version.".to_string()]]
    );
}

/// The embedding cache is bounded (it grew with every distinct chunk text before): past its
/// capacity the oldest vectors go, an evicted text is embedded again, a batch larger than the
/// cache still gets every vector.
#[tokio::test]
async fn embedding_cache_is_bounded_and_evicts_oldest_first() {
    let embedder = CountingEmbedder::new();
    let index = Index::new(embedder.clone()).with_embedding_cache(3);
    let docs: Vec<Document> = (0..10)
        .map(|i| Document::new(format!("d{i}"), format!("distinct text number {i}")))
        .collect();
    let report = index.upsert(docs).await.unwrap();
    assert_eq!(report.embedded_chunks, 10, "{report:?}");
    assert_eq!(index.chunk_count(), 10, "every chunk got its vector");
    assert_eq!(index.embedding_cache_len(), 3);
    // The newest texts are cached, the oldest were evicted.
    let again = index
        .upsert(vec![
            Document::new("copy-new", "distinct text number 9"),
            Document::new("copy-old", "distinct text number 0"),
        ])
        .await
        .unwrap();
    assert_eq!(
        (again.cached_chunks, again.embedded_chunks),
        (1, 1),
        "{again:?}"
    );
    assert_eq!(index.embedding_cache_len(), 3);
    let off = Index::new(embedder.clone()).with_embedding_cache(0);
    off.upsert(vec![Document::new("x", "some text")])
        .await
        .unwrap();
    assert_eq!(off.embedding_cache_len(), 0);
}

/// Document versions kept outside the process: a new index over the same stores re-embeds
/// only what changed (the in-memory table was lost on restart and everything was re-embedded).
#[tokio::test]
async fn persisted_document_versions_skip_unchanged_documents_after_a_restart() {
    use llmkit_rag::{DocumentVersion, DocumentVersions, MemoryVectorStore};

    #[derive(Default)]
    struct Versions(Mutex<std::collections::BTreeMap<String, DocumentVersion>>);
    #[async_trait]
    impl DocumentVersions for Versions {
        async fn load(&self) -> Result<Vec<DocumentVersion>> {
            Ok(self.0.lock().unwrap().values().cloned().collect())
        }
        async fn save(&self, v: &DocumentVersion) -> Result<()> {
            self.0.lock().unwrap().insert(v.doc_id.clone(), v.clone());
            Ok(())
        }
        async fn remove(&self, doc_id: &str) -> Result<()> {
            self.0.lock().unwrap().remove(doc_id);
            Ok(())
        }
    }

    let versions = Arc::new(Versions::default());
    let vectors = Arc::new(MemoryVectorStore::new());
    let docs = vec![
        Document::new("a", "alpha text"),
        Document::new("b", "beta text"),
        Document::new("c", "gamma text"),
    ];
    let first = Index::new(CountingEmbedder::new())
        .with_vector_store(vectors.clone())
        .with_document_versions(versions.clone());
    assert_eq!(first.sync(docs.clone()).await.unwrap().embedded_chunks, 3);
    drop(first);
    let embedder = CountingEmbedder::new();
    let restarted = Index::new(embedder.clone())
        .with_vector_store(vectors.clone())
        .with_document_versions(versions.clone());
    let report = restarted
        .sync(vec![
            docs[0].clone(),
            Document::new("b", "beta text, revised"),
        ])
        .await
        .unwrap();
    assert_eq!(
        (
            report.unchanged,
            report.updated,
            report.deleted,
            report.embedded_chunks
        ),
        (1, 1, 1, 1),
        "{report:?}"
    );
    assert_eq!(
        embedder.state().batches.concat(),
        vec!["beta text, revised".to_owned()]
    );
    let stored: Vec<String> = versions.0.lock().unwrap().keys().cloned().collect();
    assert_eq!(stored, vec!["a".to_owned(), "b".to_owned()]);
}
