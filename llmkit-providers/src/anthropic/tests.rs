//! Unit tests for the pure Anthropic conversions, driven by the project's own fixtures.

use llmkit_core::{
    ChatRequest, ContentPart, ErrorKind, FinishReason, Message, ResponseFormat, StreamAccumulator,
    StreamEvent, ToolCall, ToolChoice, ToolDefinition,
};
use serde_json::{Value, json};

use super::cache::{BreakpointSite, CacheTtl};
use super::wire::*;
use crate::test_support::sse_data;

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/anthropic/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn opts(model: &str) -> BuildOptions {
    BuildOptions {
        model: model.to_owned(),
        default_max_tokens: 4096,
        cache_tools: false,
        cache_ttl: CacheTtl::FiveMinutes,
        min_cache_tokens: None,
        stream: false,
    }
}

fn body(req: &ChatRequest, o: &BuildOptions) -> Value {
    serde_json::to_value(build_request(req, o).unwrap().body).unwrap()
}

fn weather_tool() -> ToolDefinition {
    ToolDefinition::new(
        "get_weather",
        "Weather for a city",
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    )
}

#[test]
fn system_is_top_level_and_max_tokens_defaults() {
    let req = ChatRequest::new(vec![
        Message::system("Be brief."),
        Message::user("Hi"),
        Message::assistant("Hello."),
        Message::user("Weather?"),
    ])
    .with_temperature(0.2);
    let b = body(&req, &opts("claude-sonnet-4-5"));
    assert_eq!(b["model"], "claude-sonnet-4-5");
    assert_eq!(b["max_tokens"], 4096);
    assert_eq!(b["system"], json!([{"type": "text", "text": "Be brief."}]));
    assert_eq!(b["messages"].as_array().unwrap().len(), 3);
    assert_eq!(b["messages"][0]["role"], "user");
    assert_eq!(b["messages"][1]["role"], "assistant");
    assert!((b["temperature"].as_f64().unwrap() - 0.2).abs() < 1e-6);
    assert!(b.get("stream").is_none());
    assert!(b.get("tools").is_none());
}

