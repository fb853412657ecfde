#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! OpenAI batch lane against a local fake server replaying the project's batch fixtures.
#![cfg(feature = "openai")]

use std::time::Duration;

use llmkit_core::batch::{BatchItem, BatchLane, BatchStatus, PollPolicy, run_batch};
use llmkit_core::{ChatRequest, ErrorKind, FinishReason};
use llmkit_providers::batch::{OpenAiBatchLane, parse_openai_results};
use llmkit_providers::http::ErrorMapper;
use llmkit_providers::openai::{OPENAI_RULES, OpenAiModel};
use llmkit_providers::{ProviderConfig, ProviderKind};
use proptest::prelude::*;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sk-batch-test-secret-0042";

fn fixture(name: &str) -> String {
    let p = format!("{}/tests/fixtures/batch/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn json_reply(name: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(fixture(name), "application/json")
}

fn lane(server: &MockServer) -> OpenAiBatchLane {
    let config = ProviderConfig::new(ProviderKind::OpenAi, "gpt-4o-mini")
        .with_api_key(KEY)
        .with_base_url(format!("{}/v1", server.uri()));
    OpenAiBatchLane::new(OpenAiModel::from_config(&config).unwrap())
}

fn items() -> Vec<BatchItem> {
    ["q-1", "q-2", "q-3", "q-4"]
        .iter()
        .map(|id| BatchItem::new(*id, ChatRequest::user(format!("capital for {id}?"))))
        .collect()
}

fn fast_poll() -> PollPolicy {
    PollPolicy {
        initial: Duration::from_millis(1),
        max_interval: Duration::from_millis(4),
        deadline: Duration::from_secs(30),
    }
}

async fn mount_flow(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/v1/files"))
        .respond_with(json_reply("openai-file.response.json"))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/batches"))
        .respond_with(json_reply("openai-batch-validating.response.json"))
        .expect(1)
        .mount(server)
        .await;
    // Polls see validating, then in_progress, then the terminal (expired) state.
    Mock::given(method("GET"))
        .and(path("/v1/batches/batch_xyz789"))
        .respond_with(json_reply("openai-batch-validating.response.json"))
        .up_to_n_times(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/batches/batch_xyz789"))
        .respond_with(json_reply("openai-batch-in-progress.response.json"))
        .up_to_n_times(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/batches/batch_xyz789"))
        .respond_with(json_reply("openai-batch-expired.response.json"))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/files/file-out456/content"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(fixture("openai-output.jsonl"), "text/plain"),
        )
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/files/file-err789/content"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(fixture("openai-errors.jsonl"), "text/plain"),
        )
        .mount(server)
        .await;
}

#[tokio::test]
async fn submits_polls_and_maps_mixed_results_by_custom_id() {
    let server = MockServer::start().await;
    mount_flow(&server).await;
    let lane = lane(&server);
    let report = run_batch(&lane, items(), fast_poll()).await.unwrap();

    assert_eq!(report.handle.id, "batch_xyz789");
    assert_eq!(report.handle.provider, "openai");
    assert_eq!(report.progress.status, BatchStatus::Expired);
    assert_eq!(
        (
            report.progress.total,
            report.progress.succeeded,
            report.progress.failed
        ),
        (4, 2, 2)
    );
    assert_eq!(report.results.len(), 4);

    let q1 = report.results["q-1"].as_ref().unwrap();
    assert_eq!(q1.text(), "Paris");
    assert_eq!(q1.provider_request_id.as_deref(), Some("req_aaa"));
    // 1000 in + 1000 out at gpt-4o-mini's batch rate: 0.075 + 0.30 per million.
    let cost = q1.cost.as_ref().expect("priced at the batch rate");
    assert_eq!(cost.total_usd.to_string(), "0.000375");
    assert!(q1.trail.has("batch", "priced"));
    let q2 = report.results["q-2"].as_ref().unwrap();
    assert_eq!(q2.text(), "Berlin");
    assert_eq!(q2.finish_reason, FinishReason::Length);

    let q3 = report.results["q-3"].as_ref().unwrap_err();
    assert_eq!(q3.kind(), ErrorKind::ContextLength);
    assert_eq!(q3.provider_request_id(), Some("req_ccc"));
    let q4 = report.results["q-4"].as_ref().unwrap_err();
    assert_eq!(q4.kind(), ErrorKind::Timeout, "{q4}");

    // The upload is multipart with purpose=batch and one JSONL line per item, built by the
    // provider's body builder; the key goes in the header only.
    let requests = server.received_requests().await.unwrap();
    let upload = requests
        .iter()
        .find(|r| r.url.path() == "/v1/files")
        .unwrap();
    let auth = upload
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(auth, format!("Bearer {KEY}"));
    let content_type = upload
        .headers
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(content_type.starts_with("multipart/form-data; boundary="));
    let body = String::from_utf8(upload.body.clone()).unwrap();
    assert!(body.contains("name=\"purpose\"\r\n\r\nbatch\r\n"));
    let lines: Vec<serde_json::Value> = body
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    for (line, id) in lines.iter().zip(["q-1", "q-2", "q-3", "q-4"]) {
        assert_eq!(line["custom_id"], id);
        assert_eq!(line["method"], "POST");
        assert_eq!(line["url"], "/v1/chat/completions");
        assert_eq!(line["body"]["model"], "gpt-4o-mini");
        assert_eq!(
            line["body"]["messages"][0]["content"],
            format!("capital for {id}?")
        );
    }
    let create = requests
        .iter()
        .find(|r| r.url.path() == "/v1/batches")
        .unwrap();
    let create: serde_json::Value = serde_json::from_slice(&create.body).unwrap();
    assert_eq!(
        create,
        serde_json::json!({"input_file_id": "file-in123", "endpoint": "/v1/chat/completions", "completion_window": "24h"})
    );
    assert!(!format!("{lane:?}").contains(KEY));
}

#[tokio::test]
async fn duplicate_ids_are_rejected_before_any_http_call() {
    let server = MockServer::start().await;
    let lane = lane(&server);
    let dup = vec![
        BatchItem::new("a", ChatRequest::user("x")),
        BatchItem::new("a", ChatRequest::user("y")),
    ];
    let err = lane.submit(dup).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(err.message().contains("appears twice"));
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn cancel_posts_to_the_cancel_endpoint_and_maps_errors() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/batches/batch_xyz789/cancel"))
        .respond_with(json_reply("openai-batch-in-progress.response.json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/batches/batch_gone/cancel"))
        .respond_with(ResponseTemplate::new(404).set_body_raw(
            r#"{"error":{"message":"No batch found with id 'batch_gone'.","type":"invalid_request_error","code":null}}"#,
            "application/json",
        ))
        .mount(&server)
        .await;
    let lane = lane(&server);
    let handle = |id: &str| llmkit_core::batch::BatchHandle {
        id: id.to_string(),
        provider: "openai".into(),
    };
    lane.cancel(&handle("batch_xyz789")).await.unwrap();
    let err = lane.cancel(&handle("batch_gone")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(!err.to_string().contains(KEY));
}

fn mapper() -> ErrorMapper {
    ErrorMapper::new("openai", OPENAI_RULES)
}

proptest! {
    #[test]
    fn arbitrary_result_text_never_panics(text in ".{0,400}") {
        let _ = parse_openai_results(&text, &mapper(), "gpt-4o-mini");
    }

    #[test]
    fn each_valid_line_maps_to_its_id(
        ids in proptest::collection::btree_set("[a-zA-Z0-9_-]{1,12}", 1..8),
        noise in proptest::collection::vec("[^\n]{0,40}", 0..4),
    ) {
        let mut text = String::new();
        for (i, id) in ids.iter().enumerate() {
            let line = if i % 2 == 0 {
                serde_json::json!({"custom_id": id, "response": {"status_code": 200, "body": {
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": id}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1}}}, "error": null})
            } else {
                serde_json::json!({"custom_id": id, "response": null, "error": {"code": "batch_expired", "message": "late"}})
            };
            text.push_str(&line.to_string());
            text.push('\n');
            if let Some(n) = noise.get(i)
                && !n.trim_start().starts_with('{') {
                    text.push_str(n);
                    text.push('\n');
                }
        }
        let parsed = parse_openai_results(&text, &mapper(), "gpt-4o-mini");
        prop_assert_eq!(parsed.len(), ids.len());
        for (i, id) in ids.iter().enumerate() {
            match &parsed[id] {
                Ok(r) => { prop_assert!(i % 2 == 0); prop_assert_eq!(r.text(), id.clone()); }
                Err(e) => { prop_assert!(i % 2 == 1); prop_assert_eq!(e.kind(), ErrorKind::Timeout); }
            }
        }
    }
}
