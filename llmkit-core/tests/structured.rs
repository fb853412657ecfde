#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Structured output: extraction from noisy replies, the re-ask loop, bounds, cost, truncation.

use std::sync::Arc;

use llmkit_core::structured::{Structured, StructuredExt};
use llmkit_core::{
    Capabilities, ChatModel, ChatRequest, ChatResponse, Cost, Decimal, ErrorKind, Message,
    ModelInfo, PromptRef, Reply, ResponseFormat, Result, Role, ScriptedModel, async_trait,
};
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Decision {
    Approve,
    Reject,
    Escalate,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
struct Verdict {
    decision: Decision,
    confidence: f64,
    reasons: Vec<String>,
}

const GOOD: &str = r#"{"decision": "approve", "confidence": 0.9, "reasons": ["within 30 days"]}"#;
const BAD_ENUM: &str = r#"{"decision": "maybe", "confidence": 0.9, "reasons": []}"#;

fn confidence_in_range() -> Structured<Verdict> {
    Structured::<Verdict>::new().validator(|v: &Verdict| {
        if (0.0..=1.0).contains(&v.confidence) {
            Ok(())
        } else {
            Err(format!("/confidence: {} is outside 0..=1", v.confidence))
        }
    })
}

fn request() -> ChatRequest {
    ChatRequest::new(vec![
        Message::system("You judge refund requests."),
        Message::user("Bought 10 days ago, unopened. Refund?"),
    ])
}

#[tokio::test]
async fn fenced_and_noisy_replies_are_extracted() {
    let replies = [
        format!("Here you go:\n```json\n{GOOD}\n```\nLet me know!"),
        format!("Thinking... {{draft}} The answer is {GOOD}. Done."),
        format!("{BAD_ENUM}\nActually, corrected: {GOOD}"),
    ];
    for reply in replies {
        let model = ScriptedModel::builder().reply(reply.as_str()).build();
        let out = model.generate::<Verdict>(request()).await.unwrap();
        assert_eq!(out.value.decision, Decision::Approve, "{reply}");
        assert_eq!(out.attempts, 1);
        assert_eq!(out.raw_text, reply);
    }
}

#[tokio::test]
async fn tool_call_reply_uses_its_arguments() {
    let args: serde_json::Value = serde_json::from_str(GOOD).unwrap();
    let model = ScriptedModel::builder()
        .reply(Reply::tool_call("verdict", args))
        .build();
    let out = model.generate::<Verdict>(request()).await.unwrap();
    assert_eq!(out.value.reasons, vec!["within 30 days"]);
}

#[tokio::test]
async fn reask_feeds_back_precise_errors_and_sums_usage() {
    let model = Arc::new(
        ScriptedModel::builder()
            .reply(BAD_ENUM)
            .reply(r#"{"decision": "reject", "confidence": 1.5, "reasons": ["x"]}"#)
            .reply(GOOD)
            .build(),
    );
    let out = confidence_in_range()
        .generate(model.as_ref(), request())
        .await
        .unwrap();
    assert_eq!(out.attempts, 3);
    assert_eq!(out.rejected.len(), 2);
    assert_eq!(out.responses.len(), 3);
    let summed: u64 = out.responses.iter().map(|r| r.usage.total_tokens()).sum();
    assert_eq!(out.usage.total_tokens(), summed);
    assert!(
        out.rejected[0].errors[0].starts_with("/decision"),
        "{:?}",
        out.rejected
    );
    assert!(out.rejected[1].errors[0].contains("outside 0..=1"));

    // The second call saw the bad reply as the assistant's and the errors as a user message.
    let reqs = model.requests();
    let second = &reqs[1].messages;
    assert_eq!(second.len(), 4);
    assert_eq!(second[2].role, Role::Assistant);
    assert_eq!(second[2].text(), BAD_ENUM);
    assert_eq!(second[3].role, Role::User);
    assert!(
        second[3].text().contains("/decision"),
        "{}",
        second[3].text()
    );
    assert!(reqs[2].messages[5].text().contains("outside 0..=1"));
    assert!(out.trail.has("structured", "invalid"));
}

#[tokio::test]
async fn attempts_are_bounded_and_every_error_is_reported() {
    let model = ScriptedModel::builder().fallback(BAD_ENUM).build();
    let err = Structured::<Verdict>::new()
        .max_attempts(2)
        .generate(&model, request().with_prompt(prompt_ref()))
        .await
        .unwrap_err();
    assert_eq!(model.call_count(), 2);
    assert_eq!(err.kind(), ErrorKind::OutputInvalid);
    assert_eq!(err.attempts().len(), 2);
    assert!(err.message().contains("attempt 1: /decision"), "{err}");
    assert!(err.message().contains("attempt 2: /decision"), "{err}");
    assert!(!err.to_string().contains('\n'));
    assert_eq!(err.prompt(), Some(&prompt_ref()));
    assert_eq!(err.provider(), Some(model.info().provider.as_str()));
}

#[tokio::test]
async fn truncated_reply_is_its_own_error_and_not_reasked() {
    let model = ScriptedModel::builder()
        .reply(Reply::Truncated(
            r#"{"decision": "approve", "confid"#.into(),
        ))
        .fallback(GOOD)
        .build();
    let err = model.generate::<Verdict>(request()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Truncated);
    assert!(err.message().contains("token limit"), "{err}");
    assert_eq!(model.call_count(), 1);
}

#[tokio::test]
async fn malformed_json_without_length_is_reasked() {
    let model = ScriptedModel::builder()
        .reply(Reply::malformed_json())
        .reply(GOOD)
        .build();
    let out = model.generate::<Verdict>(request()).await.unwrap();
    assert_eq!(out.attempts, 2);
    assert!(out.rejected[0].errors[0].contains("unclosed json object"));
}

/// Adds a fixed cost to every response, as the cost layer does.
struct Priced {
    inner: ScriptedModel,
    per_call: Decimal,
}

#[async_trait]
impl ChatModel for Priced {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let mut r = self.inner.chat(request).await?;
        r.cost = Some(Cost {
            total_usd: self.per_call,
            output_usd: self.per_call,
            price_table: "test".into(),
            ..Default::default()
        });
        Ok(r)
    }
}

#[tokio::test]
async fn cost_is_summed_and_bounds_the_loop() {
    let cents = Decimal::new(1, 2);
    let ok = Priced {
        inner: ScriptedModel::builder().reply(BAD_ENUM).reply(GOOD).build(),
        per_call: cents,
    };
    let out = ok.generate::<Verdict>(request()).await.unwrap();
    assert_eq!(out.cost.unwrap().total_usd, Decimal::new(2, 2));

    let costly = Priced {
        inner: ScriptedModel::builder().fallback(BAD_ENUM).build(),
        per_call: cents,
    };
    let err = Structured::<Verdict>::new()
        .max_attempts(10)
        .max_cost_usd(Decimal::new(15, 3))
        .generate(&costly, request())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutputInvalid);
    assert!(err.message().contains("cost bound"), "{err}");
    assert_eq!(costly.inner.call_count(), 2);
}

