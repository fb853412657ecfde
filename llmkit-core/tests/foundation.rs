//! Foundation behaviour: serde round trips, scripted model, stream folding, pipeline ordering and
//! object safety.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use llmkit_core::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) {
    let json = serde_json::to_string(value).unwrap();
    let back: T = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, value, "round trip through {json}");
}

fn full_request() -> ChatRequest {
    ChatRequest::new(vec![
        Message::system("sys").cacheable(),
        Message::user("look").with_image(ImageSource::Url {
            url: "https://example.com/a.png".into(),
        }),
        Message::user("b64").with_image(ImageSource::Base64 {
            media_type: "image/png".into(),
            data: "AAAA".into(),
        }),
        Message::assistant_tool_calls(
            Some("calling".into()),
            vec![ToolCall {
                id: "c1".into(),
                name: "lookup".into(),
                arguments: serde_json::json!({"q": 1}),
            }],
        ),
        Message::tool_result("c1", "{\"ok\":true}"),
    ])
    .with_model("m")
    .with_temperature(0.5)
    .with_max_tokens(10)
    .with_seed(7)
    .with_tool(ToolDefinition::new(
        "lookup",
        "find",
        serde_json::json!({"type":"object"}),
    ))
    .with_tool_choice(ToolChoice::Tool {
        name: "lookup".into(),
    })
    .with_response_format(ResponseFormat::JsonSchema {
        name: "v".into(),
        schema: serde_json::json!({"type":"object"}),
        strict: true,
    })
    .with_prompt(PromptRef {
        id: "p".into(),
        version: "1".into(),
        hash: "abcdef0123456789".into(),
    })
    .with_request_id("r1")
    .with_idempotency_key("k1")
    .with_tenant("t")
    .with_tag("route", "cheap")
}

#[test]
fn serde_round_trips() {
    round_trip(&full_request());
    for choice in [ToolChoice::Auto, ToolChoice::None, ToolChoice::Required] {
        round_trip(&choice);
    }
    round_trip(&ResponseFormat::Json);
    round_trip(&ResponseFormat::Text);
    let mut trail = Trail::default();
    trail.push("cache", "hit", "saved $0.01");
    let resp = ChatResponse {
        message: Message::assistant("hi"),
        finish_reason: FinishReason::Other("weird".into()),
        usage: Usage {
            input_tokens: 10,
            cached_input_tokens: 4,
            cache_write_tokens: 2,
            output_tokens: 5,
            reasoning_tokens: 1,
        },
        cost: Some(Cost {
            total_usd: "0.0123".parse().unwrap(),
            price_table: "2026-11-01".into(),
            ..Default::default()
        }),
        model: "m".into(),
        provider: "p".into(),
        request_id: Some("r".into()),
        provider_request_id: Some("pr".into()),
        prompt: None,
        latency: Duration::from_micros(1234),
        trail,
    };
    round_trip(&resp);
    for ev in [
        StreamEvent::Start {
            model: "m".into(),
            provider_request_id: None,
        },
        StreamEvent::TextDelta { text: "a".into() },
        StreamEvent::ToolCallDelta {
            index: 0,
            id: Some("c".into()),
            name: Some("n".into()),
            arguments: "{".into(),
        },
        StreamEvent::Usage {
            usage: Usage::default(),
        },
        StreamEvent::Done {
            finish_reason: FinishReason::Length,
        },
    ] {
        round_trip(&ev);
    }
    let mut er = EmbeddingRequest::new(["a", "b"]);
    er.dimensions = Some(8);
    round_trip(&er);
    round_trip(&EmbeddingResponse {
        embeddings: vec![vec![0.5, 0.25]],
        model: "e".into(),
        provider: "p".into(),
        usage: Usage::default(),
        cost: None,
        ..Default::default()
    });
}

#[test]
fn unknown_finish_reason_is_kept() {
    let fr: FinishReason = serde_json::from_str("{\"other\":\"pause_turn\"}").unwrap();
    assert_eq!(fr.as_str(), "pause_turn");
}

