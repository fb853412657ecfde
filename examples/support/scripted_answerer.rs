//! The offline answering model of the RAG support agent, shared by `examples/rag_support_agent.rs`
//! and the reference service (`examples/support-service`), both including it with `#[path]`.

use llmkit::core::{ChatRequest, Reply, ScriptedModel};

/// Offline stand-in for an answering model: answers from the first source block it was given
/// and cites it; says it cannot answer when the sources do not mention the question's topic.
pub fn scripted_answerer() -> ScriptedModel {
    ScriptedModel::builder()
        .model("scripted-answerer")
        .fallback(Reply::dynamic(grounded_reply))
        .build()
}

/// The stand-in's reply to one grounded-answer request.
pub fn grounded_reply(req: &ChatRequest) -> Reply {
    let prompt = req.messages.last().map(|m| m.text()).unwrap_or_default();
    let question = prompt
        .rsplit("Question:")
        .next()
        .unwrap_or("")
        .to_lowercase();
    let (id, body) = first_source(&prompt);
    let topical = body
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 4)
        .any(|w| question.contains(w));
    if !topical {
        return Reply::json(&serde_json::json!({
            "answer": "The policies do not say.", "claims": [], "refused": true
        }));
    }
    // The sentence sharing the most words (and numbers) with the question.
    let overlap = |s: &str| {
        s.to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| (w.len() > 3 || w.chars().all(|c| c.is_ascii_digit())) && !w.is_empty())
            .filter(|w| question.contains(*w))
            .count()
    };
    let sentence = body
        .split_inclusive('.')
        .filter(|s| !s.trim_start().starts_with('#'))
        .max_by_key(|s| overlap(s))
        .unwrap_or(&body)
        .trim()
        .to_owned();
    Reply::json(&serde_json::json!({
        "answer": sentence, "claims": [{"text": sentence, "chunk_ids": [id]}], "refused": false
    }))
}

/// The id and text of the first source block in the prompt (guard spotlighting format).
pub fn first_source(prompt: &str) -> (String, String) {
    let after = prompt.split("id=").nth(1).unwrap_or("");
    let id: String = after
        .trim_start_matches('"')
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"')
        .collect();
    let body = after.split_once('\n').map(|(_, b)| b).unwrap_or("");
    let body = body.split("<<</").next().unwrap_or(body).trim().to_owned();
    (id, body)
}
