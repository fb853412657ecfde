//! A model built in one Tokio runtime after another runtime (that used the shared
//! client) was dropped must not reuse that runtime's dead pooled connections
//! ("dispatch task is gone"), as happens between `#[tokio::test]`s. Both runtime flavours alternate.
#![cfg(feature = "openai")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use llmkit_core::{ChatModel, ChatRequest};
use llmkit_providers::openai::OpenAiModel;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Runs the fake server on its own runtime thread, outliving the client runtimes.
fn server() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .and(path("/v1/chat/completions"))
                .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                    "id": "c1", "object": "chat.completion", "created": 1, "model": "m",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
                })))
                .mount(&server)
                .await;
            tx.send(server.uri()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}

#[test]
fn models_in_successive_runtimes_keep_working() {
    let base = format!("{}/v1", server());
    for round in 0..40 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let model = OpenAiModel::compatible(base.clone(), "m").unwrap();
            for _ in 0..2 {
                let resp = model.chat(ChatRequest::user("x")).await;
                assert_eq!(resp.unwrap().text(), "hi", "round {round}");
            }
        });
        drop(rt);
    }
}
