//! Layers and the pipeline builder.
//!
//! A [`Layer`] wraps an `Arc<dyn ChatModel>` in another `ChatModel`. A [`Pipeline`] stacks layers
//! around a model; the **first layer added is the outermost**, exactly like tower's
//! `ServiceBuilder`, so the builder reads in the order a request travels:
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use llmkit_core::{layer_fn, ChatModel, ChatRequest, Pipeline, ScriptedModel};
//!
//! let provider = Arc::new(ScriptedModel::builder().reply("ok").build());
//! let model: Arc<dyn ChatModel> = Pipeline::builder()
//!     // outermost: sees the request first and the response last
//!     .layer(layer_fn("tag", |mut req| { req.meta.tags.insert("via".into(), "pipeline".into()); req }))
//!     .build(provider.clone());
//! let resp = model.chat(ChatRequest::user("hi")).await?;
//! assert_eq!(resp.text(), "ok");
//! assert!(resp.request_id.is_some(), "the pipeline assigns a request id");
//! assert_eq!(provider.requests()[0].meta.tags["via"], "pipeline");
//! # Ok::<(), llmkit_core::Error>(()) }).unwrap();
//! ```
//!
//! The recommended order for the layers llmkit ships (outermost first) is
//! Trace → Deadline → InputGuard → Cache → Budget → Router/Fallback → Retry → Breaker → Limit →
//! Timeout → provider; `docs/architecture.md` explains why.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use crate::error::Result;
use crate::model::{ChatModel, ChatStream, ModelInfo};
use crate::request::ChatRequest;
use crate::response::ChatResponse;

/// Wraps a model in another model.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a llmkit `Layer`",
    note = "a layer turns an `Arc<dyn ChatModel>` into another `Arc<dyn ChatModel>`"
)]
pub trait Layer: Send + Sync {
    /// Returns `inner` wrapped by this layer.
    fn layer(&self, inner: Arc<dyn ChatModel>) -> Arc<dyn ChatModel>;
}

impl<L: Layer + ?Sized> Layer for Arc<L> {
    fn layer(&self, inner: Arc<dyn ChatModel>) -> Arc<dyn ChatModel> {
        (**self).layer(inner)
    }
}

/// Builds a stack of layers around a model. See the [module docs](self) for ordering.
#[must_use]
#[derive(Default, Clone)]
pub struct Pipeline {
    layers: Vec<Arc<dyn Layer>>,
    assign_request_ids: bool,
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("layers", &self.layers.len())
            .finish()
    }
}

impl Pipeline {
    /// An empty pipeline that assigns request ids (default: on).
    pub fn builder() -> Self {
        Pipeline {
            layers: Vec::new(),
            assign_request_ids: true,
        }
    }

    /// Adds a layer inside the ones added before it.
    pub fn layer(mut self, layer: impl Layer + 'static) -> Self {
        self.layers.push(Arc::new(layer));
        self
    }

    /// Adds a layer only when `layer` is `Some` (handy for configuration-driven stacks).
    pub fn option_layer(self, layer: Option<impl Layer + 'static>) -> Self {
        match layer {
            Some(l) => self.layer(l),
            None => self,
        }
    }

    /// Whether the pipeline stamps a request id and an idempotency key on requests that have
    /// none, and copies request id and prompt reference onto responses. Default: `true`.
    pub fn assign_request_ids(mut self, on: bool) -> Self {
        self.assign_request_ids = on;
        self
    }

    /// Wraps `model` in the layers and returns the stack.
    pub fn build(&self, model: Arc<dyn ChatModel>) -> Arc<dyn ChatModel> {
        let mut current = model;
        for layer in self.layers.iter().rev() {
            current = layer.layer(current);
        }
        if self.assign_request_ids {
            current = Arc::new(Stamp { inner: current });
        }
        current
    }
}

/// A process-unique request id: a random per-process prefix and a counter. Cheap (no syscall,
/// no allocation beyond the string) and unique enough to join logs and traces.
pub fn new_request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static PREFIX: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let prefix = *PREFIX.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        h.write_u32(std::process::id());
        h.finish()
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // Hand-rolled `format!("req_{:08x}{n:08x}")`: the formatting machinery was a third of the
    // pipeline's own cost per call.
    let mut id = String::with_capacity(4 + 8 + 16);
    id.push_str("req_");
    push_hex(&mut id, u64::from(prefix as u32), 8);
    push_hex(&mut id, n, 8);
    id
}

