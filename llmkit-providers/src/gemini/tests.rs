//! Unit tests for the pure Gemini conversions, driven by the project's own fixtures.

use llmkit_core::{
    ChatRequest, ErrorKind, FinishReason, Message, ModelInfo, ResponseFormat, StreamAccumulator,
    StreamEvent, ToolCall, ToolChoice, ToolDefinition, ToolResult,
};
use serde_json::{Value, json};

use super::wire::*;
use crate::test_support::sse_data;

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/gemini/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn body(req: &ChatRequest) -> Value {
    serde_json::to_value(build_request(req).unwrap().body).unwrap()
}

#[test]
fn system_instruction_and_generation_config() {
    let mut req = ChatRequest::new(vec![
        Message::system("You are a chatbot."),
        Message::user("Hello!"),
        Message::assistant("Hi."),
        Message::user("Bye"),
    ])
    .with_temperature(0.5)
    .with_max_tokens(100)
    .with_seed(7);
    req.top_p = Some(0.9);
    req.stop = vec!["END".into()];
    let b = body(&req);
    assert_eq!(
        b["systemInstruction"],
        json!({"parts": [{"text": "You are a chatbot."}]})
    );
    assert_eq!(
        b["contents"][0],
        json!({"role": "user", "parts": [{"text": "Hello!"}]})
    );
    assert_eq!(b["contents"][1]["role"], "model");
    let g = &b["generationConfig"];
    assert_eq!(g["maxOutputTokens"], 100);
    assert_eq!(g["seed"], 7);
    assert_eq!(g["stopSequences"], json!(["END"]));
    assert!((g["temperature"].as_f64().unwrap() - 0.5).abs() < 1e-6);
    assert!((g["topP"].as_f64().unwrap() - 0.9).abs() < 1e-6);
    assert!(b.get("tools").is_none());

    let plain = body(&ChatRequest::user("hi"));
    assert!(plain.get("generationConfig").is_none());
    assert!(plain.get("systemInstruction").is_none());
}

#[test]
fn structured_output_sets_mime_type_and_schema() {
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}}});
    let req = ChatRequest::user("Largest city?").with_response_format(ResponseFormat::JsonSchema {
        name: "City".into(),
        schema: schema.clone(),
        strict: true,
    });
    let b = body(&req);
    assert_eq!(
        b["generationConfig"]["responseMimeType"],
        "application/json"
    );
    // The shared Gemini dialect uses the OpenAPI type names.
    assert_eq!(
        b["generationConfig"]["responseSchema"],
        json!({"type": "OBJECT", "properties": {"city": {"type": "STRING"}}})
    );

    let b = body(&ChatRequest::user("json please").with_response_format(ResponseFormat::Json));
    assert_eq!(
        b["generationConfig"]["responseMimeType"],
        "application/json"
    );
    assert!(b["generationConfig"].get("responseSchema").is_none());
}