#[tokio::test]
async fn scripted_sequence_rules_and_on_call() {
    let model = ScriptedModel::builder()
        .reply("one")
        .reply("two")
        .when_contains("refund", "policy says 30 days")
        .on_call(4, Reply::server_error(503))
        .fallback("default")
        .build();
    assert_eq!(
        model.chat(ChatRequest::user("a")).await.unwrap().text(),
        "one"
    );
    assert_eq!(
        model
            .chat(ChatRequest::user("REFUND please"))
            .await
            .unwrap()
            .text(),
        "policy says 30 days"
    );
    assert_eq!(
        model.chat(ChatRequest::user("b")).await.unwrap().text(),
        "two"
    );
    let err = model.chat(ChatRequest::user("c")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(err.status(), Some(503));
    assert_eq!(err.provider(), Some("scripted"));
    assert_eq!(
        model.chat(ChatRequest::user("d")).await.unwrap().text(),
        "default"
    );
    let texts: Vec<String> = model.requests().iter().map(ChatRequest::text).collect();
    assert_eq!(texts, ["a", "REFUND please", "b", "c", "d"]);
}

#[tokio::test]
async fn scripted_without_reply_fails_clearly() {
    let model = ScriptedModel::builder().build();
    let err = model.chat(ChatRequest::user("x")).await.unwrap_err();
    assert!(err.message().contains("no reply for call 1"), "{err}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn scripted_failures_carry_classification() {
    let model = ScriptedModel::builder()
        .reply(Reply::rate_limited(Duration::from_secs(3)))
        .reply(Reply::timeout())
        .reply(Reply::overloaded())
        .reply(Reply::malformed_json())
        .reply(Reply::Truncated("half".into()))
        .build();
    let e = model.chat(ChatRequest::user("x")).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.retry_after()),
        (ErrorKind::RateLimited, Some(Duration::from_secs(3)))
    );
    assert_eq!(
        model.chat(ChatRequest::user("x")).await.unwrap_err().kind(),
        ErrorKind::Timeout
    );
    assert_eq!(
        model.chat(ChatRequest::user("x")).await.unwrap_err().kind(),
        ErrorKind::Overloaded
    );
    let bad = model.chat(ChatRequest::user("x")).await.unwrap();
    assert!(serde_json::from_str::<serde_json::Value>(&bad.text()).is_err());
    let cut = model.chat(ChatRequest::user("x")).await.unwrap();
    assert_eq!(cut.finish_reason, FinishReason::Length);
}

#[tokio::test]
async fn scripted_usage_is_plausible() {
    let model = ScriptedModel::always("abcdefgh");
    let resp = model
        .chat(ChatRequest::user("0123456789abcdef"))
        .await
        .unwrap();
    // Counted by the one token definition (`tokens::approximate` for a non-OpenAI name): ten
    // digits are 7 tokens, six letters 2; eight letters 2.
    assert_eq!(resp.usage.input_tokens, 9);
    assert_eq!(resp.usage.output_tokens, 2);
}

#[tokio::test(start_paused = true)]
async fn scripted_delay_uses_tokio_clock() {
    let model = ScriptedModel::builder()
        .reply(Reply::text("late").after(Duration::from_secs(30)))
        .build();
    let start = tokio::time::Instant::now();
    let resp = model.chat(ChatRequest::user("x")).await.unwrap();
    assert_eq!(resp.text(), "late");
    assert!(start.elapsed() >= Duration::from_secs(30));
}

#[tokio::test]
async fn streaming_chunks_and_folds() {
    let model = ScriptedModel::builder()
        .chunk_chars(3)
        .reply("hello world")
        .build();
    let stream = model.stream(ChatRequest::user("x")).await.unwrap();
    let events: Vec<StreamEvent> = stream.map(|e| e.unwrap()).collect().await;
    let deltas: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(deltas, ["hel", "lo ", "wor", "ld"]);
    assert!(matches!(events.last(), Some(StreamEvent::Done { .. })));

    let model = ScriptedModel::builder().reply("folded").build();
    let resp = collect_stream(
        model.stream(ChatRequest::user("x")).await.unwrap(),
        model.info(),
    )
    .await
    .unwrap();
    assert_eq!(resp.text(), "folded");
    assert!(resp.usage.output_tokens > 0);
}

