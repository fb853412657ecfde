//! Replays the real third-party payloads in ../shared/fixtures/providers/openai directly through
//! the OpenAI provider on a local fake server. Fresh clones do not have ../shared: every test
//! then prints a loud SKIPPED line and returns.
#![cfg(feature = "openai")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;

use llmkit_core::{
    ChatModel, ChatRequest, EmbeddingModel, EmbeddingRequest, ErrorKind, FinishReason,
    collect_stream,
};
use llmkit_providers::openai::{OpenAiEmbeddings, OpenAiModel};
use llmkit_providers::{ProviderConfig, ProviderKind};
use llmkit_testkit::{CannedResponse, FakeServer};
use serde_json::Value;

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

/// A `<case>.headers.txt` file (status line, then `name: value` lines) plus a body.
fn with_recorded_headers(dir: &Path, case: &str, body: String) -> CannedResponse {
    let text = read(dir, &format!("{case}.headers.txt"));
    let mut lines = text.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut canned = CannedResponse::raw(status, "application/json", body);
    for line in lines {
        if let Some((k, v)) = line.split_once(": ") {
            let k = k.to_ascii_lowercase();
            if !matches!(
                k.as_str(),
                "content-length" | "transfer-encoding" | "connection" | "content-type"
            ) {
                canned = canned.with_header(k, v);
            }
        }
    }
    canned
}

async fn model(server: &FakeServer) -> OpenAiModel {
    OpenAiModel::from_config(
        &ProviderConfig::new(ProviderKind::OpenAi, "gpt-4o")
            .with_api_key("sk-test")
            .with_base_url(format!("{}/v1", server.base_url())),
    )
    .unwrap()
}

async fn chat_with(body: CannedResponse) -> llmkit_core::Result<llmkit_core::ChatResponse> {
    let server = FakeServer::start().await.unwrap();
    server.push(body);
    model(&server).await.chat(ChatRequest::user("hi")).await
}

#[tokio::test]
async fn chat_responses() {
    let Some(dir) = common::shared_fixtures("openai") else {
        return;
    };
    let json = |name: &str| CannedResponse::raw(200, "application/json", read(&dir, name));

    let r = chat_with(json("chat-basic.response.json")).await.unwrap();
    assert_eq!(r.text(), "Hello! How can I assist you today?");
    assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (19, 10));
    assert_eq!(r.model, "gpt-5.4");

    let r = chat_with(json("chat-tools.response.json")).await.unwrap();
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    assert_eq!(r.tool_calls()[0].name, "get_current_weather");
    assert_eq!(r.tool_calls()[0].arguments["location"], "Boston, MA");

    let r = chat_with(json("chat-parallel-tool-calls.response.json"))
        .await
        .unwrap();
    assert!(r.tool_calls().len() >= 2);

    let r = chat_with(json("chat-finish-length.response.json"))
        .await
        .unwrap();
    assert_eq!(r.finish_reason, FinishReason::Length);

    let r = chat_with(json("chat-structured-refusal.response.json"))
        .await
        .unwrap();
    assert_eq!(r.finish_reason, FinishReason::ContentFilter);
    assert!(r.text().contains("sorry"));

    let r = chat_with(json("chat-structured-json-schema.response.json"))
        .await
        .unwrap();
    serde_json::from_str::<Value>(&r.text()).unwrap();

    let r = chat_with(json("chat-tool-call-complex-args.response.json"))
        .await
        .unwrap();
    assert!(r.tool_calls()[0].arguments.is_object());

    for name in [
        "chat-n3.response.json",
        "chat-logprobs.response.json",
        "chat-strict-tools.response.json",
    ] {
        chat_with(json(name))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[tokio::test]
async fn recorded_errors() {
    let Some(dir) = common::shared_fixtures("openai") else {
        return;
    };
    for (case, kind, code) in [
        (
            "error-404-model-not-found",
            ErrorKind::NotFound,
            "model_not_found",
        ),
        (
            "error-400-unsupported-value",
            ErrorKind::InvalidRequest,
            "unsupported_value",
        ),
    ] {
        let body = read(&dir, &format!("{case}.response.json"));
        let e = chat_with(with_recorded_headers(&dir, case, body))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), kind, "{case}");
        assert_eq!(e.provider_code(), Some(code));
        assert_eq!(e.provider(), Some("openai"));
    }
}