/// Appends `value` in lower-case hex, zero-padded to at least `min_digits`.
fn push_hex(out: &mut String, value: u64, min_digits: u32) {
    let digits = (64 - value.leading_zeros()).div_ceil(4).max(min_digits);
    for i in (0..digits).rev() {
        let nibble = (value >> (i * 4)) & 0xf;
        out.push(char::from_digit(nibble as u32, 16).unwrap_or('0'));
    }
}

/// Outermost wrapper added by [`Pipeline::build`]: assigns request ids and stamps the request id
/// and prompt reference on responses and errors, so every layer below can rely on them.
struct Stamp {
    inner: Arc<dyn ChatModel>,
}

impl Stamp {
    fn prepare(mut request: ChatRequest) -> ChatRequest {
        if request.meta.request_id.is_none() {
            request.meta.request_id = Some(new_request_id());
        }
        // One idempotency key per logical call, generated here (the top of the stack) so its
        // retries and fallback links, which clone the request below, all carry the same one.
        // 128 random bits: unlike request ids it must not collide across processes.
        if request.meta.idempotency_key.is_none() {
            let mut key = String::with_capacity(5 + 32);
            key.push_str("idem_");
            push_hex(&mut key, fastrand::u64(..), 16);
            push_hex(&mut key, fastrand::u64(..), 16);
            request.meta.idempotency_key = Some(key);
        }
        request
    }
}

#[async_trait]
impl ChatModel for Stamp {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    fn candidates(&self) -> Vec<crate::model::Candidate> {
        self.inner.candidates()
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let request = Self::prepare(request);
        let request_id = request.meta.request_id.clone();
        let prompt = request.meta.prompt.clone();
        match self.inner.chat(request).await {
            Ok(mut resp) => {
                if resp.request_id.is_none() {
                    resp.request_id = request_id;
                }
                if resp.prompt.is_none() {
                    resp.prompt = prompt;
                }
                Ok(resp)
            }
            Err(mut e) => {
                if e.request_id().is_none() {
                    if let Some(id) = request_id {
                        e = e.with_request_id(id);
                    }
                }
                if e.prompt().is_none() {
                    if let Some(p) = prompt {
                        e = e.with_prompt(p);
                    }
                }
                Err(e)
            }
        }
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream> {
        self.inner.stream(Self::prepare(request)).await
    }
}

/// A layer that rewrites each request with a function; see [`layer_fn`].
pub struct MapRequestLayer<F> {
    name: &'static str,
    f: Arc<F>,
}

/// A layer from a closure over the request: the simplest custom layer (tagging, defaults,
/// redaction). `name` shows up in the response trail.
pub fn layer_fn<F>(name: &'static str, f: F) -> MapRequestLayer<F>
where
    F: Fn(ChatRequest) -> ChatRequest + Send + Sync + 'static,
{
    MapRequestLayer {
        name,
        f: Arc::new(f),
    }
}

impl<F> Layer for MapRequestLayer<F>
where
    F: Fn(ChatRequest) -> ChatRequest + Send + Sync + 'static,
{
    fn layer(&self, inner: Arc<dyn ChatModel>) -> Arc<dyn ChatModel> {
        Arc::new(MapRequest {
            name: self.name,
            f: self.f.clone(),
            inner,
        })
    }
}

struct MapRequest<F> {
    name: &'static str,
    f: Arc<F>,
    inner: Arc<dyn ChatModel>,
}

#[async_trait]
impl<F> ChatModel for MapRequest<F>
where
    F: Fn(ChatRequest) -> ChatRequest + Send + Sync + 'static,
{
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    fn candidates(&self) -> Vec<crate::model::Candidate> {
        self.inner.candidates()
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let mut resp = self.inner.chat((self.f)(request)).await?;
        resp.trail.push(self.name, "mapped_request", "");
        Ok(resp)
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream> {
        self.inner.stream((self.f)(request)).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn push_hex_matches_format() {
        let cases = [
            (0u64, 8u32),
            (0xab, 8),
            (u64::from(u32::MAX), 8),
            (1 << 40, 8),
            (u64::MAX, 8),
            (5, 0),
        ];
        for (v, min) in cases {
            let mut s = String::new();
            super::push_hex(&mut s, v, min);
            assert_eq!(s, format!("{v:0width$x}", width = min as usize));
        }
        let (a, b) = (super::new_request_id(), super::new_request_id());
        assert!(a.starts_with("req_") && a.len() == 20, "{a}");
        assert_ne!(a, b);
    }
}
