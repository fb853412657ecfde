//! The USearch store against the exact one: recall, filters, deletes and replacements,
//! persistence (in the file format the hnsw_rs store shares), bad input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, HashSet};

use llmkit_core::ErrorKind;
use llmkit_rag::store::Filter;
use llmkit_rag::{
    Chunk, HnswConfig, HnswVectorStore, MemoryVectorStore, UsearchVectorStore, VectorStore,
};

/// xorshift64*: deterministic vectors without a dependency.
struct Rng(u64);

impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40;
        bits as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }

    fn vector(&mut self, dims: usize) -> Vec<f32> {
        (0..dims).map(|_| self.next_f32()).collect()
    }
}

fn chunk(doc: usize, i: usize) -> Chunk {
    Chunk {
        id: format!("d{doc}#c{i}"),
        doc_id: format!("d{doc}"),
        ordinal: i,
        text: format!("chunk {i} of document {doc}"),
        start: 0,
        end: 0,
        heading: None,
    }
}

type Item = (Chunk, Vec<f32>, BTreeMap<String, String>);

fn corpus(n: usize, dims: usize, seed: u64) -> Vec<Item> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let meta = BTreeMap::from([(
                "lang".to_owned(),
                if i % 4 == 0 { "de" } else { "en" }.to_owned(),
            )]);
            (chunk(i / 10, i), rng.vector(dims), meta)
        })
        .collect()
}

fn ids(hits: &[llmkit_rag::Hit]) -> Vec<String> {
    hits.iter().map(|h| h.chunk.id.clone()).collect()
}

#[tokio::test]
async fn recall_at_10_is_close_to_exact_and_scores_are_cosines() {
    let items = corpus(3000, 32, 7);
    let exact = MemoryVectorStore::new();
    let approx = UsearchVectorStore::new();
    exact.upsert(items.clone()).await.unwrap();
    // Two batches: the second grows the index past its first reservation.
    approx.upsert(items[..2000].to_vec()).await.unwrap();
    approx.upsert(items[2000..].to_vec()).await.unwrap();
    assert_eq!(approx.len(), 3000);
    let mut rng = Rng(99);
    let (mut found, mut total) = (0usize, 0usize);
    for _ in 0..50 {
        let q = rng.vector(32);
        let want = exact.search(&q, 10, &Filter::new()).await.unwrap();
        let truth: HashSet<String> = ids(&want).into_iter().collect();
        let got = approx.search(&q, 10, &Filter::new()).await.unwrap();
        assert_eq!(got.len(), 10);
        assert!(
            got.windows(2).all(|w| w[0].score >= w[1].score),
            "best first"
        );
        // Same scale as the exact store: the best hit's score is its cosine.
        if got[0].chunk.id == want[0].chunk.id {
            assert!((got[0].score - want[0].score).abs() < 1e-4);
        }
        found += got.iter().filter(|h| truth.contains(&h.chunk.id)).count();
        total += truth.len();
    }
    let recall = found as f64 / total as f64;
    assert!(recall >= 0.9, "recall@10 {recall}");
}

#[tokio::test]
async fn filters_apply_inside_the_search() {
    let approx = UsearchVectorStore::new();
    approx.upsert(corpus(1000, 16, 3)).await.unwrap();
    let filter = Filter::from([("lang".to_owned(), "de".to_owned())]);
    let q = Rng(5).vector(16);
    let hits = approx.search(&q, 10, &filter).await.unwrap();
    assert_eq!(hits.len(), 10, "250 German chunks exist");
    for h in &hits {
        let n: usize = h.chunk.id.rsplit('c').next().unwrap().parse().unwrap();
        assert_eq!(n % 4, 0, "{} is not German", h.chunk.id);
    }
    let none = Filter::from([("lang".to_owned(), "fr".to_owned())]);
    assert!(approx.search(&q, 10, &none).await.unwrap().is_empty());
}

