//! The public conformance suite run for OpenAI, an OpenAI-compatible server and Azure OpenAI,
//! with this crate's fixtures (learned from the real payloads in ../shared/fixtures). Every
//! request body is also validated against the official OpenAPI schema when it is present.
#![cfg(feature = "azure")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;

use llmkit_core::ChatModel;
use llmkit_providers::{ProviderConfig, ProviderKind, from_config};
use llmkit_testkit::{
    CannedResponse, Case, ConformanceAdapter, RecordedRequest, expected, run_suite,
};

/// One adapter for the three members of the OpenAI family; they share fixtures and differ in
/// URL, auth and the max-tokens field.
struct OpenAiFamily {
    kind: ProviderKind,
}

const MODEL: &str = "gpt-4o-mini";

impl OpenAiFamily {
    fn path(&self) -> String {
        match self.kind {
            ProviderKind::Azure => format!("/openai/deployments/{MODEL}/chat/completions"),
            _ => "/v1/chat/completions".into(),
        }
    }
}

fn ensure(cond: bool, what: impl Into<String>) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what.into()) }
}

impl ConformanceAdapter for OpenAiFamily {
    fn name(&self) -> &str {
        self.kind.as_str()
    }

    fn chat_model(&self, base_url: &str) -> llmkit_core::Result<Arc<dyn ChatModel>> {
        let config = match self.kind {
            ProviderKind::Azure => ProviderConfig::new(ProviderKind::Azure, MODEL)
                .with_base_url(base_url)
                .with_api_key(expected::API_KEY)
                .with_api_version("2024-10-21"),
            ProviderKind::OpenAiCompatible => {
                ProviderConfig::new(self.kind, MODEL).with_base_url(format!("{base_url}/v1"))
            }
            _ => ProviderConfig::new(self.kind, MODEL)
                .with_base_url(format!("{base_url}/v1"))
                .with_api_key(expected::API_KEY)
                .with_organization("org-conformance")
                .with_project("proj_conformance"),
        };
        from_config(&config)
    }

    fn canned(&self, case: Case) -> Option<CannedResponse> {
        let json = |file: &str, status: u16| {
            let text = common::own_fixture(&format!("openai/{file}"));
            CannedResponse::raw(status, "application/json", text)
                .with_header("x-request-id", "req_conformance")
        };
        let sse = |file: &str| CannedResponse::sse(&common::own_fixture(&format!("openai/{file}")));
        Some(match case {
            Case::PlainChat | Case::SystemPrompt | Case::MultiTurn | Case::ToolResult => {
                json("reply.response.json", 200)
            }
            Case::ToolCall => json("tool_call.response.json", 200),
            Case::StructuredOutput => json("structured_output.response.json", 200),
            Case::Usage => json("usage.response.json", 200),
            Case::Streaming => sse("streaming.sse"),
            Case::StreamingToolCall => sse("streaming_tool_call.sse"),
            Case::TruncatedStream => sse("truncated_stream.sse"),
            Case::TruncatedStreamToolCall => sse("truncated_stream_tool_call.sse"),
            Case::TruncatedToolArguments => sse("truncated_tool_arguments.sse"),
            Case::BadRequest400 => json("error_400.response.json", 400),
            Case::Unauthorized401 => json("error_401.response.json", 401),
            Case::NotFound404 => json("error_404.response.json", 404),
            Case::RateLimited429 => json("error_429.response.json", 429)
                .with_header("retry-after", expected::RETRY_AFTER_SECS.to_string())
                .with_header("x-ratelimit-remaining-requests", "0")
                .with_header("x-ratelimit-reset-requests", "7s"),
            Case::Server500 => json("error_500.response.json", 500),
            Case::Unavailable503 => json("error_503.response.json", 503),
            Case::MalformedJson => json("malformed.response.txt", 200),
            // OpenAI has no 529.
            _ => return None,
        })
    }