#[tokio::test]
async fn cut_stream_folds_to_truncated() {
    let model = ScriptedModel::builder()
        .reply(Reply::CutStream("partial answ".into()))
        .build();
    let err = collect_stream(
        model.stream(ChatRequest::user("x")).await.unwrap(),
        model.info(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Truncated);
}

#[tokio::test]
async fn tool_call_deltas_fold_into_calls() {
    let events = vec![
        Ok(StreamEvent::ToolCallDelta {
            index: 0,
            id: Some("a".into()),
            name: Some("get".into()),
            arguments: "{\"x\":".into(),
        }),
        Ok(StreamEvent::ToolCallDelta {
            index: 1,
            id: Some("b".into()),
            name: Some("put".into()),
            arguments: String::new(),
        }),
        Ok(StreamEvent::ToolCallDelta {
            index: 0,
            id: None,
            name: None,
            arguments: "1}".into(),
        }),
        Ok(StreamEvent::Usage {
            usage: Usage {
                input_tokens: 5,
                ..Default::default()
            },
        }),
        Ok(StreamEvent::Usage {
            usage: Usage {
                input_tokens: 5,
                output_tokens: 7,
                ..Default::default()
            },
        }),
        Ok(StreamEvent::Done {
            finish_reason: FinishReason::ToolCalls,
        }),
    ];
    let stream: ChatStream = Box::pin(futures::stream::iter(events));
    let info = ModelInfo::new("p", "m");
    let resp = collect_stream(stream, &info).await.unwrap();
    let calls = resp.tool_calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].arguments, serde_json::json!({"x": 1}));
    assert_eq!(calls[1].arguments, serde_json::json!({}));
    assert_eq!(resp.usage.output_tokens, 7);
    assert_eq!(resp.usage.input_tokens, 5);

    let bad: ChatStream = Box::pin(futures::stream::iter(vec![
        Ok(StreamEvent::ToolCallDelta {
            index: 0,
            id: Some("a".into()),
            name: Some("get".into()),
            arguments: "{oops".into(),
        }),
        Ok(StreamEvent::Done {
            finish_reason: FinishReason::ToolCalls,
        }),
    ]));
    assert_eq!(
        collect_stream(bad, &info).await.unwrap_err().kind(),
        ErrorKind::InvalidResponse
    );
}

#[tokio::test]
async fn scripted_embeddings_are_deterministic_and_similar() {
    let model = ScriptedModel::builder().embedding_dimensions(32).build();
    let resp = model
        .embed(EmbeddingRequest::new([
            "refund policy thirty days",
            "refund policy",
            "volcanic geology",
        ]))
        .await
        .unwrap();
    assert_eq!(resp.embeddings.len(), 3);
    assert!(resp.embeddings.iter().all(|v| v.len() == 32));
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    assert!(
        dot(&resp.embeddings[0], &resp.embeddings[1])
            > dot(&resp.embeddings[0], &resp.embeddings[2])
    );
    assert_eq!(
        hashed_embedding("Refund", 16),
        hashed_embedding("refund", 16)
    );
    assert_eq!(model.embed_requests().len(), 1);
}

/// A test layer that records the order in which requests pass through it.
struct Recorder {
    name: &'static str,
    log: Arc<Mutex<Vec<&'static str>>>,
}

impl Layer for Recorder {
    fn layer(&self, inner: Arc<dyn ChatModel>) -> Arc<dyn ChatModel> {
        Arc::new(Recorded {
            name: self.name,
            log: self.log.clone(),
            inner,
        })
    }
}

struct Recorded {
    name: &'static str,
    log: Arc<Mutex<Vec<&'static str>>>,
    inner: Arc<dyn ChatModel>,
}

#[async_trait]
impl ChatModel for Recorded {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        self.log.lock().unwrap().push(self.name);
        let mut r = self.inner.chat(request).await?;
        r.trail.push(self.name, "returned", "");
        Ok(r)
    }
}

#[tokio::test]
async fn pipeline_first_layer_is_outermost() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let provider = Arc::new(ScriptedModel::always("ok"));
    let model = Pipeline::builder()
        .layer(Recorder {
            name: "outer",
            log: log.clone(),
        })
        .layer(Recorder {
            name: "middle",
            log: log.clone(),
        })
        .option_layer(Some(Recorder {
            name: "inner",
            log: log.clone(),
        }))
        .option_layer(None::<Recorder>)
        .build(provider);
    let resp = model
        .chat(ChatRequest::user("x").with_prompt(PromptRef {
            id: "p".into(),
            version: "2".into(),
            hash: "h".into(),
        }))
        .await
        .unwrap();
    assert_eq!(*log.lock().unwrap(), ["outer", "middle", "inner"]);
    let returned: Vec<&str> = resp
        .trail
        .entries()
        .iter()
        .map(|e| e.layer.as_str())
        .collect();
    assert_eq!(
        returned,
        ["inner", "middle", "outer"],
        "responses unwind inside-out"
    );
    assert!(resp.request_id.as_deref().unwrap().starts_with("req_"));
    assert_eq!(resp.prompt.as_ref().unwrap().version, "2");
}