/// An independent oracle: the text, tool names and usage a stream carries, read naively.
fn naive_stream_summary(raw: &str) -> (String, Vec<String>, Option<u64>) {
    let mut text = String::new();
    let mut tools = Vec::new();
    let mut output = None;
    for line in raw.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            continue;
        };
        for choice in v["choices"].as_array().into_iter().flatten() {
            if choice["index"].as_u64().unwrap_or(0) != 0 {
                continue;
            }
            text.push_str(choice["delta"]["content"].as_str().unwrap_or(""));
            text.push_str(choice["delta"]["refusal"].as_str().unwrap_or(""));
            for call in choice["delta"]["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if let Some(name) = call["function"]["name"].as_str() {
                    tools.push(name.to_owned());
                }
            }
        }
        if let Some(n) = v["usage"]["completion_tokens"].as_u64() {
            output = Some(n);
        }
    }
    (text, tools, output)
}

#[tokio::test]
async fn every_recorded_stream_assembles() {
    let Some(dir) = common::shared_fixtures("openai") else {
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sse"))
        .collect();
    files.sort();
    assert!(files.len() >= 10);
    for path in files {
        let raw = std::fs::read_to_string(&path).unwrap();
        let server = FakeServer::start().await.unwrap();
        server.push(CannedResponse::sse(&raw));
        let m = model(&server).await;
        let stream = m.stream(ChatRequest::user("hi")).await.unwrap();
        let r = collect_stream(stream, m.info())
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (text, tools, output) = naive_stream_summary(&raw);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(r.text(), text, "{name}");
        let got: Vec<String> = r.tool_calls().iter().map(|c| c.name.clone()).collect();
        assert_eq!(got, tools, "{name}");
        if let Some(n) = output {
            assert_eq!(r.usage.output_tokens, n, "{name}");
        }
        if name.contains("refusal") {
            assert_eq!(r.finish_reason, FinishReason::ContentFilter, "{name}");
        }
        if name.contains("finish-length") {
            assert_eq!(r.finish_reason, FinishReason::Length, "{name}");
        }
        // The wire body a stream request sends is itself valid per the spec.
        common::validate_chat_request(&server.requests()[0].json().unwrap()).unwrap();
    }
}

#[tokio::test]
async fn recorded_base64_embeddings() {
    let Some(dir) = common::shared_fixtures("openai") else {
        return;
    };
    let server = FakeServer::start().await.unwrap();
    server.push(with_recorded_headers(
        &dir,
        "embeddings",
        read(&dir, "embeddings.response.json"),
    ));
    let emb = OpenAiEmbeddings::from_config(
        &ProviderConfig::new(ProviderKind::OpenAi, "gpt-4o")
            .with_embedding_model("text-embedding-3-small")
            .with_api_key("sk-test")
            .with_base_url(format!("{}/v1", server.base_url())),
    )
    .unwrap();
    let r = emb
        .embed(EmbeddingRequest::new(["Hello, world!"]))
        .await
        .unwrap();
    assert_eq!(r.embeddings.len(), 1);
    assert_eq!(r.embeddings[0].len(), 1536);
    assert!(
        r.embeddings[0]
            .iter()
            .all(|x| x.is_finite() && x.abs() < 1.0)
    );
    let sent = server.requests()[0].json().unwrap();
    assert_eq!(sent["model"], "text-embedding-3-small");
    assert_eq!(sent["input"][0], "Hello, world!");
    assert_eq!(server.requests()[0].path, "/v1/embeddings");
}

#[test]
fn openapi_validator_accepts_recorded_requests_and_rejects_bad_ones() {
    let Some(dir) = common::shared_fixtures("openai") else {
        return;
    };
    for name in [
        "chat-basic.request.json",
        "chat-tools.request.json",
        "chat-stream.request.json",
        "chat-strict-tools.request.json",
    ] {
        let body: Value = serde_json::from_str(&read(&dir, name)).unwrap();
        match common::validate_chat_request(&body) {
            Ok(_) => {}
            Err(e) => panic!("{name}: {e}"),
        }
    }
    let bad =
        serde_json::json!({"model": "gpt-4o", "messages": [{"role": "wizard", "content": 5}]});
    if common::validate_chat_request(&bad) == Ok(false) {
        return; // spec absent: already reported as skipped
    }
    assert!(common::validate_chat_request(&bad).is_err());
    assert!(common::validate_chat_request(&serde_json::json!({"messages": []})).is_err());
}