#[test]
fn tool_round_trip_merges_results_into_one_user_turn() {
    let calls = vec![
        ToolCall {
            id: "toolu_1".into(),
            name: "get_weather".into(),
            arguments: json!({"city": "Paris"}),
        },
        ToolCall {
            id: "toolu_2".into(),
            name: "get_weather".into(),
            arguments: json!({"city": "Rome"}),
        },
    ];
    let req = ChatRequest::new(vec![
        Message::user("Weather in Paris and Rome?"),
        Message::assistant_tool_calls(Some("Checking.".into()), calls),
        Message::tool_result("toolu_1", "18C"),
        Message::tool_result("toolu_2", "24C"),
    ])
    .with_tool(weather_tool())
    .with_tool_choice(ToolChoice::Required);
    let b = body(&req, &opts("claude-sonnet-4-5"));
    let msgs = b["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3);
    assert_eq!(
        msgs[1]["content"][0],
        json!({"type": "text", "text": "Checking."})
    );
    assert_eq!(
        msgs[1]["content"][1],
        json!({"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}})
    );
    assert_eq!(msgs[2]["role"], "user");
    assert_eq!(
        msgs[2]["content"],
        json!([
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "24C"}
        ])
    );
    assert_eq!(b["tool_choice"], json!({"type": "any"}));
    assert_eq!(b["tools"][0]["name"], "get_weather");
    assert_eq!(b["tools"][0]["input_schema"]["required"], json!(["city"]));
}

#[test]
fn images_map_to_sources() {
    let req = ChatRequest::new(vec![
        Message::user("What is this?")
            .with_image(llmkit_core::ImageSource::Url {
                url: "https://example.invalid/cat.png".into(),
            })
            .with_image(llmkit_core::ImageSource::Base64 {
                media_type: "image/png".into(),
                data: "iVBORw0KGgo=".into(),
            }),
    ]);
    let b = body(&req, &opts("claude-sonnet-4-5"));
    assert_eq!(
        b["messages"][0]["content"][1]["source"],
        json!({"type": "url", "url": "https://example.invalid/cat.png"})
    );
    assert_eq!(
        b["messages"][0]["content"][2]["source"],
        json!({"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="})
    );
}

#[test]
fn cache_breakpoints_placed_on_long_prefixes_only() {
    let long_system = "policy line. ".repeat(400); // 5200 chars ~ 1300 tokens
    let req = ChatRequest::new(vec![
        Message::system(long_system).cacheable(),
        Message::user("short question").cacheable(),
    ]);
    let built = build_request(&req, &opts("claude-sonnet-4-5")).unwrap();
    assert_eq!(
        built.cache.kept.len(),
        2,
        "both prefixes exceed 1024 tokens"
    );
    let b = serde_json::to_value(&built.body).unwrap();
    assert_eq!(
        b["system"][0]["cache_control"],
        json!({"type": "ephemeral"})
    );
    assert_eq!(
        b["messages"][0]["content"][0]["cache_control"],
        json!({"type": "ephemeral"})
    );

    // Haiku 4.5 needs 4096 tokens: the same prefix is too short, so nothing is marked.
    let built = build_request(&req, &opts("claude-haiku-4-5")).unwrap();
    assert!(built.cache.kept.is_empty());
    assert_eq!(built.cache.too_short, 2);
    let b = serde_json::to_value(&built.body).unwrap();
    assert!(b["system"][0].get("cache_control").is_none());
    assert!(
        built
            .cache
            .note()
            .unwrap()
            .contains("minimum cacheable length")
    );

    // A short system prompt alone is skipped, the override lowers the threshold.
    let short = ChatRequest::new(vec![
        Message::system("tiny").cacheable(),
        Message::user("q"),
    ]);
    assert!(
        build_request(&short, &opts("claude-sonnet-4-5"))
            .unwrap()
            .cache
            .kept
            .is_empty()
    );
    let mut o = opts("claude-sonnet-4-5");
    o.min_cache_tokens = Some(0);
    o.cache_ttl = CacheTtl::OneHour;
    let b = body(&short, &o);
    assert_eq!(
        b["system"][0]["cache_control"],
        json!({"type": "ephemeral", "ttl": "1h"})
    );
}

#[test]
fn at_most_four_breakpoints_keeping_the_last() {
    let chunk = "x".repeat(5000);
    let mut messages = vec![Message::system(chunk.clone()).cacheable()];
    for i in 0..5 {
        messages.push(Message::user(format!("{i}{chunk}")).cacheable());
        messages.push(Message::assistant("ok"));
    }
    messages.push(Message::user("final"));
    let mut o = opts("claude-sonnet-4-5");
    o.cache_tools = true;
    let req = ChatRequest::new(messages).with_tool(weather_tool());
    let built = build_request(&req, &o).unwrap();
    assert_eq!(built.cache.kept.len(), 4);
    assert_eq!(
        built.cache.over_limit, 2,
        "tool, system, 5 users: 7 marked, minus the too-short tool"
    );
    assert_eq!(
        built.cache.too_short, 1,
        "the tool definitions alone are short"
    );
    assert_eq!(
        built.cache.kept.first(),
        Some(&BreakpointSite::Message(2, 0))
    );
    let b = serde_json::to_value(&built.body).unwrap();
    let marked = b.to_string().matches("\"cache_control\"").count();
    assert_eq!(marked, 4);
    assert!(b["system"][0].get("cache_control").is_none());
    assert!(
        b["messages"][8]["content"][0]
            .get("cache_control")
            .is_some()
    );
}

#[test]
fn cache_tools_marks_last_caller_tool() {
    let mut o = opts("claude-sonnet-4-5");
    o.cache_tools = true;
    o.min_cache_tokens = Some(1);
    let second = ToolDefinition::new("lookup", "Find a document", json!({"type": "object"}));
    let req = ChatRequest::user("hi")
        .with_tool(weather_tool())
        .with_tool(second)
        .with_response_format(ResponseFormat::JsonSchema {
            name: "Answer".into(),
            schema: json!({"type": "object", "properties": {"a": {"type": "string"}}}),
            strict: true,
        });
    let b = body(&req, &o);
    assert!(b["tools"][0].get("cache_control").is_none());
    assert_eq!(b["tools"][1]["cache_control"], json!({"type": "ephemeral"}));
    assert_eq!(b["tools"][2]["name"], "Answer");
    assert!(b["tools"][2].get("cache_control").is_none());
}

#[test]
fn structured_output_forces_a_tool_and_returns_json_text() {
    let schema =
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]});
    let req = ChatRequest::user("Largest city in Mexico?").with_response_format(
        ResponseFormat::JsonSchema {
            name: "city info".into(),
            schema: schema.clone(),
            strict: true,
        },
    );
    let built = build_request(&req, &opts("claude-sonnet-4-5")).unwrap();
    let b = serde_json::to_value(&built.body).unwrap();
    assert_eq!(b["tools"][0]["name"], "city_info");
    assert_eq!(b["tools"][0]["input_schema"], schema);
    assert_eq!(
        b["tool_choice"],
        json!({"type": "tool", "name": "city_info"})
    );
    let plan = built.structured.clone().unwrap();

    let resp: MessagesResponse = serde_json::from_value(json!({
        "id": "msg_x", "model": "claude-sonnet-4-5", "stop_reason": "tool_use",
        "content": [{"type": "tool_use", "id": "toolu_x", "name": "city_info", "input": {"city": "Mexico City"}}],
        "usage": {"input_tokens": 10, "output_tokens": 5}
    }))
    .unwrap();
    let r = parse_response(resp, Some(&plan)).unwrap();
    assert_eq!(r.finish_reason, FinishReason::Stop);
    assert!(r.tool_calls().is_empty());
    let parsed: Value = serde_json::from_str(&r.text()).unwrap();
    assert_eq!(parsed, json!({"city": "Mexico City"}));
}