/// Issue 17: the cost bound failed open. A reply without a cost (an unpriced model) counted as
/// $0, so the loop re-asked up to `max_attempts` whatever the bound said. It now fails closed
/// before the re-ask, naming the model; `allow_unpriced(true)` is the explicit opt-out.
#[tokio::test]
async fn cost_bound_fails_closed_on_an_unpriced_model() {
    let unpriced = ScriptedModel::builder()
        .provider("acme")
        .model("house-model-7b")
        .fallback(BAD_ENUM)
        .build();
    let err = Structured::<Verdict>::new()
        .max_attempts(5)
        .max_cost_usd(Decimal::new(5, 2))
        .generate(&unpriced, request())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.message().contains("acme/house-model-7b"), "{err}");
    assert_eq!(unpriced.call_count(), 1, "no re-ask without a known cost");
    assert_eq!(err.attempts().len(), 1, "the rejected attempt is kept");

    // A valid first reply needs no re-ask, so there is nothing to refuse.
    let good = ScriptedModel::builder()
        .model("house-model-7b")
        .reply(GOOD)
        .build();
    let out = Structured::<Verdict>::new()
        .max_cost_usd(Decimal::new(5, 2))
        .generate(&good, request())
        .await
        .unwrap();
    assert_eq!((out.attempts, out.cost), (1, None));

    // Without a bound there is nothing to check: unpriced replies are re-asked as before.
    let model = ScriptedModel::builder().reply(BAD_ENUM).reply(GOOD).build();
    let out = model.generate::<Verdict>(request()).await.unwrap();
    assert_eq!(out.attempts, 2);

    // The explicit opt-out counts the unknown cost as $0 and keeps re-asking.
    let model = ScriptedModel::builder().reply(BAD_ENUM).reply(GOOD).build();
    let out = Structured::<Verdict>::new()
        .max_cost_usd(Decimal::new(5, 2))
        .allow_unpriced(true)
        .generate(&model, request())
        .await
        .unwrap();
    assert_eq!(out.attempts, 2);
}

