//! A model on one Tokio runtime must not reuse a pooled connection whose runtime was dropped
//! ("dispatch task is gone"), as happens between parallel `#[tokio::test]`s or short-lived CLI
//! runtimes. With a process-wide client this failed; each model now has its own.
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
fn models_on_short_lived_runtimes_in_parallel_keep_working() {
    let base = format!("{}/v1", server());
    // Several threads, each starting and dropping short-lived runtimes: with a process-wide
    // pool, one thread checks out a connection whose runtime another thread just dropped.
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let base = base.clone();
            std::thread::spawn(move || {
                for round in 0..25 {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        let model = OpenAiModel::compatible(base.clone(), "m").unwrap();
                        for _ in 0..2 {
                            let resp = model.chat(ChatRequest::user("x")).await;
                            let resp = resp
                                .unwrap_or_else(|e| panic!("worker {worker} round {round}: {e}"));
                            assert_eq!(resp.text(), "hi");
                        }
                    });
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
}
