//! The index embeds through the same layers a chat model uses (issue 19 item 3): a 429 while
//! indexing is retried, and a layer without an embedding form is refused.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::Duration;

use llmkit_core::resilience::{Backoff, RetryLayer};
use llmkit_core::{ErrorKind, Pipeline, Reply, ScriptedModel, layer_fn};
use llmkit_rag::store::Filter;
use llmkit_rag::{Document, Index, SearchMode};

#[tokio::test(start_paused = true)]
async fn indexing_retries_a_rate_limited_embedding_call() {
    let embedder = Arc::new(
        ScriptedModel::builder()
            .embedding_dimensions(64)
            .embed_reply(Reply::rate_limited(Duration::from_secs(1)))
            .build(),
    );
    let layers = Pipeline::builder()
        .layer(RetryLayer::new().backoff(Backoff::exponential().base(Duration::from_millis(10))));

    // Without the layers the 429 fails the whole indexing run.
    let bare = Index::new(embedder.clone());
    let err = bare
        .upsert(vec![Document::new("refunds", "Refunds take five days.")])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);

    let embedder = Arc::new(
        ScriptedModel::builder()
            .embedding_dimensions(64)
            .embed_reply(Reply::rate_limited(Duration::from_secs(1)))
            .build(),
    );
    let index = Index::new(embedder.clone())
        .with_embedding_layers(&layers)
        .unwrap();
    index
        .upsert(vec![Document::new("refunds", "Refunds take five days.")])
        .await
        .unwrap();
    assert_eq!(embedder.embed_requests().len(), 2, "the 429 was retried");
    let hits = index
        .search(
            "how long do refunds take",
            1,
            &Filter::default(),
            SearchMode::Vector,
        )
        .await
        .unwrap();
    assert_eq!(hits[0].chunk.doc_id, "refunds");
}

#[test]
fn a_layer_without_an_embedding_form_is_refused() {
    let layers = Pipeline::builder().layer(layer_fn("tag", |r| r));
    let err = Index::new(Arc::new(ScriptedModel::builder().build()))
        .with_embedding_layers(&layers)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}
