//! llmkit-rag behaviour: cleaning, chunk offsets and ids, BM25 and RRF, filters, persistence,
//! incremental indexing, citation checks.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use llmkit_core::{ChatRequest, EmbeddingModel, Reply, ScriptedModel};
use llmkit_rag::answer::{check_claims, lexical_support};
use llmkit_rag::document::{html_to_text, shingle_similarity};
use llmkit_rag::eval::{RetrievedIds, mrr, recall_at_k};
use llmkit_rag::lexical::terms;
use llmkit_rag::store::Filter;
use llmkit_rag::*;
use proptest::prelude::*;

fn embedder() -> Arc<dyn EmbeddingModel> {
    Arc::new(ScriptedModel::builder().embedding_dimensions(256).build())
}

#[test]
fn cleaning_messy_text() {
    let messy = "ACME CONFIDENTIAL\nThe refund win-\ndow is thirty days.\u{0007}\n\nACME CONFIDENTIAL\nShip\u{FB01}ng   is free.\n\nACME CONFIDENTIAL\nEnd.";
    let c = clean(messy);
    assert!(c.contains("refund window is thirty days."), "{c}");
    assert!(
        c.contains("Shipfing is free."),
        "NFKC expands the ligature: {c}"
    );
    assert!(
        !c.contains("ACME CONFIDENTIAL"),
        "running header removed: {c}"
    );
    assert!(!c.contains('\u{0007}'));
    let html = "<html><head><title>x</title><style>p{}</style></head><body><h2>Refunds</h2><p>Within 30 days &amp; free.</p><script>evil()</script></body></html>";
    let t = html_to_text(html);
    assert!(
        t.contains("## Refunds") && t.contains("Within 30 days & free."),
        "{t}"
    );
    assert!(!t.contains("evil") && !t.contains("p{}"), "{t}");
    assert!(shingle_similarity("the quick brown fox jumps", "the quick brown fox jumps!") > 0.99);
    let docs = vec![
        Document::new("a", "refunds within thirty days of delivery for all orders"),
        Document::new(
            "b",
            "refunds within thirty days of delivery for all orders.",
        ),
        Document::new("c", "shipping takes two days"),
    ];
    assert_eq!(
        near_duplicates(&docs, 0.8),
        vec![("b".to_owned(), "a".to_owned())]
    );
}

const POLICY: &str = "# Refunds\n\nRefunds are accepted within 30 days of delivery. After 30 days we offer store credit only.\n\nRefunds go back to the original payment method within five business days.\n\n# Shipping\n\nOrders ship within two business days. Express shipping costs 15 EUR.\n\n# Warranty\n\nHardware carries a two year warranty covering manufacturing defects.";

#[test]
fn chunks_reproduce_source_and_ids_are_stable() {
    let doc = Document::new("policy", POLICY);
    let chunker = Chunker::new().max_size(20).overlap(5);
    let chunks = chunker.chunk(&doc);
    assert!(chunks.len() > 3);
    for c in &chunks {
        assert_eq!(&doc.text[c.start..c.end], c.text);
        assert!(chunker_size(&c.text) <= 20 + 5, "{c:?}");
    }
    assert_eq!(chunks[0].heading.as_deref(), None);
    assert!(
        chunks
            .iter()
            .any(|c| c.heading.as_deref() == Some("Shipping"))
    );
    let again = chunker.chunk(&Document::new("policy", POLICY));
    assert_eq!(
        chunks.iter().map(|c| &c.id).collect::<Vec<_>>(),
        again.iter().map(|c| &c.id).collect::<Vec<_>>()
    );
    // Editing one section leaves the other chunks' ids unchanged.
    let edited = Document::new("policy", POLICY.replace("15 EUR", "20 EUR"));
    let ids: std::collections::HashSet<String> =
        chunker.chunk(&edited).into_iter().map(|c| c.id).collect();
    let kept = chunks.iter().filter(|c| ids.contains(&c.id)).count();
    assert!(
        kept >= chunks.len() - 2,
        "only chunks touching the edit change ({kept}/{})",
        chunks.len()
    );
}

fn chunker_size(t: &str) -> usize {
    llmkit_core::tokens::approximate(t) as usize
}

proptest! {
    #[test]
    fn splitter_never_panics_and_covers_every_word(text in "[a-zA-Z .,!?#\\n\u{e9}\u{4e2d}]{0,600}", max in 1usize..40, overlap in 0usize..10) {
        let doc = Document::new("d", text.clone());
        let chunks = Chunker::new().max_size(max).overlap(overlap).chunk(&doc);
        let mut covered = vec![false; text.len()];
        let mut last_end = 0;
        for c in &chunks {
            prop_assert_eq!(&text[c.start..c.end], c.text.as_str());
            prop_assert!(c.end >= last_end, "chunks in order");
            last_end = c.end;
            for b in covered.iter_mut().take(c.end).skip(c.start) { *b = true; }
        }
        for (i, ch) in text.char_indices() {
            if !ch.is_whitespace() {
                prop_assert!(covered[i], "byte {} ({:?}) lost", i, ch);
            }
        }
    }

    #[test]
    fn cleaning_and_html_never_panic(s in any::<String>()) {
        let _ = clean(&s);
        let _ = html_to_text(&s);
        let _ = Document::from_markup("x", &s);
    }
}

