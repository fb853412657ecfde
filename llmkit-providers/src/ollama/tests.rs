//! Unit tests for the pure Ollama conversions, driven by the project's own fixtures.

use llmkit_core::{
    ChatRequest, ErrorKind, FinishReason, ImageSource, Message, ModelInfo, ResponseFormat,
    StreamAccumulator, ToolCall, ToolDefinition,
};
use serde_json::{Value, json};

use super::wire::*;

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/ollama/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn opts() -> BuildOptions {
    BuildOptions {
        model: "llama3.2".into(),
        ..Default::default()
    }
}

fn body(req: &ChatRequest) -> Value {
    serde_json::to_value(build_request(req, &opts()).unwrap()).unwrap()
}

#[test]
fn messages_options_and_format() {
    let mut req = ChatRequest::new(vec![Message::system("Be brief."), Message::user("Hi")])
        .with_temperature(0.0)
        .with_max_tokens(64)
        .with_seed(42)
        .with_response_format(ResponseFormat::JsonSchema {
            name: "x".into(),
            schema: json!({"type": "object", "properties": {"age": {"type": "integer"}}}),
            strict: true,
        });
    req.stop = vec!["\n\n".into()];
    let b = body(&req);
    assert_eq!(b["model"], "llama3.2");
    assert_eq!(b["stream"], false);
    assert_eq!(
        b["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    );
    assert_eq!(
        b["options"],
        json!({"temperature": 0.0, "seed": 42, "num_predict": 64, "stop": ["\n\n"]})
    );
    assert_eq!(b["format"]["properties"]["age"]["type"], "integer");

    let b = body(&ChatRequest::user("json").with_response_format(ResponseFormat::Json));
    assert_eq!(b["format"], "json");
    assert!(b.get("options").is_none());
}

#[test]
fn tool_round_trip_uses_tool_name() {
    let req = ChatRequest::new(vec![
        Message::user("weather in Toronto?"),
        Message::assistant_tool_calls(
            None,
            vec![ToolCall {
                id: "call_0".into(),
                name: "get_weather".into(),
                arguments: json!({"city": "Toronto"}),
            }],
        ),
        Message::tool_result("call_0", "11 degrees celsius"),
    ])
    .with_tool(ToolDefinition::new(
        "get_weather",
        "Get the weather in a given city",
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    ));
    let b = body(&req);
    assert_eq!(
        b["messages"][1],
        json!({"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Toronto"}}}]})
    );
    assert_eq!(
        b["messages"][2],
        json!({"role": "tool", "content": "11 degrees celsius", "tool_name": "get_weather"})
    );
    assert_eq!(b["tools"][0]["type"], "function");
    assert_eq!(b["tools"][0]["function"]["name"], "get_weather");
}

#[test]
fn images_must_be_inline() {
    let req = ChatRequest::new(vec![Message::user("what is this").with_image(
        ImageSource::Base64 {
            media_type: "image/png".into(),
            data: "iVBORw0KGgo=".into(),
        },
    )]);
    assert_eq!(body(&req)["messages"][0]["images"], json!(["iVBORw0KGgo="]));
    let req = ChatRequest::new(vec![Message::user("x").with_image(ImageSource::Url {
        url: "http://x".into(),
    })]);
    assert_eq!(
        build_request(&req, &opts()).unwrap_err().kind(),
        ErrorKind::Unsupported
    );
}

#[test]
fn response_text_and_usage() {
    let r = parse_response(serde_json::from_str(&fixture("chat.response.json")).unwrap()).unwrap();
    assert_eq!(r.text(), "Refunds are accepted within 30 days.");
    assert_eq!(r.usage.input_tokens, 31);
    assert_eq!(r.usage.output_tokens, 11);
    assert_eq!(r.finish_reason, FinishReason::Stop);
    assert_eq!(r.provider, "ollama");
    assert_eq!(r.model, "llama3.2");
}

#[test]
fn response_tool_calls_get_ids_and_object_arguments() {
    let r = parse_response(serde_json::from_str(&fixture("chat-tools.response.json")).unwrap())
        .unwrap();
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    let calls = r.tool_calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].id, "call_0");
    assert_eq!(calls[1].id, "call_1");
    assert_eq!(calls[1].arguments, json!({"city": "Rome"}));
}

fn run_stream(raw: &str) -> llmkit_core::Result<llmkit_core::ChatResponse> {
    let mut s = StreamState::new();
    let mut acc = StreamAccumulator::new();
    for line in raw.lines().filter(|l| !l.trim().is_empty()) {
        let chunk: ChatChunk = serde_json::from_str(line)
            .map_err(|e| llmkit_core::Error::invalid_response(format!("bad line: {e}")))?;
        for e in s.on_chunk(chunk)? {
            acc.push(&e);
        }
    }
    acc.finish(&ModelInfo::new("ollama", "llama3.2"))
}