#[test]
fn non_object_schema_is_wrapped_and_unwrapped() {
    let req =
        ChatRequest::user("List three colours").with_response_format(ResponseFormat::JsonSchema {
            name: "colours".into(),
            schema: json!({"type": "array", "items": {"type": "string"}}),
            strict: false,
        });
    let built = build_request(&req, &opts("claude-sonnet-4-5")).unwrap();
    let plan = built.structured.unwrap();
    assert!(plan.wrapped);
    let b = serde_json::to_value(&built.body).unwrap();
    assert_eq!(b["tools"][0]["input_schema"]["required"], json!(["value"]));

    // Streaming: the wrapped input is buffered and unwrapped when the block ends.
    let mut s = StreamState::new(Some(plan), None);
    let mut acc = StreamAccumulator::new();
    for data in [
        r#"{"type":"message_start","message":{"id":"m","model":"c","content":[],"usage":{"input_tokens":3,"output_tokens":1}}}"#,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"colours","input":{}}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"value\": [\"red\","}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":" \"green\", \"blue\"]}"}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":9}}"#,
        r#"{"type":"message_stop"}"#,
    ] {
        for e in s.on_data(data).unwrap() {
            acc.push(&e);
        }
    }
    let info = llmkit_core::ModelInfo::new("anthropic", "c");
    let r = acc.finish(&info).unwrap();
    assert_eq!(r.text(), r#"["red","green","blue"]"#);
    assert_eq!(r.finish_reason, FinishReason::Stop);
}

#[test]
fn response_usage_includes_cache_tokens() {
    let resp: MessagesResponse =
        serde_json::from_str(&fixture("message-cache-usage.response.json")).unwrap();
    let r = parse_response(resp, None).unwrap();
    assert_eq!(r.text(), "Refunds are accepted within 30 days.");
    assert_eq!(r.usage.input_tokens, 25 + 2048);
    assert_eq!(r.usage.cached_input_tokens, 2048);
    assert_eq!(r.usage.cache_write_tokens, 0);
    assert_eq!(r.usage.output_tokens, 12);
    assert_eq!(r.usage.reasoning_tokens, 3);
    assert_eq!(r.finish_reason, FinishReason::Stop);
    assert_eq!(r.provider, "anthropic");
    assert_eq!(r.model, "claude-sonnet-4-5-20250929");
}

#[test]
fn response_tool_use_becomes_tool_calls() {
    let resp: MessagesResponse =
        serde_json::from_str(&fixture("message-tool-use.response.json")).unwrap();
    let r = parse_response(resp, None).unwrap();
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    assert_eq!(r.text(), "Let me look that up.");
    let calls = r.tool_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].id, "toolu_llmkit_02");
    assert_eq!(calls[0].arguments, json!({"city": "Paris", "units": "c"}));
}

