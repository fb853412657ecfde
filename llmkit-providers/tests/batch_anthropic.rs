#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Anthropic batch lane against a local fake server replaying the project's batch fixtures.
#![cfg(feature = "anthropic")]

use std::time::Duration;

use llmkit_core::batch::{BatchHandle, BatchItem, BatchLane, BatchStatus, PollPolicy, run_batch};
use llmkit_core::{ChatRequest, ErrorKind};
use llmkit_providers::anthropic::AnthropicModel;
use llmkit_providers::batch::{AnthropicBatchLane, parse_anthropic_results};
use llmkit_providers::http::ErrorMapper;
use proptest::prelude::*;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sk-ant-batch-test-secret-0042";

fn fixture(name: &str) -> String {
    let p = format!("{}/tests/fixtures/batch/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn lane(server: &MockServer) -> AnthropicBatchLane {
    let model = AnthropicModel::builder("claude-opus-4-6")
        .api_key(KEY)
        .base_url(server.uri())
        .build()
        .unwrap();
    AnthropicBatchLane::new(model)
}

fn reply(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body, "application/json")
}

#[tokio::test]
async fn submits_polls_and_maps_every_result_type_by_custom_id() {
    let server = MockServer::start().await;
    let in_progress = fixture("anthropic-batch-in-progress.response.json");
    let ended = fixture("anthropic-batch-ended.response.json").replace("{{BASE}}", &server.uri());
    Mock::given(method("POST"))
        .and(path("/v1/messages/batches"))
        .respond_with(reply(in_progress.clone()))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/messages/batches/msgbatch_01AbC"))
        .respond_with(reply(in_progress))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/messages/batches/msgbatch_01AbC"))
        .respond_with(reply(ended))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/messages/batches/msgbatch_01AbC/results"))
        .respond_with(reply(fixture("anthropic-results.jsonl")))
        .mount(&server)
        .await;

    let lane = lane(&server);
    let items: Vec<BatchItem> = ["a-1", "a-2", "a-3", "a-4"]
        .iter()
        .map(|id| BatchItem::new(*id, ChatRequest::user(format!("question {id}"))))
        .collect();
    let poll = PollPolicy {
        initial: Duration::from_millis(1),
        max_interval: Duration::from_millis(4),
        deadline: Duration::from_secs(30),
    };
    let report = run_batch(&lane, items, poll).await.unwrap();
    assert_eq!(report.progress.status, BatchStatus::Expired);
    assert_eq!(
        (
            report.progress.total,
            report.progress.succeeded,
            report.progress.failed
        ),
        (4, 1, 3)
    );
    let a1 = report.results["a-1"].as_ref().unwrap();
    assert_eq!(a1.text(), "Paris");
    // 1000 in + 1000 out at claude-opus-4-6's batch rate: 2.50 + 12.50 per million.
    assert_eq!(a1.cost.as_ref().unwrap().total_usd.to_string(), "0.015");
    assert!(a1.trail.has("batch", "priced"));
    assert_eq!(
        report.results["a-2"].as_ref().unwrap_err().kind(),
        ErrorKind::InvalidRequest
    );
    assert_eq!(
        report.results["a-3"].as_ref().unwrap_err().kind(),
        ErrorKind::Cancelled
    );
    assert_eq!(
        report.results["a-4"].as_ref().unwrap_err().kind(),
        ErrorKind::Timeout
    );

    let requests = server.received_requests().await.unwrap();
    let create = requests
        .iter()
        .find(|r| r.method.as_str() == "POST")
        .unwrap();
    assert_eq!(
        create.headers.get("x-api-key").unwrap().to_str().unwrap(),
        KEY
    );
    assert!(create.headers.get("anthropic-version").is_some());
    let body: serde_json::Value = serde_json::from_slice(&create.body).unwrap();
    let reqs = body["requests"].as_array().unwrap();
    assert_eq!(reqs.len(), 4);
    for (r, id) in reqs.iter().zip(["a-1", "a-2", "a-3", "a-4"]) {
        assert_eq!(r["custom_id"], id);
        assert_eq!(r["params"]["model"], "claude-opus-4-6");
        assert!(r["params"]["max_tokens"].as_u64().unwrap() > 0);
        assert!(r["params"].get("stream").is_none_or(|s| s == false));
    }
    assert!(!format!("{lane:?}").contains(KEY));
}

#[tokio::test]
async fn duplicate_ids_rejected_and_cancel_hits_the_cancel_endpoint() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages/batches/msgbatch_01AbC/cancel"))
        .respond_with(reply(fixture("anthropic-batch-in-progress.response.json")))
        .expect(1)
        .mount(&server)
        .await;
    let lane = lane(&server);
    let dup = vec![
        BatchItem::new("x", ChatRequest::user("1")),
        BatchItem::new("x", ChatRequest::user("2")),
    ];
    assert_eq!(
        lane.submit(dup).await.unwrap_err().kind(),
        ErrorKind::InvalidRequest
    );
    assert!(server.received_requests().await.unwrap().is_empty());
    let handle = BatchHandle {
        id: "msgbatch_01AbC".into(),
        provider: "anthropic".into(),
    };
    lane.cancel(&handle).await.unwrap();
}

fn mapper() -> ErrorMapper {
    ErrorMapper::new("anthropic", &[])
}

proptest! {
    #[test]
    fn arbitrary_result_text_never_panics(text in ".{0,400}") {
        let _ = parse_anthropic_results(&text, &mapper());
    }

    #[test]
    fn each_valid_line_maps_to_its_id(
        ids in proptest::collection::btree_set("[a-zA-Z0-9_-]{1,12}", 1..8),
    ) {
        let kinds = ["succeeded", "errored", "canceled", "expired"];
        let mut text = String::new();
        for (i, id) in ids.iter().enumerate() {
            let result = match kinds[i % 4] {
                "succeeded" => serde_json::json!({"type": "succeeded", "message": {"id": "m", "model": "claude-opus-4-6",
                    "content": [{"type": "text", "text": id}], "stop_reason": "end_turn",
                    "usage": {"input_tokens": 1, "output_tokens": 1}}}),
                "errored" => serde_json::json!({"type": "errored", "error": {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}}),
                other => serde_json::json!({"type": other}),
            };
            text.push_str(&serde_json::json!({"custom_id": id, "result": result}).to_string());
            text.push_str("\nnot json\n");
        }
        let parsed = parse_anthropic_results(&text, &mapper());
        prop_assert_eq!(parsed.len(), ids.len());
        for (i, id) in ids.iter().enumerate() {
            let r = &parsed[id];
            match kinds[i % 4] {
                "succeeded" => prop_assert_eq!(r.as_ref().unwrap().text(), id.clone()),
                "errored" => prop_assert_eq!(r.as_ref().unwrap_err().kind(), ErrorKind::Overloaded),
                "canceled" => prop_assert_eq!(r.as_ref().unwrap_err().kind(), ErrorKind::Cancelled),
                _ => prop_assert_eq!(r.as_ref().unwrap_err().kind(), ErrorKind::Timeout),
            }
        }
    }
}