#[tokio::test]
async fn native_schema_models_get_a_response_format() {
    let model = ScriptedModel::builder()
        .capabilities(Capabilities::all())
        .reply(GOOD)
        .build();
    let dyn_model: &dyn ChatModel = &model;
    dyn_model.generate::<Verdict>(request()).await.unwrap();
    let sent = &model.requests()[0];
    match &sent.response_format {
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        } => {
            assert_eq!(name, "Verdict");
            assert!(*strict);
            assert_eq!(schema["properties"]["decision"]["$ref"], "#/$defs/Decision");
        }
        other => panic!("expected a json schema format, got {other:?}"),
    }
    assert_eq!(sent.messages, request().messages, "no instructions added");
}

#[tokio::test]
async fn prompt_only_models_get_instructions_in_the_system_message() {
    let plain = || {
        ScriptedModel::builder()
            .capabilities(Capabilities::default())
            .reply(GOOD)
            .build()
    };
    let model = plain();
    model.generate::<Verdict>(request()).await.unwrap();
    let sent = &model.requests()[0];
    assert_eq!(sent.response_format, ResponseFormat::Text);
    assert_eq!(sent.messages.len(), 2);
    let system = sent.messages[0].text();
    assert!(system.starts_with("You judge refund requests."));
    assert!(system.contains("\"confidence\""), "{system}");
    assert_eq!(
        sent.messages[1],
        request().messages[1],
        "user text untouched"
    );

    // Without a system message, one is added in front.
    let model = plain();
    model
        .generate::<Verdict>(ChatRequest::user("refund?"))
        .await
        .unwrap();
    let sent = &model.requests()[0];
    assert_eq!(sent.messages[0].role, Role::System);
    assert_eq!(sent.messages[1].text(), "refund?");
}

#[tokio::test]
async fn result_carries_the_prompt_ref() {
    let model: Arc<dyn ChatModel> = Arc::new(ScriptedModel::builder().reply(GOOD).build());
    let out = model
        .generate::<Verdict>(request().with_prompt(prompt_ref()))
        .await
        .unwrap();
    assert_eq!(out.prompt, Some(prompt_ref()));
}

#[tokio::test]
async fn model_errors_pass_through() {
    let model = ScriptedModel::builder()
        .reply(Reply::server_error(503))
        .build();
    let err = model.generate::<Verdict>(request()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
}

fn prompt_ref() -> PromptRef {
    PromptRef {
        id: "refund_verdict".into(),
        version: "2".into(),
        hash: "abcdef0123456789".into(),
    }
}

#[tokio::test]
async fn generate_future_is_send() {
    let model: Arc<dyn ChatModel> = Arc::new(ScriptedModel::builder().reply(GOOD).build());
    let handle = tokio::spawn(async move { model.generate::<Verdict>(request()).await });
    assert_eq!(
        handle.await.unwrap().unwrap().value.decision,
        Decision::Approve
    );
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct Tagged {
    name: String,
    #[serde(default)]
    tags: Vec<String>,
    note: Option<String>,
}

#[tokio::test]
async fn strict_mode_nulls_for_defaulted_fields_are_read_as_absent() {
    let model = ScriptedModel::builder()
        .reply(r#"{"name": "a", "tags": null, "note": null}"#)
        .build();
    let out = model
        .generate::<Tagged>(ChatRequest::user("x"))
        .await
        .unwrap();
    assert_eq!(out.attempts, 1);
    assert!(out.value.tags.is_empty());
    assert_eq!(out.value.note, None);
    assert_eq!(out.value.name, "a");
    assert_eq!(out.json, serde_json::json!({"name": "a"}));
}

#[tokio::test]
async fn streaming_reports_growing_partials_then_the_validated_value() {
    let model = ScriptedModel::builder()
        .chunk_chars(7)
        .reply(BAD_ENUM)
        .reply(GOOD)
        .build();
    let mut partials: Vec<serde_json::Value> = Vec::new();
    let out = Structured::<Verdict>::new()
        .generate_streaming(&model, request(), |v| partials.push(v.clone()))
        .await
        .unwrap();
    assert_eq!(out.attempts, 2);
    assert_eq!(out.value.decision, Decision::Approve);
    assert!(partials.len() > 4, "{partials:?}");
    assert!(
        partials
            .iter()
            .any(|p| p.get("decision") == Some(&serde_json::json!("maybe")))
    );
    assert_eq!(
        partials.last().unwrap(),
        &serde_json::from_str::<serde_json::Value>(GOOD).unwrap()
    );
}

#[tokio::test]
async fn a_stream_cut_off_is_truncated() {
    let model = ScriptedModel::builder()
        .reply(Reply::CutStream(r#"{"decision": "approve", "conf"#.into()))
        .fallback(GOOD)
        .build();
    let err = Structured::<Verdict>::new()
        .generate_streaming(&model, request(), |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Truncated);
    assert_eq!(model.call_count(), 1);
}