#[test]
fn stop_reason_table() {
    let table = [
        (Some("end_turn"), FinishReason::Stop),
        (Some("stop_sequence"), FinishReason::Stop),
        (Some("max_tokens"), FinishReason::Length),
        (Some("tool_use"), FinishReason::ToolCalls),
        (Some("refusal"), FinishReason::ContentFilter),
        (Some("pause_turn"), FinishReason::Other("pause_turn".into())),
        (None, FinishReason::Stop),
    ];
    for (raw, want) in table {
        assert_eq!(finish_reason(raw, false), want, "{raw:?}");
    }
}

#[test]
fn stream_assembles_text_tool_and_usage() {
    let mut s = StreamState::new(None, Some("req_header_1".into()));
    let mut acc = StreamAccumulator::new();
    let mut events = Vec::new();
    for data in sse_data(&fixture("stream-text-tool.sse")) {
        for e in s.on_data(&data).unwrap() {
            acc.push(&e);
            events.push(e);
        }
    }
    assert!(s.is_done());
    assert!(matches!(
        &events[0],
        StreamEvent::Start { provider_request_id: Some(id), .. } if id == "req_header_1"
    ));
    let info = llmkit_core::ModelInfo::new("anthropic", "claude-sonnet-4-5");
    let r = acc.finish(&info).unwrap();
    assert_eq!(r.text(), "Checking the weather.");
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    assert_eq!(r.tool_calls()[0].arguments, json!({"city": "Paris"}));
    assert_eq!(r.tool_calls()[0].id, "toolu_llmkit_01");
    assert_eq!(r.usage.input_tokens, 40 + 1200 + 300);
    assert_eq!(r.usage.cache_write_tokens, 1200);
    assert_eq!(r.usage.cached_input_tokens, 300);
    assert_eq!(r.usage.output_tokens, 31);
}

#[test]
fn stream_error_event_is_classified() {
    let mut s = StreamState::new(None, None);
    let mut err = None;
    for data in sse_data(&fixture("stream-error-midway.sse")) {
        if let Err(e) = s.on_data(&data) {
            err = Some(e);
            break;
        }
    }
    let err = err.expect("error event");
    assert_eq!(err.kind(), ErrorKind::Overloaded);
    assert!(err.is_retryable());
    assert_eq!(err.provider_code(), Some("overloaded_error"));
    assert!(!s.is_done());
}