#[test]
fn stream_assembles_text_usage_and_length() {
    let r = run_stream(&fixture("chat-stream.ndjson")).unwrap();
    assert_eq!(r.text(), "The sky is blue.");
    assert_eq!(r.finish_reason, FinishReason::Length);
    assert_eq!(r.usage.input_tokens, 26);
    assert_eq!(r.usage.output_tokens, 3);
}

#[test]
fn stream_tool_calls() {
    let r = run_stream(&fixture("chat-stream-tools.ndjson")).unwrap();
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    assert_eq!(r.tool_calls()[0].arguments, json!({"city": "Tokyo"}));
}

#[test]
fn stream_error_line_and_early_end() {
    let err = run_stream(&fixture("chat-stream-error.ndjson")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert!(err.message().contains("error was encountered"));

    let raw = fixture("chat-stream.ndjson");
    let cut: String = raw.lines().take(2).collect::<Vec<_>>().join("\n");
    assert_eq!(run_stream(&cut).unwrap_err().kind(), ErrorKind::Truncated);
}

fn error_from_body(status: u16, body: &str) -> llmkit_core::Error {
    error_mapper().error_from_parts(status, &reqwest::header::HeaderMap::new(), body)
}

#[test]
fn error_table() {
    let table = [
        (
            404,
            "model \"x\" not found, try pulling it first",
            ErrorKind::NotFound,
        ),
        (400, "invalid format", ErrorKind::InvalidRequest),
        (503, "server busy, please try again.", ErrorKind::Overloaded),
        (500, "boom", ErrorKind::Server),
        (429, "too many", ErrorKind::RateLimited),
        (401, "unauthorized", ErrorKind::Auth),
    ];
    for (status, msg, want) in table {
        let body = json!({ "error": msg }).to_string();
        assert_eq!(
            error_from_body(status, &body).kind(),
            want,
            "{status} {msg}"
        );
    }
    let e = error_from_body(404, &fixture("error-404.response.json"));
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.message().contains("not found"));
}

#[test]
fn embed_response_parses() {
    let r: EmbedResponse = serde_json::from_str(&fixture("embed.response.json")).unwrap();
    assert_eq!(r.embeddings.len(), 2);
    assert_eq!(r.prompt_eval_count, Some(16));
}

proptest::proptest! {
    #[test]
    fn arbitrary_chunks_never_panic(content in ".{0,50}", done in proptest::bool::ANY, reason in proptest::option::of("[a-z]{0,8}"), err in proptest::option::of(".{0,30}")) {
        let mut s = StreamState::new();
        let chunk = ChatChunk {
            model: "m".into(),
            message: Some(WireMessage { role: "assistant".into(), content, ..Default::default() }),
            done,
            done_reason: reason,
            error: err,
            ..Default::default()
        };
        let _ = s.on_chunk(chunk);
    }
}

/// Replays the shared third-party recordings through the pure converters.
mod shared {
    use super::*;
    use crate::test_support::{read, shared_fixtures};

    #[test]
    fn recorded_responses_and_streams() {
        let Some(dir) = shared_fixtures("ollama") else {
            return;
        };
        let r =
            parse_response(serde_json::from_str(&read(&dir, "api-chat.response.json")).unwrap())
                .unwrap();
        assert_eq!(r.text(), "Hello! How are you today?");
        assert_eq!(r.usage.output_tokens, 298);
        let r = parse_response(
            serde_json::from_str(&read(&dir, "api-chat-tools.response.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(r.tool_calls()[0].arguments, json!({"city": "Tokyo"}));
        let r = parse_response(
            serde_json::from_str(&read(&dir, "api-chat-structured-output.response.json")).unwrap(),
        )
        .unwrap();
        let v: Value = serde_json::from_str(&r.text()).unwrap();
        assert_eq!(v["age"], 22);

        let r = run_stream(&read(&dir, "api-chat-stream.ndjson")).unwrap();
        assert_eq!(r.text(), "The");
        assert_eq!(r.usage.input_tokens, 26);
        let r = run_stream(&read(&dir, "api-chat-stream-tools.ndjson")).unwrap();
        assert_eq!(r.finish_reason, FinishReason::ToolCalls);
        let e = run_stream(&read(&dir, "error-mid-stream.ndjson")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server);

        let r: EmbedResponse =
            serde_json::from_str(&read(&dir, "api-embed-multi.response.json")).unwrap();
        assert_eq!(r.embeddings.len(), 2);
        let e = error_from_body(500, &read(&dir, "error.response.json"));
        assert_eq!(e.kind(), ErrorKind::Server);
    }
}
