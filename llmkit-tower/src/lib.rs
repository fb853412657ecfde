//! # llmkit-tower
//!
//! tower interop, both ways, so a team that already builds on tower keeps its middleware:
//!
//! - [`ModelService`] serves any `Arc<dyn ChatModel>` (a provider or a whole llmkit stack) as a
//!   [`tower_service::Service<ChatRequest>`] answering with a [`ChatResponse`] ([`CallService`]
//!   is the same as a `Service<ModelCall>`, which also carries streaming calls). Wrap it with `tower::ServiceBuilder`,
//!   tower's concurrency limit, rate limit, load shedding, buffer, timeout or any tower-based
//!   middleware.
//! - [`TowerLayer`] is an llmkit [`Layer`] made from any tower `Layer`, so tower middleware sits
//!   inside an llmkit [`Pipeline`](llmkit_core::Pipeline) like llmkit's own layers.
//!
//! Errors stay llmkit errors: an [`llmkit_core::Error`] passes through tower middleware (also
//! through `Buffer`, which boxes it) and comes out with its kind, retry-after and attempts; tower's
//! own refusals are classified by [`error_from_tower`] (load shedding → `LimitExceeded`, tower's
//! timeout → `Timeout`, anything else → `Other`, which is never retried).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use llmkit_core::{ChatModel, ChatRequest, Pipeline, ScriptedModel};
//! use llmkit_tower::{ModelService, TowerLayer};
//! use tower::limit::ConcurrencyLimitLayer;
//! use tower::{Service, ServiceExt};
//!
//! // A tower layer inside an llmkit pipeline: at most 4 calls reach the provider at once.
//! let provider = Arc::new(ScriptedModel::always("ok"));
//! let model: Arc<dyn ChatModel> = Pipeline::builder()
//!     .layer(TowerLayer::new(ConcurrencyLimitLayer::new(4)))
//!     .build(provider);
//! assert_eq!(model.chat(ChatRequest::user("hi")).await?.text(), "ok");
//!
//! // The same stack served as a tower Service.
//! let mut service = ModelService::new(model);
//! let reply = service.ready().await?.call(ChatRequest::user("hi")).await?;
//! assert_eq!(reply.text(), "ok");
//! # Ok::<(), llmkit_core::Error>(()) }).unwrap();
//! ```

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use futures::future::BoxFuture;
use llmkit_core::{
    Candidate, ChatModel, ChatRequest, ChatResponse, ChatStream, Error, ErrorKind, Layer,
    ModelInfo, Result,
};
use tower_service::Service;

/// The boxed error tower middleware such as `Buffer` and `LoadShed` answers with.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// One call to a model, as a tower request: a whole answer or a stream.
///
/// [`TowerLayer`] sends both kinds through one tower service, so a concurrency limit or rate
/// limit counts chat and streaming calls together.
#[derive(Debug)]
#[non_exhaustive]
pub enum ModelCall {
    /// [`ChatModel::chat`].
    Chat(ChatRequest),
    /// [`ChatModel::stream`].
    Stream(ChatRequest),
}

/// The answer to a [`ModelCall`], of the same kind as the call.
#[non_exhaustive]
pub enum ModelReply {
    /// The answer to [`ModelCall::Chat`] (boxed: a response is large, a stream handle small).
    Chat(Box<ChatResponse>),
    /// The answer to [`ModelCall::Stream`]. Middleware sees the call end when the stream is
    /// returned, not when it is drained: a concurrency permit is released at that point.
    Stream(ChatStream),
}

impl fmt::Debug for ModelReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelReply::Chat(response) => f.debug_tuple("Chat").field(response).finish(),
            ModelReply::Stream(_) => f.write_str("Stream(..)"),
        }
    }
}

/// Any llmkit model as a tower service. Always ready (readiness belongs to the middleware
/// around it); cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct ModelService {
    model: Arc<dyn ChatModel>,
}

impl fmt::Debug for ModelService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelService")
            .field("model", self.model.info())
            .finish()
    }
}

impl ModelService {
    /// Serves `model`.
    pub fn new(model: Arc<dyn ChatModel>) -> Self {
        ModelService { model }
    }

    /// The model this service calls.
    pub fn model(&self) -> &Arc<dyn ChatModel> {
        &self.model
    }
}

impl Service<ChatRequest> for ModelService {
    type Response = ChatResponse;
    type Error = Error;
    type Future = ResponseFuture<ChatResponse>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: ChatRequest) -> Self::Future {
        let model = self.model.clone();
        ResponseFuture(Box::pin(async move { model.chat(request).await }))
    }
}

/// A model as a tower service of [`ModelCall`]s (chat and streaming through one service): the
/// service [`TowerLayer`] puts tower middleware around. Always ready; cheap to clone.
#[derive(Clone)]
pub struct CallService {
    model: Arc<dyn ChatModel>,
}

impl fmt::Debug for CallService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallService")
            .field("model", self.model.info())
            .finish()
    }
}

impl CallService {
    /// Serves `model`.
    pub fn new(model: Arc<dyn ChatModel>) -> Self {
        CallService { model }
    }
}

impl Service<ModelCall> for CallService {
    type Response = ModelReply;
    type Error = Error;
    type Future = ResponseFuture<ModelReply>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: ModelCall) -> Self::Future {
        let model = self.model.clone();
        ResponseFuture(Box::pin(async move {
            match call {
                ModelCall::Chat(request) => model
                    .chat(request)
                    .await
                    .map(|r| ModelReply::Chat(Box::new(r))),
                ModelCall::Stream(request) => model.stream(request).await.map(ModelReply::Stream),
            }
        }))
    }
}

