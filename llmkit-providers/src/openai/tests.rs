use llmkit_core::{
    ChatRequest, ErrorKind, FinishReason, ImageSource, Message, ResponseFormat, StreamEvent,
    ToolCall, ToolChoice, ToolDefinition,
};
use serde_json::json;

use super::wire::{self, BodyOptions, StreamState};
use super::*;
use crate::{ProviderConfig, ProviderKind};

/// The body as a JSON value, to index into.
fn chat_body(
    request: &ChatRequest,
    model: &str,
    stream: bool,
    opts: BodyOptions,
) -> llmkit_core::Result<serde_json::Value> {
    Ok(serde_json::to_value(wire::chat_body(
        request, model, stream, opts,
    )?)?)
}

const OPENAI: BodyOptions = BodyOptions {
    max_tokens_field: wire::MaxTokensField::MaxCompletionTokens,
    strict_schemas: true,
};

#[test]
fn body_maps_every_message_kind() {
    let request = ChatRequest::new(vec![
        Message::system("Be brief."),
        Message::user("What is in this image?").with_image(ImageSource::Base64 {
            media_type: "image/png".into(),
            data: "AAAA".into(),
        }),
        Message::assistant_tool_calls(
            None,
            vec![ToolCall {
                id: "call_1".into(),
                name: "get_weather".into(),
                arguments: json!({"city": "Paris"}),
            }],
        ),
        Message::tool_result("call_1", "18C"),
    ])
    .with_max_tokens(50)
    .with_seed(7)
    .with_tool(ToolDefinition::new(
        "get_weather",
        "weather",
        json!({"type": "object"}),
    ))
    .with_tool_choice(ToolChoice::Tool {
        name: "get_weather".into(),
    });
    let body = chat_body(&request, "gpt-4o-mini", false, OPENAI).unwrap();
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(
        body["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(
        body["messages"][1]["content"][1]["image_url"]["url"],
        "data:image/png;base64,AAAA"
    );
    assert_eq!(body["messages"][2]["content"], serde_json::Value::Null);
    assert_eq!(
        body["messages"][2]["tool_calls"][0]["function"]["arguments"],
        "{\"city\":\"Paris\"}"
    );
    assert_eq!(
        body["messages"][3],
        json!({"role": "tool", "tool_call_id": "call_1", "content": "18C"})
    );
    assert_eq!(body["max_completion_tokens"], 50);
    assert_eq!(body["seed"], 7);
    assert_eq!(body["tool_choice"]["function"]["name"], "get_weather");
    assert!(body.get("stream").is_none());

    let compat = BodyOptions {
        max_tokens_field: wire::MaxTokensField::MaxTokens,
        strict_schemas: false,
    };
    let body = chat_body(&request, "m", true, compat).unwrap();
    assert_eq!(body["max_tokens"], 50);
    assert_eq!(body["stream_options"]["include_usage"], true);
}

#[test]
fn strict_json_schema_is_transformed() {
    let schema = json!({
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 10}, "note": {"type": "string"}},
        "required": ["city"]
    });
    let request = ChatRequest::user("x").with_response_format(ResponseFormat::JsonSchema {
        name: "weather report".into(),
        schema: schema.clone(),
        strict: true,
    });
    let body = chat_body(&request, "m", false, OPENAI).unwrap();
    let format = &body["response_format"];
    assert_eq!(format["type"], "json_schema");
    assert_eq!(format["json_schema"]["name"], "weather_report");
    assert_eq!(format["json_schema"]["strict"], true);
    assert_eq!(
        format["json_schema"]["schema"]["additionalProperties"],
        false
    );
    assert_eq!(
        format["json_schema"]["schema"]["required"],
        json!(["city", "note"])
    );

    // A free-form map cannot be strict: sent as given, strict off.
    let map = json!({"type": "object", "additionalProperties": {"type": "number"}});
    let request = ChatRequest::user("x").with_response_format(ResponseFormat::JsonSchema {
        name: "m".into(),
        schema: map.clone(),
        strict: true,
    });
    let body = chat_body(&request, "m", false, OPENAI).unwrap();
    assert_eq!(body["response_format"]["json_schema"]["strict"], false);
    assert_eq!(body["response_format"]["json_schema"]["schema"], map);

    let body = chat_body(
        &ChatRequest::user("x").with_response_format(ResponseFormat::Json),
        "m",
        false,
        OPENAI,
    )
    .unwrap();
    assert_eq!(body["response_format"], json!({"type": "json_object"}));
}