    fn check_request(&self, case: Case, req: &RecordedRequest) -> Result<(), String> {
        ensure(req.path == self.path(), format!("path {}", req.path))?;
        ensure(
            req.header("content-type") == Some("application/json"),
            "content-type is not application/json",
        )?;
        ensure(
            req.header("idempotency-key") == Some(expected::IDEMPOTENCY_KEY),
            "missing Idempotency-Key",
        )?;
        let bearer = format!("Bearer {}", expected::API_KEY);
        match self.kind {
            ProviderKind::Azure => {
                ensure(
                    req.query.as_deref() == Some("api-version=2024-10-21"),
                    "api-version query",
                )?;
                ensure(
                    req.header("api-key") == Some(expected::API_KEY),
                    "api-key header",
                )?;
                ensure(
                    req.header("authorization").is_none(),
                    "azure key sent as bearer too",
                )?;
            }
            ProviderKind::OpenAiCompatible => {
                ensure(
                    req.header("authorization").is_none(),
                    "keyless server got an authorization header",
                )?;
            }
            _ => {
                ensure(
                    req.header("authorization") == Some(bearer.as_str()),
                    "bearer auth",
                )?;
                ensure(
                    req.header("openai-organization") == Some("org-conformance"),
                    "organization header",
                )?;
                ensure(
                    req.header("openai-project") == Some("proj_conformance"),
                    "project header",
                )?;
            }
        }
        let body = req.json().ok_or("body is not json")?;
        ensure(body["model"] == MODEL, format!("model {}", body["model"]))?;
        let tokens_field = if self.kind == ProviderKind::OpenAiCompatible {
            "max_tokens"
        } else {
            "max_completion_tokens"
        };
        ensure(body[tokens_field] == 256, format!("{tokens_field} missing"))?;
        if case.is_stream() {
            ensure(body["stream"] == true, "stream flag")?;
            ensure(
                body["stream_options"]["include_usage"] == true,
                "include_usage",
            )?;
        } else {
            ensure(
                body.get("stream").is_none(),
                "stream flag on a non-stream call",
            )?;
        }
        match case {
            Case::SystemPrompt | Case::MultiTurn => {
                ensure(
                    body["messages"][0]["role"] == "system",
                    "system message first",
                )?;
            }
            Case::ToolCall
            | Case::StreamingToolCall
            | Case::TruncatedStreamToolCall
            | Case::TruncatedToolArguments => {
                ensure(body["tools"][0]["type"] == "function", "tool type")?;
                ensure(
                    body["tools"][0]["function"]["name"] == expected::TOOL_NAME,
                    "tool name",
                )?;
            }
            Case::ToolResult => {
                let msgs = body["messages"].as_array().ok_or("messages")?;
                ensure(
                    msgs[1]["tool_calls"][0]["id"] == expected::TOOL_CALL_ID,
                    "assistant tool call id",
                )?;
                ensure(msgs[2]["role"] == "tool", "tool role")?;
                ensure(
                    msgs[2]["tool_call_id"] == expected::TOOL_CALL_ID,
                    "tool_call_id",
                )?;
                ensure(msgs[2]["content"] == expected::TOOL_RESULT, "tool content")?;
            }
            Case::StructuredOutput => {
                let format = &body["response_format"];
                ensure(format["type"] == "json_schema", "response_format type")?;
                ensure(
                    format["json_schema"]["name"] == expected::SCHEMA_NAME,
                    "schema name",
                )?;
                let strict = self.kind != ProviderKind::OpenAiCompatible;
                ensure(format["json_schema"]["strict"] == strict, "strict flag")?;
                ensure(
                    format["json_schema"]["schema"]["additionalProperties"] == false,
                    "strict schema closes objects",
                )?;
            }
            _ => {}
        }
        common::validate_chat_request(&body).map(|_| ())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_passes_the_conformance_suite() {
    let report = run_suite(&OpenAiFamily {
        kind: ProviderKind::OpenAi,
    })
    .await;
    println!("{report}");
    let report = report.into_result().unwrap();
    assert_eq!(report.skipped(), 1, "only the 529 case is skipped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_compatible_passes_the_conformance_suite() {
    let report = run_suite(&OpenAiFamily {
        kind: ProviderKind::OpenAiCompatible,
    })
    .await;
    println!("{report}");
    report.into_result().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_passes_the_conformance_suite() {
    let report = run_suite(&OpenAiFamily {
        kind: ProviderKind::Azure,
    })
    .await;
    println!("{report}");
    report.into_result().unwrap();
}