/// The future of a [`ModelService`] or [`CallService`] call: a named type rather than a bare
/// boxed future, so tower middleware futures built on it stay provably `Send` when spawned.
pub struct ResponseFuture<T>(BoxFuture<'static, Result<T>>);

impl<T> fmt::Debug for ResponseFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}

impl<T> std::future::Future for ResponseFuture<T> {
    type Output = Result<T>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        self.0.as_mut().poll(cx)
    }
}

/// An llmkit [`Layer`] made of a tower layer: the tower middleware wraps the inner model, seen
/// as a [`CallService`], and the result is a [`ChatModel`] again.
///
/// The wrapped service is driven through an async mutex held only for `poll_ready` + `call`
/// (never while the call runs), so tower services that are not `Clone` (`RateLimit`) work, and
/// readiness is awaited in arrival order. Layers that spawn a worker (`Buffer`) must be built
/// inside a tokio runtime, as tower requires.
#[derive(Clone)]
pub struct TowerLayer<L> {
    layer: L,
}

impl<L> fmt::Debug for TowerLayer<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TowerLayer")
            .field("layer", &std::any::type_name::<L>())
            .finish()
    }
}

impl<L> TowerLayer<L> {
    /// Adapts `layer`.
    pub fn new(layer: L) -> Self {
        TowerLayer { layer }
    }
}

impl<L> Layer for TowerLayer<L>
where
    L: tower_layer::Layer<CallService> + Send + Sync,
    L::Service: Service<ModelCall, Response = ModelReply> + Send + 'static,
    <L::Service as Service<ModelCall>>::Error: Into<BoxError>,
    <L::Service as Service<ModelCall>>::Future: Send + 'static,
{
    fn layer(&self, inner: Arc<dyn ChatModel>) -> Arc<dyn ChatModel> {
        let info = inner.info().clone();
        // Budgets price what the inner model may call, which tower middleware cannot change.
        let candidates = inner.candidates();
        let service = self.layer.layer(CallService::new(inner));
        Arc::new(TowerModel {
            info,
            candidates,
            service: tokio::sync::Mutex::new(service),
        })
    }
}

/// A tower service of [`ModelCall`]s seen as a [`ChatModel`]; what [`TowerLayer`] builds.
pub struct TowerModel<S> {
    info: ModelInfo,
    candidates: Vec<Candidate>,
    service: tokio::sync::Mutex<S>,
}

impl<S> fmt::Debug for TowerModel<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TowerModel")
            .field("info", &self.info)
            .field("service", &std::any::type_name::<S>())
            .finish()
    }
}

impl<S> TowerModel<S>
where
    S: Service<ModelCall, Response = ModelReply> + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    /// A model that answers through `service`, reporting `info` as its identity (the inner
    /// model's, so pricing and tracing see the model that really answers).
    pub fn new(info: ModelInfo, service: S) -> Self {
        TowerModel {
            candidates: vec![Candidate::single(info.clone())],
            info,
            service: tokio::sync::Mutex::new(service),
        }
    }

    async fn call(&self, call: ModelCall) -> Result<ModelReply> {
        let response = {
            let mut service = self.service.lock().await;
            futures::future::poll_fn(|cx| service.poll_ready(cx))
                .await
                .map_err(|e| error_from_tower(e.into()))?;
            service.call(call)
        };
        response.await.map_err(|e| error_from_tower(e.into()))
    }
}

#[async_trait]
impl<S> ChatModel for TowerModel<S>
where
    S: Service<ModelCall, Response = ModelReply> + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn candidates(&self) -> Vec<Candidate> {
        self.candidates.clone()
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        match self.call(ModelCall::Chat(request)).await? {
            ModelReply::Chat(response) => Ok(*response),
            ModelReply::Stream(_) => Err(mismatched_reply("a chat call", "a stream")),
        }
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream> {
        match self.call(ModelCall::Stream(request)).await? {
            ModelReply::Stream(stream) => Ok(stream),
            ModelReply::Chat(_) => Err(mismatched_reply("a stream call", "a whole response")),
        }
    }
}

fn mismatched_reply(call: &str, reply: &str) -> Error {
    Error::new(
        ErrorKind::Other,
        format!("tower middleware answered {call} with {reply}"),
    )
}

/// Classifies an error that came out of tower middleware.
///
/// Walks the source chain, so an llmkit error boxed by `Buffer` (which wraps it) is returned
/// unchanged with its kind, retry-after and attempts. tower's load shedding
/// (`tower::load_shed::error::Overloaded`) means this process refused the call without
/// waiting: `LimitExceeded`, like llmkit's own limit layer. tower's timeout
/// (`tower::timeout::error::Elapsed`) is `Timeout`. Anything else is `Other` (never retried)
/// with the middleware's message.
pub fn error_from_tower(error: BoxError) -> Error {
    let error = match error.downcast::<Error>() {
        Ok(error) => return *error,
        Err(error) => error,
    };
    let mut current: Option<&(dyn StdError + 'static)> = Some(error.as_ref());
    while let Some(e) = current {
        if let Some(llmkit) = e.downcast_ref::<Error>() {
            return llmkit.clone();
        }
        if e.is::<tower::load_shed::error::Overloaded>() {
            return Error::new(
                ErrorKind::LimitExceeded,
                "load shed: the service was not ready for another call",
            );
        }
        if e.is::<tower::timeout::error::Elapsed>() {
            return Error::new(ErrorKind::Timeout, "tower timeout elapsed");
        }
        current = e.source();
    }
    Error::new(
        ErrorKind::Other,
        format!("tower middleware failed: {error}"),
    )
}