fn chunk(id: &str, doc: &str, text: &str) -> Chunk {
    Chunk {
        id: id.into(),
        doc_id: doc.into(),
        ordinal: 0,
        start: 0,
        end: text.len(),
        text: text.into(),
        heading: None,
    }
}

#[test]
fn bm25_matches_hand_computed_ranking() {
    let mut bm = Bm25::new();
    bm.insert(chunk("a", "a", "refund refund policy"), BTreeMap::new());
    bm.insert(chunk("b", "b", "refund shipping"), BTreeMap::new());
    bm.insert(chunk("c", "c", "shipping times"), BTreeMap::new());
    let hits = bm.search("refund", 3, &Filter::new());
    assert_eq!(
        hits.iter().map(|h| h.chunk.id.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    // idf(refund) = ln((3 - 2 + 0.5) / (2 + 0.5) + 1) = ln(1.6); avgdl = 7/3.
    let idf = (1.6f32).ln();
    let avg = 7.0 / 3.0;
    let score_a = idf * 2.0 * 2.2 / (2.0 + 1.2 * (0.25 + 0.75 * 3.0 / avg));
    let score_b = idf * 1.0 * 2.2 / (1.0 + 1.2 * (0.25 + 0.75 * 2.0 / avg));
    assert!(
        (hits[0].score - score_a).abs() < 1e-5,
        "{} vs {score_a}",
        hits[0].score
    );
    assert!((hits[1].score - score_b).abs() < 1e-5);
    bm.delete_document("a");
    assert_eq!(bm.search("refund", 3, &Filter::new())[0].chunk.id, "b");
}

#[test]
fn rrf_fuses_by_rank() {
    let h = |id: &str| Hit {
        chunk: chunk(id, id, id),
        score: 0.0,
    };
    let fused = rrf(
        &[vec![h("a"), h("b"), h("c")], vec![h("c"), h("a")]],
        60.0,
        3,
    );
    // a: 1/61 + 1/62; c: 1/63 + 1/61; b: 1/62.
    assert_eq!(
        fused
            .iter()
            .map(|h| h.chunk.id.as_str())
            .collect::<Vec<_>>(),
        ["a", "c", "b"]
    );
    assert!((fused[0].score - (1.0 / 61.0 + 1.0 / 62.0)).abs() < 1e-6);
}

#[tokio::test]
async fn vector_store_filters_and_persists() {
    let store = MemoryVectorStore::new();
    let meta = |lang: &str| BTreeMap::from([("lang".to_owned(), lang.to_owned())]);
    store
        .upsert(vec![
            (chunk("en1", "d1", "x"), vec![1.0, 0.0, 0.0], meta("en")),
            (chunk("de1", "d2", "y"), vec![0.9, 0.1, 0.0], meta("de")),
            (chunk("en2", "d3", "z"), vec![0.0, 1.0, 0.0], meta("en")),
        ])
        .await
        .unwrap();
    let de = Filter::from([("lang".to_owned(), "de".to_owned())]);
    let hits = store.search(&[1.0, 0.0, 0.0], 3, &de).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].chunk.id, "de1");
    assert!(
        store
            .upsert(vec![(chunk("bad", "d4", "w"), vec![1.0], meta("en"))])
            .await
            .is_err(),
        "dimension mismatch is an error"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.json");
    store.save(&path).unwrap();
    let loaded = MemoryVectorStore::load(&path).unwrap();
    assert_eq!(
        loaded
            .search(&[0.0, 1.0, 0.0], 1, &Filter::new())
            .await
            .unwrap()[0]
            .chunk
            .id,
        "en2"
    );
    loaded.delete_document("d3").await.unwrap();
    assert_eq!(loaded.len(), 2);
    assert_eq!(
        loaded
            .search(&[0.0, 1.0, 0.0], 1, &Filter::new())
            .await
            .unwrap()[0]
            .chunk
            .id
            .len(),
        3
    );
}

#[tokio::test]
async fn incremental_reindex_adds_updates_deletes_and_skips_unchanged() {
    let model = Arc::new(ScriptedModel::builder().embedding_dimensions(64).build());
    let index = Index::new(model.clone()).with_chunker(Chunker::new().max_size(40).overlap(0));
    let docs = vec![
        Document::new("refunds", POLICY),
        Document::new("faq", "Gift cards never expire."),
    ];
    let r = index.sync(docs.clone()).await.unwrap();
    assert_eq!((r.added, r.updated, r.deleted, r.unchanged), (2, 0, 0, 0));
    let first_embedded = r.embedded_chunks;
    assert!(first_embedded > 0);
    // Same content: nothing re-embedded.
    let r = index.sync(docs.clone()).await.unwrap();
    assert_eq!((r.added, r.unchanged, r.embedded_chunks), (0, 2, 0));
    // One document changed, one removed, one new: only changed chunks are embedded again.
    let changed = Document::new("refunds", POLICY.replace("15 EUR", "20 EUR"));
    let r = index
        .sync(vec![
            changed,
            Document::new("new", "Returns need the original box."),
        ])
        .await
        .unwrap();
    assert_eq!((r.added, r.updated, r.deleted), (1, 1, 1));
    assert!(
        r.cached_chunks > 0,
        "unchanged chunks of the edited document came from the cache"
    );
    assert!(r.embedded_chunks <= 2, "{r:?}");
    assert!(
        index
            .search("gift cards", 3, &Filter::new(), SearchMode::Lexical)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(index.stale(std::time::Duration::from_secs(3600)).is_empty());
    assert_eq!(index.stale(std::time::Duration::ZERO).len(), 2);
}

#[test]
fn citations_accept_supported_and_flag_unsupported() {
    let hits = vec![Hit {
        chunk: chunk(
            "refunds#1",
            "refunds",
            "Refunds are accepted within 30 days of delivery.",
        ),
        score: 1.0,
    }];
    let claims = vec![
        Claim {
            text: "Refunds are accepted within 30 days of delivery.".into(),
            chunk_ids: vec!["refunds#1".into()],
        },
        Claim {
            text: "Refunds are accepted for 90 days on electronics.".into(),
            chunk_ids: vec!["refunds#1".into()],
        },
        Claim {
            text: "Refunds are accepted within 30 days.".into(),
            chunk_ids: vec!["made-up#9".into()],
        },
    ];
    let checked = check_claims(&claims, &hits, 0.6);
    assert!(checked[0].supported);
    assert!(!checked[1].supported, "{:?}", checked[1]);
    assert!(!checked[2].supported);
    assert_eq!(checked[2].unknown_ids, ["made-up#9"]);
    assert!(lexical_support("nothing here", &["other words"]) < 0.1);
    assert_eq!(terms("Refund-Policy 30"), ["refund", "policy", "30"]);
}

/// The first source id in the prompt, in either marking format (`id="..."` or `id=... provenance`).
fn first_cited_id(prompt: &str) -> String {
    let after = prompt.split("id=").nth(1).unwrap_or("none");
    after
        .trim_start_matches('"')
        .split(|c: char| c == '"' || c.is_whitespace())
        .next()
        .unwrap_or("none")
        .to_owned()
}

fn answering_model(retrieved_ok: bool) -> Arc<ScriptedModel> {
    Arc::new(ScriptedModel::builder().fallback(Reply::dynamic(move |req: &ChatRequest| {
        // Cite the first chunk id that appears in the prompt, as a real model would.
        let text = req.messages.last().map(|m| m.text()).unwrap_or_default();
        let id = first_cited_id(&text);
        let claim = if retrieved_ok { "Refunds are accepted within 30 days of delivery." } else { "Refunds are accepted for 90 days on electronics." };
        Reply::text(serde_json::json!({"answer": claim, "claims": [{"text": claim, "chunk_ids": [id]}], "refused": false}).to_string())
    })).build())
}

#[tokio::test]
async fn grounded_answer_cites_retrieved_chunks_and_sets_context_ids() {
    let index = Arc::new(Index::new(embedder()));
    index
        .sync(vec![Document::new("refunds", POLICY)])
        .await
        .unwrap();
    let model = answering_model(true);
    let answerer = GroundedAnswerer::new(index.clone(), model.clone());
    let report = answerer
        .answer("Can I get a refund after 30 days?")
        .await
        .unwrap();
    assert!(!report.refused);
    assert_eq!(report.unsupported().count(), 0, "{:?}", report.claims);
    let sent = &model.requests()[0];
    assert_eq!(sent.meta.context_ids, report.context_ids);
    assert!(
        !sent.messages[0].text().contains("Refunds are accepted"),
        "sources never in the system message"
    );

    let bad =
        GroundedAnswerer::new(index, answering_model(false)).policy(UnsupportedPolicy::Refuse);
    let report = bad
        .answer("Can I get a refund after 30 days?")
        .await
        .unwrap();
    assert!(report.refused);
    assert_eq!(report.unsupported().count(), 1);
}

#[test]
fn recall_and_mrr() {
    let r = vec![
        RetrievedIds {
            query: "a".into(),
            retrieved: vec!["x".into(), "y".into()],
            relevant: vec!["y".into()],
        },
        RetrievedIds {
            query: "b".into(),
            retrieved: vec!["z".into(), "w".into()],
            relevant: vec!["q".into()],
        },
    ];
    assert!((recall_at_k(&r, 2) - 0.5).abs() < 1e-9);
    assert!((recall_at_k(&r, 1) - 0.0).abs() < 1e-9);
    assert!((mrr(&r) - 0.25).abs() < 1e-9);
}
