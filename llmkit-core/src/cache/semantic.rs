//! Semantic cache: opt-in nearest-neighbour reuse of answers to *similar* requests.
//!
//! Dangerous by nature: "turn the alarm on" and "turn the alarm off" embed close together. So it
//! is opt-in per request (tag `semantic_cache=on`), scoped by provider, model, prompt version and
//! system instructions, uses a high similarity threshold, and ships [`NEGATION_PAIRS`] with
//! [`false_hit_rate`] so you can measure your embedder at your threshold before enabling it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::layer::Layer;
use crate::message::Role;
use crate::model::{ChatModel, EmbeddingModel, ModelInfo};
use crate::request::ChatRequest;
use crate::response::{ChatResponse, EmbeddingRequest};

/// Pairs of requests that look alike but must never share an answer. A semantic cache that
/// serves one for the other is broken at that threshold.
pub const NEGATION_PAIRS: &[(&str, &str)] = &[
    ("turn the alarm on", "turn the alarm off"),
    (
        "is the store open on sunday",
        "is the store closed on sunday",
    ),
    ("cancel my order", "do not cancel my order"),
    ("approve the refund", "reject the refund"),
    ("increase the volume", "decrease the volume"),
    ("lock the front door", "unlock the front door"),
    (
        "enable two factor authentication",
        "disable two factor authentication",
    ),
    (
        "add milk to the shopping list",
        "remove milk from the shopping list",
    ),
    (
        "is this medication safe during pregnancy",
        "is this medication unsafe during pregnancy",
    ),
    ("book a flight to paris", "cancel my flight to paris"),
    ("what is the maximum dose", "what is the minimum dose"),
    (
        "subscribe me to the newsletter",
        "unsubscribe me from the newsletter",
    ),
    ("start the backup now", "stop the backup now"),
    ("show me flights before noon", "show me flights after noon"),
    ("the payment succeeded", "the payment failed"),
    ("should i buy this stock", "should i sell this stock"),
    ("make the text bigger", "make the text smaller"),
    ("allow cookies on this site", "block cookies on this site"),
    ("open the garage", "close the garage"),
    ("turn on dark mode", "turn off dark mode"),
];

/// Share of [`NEGATION_PAIRS`] whose similarity reaches `threshold` (a false hit), for an
/// embedder. Run it before enabling the semantic cache; docs/cost.md reports it for the offline
/// embedder.
pub async fn false_hit_rate(embedder: &dyn EmbeddingModel, threshold: f32) -> Result<f64> {
    let mut inputs = Vec::with_capacity(NEGATION_PAIRS.len() * 2);
    for (a, b) in NEGATION_PAIRS {
        inputs.push((*a).to_owned());
        inputs.push((*b).to_owned());
    }
    let resp = embedder.embed(EmbeddingRequest::new(inputs)).await?;
    let hits = resp
        .embeddings
        .chunks(2)
        .filter(|pair| match pair {
            [a, b] => cosine(a, b) >= threshold,
            _ => false,
        })
        .count();
    Ok(hits as f64 / NEGATION_PAIRS.len() as f64)
}

// Kept at this path for callers of `cache::semantic::cosine`; defined once in `crate::vector`.
pub use crate::vector::cosine;

struct Entry {
    scope: [u8; 32],
    vector: Vec<f32>,
    response: ChatResponse,
}

/// Builds a semantic cache layer. Defaults: threshold 0.97, 1,000 entries (oldest evicted).
#[must_use]
pub struct SemanticCacheLayer {
    embedder: Arc<dyn EmbeddingModel>,
    threshold: f32,
    max_entries: usize,
}

impl std::fmt::Debug for SemanticCacheLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SemanticCacheLayer")
            .field("threshold", &self.threshold)
            .field("max_entries", &self.max_entries)
            .finish_non_exhaustive()
    }
}

impl SemanticCacheLayer {
    /// A semantic cache embedding requests with `embedder`.
    pub fn new(embedder: Arc<dyn EmbeddingModel>) -> Self {
        SemanticCacheLayer {
            embedder,
            threshold: 0.97,
            max_entries: 1000,
        }
    }

