//! The offline model the service runs on by default: deterministic, instant (or delayed by
//! `delay_ms`), and shaped like the real calls the service makes, so every code path (grounded
//! answers with citations, refund verdicts, the OpenAI-compatible route with a JSON schema) runs
//! without a network.

use std::time::Duration;

use llmkit::core::{ChatRequest, Reply, ResponseFormat, ScriptedModel};
use serde_json::{Value, json};

// Shared with examples/rag_support_agent.rs, which also uses its `scripted_answerer()`.
#[allow(dead_code)]
#[path = "../../support/scripted_answerer.rs"]
mod scripted_answerer;

/// The scripted support model named `model`, answering after `delay`.
pub fn support_model(model: &str, delay: Duration) -> ScriptedModel {
    ScriptedModel::builder()
        .model(model)
        .chunk_chars(16)
        .fallback(Reply::dynamic(move |req: &ChatRequest| {
            let reply = reply_for(req);
            if delay.is_zero() {
                reply
            } else {
                reply.after(delay)
            }
        }))
        .build()
}

fn reply_for(req: &ChatRequest) -> Reply {
    let system = req.messages.first().map(|m| m.text()).unwrap_or_default();
    let all = req.text();
    if system.contains("You decide refund requests") {
        // The user turn only: the policy in the system turn has day counts of its own.
        let user = req.messages.last().map(|m| m.text()).unwrap_or_default();
        return Reply::json(&verdict(&user));
    }
    if all.contains("Question:") && all.contains("id=") {
        return scripted_answerer::grounded_reply(req);
    }
    if let ResponseFormat::JsonSchema { schema, .. } = &req.response_format {
        return Reply::json(&instance_of(schema));
    }
    if matches!(req.response_format, ResponseFormat::Json) {
        return Reply::json(&json!({"answer": "scripted"}));
    }
    let last = req.messages.last().map(|m| m.text()).unwrap_or_default();
    Reply::text(format!(
        "This is the offline support model. You asked: {}",
        last.chars().take(200).collect::<String>()
    ))
}

/// A refund verdict from the policy's day limits (30 days refund, 60 days store credit).
fn verdict(prompt: &str) -> Value {
    // The v2 prompt states the computed days ("Purchased 12 days ago"); with v1 the model only
    // has the customer's words, so it takes the first "N days" it finds there.
    let words: Vec<&str> = prompt.split_whitespace().collect();
    let days: Option<u64> = words
        .windows(2)
        .find(|w| w.get(1).is_some_and(|d| d.starts_with("day")))
        .and_then(|w| w.first())
        .and_then(|n| n.parse().ok());
    match days {
        Some(d) if d <= 30 => json!({
            "decision": "approve", "confidence": 0.92,
            "reasons": ["Refunds are accepted within 30 days of delivery"]
        }),
        Some(d) if d > 60 => json!({
            "decision": "reject", "confidence": 0.9,
            "reasons": ["After 60 days no refund or store credit is possible"]
        }),
        _ => json!({
            "decision": "escalate", "confidence": 0.5,
            "reasons": ["Between 30 and 60 days the policy offers store credit, not a refund"]
        }),
    }
}

/// The smallest value that satisfies a (simple) JSON schema: required properties filled with
/// the first enum value, an empty string, zero, false or an empty list.
pub fn instance_of(schema: &Value) -> Value {
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    {
        return first.clone();
    }
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    if let Some(any) = schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    {
        return instance_of(any);
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts.first().and_then(Value::as_str).unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "null",
    };
    match ty {
        "object" => {
            let mut out = serde_json::Map::new();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (name, sub) in props {
                    out.insert(name.clone(), instance_of(sub));
                }
            }
            Value::Object(out)
        }
        "array" => json!([]),
        "string" => json!("scripted"),
        "integer" => json!(0),
        "number" => json!(0.0),
        "boolean" => json!(false),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_follow_the_schema() {
        let schema = json!({"type": "object", "properties": {
            "decision": {"type": "string", "enum": ["approve", "reject"]},
            "confidence": {"type": "number"}, "tags": {"type": "array", "items": {"type": "string"}},
            "n": {"type": ["integer", "null"]}}});
        assert_eq!(
            instance_of(&schema),
            json!({"decision": "approve", "confidence": 0.0, "tags": [], "n": 0})
        );
    }

    #[test]
    fn verdict_follows_policy_days() {
        assert_eq!(verdict("Purchased 12 days ago.")["decision"], "approve");
        assert_eq!(verdict("Purchased 45 days ago.")["decision"], "escalate");
        assert_eq!(verdict("Purchased 90 days ago.")["decision"], "reject");
        assert_eq!(
            verdict("A refund 10 days after delivery?")["decision"],
            "approve"
        );
        assert_eq!(verdict("no dates here")["decision"], "escalate");
    }
}