#[test]
fn tool_message_with_stray_text_is_rejected() {
    let mut m = Message::tool_result("c", "r");
    m.content.push(llmkit_core::ContentPart::text("oops"));
    let e = chat_body(&ChatRequest::new(vec![m]), "m", false, OPENAI).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
}

#[test]
fn parses_refusal_tool_calls_and_usage() {
    let refusal: wire::WireResponse = serde_json::from_value(json!({
        "id": "chatcmpl-1", "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "refusal": "I can't help."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 79, "completion_tokens": 12, "prompt_tokens_details": {"cached_tokens": 64}, "completion_tokens_details": {"reasoning_tokens": 5}}
    }))
    .unwrap();
    let r = wire::parse_response(refusal, "openai", "m").unwrap();
    assert_eq!(r.finish_reason, FinishReason::ContentFilter);
    assert_eq!(r.text(), "I can't help.");
    assert_eq!(r.usage.input_tokens, 79);
    assert_eq!(r.usage.cached_input_tokens, 64);
    assert_eq!(r.usage.reasoning_tokens, 5);
    assert_eq!(r.provider_request_id.as_deref(), Some("chatcmpl-1"));

    let bad_args: wire::WireResponse = serde_json::from_value(json!({
        "choices": [{"message": {"tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}, "finish_reason": "tool_calls"}]
    }))
    .unwrap();
    assert_eq!(
        wire::parse_response(bad_args, "openai", "m")
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidResponse
    );
    let empty: wire::WireResponse = serde_json::from_value(json!({"choices": []})).unwrap();
    assert_eq!(
        wire::parse_response(empty, "openai", "m")
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidResponse
    );
}

fn no_error(_: &str) -> llmkit_core::Error {
    llmkit_core::Error::new(ErrorKind::Server, "stream error")
}

/// The payloads through the state machine and the shared stream contract.
async fn run(datas: &[&str]) -> Vec<Result<StreamEvent, ErrorKind>> {
    let mut s = StreamState::new(None, "asked-model".into());
    let frames: Vec<llmkit_core::Result<String>> =
        datas.iter().map(|d| Ok((*d).to_owned())).collect();
    let stream = crate::frames::chat_stream(
        futures::stream::iter(frames),
        "[DONE]",
        move |d: Option<String>| match d {
            Some(d) => s.on_data(&d, &no_error),
            None => Ok(s.on_end()),
        },
        |e| e,
    );
    futures::StreamExt::collect::<Vec<_>>(stream)
        .await
        .into_iter()
        .map(|r| r.map_err(|e| e.kind()))
        .collect()
}

#[tokio::test]
async fn stream_state_machine() {
    let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
        json!({"id": "c1", "model": "gpt-4o", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}).to_string()
    };
    let a = chunk(json!({"role": "assistant", "content": ""}), json!(null));
    let b = chunk(json!({"content": "Hi"}), json!(null));
    let t = chunk(
        json!({"tool_calls": [{"index": 1, "id": "call_9", "function": {"name": "f", "arguments": "{\"a\":1}"}}]}),
        json!(null),
    );
    let f = chunk(json!({}), json!("tool_calls"));
    let u =
        json!({"id": "c1", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}})
            .to_string();
    let events = run(&[&a, &b, &t, &f, &u, "[DONE]"]).await;
    assert!(matches!(&events[0], Ok(StreamEvent::Start { model, .. }) if model == "gpt-4o"));
    assert_eq!(events[1], Ok(StreamEvent::TextDelta { text: "Hi".into() }));
    assert!(
        matches!(&events[2], Ok(StreamEvent::ToolCallDelta { index: 1, id: Some(id), .. }) if id == "call_9")
    );
    assert!(matches!(&events[3], Ok(StreamEvent::Usage { usage }) if usage.output_tokens == 4));
    assert_eq!(
        events[4],
        Ok(StreamEvent::Done {
            finish_reason: FinishReason::ToolCalls
        })
    );
    assert_eq!(events.len(), 5);

    // A finish reason without [DONE] still finishes; nothing at all is a truncation.
    let events = run(&[&b, &chunk(json!({}), json!("stop"))]).await;
    assert_eq!(
        events.last(),
        Some(&Ok(StreamEvent::Done {
            finish_reason: FinishReason::Stop
        }))
    );
    let events = run(&[&b]).await;
    assert_eq!(events.last(), Some(&Err(ErrorKind::Truncated)));
    // Error payloads and garbage end the stream with an error.
    let events = run(&[&b, r#"{"error":{"message":"boom"}}"#, &b]).await;
    assert_eq!(events.last(), Some(&Err(ErrorKind::Server)));
    assert_eq!(
        run(&["{not json"]).await.last(),
        Some(&Err(ErrorKind::InvalidResponse))
    );
    // Tool arguments cut off by a token limit: the finish reason arrives, the call is partial.
    let cut = chunk(
        json!({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "f", "arguments": "{\"a\": "}}]}),
        json!(null),
    );
    let events = run(&[&a, &cut, &chunk(json!({}), json!("length")), "[DONE]"]).await;
    assert_eq!(events.last(), Some(&Err(ErrorKind::Truncated)));
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Ok(StreamEvent::Done { .. })))
    );
    // Refusal deltas end as a content filter.
    let r = chunk(json!({"refusal": "No."}), json!(null));
    let events = run(&[&r, &chunk(json!({}), json!("stop")), "[DONE]"]).await;
    assert_eq!(
        events.last(),
        Some(&Ok(StreamEvent::Done {
            finish_reason: FinishReason::ContentFilter
        }))
    );
}