#[test]
fn tools_and_tool_choice() {
    let req = ChatRequest::user("weather?")
        .with_tool(ToolDefinition::new(
            "get_weather",
            "Weather for a city",
            json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        ))
        .with_tool(ToolDefinition::new(
            "get_user_country",
            "",
            json!({"type": "object", "properties": {}}),
        ))
        .with_tool_choice(ToolChoice::Tool {
            name: "get_weather".into(),
        });
    let b = body(&req);
    let decls = &b["tools"][0]["functionDeclarations"];
    assert_eq!(decls[0]["name"], "get_weather");
    assert_eq!(
        decls[0]["parameters"]["properties"]["city"]["type"],
        "STRING"
    );
    assert!(decls[1].get("parameters").is_none(), "{decls}");
    assert!(decls[1].get("description").is_none());
    assert_eq!(
        b["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}})
    );
}

#[test]
fn function_calls_keep_thought_signatures_across_turns() {
    let resp: GenerateContentResponse =
        serde_json::from_str(&fixture("function-call-signature.response.json")).unwrap();
    let r = parse_response(resp, "gcp.gemini", "gemini-3-pro-preview").unwrap();
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    let calls: Vec<ToolCall> = r.tool_calls().into_iter().cloned().collect();
    assert_eq!(calls.len(), 2);
    assert_ne!(calls[0].id, calls[1].id);
    assert!(calls[0].id.ends_with("#sig=c2lnbmF0dXJlLW9uZQ=="));
    assert_eq!(calls[0].arguments, json!({"city": "Paris"}));

    // Next turn: the app echoes the assistant message and answers both calls.
    let req = ChatRequest::new(vec![
        Message::user("Weather in Paris and Rome?"),
        r.message.clone(),
        Message::tool_result(&calls[0].id, r#"{"temp_c": 18}"#),
        Message {
            role: llmkit_core::Role::Tool,
            content: vec![llmkit_core::ContentPart::ToolResult(ToolResult {
                call_id: calls[1].id.clone(),
                content: "service down".into(),
                is_error: true,
            })],
            name: None,
        },
    ]);
    let b = body(&req);
    let model_turn = &b["contents"][1];
    assert_eq!(model_turn["role"], "model");
    assert_eq!(
        model_turn["parts"][0]["thoughtSignature"],
        "c2lnbmF0dXJlLW9uZQ=="
    );
    // Generated ids are llmkit's, not Gemini's: they are not sent.
    assert!(model_turn["parts"][0]["functionCall"].get("id").is_none());
    assert!(model_turn["parts"][1].get("thoughtSignature").is_none());
    let results = &b["contents"][2];
    assert_eq!(results["role"], "user");
    assert_eq!(
        results["parts"].as_array().unwrap().len(),
        2,
        "merged into one turn"
    );
    assert_eq!(
        results["parts"][0]["functionResponse"],
        json!({"name": "get_weather", "response": {"temp_c": 18}})
    );
    assert_eq!(
        results["parts"][1]["functionResponse"]["response"],
        json!({"error": "service down"})
    );
}

#[test]
fn provider_call_ids_are_echoed() {
    assert_eq!(split_call_id("abc#sig=XYZ"), ("abc", Some("XYZ")));
    assert_eq!(split_call_id("abc"), ("abc", None));
    assert_eq!(join_call_id("abc", Some("XYZ")), "abc#sig=XYZ");
    let req = ChatRequest::new(vec![
        Message::user("q"),
        Message::assistant_tool_calls(
            None,
            vec![ToolCall {
                id: "fc_123".into(),
                name: "f".into(),
                arguments: json!({}),
            }],
        ),
        Message::tool_result("fc_123", "plain text"),
    ]);
    let b = body(&req);
    assert_eq!(b["contents"][1]["parts"][0]["functionCall"]["id"], "fc_123");
    assert_eq!(
        b["contents"][2]["parts"][0]["functionResponse"],
        json!({"id": "fc_123", "name": "f", "response": {"output": "plain text"}})
    );
}

#[test]
fn orphan_tool_result_is_an_invalid_request() {
    let req = ChatRequest::new(vec![Message::user("q"), Message::tool_result("nope", "x")]);
    let err = build_request(&req).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(err.message().contains("nope"));
}

#[test]
fn text_response_usage_and_thoughts() {
    let resp: GenerateContentResponse =
        serde_json::from_str(&fixture("generate-content-text.response.json")).unwrap();
    let r = parse_response(resp, "gcp.gemini", "gemini-2.5-flash").unwrap();
    assert_eq!(r.text(), "Refunds are accepted within 30 days.");
    assert_eq!(r.finish_reason, FinishReason::Stop);
    assert_eq!(r.usage.input_tokens, 1200);
    assert_eq!(r.usage.cached_input_tokens, 1024);
    assert_eq!(r.usage.output_tokens, 30);
    assert_eq!(r.usage.reasoning_tokens, 21);
    assert_eq!(r.provider_request_id.as_deref(), Some("llmkit-resp-01"));
    assert_eq!(r.model, "gemini-2.5-flash");
}

#[test]
fn safety_finish_and_blocked_prompt() {
    let resp: GenerateContentResponse =
        serde_json::from_str(&fixture("finish-safety.response.json")).unwrap();
    let r = parse_response(resp, "gcp.gemini", "m").unwrap();
    assert_eq!(r.finish_reason, FinishReason::ContentFilter);
    assert!(r.text().is_empty());

    let resp: GenerateContentResponse =
        serde_json::from_str(&fixture("prompt-blocked.response.json")).unwrap();
    let err = parse_response(resp, "gcp.gemini", "m").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ContentFiltered);
    assert_eq!(err.provider_code(), Some("PROHIBITED_CONTENT"));

    let err = parse_response(GenerateContentResponse::default(), "gcp.gemini", "m").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidResponse);
}

