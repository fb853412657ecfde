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

use crate::error::{Error, Result};
use crate::model::{ChatModel, ChatStream, EmbeddingModel, ModelInfo};
use crate::request::{ChatRequest, RequestMeta};
use crate::response::{ChatResponse, EmbeddingRequest, EmbeddingResponse};

/// Wraps a model in another model: a chat model always, an embedding model when the layer has an
/// embedding form.
///
/// Implementors must provide [`layer`](Layer::layer). [`layer_embedding`](Layer::layer_embedding)
/// defaults to `None`, meaning "this layer has no embedding form": a layer whose work does not
/// apply to embeddings (a guard reading chat messages, a request rewriter) says so, and
/// [`Pipeline::build_embedding`] refuses the stack with an error naming it instead of silently
/// leaving the layer out. A default that passed the model through would let a budget or a retry
/// vanish from an embedding stack unnoticed, so no layer gets one. llmkit's retry, breaker,
/// timeout, deadline, trace (and its cost), cache and budget layers all have an embedding form.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a llmkit `Layer`",
    note = "a layer turns an `Arc<dyn ChatModel>` into another `Arc<dyn ChatModel>`"
)]
pub trait Layer: Send + Sync {
    /// Returns `inner` wrapped by this layer.
    fn layer(&self, inner: Arc<dyn ChatModel>) -> Arc<dyn ChatModel>;

    /// Returns `inner` wrapped by this layer's embedding form, or `None` when the layer has none
    /// (the default; see the [trait docs](Layer)).
    fn layer_embedding(&self, inner: Arc<dyn EmbeddingModel>) -> Option<Arc<dyn EmbeddingModel>> {
        let _ = inner;
        None
    }

    /// The layer's name in errors (default: its Rust type name).
    fn name(&self) -> &'static str {
        std::any::type_name::<Self>()
    }
}

impl<L: Layer + ?Sized> Layer for Arc<L> {
    fn layer(&self, inner: Arc<dyn ChatModel>) -> Arc<dyn ChatModel> {
        (**self).layer(inner)
    }

    fn layer_embedding(&self, inner: Arc<dyn EmbeddingModel>) -> Option<Arc<dyn EmbeddingModel>> {
        (**self).layer_embedding(inner)
    }

    fn name(&self) -> &'static str {
        (**self).name()
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

    /// Wraps an embedding model in the same layers, in the same order, and returns the stack: one
    /// pipeline definition serves a chat model and the embedding model beside it.
    ///
    /// Fails with [`ErrorKind::Config`](crate::ErrorKind) naming the first layer that has no
    /// embedding form (see [`Layer::layer_embedding`]); a stack is never built with a layer
    /// silently missing.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use llmkit_core::resilience::{RetryLayer, TimeoutLayer};
    /// use llmkit_core::{layer_fn, EmbeddingModel, EmbeddingRequest, ErrorKind, Pipeline, Reply, ScriptedModel};
    ///
    /// let embedder = Arc::new(ScriptedModel::builder().embed_reply(Reply::overloaded()).build());
    /// let stack = Pipeline::builder().layer(RetryLayer::new()).layer(TimeoutLayer::new());
    /// let model = stack.build_embedding(embedder.clone())?;
    /// let resp = model.embed(EmbeddingRequest::new(["refund policy"])).await?;
    /// assert_eq!(resp.embeddings.len(), 1);
    /// assert_eq!(embedder.embed_requests().len(), 2, "the overloaded first attempt was retried");
    /// assert!(resp.request_id.is_some(), "the pipeline assigns a request id");
    ///
    /// // A layer without an embedding form is named, not skipped.
    /// let err = Pipeline::builder().layer(layer_fn("tag", |r| r)).build_embedding(embedder).err().unwrap();
    /// assert_eq!(err.kind(), ErrorKind::Config);
    /// # Ok::<(), llmkit_core::Error>(()) }).unwrap();
    /// ```
    pub fn build_embedding(
        &self,
        model: Arc<dyn EmbeddingModel>,
    ) -> Result<Arc<dyn EmbeddingModel>> {
        let mut current = model;
        for layer in self.layers.iter().rev() {
            current = layer.layer_embedding(current).ok_or_else(|| {
                Error::config(format!(
                    "layer `{}` has no embedding form: build the embedding stack without it",
                    layer.name()
                ))
            })?;
        }
        if self.assign_request_ids {
            current = Arc::new(Stamp { inner: current });
        }
        Ok(current)
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
struct Stamp<M> {
    inner: M,
}

impl Stamp<Arc<dyn ChatModel>> {
    fn prepare(mut request: ChatRequest) -> ChatRequest {
        stamp_meta(&mut request.meta);
        request
    }
}

/// Gives a request without them a request id and an idempotency key.
fn stamp_meta(meta: &mut RequestMeta) {
    if meta.request_id.is_none() {
        meta.request_id = Some(new_request_id());
    }
    // One idempotency key per logical call, generated here (the top of the stack) so its
    // retries and fallback links, which clone the request below, all carry the same one.
    // 128 random bits: unlike request ids it must not collide across processes.
    if meta.idempotency_key.is_none() {
        let mut key = String::with_capacity(5 + 32);
        key.push_str("idem_");
        push_hex(&mut key, fastrand::u64(..), 16);
        push_hex(&mut key, fastrand::u64(..), 16);
        meta.idempotency_key = Some(key);
    }
}

#[async_trait]
impl EmbeddingModel for Stamp<Arc<dyn EmbeddingModel>> {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    fn dimensions(&self) -> Option<usize> {
        self.inner.dimensions()
    }

    async fn embed(&self, mut request: EmbeddingRequest) -> Result<EmbeddingResponse> {
        stamp_meta(&mut request.meta);
        let request_id = request.meta.request_id.clone();
        match self.inner.embed(request).await {
            Ok(mut resp) => {
                if resp.request_id.is_none() {
                    resp.request_id = request_id;
                }
                Ok(resp)
            }
            Err(e) => match request_id {
                Some(id) if e.request_id().is_none() => Err(e.with_request_id(id)),
                _ => Err(e),
            },
        }
    }
}

#[async_trait]
impl ChatModel for Stamp<Arc<dyn ChatModel>> {
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
                if e.request_id().is_none()
                    && let Some(id) = request_id
                {
                    e = e.with_request_id(id);
                }
                if e.prompt().is_none()
                    && let Some(p) = prompt
                {
                    e = e.with_prompt(p);
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