#[test]
fn unknown_events_and_blocks_are_ignored() {
    let mut s = StreamState::new(None, None);
    assert!(
        s.on_data(r#"{"type":"brand_new_event","x":1}"#)
            .unwrap()
            .is_empty()
    );
    assert!(
        s.on_data(r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#)
            .unwrap()
            .is_empty()
    );
    assert!(
        s.on_data(r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}"#)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.on_data("not json").unwrap_err().kind(),
        ErrorKind::InvalidResponse
    );
}

fn classify(status: u16, ty: &str, msg: &str) -> ErrorKind {
    let body = json!({"type": "error", "error": {"type": ty, "message": msg}}).to_string();
    error_mapper()
        .error_from_parts(status, &reqwest::header::HeaderMap::new(), &body)
        .kind()
}

fn error_from_body(status: u16, body: &str) -> llmkit_core::Error {
    error_mapper().error_from_parts(status, &reqwest::header::HeaderMap::new(), body)
}

#[test]
fn error_table() {
    let table = [
        (529, "overloaded_error", "Overloaded", ErrorKind::Overloaded),
        (429, "rate_limit_error", "slow down", ErrorKind::RateLimited),
        (401, "authentication_error", "bad key", ErrorKind::Auth),
        (403, "permission_error", "no", ErrorKind::Auth),
        (404, "not_found_error", "model", ErrorKind::NotFound),
        (
            400,
            "invalid_request_error",
            "bad field",
            ErrorKind::InvalidRequest,
        ),
        (
            400,
            "invalid_request_error",
            "prompt is too long: 210000 tokens > 200000 maximum",
            ErrorKind::ContextLength,
        ),
        (
            413,
            "request_too_large",
            "too big",
            ErrorKind::ContextLength,
        ),
        (500, "api_error", "internal", ErrorKind::Server),
        (402, "billing_error", "credit", ErrorKind::QuotaExhausted),
        (
            400,
            "invalid_request_error",
            "Your credit balance is too low to access the Anthropic API.",
            ErrorKind::QuotaExhausted,
        ),
        (503, "", "", ErrorKind::Server),
        (529, "", "", ErrorKind::Overloaded),
    ];
    for (status, ty, msg, want) in table {
        assert_eq!(classify(status, ty, msg), want, "{status} {ty}");
    }
}

#[test]
fn error_bodies_are_parsed_and_scrubbed() {
    let e = error_from_body(529, &fixture("error-529-overloaded.response.json"));
    assert_eq!(e.kind(), ErrorKind::Overloaded);
    assert!(e.is_retryable());
    assert_eq!(e.status(), Some(529));
    assert_eq!(e.provider_request_id(), Some("req_llmkit_529"));

    let e = error_from_body(401, &fixture("error-401-echoes-key.response.json"));
    assert_eq!(e.kind(), ErrorKind::Auth);
    for shown in [e.to_string(), format!("{e:?}")] {
        assert!(!shown.contains("SECRETabc123DEF456ghi789"), "{shown}");
    }

    let e = error_from_body(502, "<html>bad gateway</html>");
    assert_eq!(e.kind(), ErrorKind::Server);
}

#[test]
fn system_with_image_is_rejected() {
    let mut sys = Message::system("x");
    sys.content.push(ContentPart::Image {
        source: llmkit_core::ImageSource::Url { url: "u".into() },
    });
    let err =
        build_request(&ChatRequest::new(vec![sys, Message::user("q")]), &opts("m")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    let err =
        build_request(&ChatRequest::new(vec![Message::system("only")]), &opts("m")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
}

proptest::proptest! {
    /// Any split of a valid event stream into `data:` payloads gives the same result as the
    /// fixture, and arbitrary payloads never panic.
    #[test]
    fn arbitrary_payloads_never_panic(data in ".{0,200}") {
        let mut s = StreamState::new(None, None);
        let _ = s.on_data(&data);
    }

    #[test]
    fn usage_normalization_sums(input in 0u64..1_000_000, read in 0u64..1_000_000, write in 0u64..1_000_000, out in 0u64..100_000) {
        let u = WireUsage {
            input_tokens: Some(input),
            output_tokens: Some(out),
            cache_creation_input_tokens: Some(write),
            cache_read_input_tokens: Some(read),
            output_tokens_details: None,
        }
        .normalize();
        proptest::prop_assert_eq!(u.input_tokens, input + read + write);
        proptest::prop_assert_eq!(u.cached_input_tokens, read);
        proptest::prop_assert_eq!(u.cache_write_tokens, write);
        proptest::prop_assert_eq!(u.output_tokens, out);
    }
}

/// Replays the shared third-party recordings through the pure converters.
mod shared {
    use super::*;
    use crate::test_support::{read, shared_fixtures};

    fn stream(raw: &str) -> llmkit_core::Result<llmkit_core::ChatResponse> {
        let mut s = StreamState::new(None, None);
        let mut acc = StreamAccumulator::new();
        for data in crate::test_support::sse_data(raw) {
            for e in s.on_data(&data)? {
                acc.push(&e);
            }
        }
        acc.finish(&llmkit_core::ModelInfo::new("anthropic", "m"))
    }

    #[test]
    fn recorded_responses() {
        let Some(dir) = shared_fixtures("anthropic") else {
            return;
        };
        let r = parse_response(
            serde_json::from_str(&read(&dir, "messages-tool-use.response.json")).unwrap(),
            None,
        )
        .unwrap();
        assert_eq!(r.finish_reason, FinishReason::ToolCalls);
        assert_eq!(
            r.tool_calls()[0].arguments,
            json!({"location": "SF", "units": "c"})
        );
        assert_eq!(r.usage.input_tokens, 597);

        let r = parse_response(
            serde_json::from_str(&read(
                &dir,
                "messages-prompt-caching-cache-write.response.json",
            ))
            .unwrap(),
            None,
        )
        .unwrap();
        assert_eq!(r.usage.input_tokens, 2 + 1590);
        assert_eq!(r.usage.cache_write_tokens, 1590);
        let r = parse_response(
            serde_json::from_str(&read(
                &dir,
                "messages-prompt-caching-cache-read.response.json",
            ))
            .unwrap(),
            None,
        )
        .unwrap();
        assert_eq!(r.usage.cached_input_tokens, 1590);
        assert_eq!(r.text(), "OK");

        let r = parse_response(
            serde_json::from_str(&read(&dir, "messages-server-tool-use.response.json")).unwrap(),
            None,
        )
        .unwrap();
        assert!(!r.message.content.is_empty());
    }

    #[test]
    fn recorded_streams() {
        let Some(dir) = shared_fixtures("anthropic") else {
            return;
        };
        let r = stream(&read(&dir, "messages-stream-text.sse")).unwrap();
        assert!(!r.text().is_empty());
        assert_eq!(r.finish_reason, FinishReason::Stop);

        let r = stream(&read(&dir, "messages-stream-text-then-tool-use.sse")).unwrap();
        assert_eq!(r.text(), "I'll check the current weather in Paris for you.");
        assert_eq!(r.tool_calls()[0].arguments, json!({"location": "Paris"}));
        assert_eq!(r.usage.output_tokens, 65);

        // Real server output pads data lines with spaces before the closing brace.
        let r = stream(&read(&dir, "messages-stream-tool-use.sse")).unwrap();
        assert_eq!(
            r.tool_calls()[0].arguments,
            json!({"location": "San Francisco, CA", "units": "f"})
        );
        assert_eq!(r.usage.input_tokens, 656);
        assert_eq!(r.usage.output_tokens, 74);

        let r = stream(&read(&dir, "messages-stream-refusal.sse")).unwrap();
        assert_eq!(r.finish_reason, FinishReason::ContentFilter);
    }

    #[test]
    fn recorded_errors() {
        let Some(dir) = shared_fixtures("anthropic") else {
            return;
        };
        let e = error_from_body(429, &read(&dir, "error-429-rate-limit.response.json"));
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(
            e.provider_request_id(),
            Some("req_011CYK5mje9HkutJtmfPzzNC")
        );
        let e = error_from_body(529, &read(&dir, "error-529-overloaded.response.json"));
        assert_eq!(e.kind(), ErrorKind::Overloaded);
        let e = error_from_body(400, &read(&dir, "error-400-invalid-request.response.json"));
        assert_eq!(e.kind(), ErrorKind::InvalidRequest);
        let e = error_from_body(
            429,
            &read(&dir, "error-429-on-stream-request.response.json"),
        );
        assert_eq!(e.kind(), ErrorKind::RateLimited);
    }
}
