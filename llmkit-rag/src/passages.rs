//! The one shape of every request that shows retrieved passages to a model (grounded answers,
//! the citation judge, the LLM reranker): instructions in the system message, passages marked
//! as untrusted data in the user message.

use llmkit_core::{ChatRequest, Message};

use crate::store::Hit;

/// `(id, text)` of each hit, for [`passages_request`].
pub(crate) fn chunk_passages<'a>(hits: impl Iterator<Item = &'a Hit>) -> Vec<(&'a str, &'a str)> {
    hits.map(|h| (h.chunk.id.as_str(), h.chunk.text.as_str()))
        .collect()
}

/// The one shape of every request that shows retrieved text to a model: `instructions` and
/// the spotlighting note in the system message; the passages, marked as untrusted data under
/// `heading`, then `tail` (the question, the claims) in the user message; temperature 0; the
/// passage ids as `RequestMeta.context_ids`, so traces record what the model saw.
pub(crate) fn passages_request(
    instructions: &str,
    heading: &str,
    passages: &[(&str, &str)],
    tail: &str,
) -> ChatRequest {
    let (note, marked) = mark_passages(passages);
    let mut req = ChatRequest::new(vec![
        Message::system(format!("{instructions}\n{note}")),
        Message::user(format!("{heading}:\n{marked}\n\n{tail}")),
    ])
    .with_temperature(0.0);
    req.meta.context_ids = passages.iter().map(|(id, _)| (*id).to_owned()).collect();
    req
}

/// Wraps `(id, text)` passages as untrusted data; returns the note for the system message and
/// the marked text for the user message.
#[cfg(feature = "guard")]
fn mark_passages(passages: &[(&str, &str)]) -> (String, String) {
    use llmkit_guard::untrusted::{Spotlight, UntrustedDoc};
    let spot = Spotlight::delimit();
    let docs: Vec<UntrustedDoc> = passages
        .iter()
        .map(|(id, text)| UntrustedDoc::retrieved(*id, *text))
        .collect();
    (spot.system_note(), spot.mark_all(&docs))
}

/// Wraps `(id, text)` passages as untrusted data; returns the note for the system message and
/// the marked text for the user message.
#[cfg(not(feature = "guard"))]
fn mark_passages(passages: &[(&str, &str)]) -> (String, String) {
    // A boundary the documents cannot guess, so they cannot close the block themselves.
    let boundary = format!("{:016x}", {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(passages.len());
        h.finish()
    });
    let note = format!(
        "Sources are wrapped in <source id=... boundary={boundary}> ... </source {boundary}> blocks."
    );
    let mut out = String::new();
    for (id, text) in passages {
        out.push_str(&format!(
            "<source id=\"{}\" boundary={boundary}>\n{}\n</source {boundary}>\n",
            id.replace(&boundary, ""),
            text.replace(&boundary, "")
        ));
    }
    (note, out)
}