#[tokio::test]
async fn pipeline_stamps_errors_with_request_id_and_prompt() {
    let provider = Arc::new(
        ScriptedModel::builder()
            .reply(Reply::server_error(500))
            .build(),
    );
    let model = Pipeline::builder().build(provider);
    let err = model
        .chat(
            ChatRequest::user("x")
                .with_request_id("r-9")
                .with_prompt(PromptRef {
                    id: "p".into(),
                    version: "1".into(),
                    hash: "h".into(),
                }),
        )
        .await
        .unwrap_err();
    assert_eq!(err.request_id(), Some("r-9"));
    assert_eq!(err.prompt().unwrap().id, "p");
}

#[test]
fn request_ids_are_unique() {
    let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_request_id()).collect();
    assert_eq!(ids.len(), 1000);
}

#[tokio::test]
async fn object_safety_and_default_stream() {
    // A minimal provider implements only `info` and `chat`; `stream` comes for free.
    struct Minimal(ModelInfo);
    #[async_trait]
    impl ChatModel for Minimal {
        fn info(&self) -> &ModelInfo {
            &self.0
        }
        async fn chat(&self, _: ChatRequest) -> Result<ChatResponse> {
            Ok(ChatResponse {
                message: Message::assistant("min"),
                model: "m".into(),
                provider: "p".into(),
                ..Default::default()
            })
        }
    }
    let models: Vec<Arc<dyn ChatModel>> = vec![
        Arc::new(Minimal(ModelInfo::new("p", "m"))),
        Arc::new(ScriptedModel::always("s")),
    ];
    for m in &models {
        let s = m.stream(ChatRequest::user("x")).await.unwrap();
        let r = collect_stream(s, m.info()).await.unwrap();
        assert!(!r.text().is_empty());
    }
    // Arc<M> and Box<dyn> forward.
    let boxed: Box<dyn ChatModel> = Box::new(ScriptedModel::always("b"));
    assert_eq!(
        boxed.chat(ChatRequest::user("x")).await.unwrap().text(),
        "b"
    );
    let emb: Arc<dyn EmbeddingModel> = Arc::new(ScriptedModel::always("e"));
    assert_eq!(emb.dimensions(), Some(64));
}

#[tokio::test]
async fn layer_fn_rewrites_requests() {
    let provider = Arc::new(ScriptedModel::always("ok"));
    let model = Pipeline::builder()
        .layer(layer_fn("defaults", |r| {
            if r.temperature.is_none() {
                r.with_temperature(0.0)
            } else {
                r
            }
        }))
        .build(provider.clone());
    let resp = model.chat(ChatRequest::user("x")).await.unwrap();
    assert!(resp.trail.has("defaults", "mapped_request"));
    assert_eq!(provider.requests()[0].temperature, Some(0.0));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn excerpt_never_panics_and_is_bounded(s in any::<String>()) {
            let e = Error::new(ErrorKind::Server, "x").with_body_excerpt(&s);
            prop_assert!(e.body_excerpt().unwrap().chars().count() <= error::BODY_EXCERPT_LIMIT + 1);
        }

        #[test]
        fn embeddings_are_unit_or_zero(s in any::<String>(), dims in 1usize..128) {
            let v = hashed_embedding(&s, dims);
            prop_assert_eq!(v.len(), dims);
            let n: f32 = v.iter().map(|x| x * x).sum();
            prop_assert!(n == 0.0 || (n - 1.0).abs() < 1e-4);
        }

        #[test]
        fn stream_chunks_reassemble(text in any::<String>(), chunk in 1usize..20) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let model = ScriptedModel::builder().chunk_chars(chunk).reply(text.clone()).build();
            let resp = rt.block_on(async {
                collect_stream(model.stream(ChatRequest::user("x")).await.unwrap(), model.info()).await
            }).unwrap();
            prop_assert_eq!(resp.text(), text);
        }
    }
}