#[test]
fn finish_reason_table() {
    let table = [
        (Some("STOP"), false, FinishReason::Stop),
        (Some("STOP"), true, FinishReason::ToolCalls),
        (Some("MAX_TOKENS"), false, FinishReason::Length),
        (Some("SAFETY"), false, FinishReason::ContentFilter),
        (Some("RECITATION"), false, FinishReason::ContentFilter),
        (
            Some("PROHIBITED_CONTENT"),
            false,
            FinishReason::ContentFilter,
        ),
        (
            Some("MALFORMED_FUNCTION_CALL"),
            false,
            FinishReason::Other("MALFORMED_FUNCTION_CALL".into()),
        ),
        (None, false, FinishReason::Stop),
    ];
    for (raw, calls, want) in table {
        assert_eq!(finish_reason(raw, calls), want, "{raw:?}");
    }
}

fn run_stream(
    raw: &str,
) -> (
    Vec<StreamEvent>,
    llmkit_core::Result<llmkit_core::ChatResponse>,
) {
    let mut s = StreamState::new("gcp.gemini");
    let mut acc = StreamAccumulator::new();
    let mut events = Vec::new();
    for data in sse_data(raw) {
        for e in s.on_data(&data, "fallback-model").unwrap() {
            acc.push(&e);
            events.push(e);
        }
    }
    for e in s.on_end() {
        acc.push(&e);
        events.push(e);
    }
    (
        events,
        acc.finish(&ModelInfo::new("gcp.gemini", "fallback-model")),
    )
}

#[test]
fn stream_text_usage_is_taken_from_the_last_chunk() {
    let (events, r) = run_stream(&fixture("stream-text.sse"));
    let r = r.unwrap();
    assert_eq!(r.text(), "The capital of France is Paris.");
    assert_eq!(
        r.usage.input_tokens, 13,
        "early chunks over-count the prompt"
    );
    assert_eq!(r.usage.output_tokens, 12);
    assert_eq!(r.model, "gemini-2.5-flash");
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, StreamEvent::Usage { .. }))
            .count(),
        1
    );
}

#[test]
fn stream_function_call_with_signature() {
    let (_, r) = run_stream(&fixture("stream-function-call.sse"));
    let r = r.unwrap();
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    let call = r.tool_calls()[0].clone();
    assert_eq!(call.name, "get_weather");
    assert_eq!(call.arguments, json!({"city": "Paris"}));
    assert!(call.id.ends_with("#sig=c2lnLXN0cmVhbQ=="));
}

#[test]
fn stream_without_finish_is_truncated() {
    let raw = fixture("stream-text.sse");
    let cut: String = raw.split("\n\n").take(2).collect::<Vec<_>>().join("\n\n");
    let (_, r) = run_stream(&cut);
    assert_eq!(r.unwrap_err().kind(), ErrorKind::Truncated);
}

fn error_from_body(provider: &str, status: u16, body: &str) -> llmkit_core::Error {
    error_mapper(provider).error_from_parts(status, &reqwest::header::HeaderMap::new(), body)
}

#[test]
fn error_table() {
    let table = [
        (
            429,
            "RESOURCE_EXHAUSTED",
            "Resource has been exhausted (e.g. check quota).",
            ErrorKind::RateLimited,
        ),
        // Google sends this text for per-minute limits as well: still a rate limit.
        (
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details.",
            ErrorKind::RateLimited,
        ),
        (
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for quota metric 'Generate Content API requests per day'.",
            ErrorKind::QuotaExhausted,
        ),
        (
            403,
            "PERMISSION_DENIED",
            "This API method requires billing to be enabled on the billing account.",
            ErrorKind::QuotaExhausted,
        ),
        (401, "UNAUTHENTICATED", "", ErrorKind::Auth),
        (403, "PERMISSION_DENIED", "", ErrorKind::Auth),
        (
            400,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
            ErrorKind::Auth,
        ),
        (404, "NOT_FOUND", "", ErrorKind::NotFound),
        (400, "INVALID_ARGUMENT", "bad", ErrorKind::InvalidRequest),
        (
            400,
            "INVALID_ARGUMENT",
            "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
            ErrorKind::ContextLength,
        ),
        (
            503,
            "UNAVAILABLE",
            "The model is overloaded.",
            ErrorKind::Overloaded,
        ),
        (500, "INTERNAL", "", ErrorKind::Server),
        (504, "DEADLINE_EXCEEDED", "", ErrorKind::Timeout),
        (502, "", "", ErrorKind::Server),
    ];
    for (http, status, msg, want) in table {
        let body = json!({"error": {"code": http, "message": msg, "status": status}}).to_string();
        assert_eq!(
            error_from_body("gcp.gemini", http, &body).kind(),
            want,
            "{http} {status} {msg}"
        );
    }
}