#[test]
fn embeddings_in_both_encodings() {
    use base64::Engine as _;
    let floats = [0.5f32, -1.25];
    let bytes: Vec<u8> = floats.iter().flat_map(|f| f.to_le_bytes()).collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    let wire: wire::WireEmbeddings = serde_json::from_value(json!({
        "data": [{"index": 1, "embedding": b64}, {"index": 0, "embedding": [1.0, 2.0]}],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 4, "total_tokens": 4}
    }))
    .unwrap();
    let (vectors, model, usage) = wire::parse_embeddings(wire, 2).unwrap();
    assert_eq!(vectors, vec![vec![1.0, 2.0], floats.to_vec()]);
    assert_eq!(model.as_deref(), Some("text-embedding-3-small"));
    assert_eq!(usage.input_tokens, 4);
    let wire: wire::WireEmbeddings = serde_json::from_value(json!({"data": []})).unwrap();
    assert_eq!(
        wire::parse_embeddings(wire, 1).unwrap_err().kind(),
        ErrorKind::InvalidResponse
    );
}

#[test]
fn config_validation_and_debug() {
    let e = OpenAiModel::from_config(&ProviderConfig::new(ProviderKind::OpenAi, "m")).unwrap_err();
    assert!(e.message().contains("OPENAI_API_KEY"));
    let e = OpenAiModel::from_config(&ProviderConfig::new(ProviderKind::OpenAiCompatible, "m"))
        .unwrap_err();
    assert!(e.message().contains("OPENAI_BASE_URL"));
    let e = OpenAiModel::compatible("ftp://x", "m").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    let e =
        OpenAiModel::from_config(&ProviderConfig::new(ProviderKind::Anthropic, "m")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    let m = OpenAiModel::from_config(
        &ProviderConfig::new(ProviderKind::OpenAi, "gpt-4o-mini")
            .with_api_key("sk-debug-secret-123")
            .with_header("x-gateway", "gw-secret-456"),
    )
    .unwrap();
    let debug = format!("{m:?}");
    assert!(
        !debug.contains("sk-debug-secret-123") && !debug.contains("gw-secret-456"),
        "{debug}"
    );
    assert_eq!(m.chat_url(), "https://api.openai.com/v1/chat/completions");
    assert_eq!(m.info().provider, "openai");
}

/// The bytes of the request body, pinned: the typed wire structs must send exactly what the
/// former hand-built `json!` bodies sent (keys in sorted order, the same number formatting).
#[test]
fn request_bytes_are_pinned() {
    let strict_tool = ToolDefinition::new("lookup", "", json!({"type": "object"}));
    let mut strict_tool = strict_tool;
    strict_tool.strict = true;
    let full = ChatRequest::new(vec![
        Message::system("Be brief."),
        Message::user("What is in this image?").with_image(ImageSource::Url {
            url: "https://example.com/a.png".into(),
        }),
        Message::assistant_tool_calls(
            Some("Checking.".into()),
            vec![ToolCall {
                id: "call_1".into(),
                name: "get_weather".into(),
                arguments: json!({"city": "Paris"}),
            }],
        ),
        Message::tool_result("call_1", "18C"),
        Message::assistant("Sunny."),
        Message {
            name: Some("ada".into()),
            ..Message::user("Thanks")
        },
    ])
    .with_temperature(0.7)
    .with_max_tokens(50)
    .with_seed(7)
    .with_tool(ToolDefinition::new(
        "get_weather",
        "weather",
        json!({"type": "object", "properties": {"city": {"type": "string"}}}),
    ))
    .with_tool(strict_tool)
    .with_tool_choice(ToolChoice::Required)
    .with_response_format(ResponseFormat::JsonSchema {
        name: "answer".into(),
        schema: json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}),
        strict: true,
    });
    let mut full = full;
    full.top_p = Some(0.9);
    full.stop = vec!["END".into()];
    let body = wire::chat_body(&full, "gpt-4o-mini", true, OPENAI).unwrap();
    assert_eq!(
        serde_json::to_string(&body).unwrap(),
        r#"{"max_completion_tokens":50,"messages":[{"content":"Be brief.","role":"system"},{"content":[{"text":"What is in this image?","type":"text"},{"image_url":{"url":"https://example.com/a.png"},"type":"image_url"}],"role":"user"},{"content":"Checking.","role":"assistant","tool_calls":[{"function":{"arguments":"{\"city\":\"Paris\"}","name":"get_weather"},"id":"call_1","type":"function"}]},{"content":"18C","role":"tool","tool_call_id":"call_1"},{"content":"Sunny.","role":"assistant"},{"content":"Thanks","name":"ada","role":"user"}],"model":"gpt-4o-mini","response_format":{"json_schema":{"name":"answer","schema":{"additionalProperties":false,"properties":{"a":{"type":"string"}},"required":["a"],"type":"object"},"strict":true},"type":"json_schema"},"seed":7,"stop":["END"],"stream":true,"stream_options":{"include_usage":true},"temperature":0.699999988079071,"tool_choice":"required","tools":[{"function":{"description":"weather","name":"get_weather","parameters":{"properties":{"city":{"type":"string"}},"type":"object"}},"type":"function"},{"function":{"description":"","name":"lookup","parameters":{"type":"object"},"strict":true},"type":"function"}],"top_p":0.8999999761581421}"#
    );
    let compatible = BodyOptions {
        max_tokens_field: wire::MaxTokensField::MaxTokens,
        strict_schemas: false,
    };
    let small = ChatRequest::user("hi")
        .with_max_tokens(5)
        .with_tool_choice(ToolChoice::Tool { name: "f".into() })
        .with_response_format(ResponseFormat::Json);
    let body = wire::chat_body(&small, "qwen", false, compatible).unwrap();
    assert_eq!(
        serde_json::to_string(&body).unwrap(),
        r#"{"max_tokens":5,"messages":[{"content":"hi","role":"user"}],"model":"qwen","response_format":{"type":"json_object"},"tool_choice":{"function":{"name":"f"},"type":"function"}}"#
    );
}

