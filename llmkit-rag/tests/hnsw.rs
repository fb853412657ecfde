//! The approximate store against the exact one: recall, filters, deletes, persistence.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, HashSet};

use llmkit_core::ErrorKind;
use llmkit_rag::store::Filter;
use llmkit_rag::{Chunk, HnswConfig, HnswVectorStore, MemoryVectorStore, VectorStore};

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
async fn approximate_recall_at_10_is_close_to_exact() {
    let items = corpus(3000, 32, 7);
    let exact = MemoryVectorStore::new();
    let approx = HnswVectorStore::new();
    exact.upsert(items.clone()).await.unwrap();
    approx.upsert(items).await.unwrap();
    assert_eq!(approx.len(), 3000);
    let mut rng = Rng(99);
    let (mut found, mut total) = (0usize, 0usize);
    for _ in 0..50 {
        let q = rng.vector(32);
        let truth: HashSet<String> = ids(&exact.search(&q, 10, &Filter::new()).await.unwrap())
            .into_iter()
            .collect();
        let got = approx.search(&q, 10, &Filter::new()).await.unwrap();
        assert_eq!(got.len(), 10);
        assert!(
            got.windows(2).all(|w| w[0].score >= w[1].score),
            "best first"
        );
        found += got.iter().filter(|h| truth.contains(&h.chunk.id)).count();
        total += truth.len();
    }
    let recall = found as f64 / total as f64;
    assert!(recall >= 0.9, "recall@10 {recall}");
}

#[tokio::test]
async fn filters_apply_inside_the_search() {
    let items = corpus(1000, 16, 3);
    let approx = HnswVectorStore::new();
    approx.upsert(items).await.unwrap();
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
async fn deletes_and_replacements_are_never_returned_and_compact() {
    let items = corpus(400, 16, 11);
    let approx = HnswVectorStore::new();
    approx.upsert(items.clone()).await.unwrap();
    // Replace one chunk's vector with the query itself: it must come first, once.
    let q = Rng(42).vector(16);
    let (c, _, meta) = items[123].clone();
    approx
        .upsert(vec![(c.clone(), q.clone(), meta)])
        .await
        .unwrap();
    assert_eq!(approx.len(), 400);
    assert_eq!(approx.tombstones(), 1);
    let hits = approx.search(&q, 5, &Filter::new()).await.unwrap();
    assert_eq!(hits[0].chunk.id, c.id);
    assert!((hits[0].score - 1.0).abs() < 1e-4, "{}", hits[0].score);
    assert_eq!(ids(&hits).iter().filter(|i| **i == c.id).count(), 1);
    // Delete most documents: the graph is rebuilt once tombstones outnumber live chunks.
    for doc in 0..30 {
        approx.delete_document(&format!("d{doc}")).await.unwrap();
    }
    assert_eq!(approx.len(), 100);
    assert!(approx.tombstones() <= approx.len(), "compacted");
    let hits = approx.search(&q, 100, &Filter::new()).await.unwrap();
    assert!(!hits.is_empty());
    for h in &hits {
        let doc: usize = h.chunk.doc_id[1..].parse().unwrap();
        assert!(doc >= 30, "deleted chunk {} returned", h.chunk.id);
    }
    approx.compact().unwrap();
    assert_eq!(approx.tombstones(), 0);
    assert_eq!(approx.len(), 100);
}

#[tokio::test]
async fn bad_input_is_a_typed_error() {
    let err = HnswVectorStore::with_config(HnswConfig {
        max_connections: 300,
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(err.to_string().contains("max_connections"), "{err}");
    let approx = HnswVectorStore::new();
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
    assert!(err.to_string().contains("dimensions"), "{err}");
    assert!(
        HnswVectorStore::new()
            .search(&[1.0; 3], 1, &Filter::new())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn save_and_load_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.json");
    let approx = HnswVectorStore::new();
    approx.upsert(corpus(200, 8, 21)).await.unwrap();
    approx.delete_document("d0").await.unwrap();
    approx.save(&path).unwrap();
    let loaded = HnswVectorStore::load(&path, HnswConfig::default()).unwrap();
    assert_eq!(loaded.len(), 190);
    let q = Rng(8).vector(8);
    assert_eq!(
        ids(&approx.search(&q, 5, &Filter::new()).await.unwrap()),
        ids(&loaded.search(&q, 5, &Filter::new()).await.unwrap())
    );
    std::fs::write(&path, "{not a store").unwrap();
    let err = HnswVectorStore::load(&path, HnswConfig::default()).unwrap_err();
    assert!(
        err.to_string().contains("not an HNSW vector store file"),
        "{err}"
    );
}

/// The exact store's bounded top-k heap returns what a full sort would.
#[tokio::test]
async fn exact_top_k_matches_a_full_sort() {
    let items = corpus(500, 12, 17);
    let exact = MemoryVectorStore::new();
    exact.upsert(items.clone()).await.unwrap();
    let q = Rng(3).vector(12);
    let qn = {
        let n = q.iter().map(|x| x * x).sum::<f32>().sqrt();
        q.iter().map(|x| x / n).collect::<Vec<_>>()
    };
    let mut all: Vec<(f32, String)> = items
        .iter()
        .map(|(c, v, _)| {
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            let s = v.iter().zip(&qn).map(|(a, b)| a / n * b).sum::<f32>();
            (s, c.id.clone())
        })
        .collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    let want: Vec<String> = all.into_iter().take(7).map(|(_, id)| id).collect();
    assert_eq!(
        ids(&exact.search(&q, 7, &Filter::new()).await.unwrap()),
        want
    );
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
    let approx = HnswVectorStore::new();
    run_now(approx.upsert(corpus(50, 8, 2))).unwrap();
    run_now(approx.delete_document("d0")).unwrap();
    assert_eq!(approx.len(), 40);
    let hits = run_now(approx.search(&Rng(1).vector(8), 3, &Filter::new())).unwrap();
    assert_eq!(hits.len(), 3);
}