#[test]
fn error_bodies_are_parsed_and_scrubbed() {
    let e = error_from_body(
        "gcp.gemini",
        429,
        &fixture("error-429-resource-exhausted.response.json"),
    );
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.provider(), Some("gcp.gemini"));
    let e = error_from_body(
        "gcp.gemini",
        400,
        &fixture("error-400-key-echo.response.json"),
    );
    assert_eq!(e.kind(), ErrorKind::Auth);
    for shown in [e.to_string(), format!("{e:?}")] {
        assert!(!shown.contains("0123456789abcdefSECRET"), "{shown}");
    }
}

proptest::proptest! {
    #[test]
    fn arbitrary_chunks_never_panic(data in ".{0,200}") {
        let mut s = StreamState::new("gcp.gemini");
        let _ = s.on_data(&data, "m");
        let _ = s.on_end();
    }

    #[test]
    fn call_ids_round_trip(base in "[a-zA-Z0-9_]{1,20}", sig in proptest::option::of("[A-Za-z0-9+/=]{1,40}")) {
        let id = join_call_id(&base, sig.as_deref());
        proptest::prop_assert_eq!(split_call_id(&id), (base.as_str(), sig.as_deref()));
    }
}

/// Replays the shared third-party recordings through the pure converters.
mod shared {
    use super::*;
    use crate::test_support::{read, shared_fixtures};

    fn parse(dir: &std::path::Path, name: &str) -> llmkit_core::Result<llmkit_core::ChatResponse> {
        parse_response(
            serde_json::from_str(&read(dir, name)).unwrap(),
            "gcp.gemini",
            "m",
        )
    }

    #[test]
    fn recorded_responses() {
        let Some(dir) = shared_fixtures("gemini") else {
            return;
        };
        let r = parse(&dir, "generate-content-basic.response.json").unwrap();
        assert_eq!(r.text(), "Hello! How can I help you today?");
        assert_eq!(r.usage.input_tokens, 9);
        assert_eq!(r.usage.output_tokens, 9 + 34);
        assert_eq!(r.usage.reasoning_tokens, 34);

        let r = parse(&dir, "function-call.response.json").unwrap();
        assert_eq!(r.finish_reason, FinishReason::ToolCalls);
        assert_eq!(r.tool_calls()[0].name, "get_user_country");

        let r = parse(&dir, "safety-blocked.response.json").unwrap();
        assert_eq!(r.finish_reason, FinishReason::ContentFilter);

        let r = parse(&dir, "structured-output.response.json").unwrap();
        let v: Value = serde_json::from_str(&r.text()).unwrap();
        assert_eq!(v["city"], "Mexico City");

        let r = parse(&dir, "vertex-generate-content.response.json").unwrap();
        assert!(!r.text().is_empty());
    }

    #[test]
    fn recorded_streams() {
        let Some(dir) = shared_fixtures("gemini") else {
            return;
        };
        let (_, r) = run_stream(&read(&dir, "stream-generate-content.sse"));
        let r = r.unwrap();
        assert_eq!(r.text(), "The capital of France is Paris.\n");
        assert_eq!(r.usage.input_tokens, 13);

        let (_, r) = run_stream(&read(&dir, "stream-function-call-thought-signature.sse"));
        let r = r.unwrap();
        let call = r.tool_calls()[0].clone();
        assert_eq!(call.name, "get_country");
        assert!(call.id.contains(SIGNATURE_SEPARATOR));
        assert_eq!(r.usage.reasoning_tokens, 202);

        let (_, r) = run_stream(&read(&dir, "vertex-stream-generate-content.sse"));
        assert_eq!(r.unwrap().text(), "OK");
    }

    #[test]
    fn recorded_errors() {
        let Some(dir) = shared_fixtures("gemini") else {
            return;
        };
        let e = error_from_body(
            "gcp.gemini",
            404,
            &read(&dir, "error-404-not-found.response.json"),
        );
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = error_from_body(
            "gcp.vertex_ai",
            400,
            &read(&dir, "vertex-error-400-invalid-argument.response.json"),
        );
        assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    }
}