#[tokio::test]
async fn deletes_and_replacements_are_never_returned() {
    let items = corpus(400, 16, 11);
    let approx = UsearchVectorStore::new();
    approx.upsert(items.clone()).await.unwrap();
    // Replace one chunk's vector with the query itself: it must come first, once.
    let q = Rng(42).vector(16);
    let (c, _, meta) = items[123].clone();
    approx
        .upsert(vec![(c.clone(), q.clone(), meta)])
        .await
        .unwrap();
    assert_eq!(approx.len(), 400);
    let hits = approx.search(&q, 5, &Filter::new()).await.unwrap();
    assert_eq!(hits[0].chunk.id, c.id);
    assert!((hits[0].score - 1.0).abs() < 1e-4, "{}", hits[0].score);
    assert_eq!(ids(&hits).iter().filter(|i| **i == c.id).count(), 1);
    // The same chunk twice in one batch keeps the last version.
    let (c2, _, meta2) = items[7].clone();
    let far = Rng(43).vector(16);
    approx
        .upsert(vec![
            (c2.clone(), q.clone(), meta2.clone()),
            (c2.clone(), far.clone(), meta2),
        ])
        .await
        .unwrap();
    assert_eq!(approx.len(), 400);
    let hits = approx.search(&far, 1, &Filter::new()).await.unwrap();
    assert_eq!(hits[0].chunk.id, c2.id);
    // Delete most documents; inserts after the deletes reuse the freed slots.
    for doc in 0..30 {
        approx.delete_document(&format!("d{doc}")).await.unwrap();
    }
    assert_eq!(approx.len(), 100);
    let hits = approx.search(&q, 100, &Filter::new()).await.unwrap();
    assert_eq!(hits.len(), 100, "every live chunk is reachable");
    for h in &hits {
        let doc: usize = h.chunk.doc_id[1..].parse().unwrap();
        assert!(doc >= 30, "deleted chunk {} returned", h.chunk.id);
    }
    approx.upsert(items[..100].to_vec()).await.unwrap();
    assert_eq!(approx.len(), 200);
    let (c0, v0, _) = &items[5];
    let hits = approx.search(v0, 1, &Filter::new()).await.unwrap();
    assert_eq!(hits[0].chunk.id, c0.id, "re-inserted chunk found");
}

#[tokio::test]
async fn bad_input_is_a_typed_error() {
    for max_connections in [1, 300] {
        let err = UsearchVectorStore::with_config(HnswConfig {
            max_connections,
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
        assert!(err.to_string().contains("max_connections"), "{err}");
    }
    let err = UsearchVectorStore::with_config(HnswConfig {
        ef_search: 0,
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    let approx = UsearchVectorStore::new();
    // A batch whose vectors disagree is refused whole, before anything is stored.
    let mut mixed = corpus(3, 8, 1);
    mixed[2].1 = vec![1.0; 4];
    let err = approx.upsert(mixed).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(approx.is_empty());
    approx.upsert(corpus(5, 8, 1)).await.unwrap();
    let err = approx
        .upsert(vec![(chunk(9, 9), vec![1.0; 4], BTreeMap::new())])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    let err = approx
        .search(&[1.0; 3], 1, &Filter::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(err.to_string().contains("dimensions"), "{err}");
    assert!(
        UsearchVectorStore::new()
            .search(&[1.0; 3], 1, &Filter::new())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        approx
            .search(&[1.0; 8], 0, &Filter::new())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn save_and_load_round_trip_and_open_the_hnsw_stores_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.json");
    let approx = UsearchVectorStore::new();
    approx.upsert(corpus(200, 8, 21)).await.unwrap();
    approx.delete_document("d0").await.unwrap();
    approx.save(&path).unwrap();
    let loaded = UsearchVectorStore::load(&path, HnswConfig::default()).unwrap();
    assert_eq!(loaded.len(), 190);
    let q = Rng(8).vector(8);
    assert_eq!(
        ids(&approx.search(&q, 5, &Filter::new()).await.unwrap()),
        ids(&loaded.search(&q, 5, &Filter::new()).await.unwrap())
    );
    // One file format: each store opens the other's file.
    let as_hnsw = HnswVectorStore::load(&path, HnswConfig::default()).unwrap();
    assert_eq!(as_hnsw.len(), 190);
    let hnsw_path = dir.path().join("hnsw.json");
    as_hnsw.save(&hnsw_path).unwrap();
    let back = UsearchVectorStore::load(&hnsw_path, HnswConfig::default()).unwrap();
    assert_eq!(back.len(), 190);
    std::fs::write(&path, "{not a store").unwrap();
    let err = UsearchVectorStore::load(&path, HnswConfig::default()).unwrap_err();
    assert!(
        err.to_string().contains("not an HNSW vector store file"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_searches_all_succeed() {
    let approx = std::sync::Arc::new(UsearchVectorStore::new());
    approx.upsert(corpus(500, 16, 4)).await.unwrap();
    let searches = (0..64u64).map(|i| {
        let approx = approx.clone();
        tokio::spawn(async move {
            let q = Rng(i + 1).vector(16);
            approx.search(&q, 5, &Filter::new()).await.map(|h| h.len())
        })
    });
    for s in searches {
        assert_eq!(s.await.unwrap().unwrap(), 5);
    }
}

/// Polls a future that never waits, with no runtime around.
fn run_now<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(out) => out,
        std::task::Poll::Pending => panic!("the store waited with no runtime"),
    }
}

/// Outside a tokio runtime (another executor) maintenance runs inline.
#[test]
fn works_without_a_tokio_runtime() {
    let approx = UsearchVectorStore::new();
    run_now(approx.upsert(corpus(50, 8, 2))).unwrap();
    run_now(approx.delete_document("d0")).unwrap();
    assert_eq!(approx.len(), 40);
    let hits = run_now(approx.search(&Rng(1).vector(8), 3, &Filter::new())).unwrap();
    assert_eq!(hits.len(), 3);
}