    /// Wraps the embedder in `layers` (retry, breaker, timeout, trace, budget: the same
    /// [`Pipeline`](crate::Pipeline) a chat model uses), so the lookups this cache makes are
    /// retried, traced and budgeted like any other call. Fails with
    /// [`ErrorKind::Config`](crate::ErrorKind) when a layer has no embedding form.
    pub fn with_embedding_layers(mut self, layers: &crate::Pipeline) -> Result<Self> {
        self.embedder = layers.build_embedding(self.embedder)?;
        Ok(self)
    }

    /// Minimum cosine similarity for a hit.
    pub fn threshold(mut self, t: f32) -> Self {
        self.threshold = t;
        self
    }

    /// Entries kept (the oldest is evicted first).
    pub fn max_entries(mut self, n: usize) -> Self {
        self.max_entries = n.max(1);
        self
    }
}

impl Layer for SemanticCacheLayer {
    fn layer(&self, inner: Arc<dyn ChatModel>) -> Arc<dyn ChatModel> {
        Arc::new(SemanticCached {
            inner,
            embedder: self.embedder.clone(),
            threshold: self.threshold,
            max_entries: self.max_entries,
            entries: Mutex::new(VecDeque::new()),
        })
    }
}

struct SemanticCached {
    inner: Arc<dyn ChatModel>,
    embedder: Arc<dyn EmbeddingModel>,
    threshold: f32,
    max_entries: usize,
    entries: Mutex<VecDeque<Entry>>,
}

/// Everything but the last user message must match exactly: provider, model, prompt version,
/// system and earlier messages, tools and format.
fn scope_of(info: &ModelInfo, request: &ChatRequest) -> [u8; 32] {
    let mut scoped = request.clone();
    if let Some(pos) = scoped.messages.iter().rposition(|m| m.role == Role::User) {
        scoped.messages.remove(pos);
    }
    let prompt = scoped.meta.prompt.take();
    scoped.meta = Default::default();
    let value = serde_json::json!({
        "provider": info.provider,
        "model": scoped.model.take().unwrap_or_else(|| info.model.clone()),
        "prompt": prompt,
        "rest": scoped,
    });
    let mut text = String::new();
    super::key::canonical_json(&value, &mut text);
    Sha256::digest(text.as_bytes()).into()
}

fn last_user_text(request: &ChatRequest) -> String {
    request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map(|m| m.text())
        .unwrap_or_default()
}

#[async_trait]
impl ChatModel for SemanticCached {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    fn candidates(&self) -> Vec<crate::model::Candidate> {
        self.inner.candidates()
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let opted_in = request
            .meta
            .tags
            .get("semantic_cache")
            .is_some_and(|v| v == "on");
        if !opted_in || request.meta.no_cache {
            return self.inner.chat(request).await;
        }
        let scope = scope_of(self.inner.info(), &request);
        let query = last_user_text(&request);
        let embedded = self.embedder.embed(EmbeddingRequest::new([query])).await?;
        let vector = embedded.embeddings.into_iter().next().unwrap_or_default();
        let best = {
            let entries = crate::sync::lock(&self.entries);
            entries
                .iter()
                .filter(|e| e.scope == scope)
                .map(|e| (cosine(&e.vector, &vector), e))
                .filter(|(s, _)| *s >= self.threshold)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(s, e)| (s, e.response.clone()))
        };
        if let Some((similarity, resp)) = best {
            let extra = format!(" similarity={similarity:.4}");
            return Ok(super::layer::as_hit(resp, &request, "semantic_cache", &extra).0);
        }
        let resp = self.inner.chat(request).await?;
        if resp.finish_reason == crate::response::FinishReason::Stop {
            let mut entries = crate::sync::lock(&self.entries);
            if entries.len() >= self.max_entries {
                entries.pop_front();
            }
            let mut stored = resp.clone();
            stored.trail = Default::default();
            entries.push_back(Entry {
                scope,
                vector,
                response: stored,
            });
        }
        Ok(resp)
    }
}