#[test]
fn builder_defaults_and_errors() {
    let e = OpenAiModel::builder("gpt-4o-mini").build().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.message().contains("OPENAI_API_KEY"), "{e}");
    let e = OpenAiModel::compatible_builder("not a url", "m")
        .build()
        .unwrap_err();
    assert!(e.message().contains("OPENAI_BASE_URL"), "{e}");
    let m = OpenAiModel::builder("gpt-4o-mini")
        .api_key("sk-builder-secret")
        .base_url("https://gateway.example/v1/")
        .project("proj_1")
        .header("x-gateway", "gw-builder-secret")
        .timeout(std::time::Duration::from_secs(3))
        .build()
        .unwrap();
    assert_eq!(m.chat_url(), "https://gateway.example/v1/chat/completions");
    assert_eq!(m.info().provider, "openai");
    assert_eq!(m.inner.timeout, Some(std::time::Duration::from_secs(3)));
    assert_eq!(m.inner.headers["x-gateway"], "gw-builder-secret");
    assert_eq!(m.inner.headers["openai-project"], "proj_1");
    assert!(m.inner.headers["authorization"].is_sensitive());
    // Extra header values are redacted from errors like the key.
    let e = m.inner.mapper.error_from_parts(
        401,
        &reqwest::header::HeaderMap::new(),
        r#"{"error":{"message":"bad sk-builder-secret gw-builder-secret"}}"#,
    );
    assert!(!e.to_string().contains("builder-secret"), "{e}");
    let debug = format!("{m:?}");
    assert!(!debug.contains("builder-secret"), "{debug}");
    let c = OpenAiModel::compatible_builder("http://127.0.0.1:8000/v1", "qwen")
        .build()
        .unwrap();
    assert_eq!(c.info().provider, "openai_compatible");
    assert!(c.inner.headers.get("authorization").is_none());
    assert_eq!(
        c.inner.body.max_tokens_field,
        wire::MaxTokensField::MaxTokens
    );
}
