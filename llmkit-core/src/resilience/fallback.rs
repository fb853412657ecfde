//! [`FallbackLayer`] / [`Fallback`]: an ordered chain of targets, then a cached answer, then a
//! static safe default.
//!
//! Each target is a complete stack (its own retry, breaker, limit and timeout), because each
//! provider fails in its own way. [`FallThrough`] decides which errors move on to the next link;
//! the others return at once (a malformed request fails the same way everywhere, and trying it
//! on every provider only multiplies cost and latency).

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use tracing::Instrument as _;

use super::{deadline_error, first_content, remaining};
use crate::error::{Error, ErrorKind, Result};
use crate::layer::Layer;
use crate::message::Message;
use crate::model::{ChatModel, ChatStream, ModelInfo, response_to_events};
use crate::request::ChatRequest;
use crate::response::{ChatResponse, FinishReason};
use crate::telemetry::semconv;

type ErrorPredicate = Arc<dyn Fn(&Error) -> bool + Send + Sync>;

/// Which errors let the chain move on to the next link.
///
/// Default: the retryable kinds (`RateLimited`, `Overloaded`, `Timeout`, `Transport`, `Server`)
/// plus `CircuitOpen`, `QuotaExhausted` and `LimitExceeded` — all say "this target cannot serve
/// now", and another may. Everything else stops the chain: `InvalidRequest`, `Auth`,
/// `ContextLength`, `ContentFiltered`, `NotFound`, `GuardBlocked`, `BudgetExceeded`, `Config`,
/// ... are properties of the request or of our configuration, not of one provider's health.
///
/// ```
/// use llmkit_core::{Error, ErrorKind};
/// use llmkit_core::resilience::FallThrough;
/// let rule = FallThrough::default().also(ErrorKind::ContextLength);
/// assert!(rule.falls_through(&Error::new(ErrorKind::ContextLength, "too long")));
/// assert!(!rule.falls_through(&Error::new(ErrorKind::Auth, "bad key")));
/// ```
#[must_use]
#[derive(Clone)]
pub struct FallThrough {
    kinds: Vec<ErrorKind>,
    predicate: Option<ErrorPredicate>,
}

impl fmt::Debug for FallThrough {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallThrough")
            .field("kinds", &self.kinds)
            .field("custom", &self.predicate.is_some())
            .finish()
    }
}

impl Default for FallThrough {
    fn default() -> Self {
        FallThrough::kinds([
            ErrorKind::RateLimited,
            ErrorKind::Overloaded,
            ErrorKind::Timeout,
            ErrorKind::Transport,
            ErrorKind::Server,
            ErrorKind::CircuitOpen,
            ErrorKind::QuotaExhausted,
            ErrorKind::LimitExceeded,
        ])
    }
}

impl FallThrough {
    /// Exactly these kinds fall through.
    pub fn kinds(kinds: impl IntoIterator<Item = ErrorKind>) -> Self {
        FallThrough {
            kinds: kinds.into_iter().collect(),
            predicate: None,
        }
    }

    /// Every error falls through (a chain of "anything is better than nothing").
    pub fn always() -> Self {
        FallThrough::custom(|_| true)
    }

    /// A custom rule over the whole error.
    pub fn custom(rule: impl Fn(&Error) -> bool + Send + Sync + 'static) -> Self {
        FallThrough {
            kinds: Vec::new(),
            predicate: Some(Arc::new(rule)),
        }
    }

    /// Adds a kind.
    pub fn also(mut self, kind: ErrorKind) -> Self {
        if !self.kinds.contains(&kind) {
            self.kinds.push(kind);
        }
        self
    }

    /// Removes a kind.
    pub fn except(mut self, kind: ErrorKind) -> Self {
        self.kinds.retain(|k| *k != kind);
        self
    }

    /// Whether `error` moves the chain on.
    pub fn falls_through(&self, error: &Error) -> bool {
        self.kinds.contains(&error.kind()) || self.predicate.as_ref().is_some_and(|p| p(error))
    }
}

/// A terminal link that looks up a stored answer (for example the last good answer for this
/// question); `None` moves on.
pub type CachedAnswer =
    Arc<dyn Fn(ChatRequest) -> BoxFuture<'static, Option<ChatResponse>> + Send + Sync>;

/// Builds a fallback chain. As a [`Layer`], the model it wraps is the first link; the targets
/// added with [`then`](Self::then) follow in order, then the cached answer, then the static
/// default.
///
/// The answering response's trail gets one `fallback/skipped` note per earlier link (with its
/// error) and one `fallback/answered` note naming the link. Each link runs in a
/// `llmkit.fallback` span (`link`, provider, model).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use llmkit_core::resilience::FallbackLayer;
/// use llmkit_core::{ChatModel, ChatRequest, Layer, Reply, ScriptedModel};
///
/// let primary = Arc::new(ScriptedModel::builder().provider("openai").reply(Reply::server_error(503)).build());
/// let backup = Arc::new(ScriptedModel::builder().provider("anthropic").reply("from the backup").build());
/// let model = FallbackLayer::new().then(backup).static_default("Sorry, try again later.").layer(primary);
/// let resp = model.chat(ChatRequest::user("hi")).await?;
/// assert_eq!(resp.text(), "from the backup");
/// assert!(resp.trail.has("fallback", "skipped"));
/// # Ok::<(), llmkit_core::Error>(()) }).unwrap();
/// ```
#[must_use]
#[derive(Clone, Default)]
pub struct FallbackLayer {
    targets: Vec<Arc<dyn ChatModel>>,
    cached: Option<CachedAnswer>,
    static_default: Option<ChatResponse>,
    rule: FallThrough,
}

impl fmt::Debug for FallbackLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackLayer")
            .field(
                "targets",
                &self
                    .targets
                    .iter()
                    .map(|t| t.info().model.clone())
                    .collect::<Vec<_>>(),
            )
            .field("cached", &self.cached.is_some())
            .field("static_default", &self.static_default.is_some())
            .field("rule", &self.rule)
            .finish()
    }
}

impl FallbackLayer {
    /// An empty chain: no extra targets, no cached answer, no static default, the default
    /// [`FallThrough`] rule.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a target (a complete stack of its own).
    pub fn then(mut self, target: Arc<dyn ChatModel>) -> Self {
        self.targets.push(target);
        self
    }

    /// After every target failed, asks `lookup` for a stored answer (default: none).
    pub fn cached_answer<F, Fut>(mut self, lookup: F) -> Self
    where
        F: Fn(ChatRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<ChatResponse>> + Send + 'static,
    {
        self.cached = Some(Arc::new(move |req| Box::pin(lookup(req))));
        self
    }

    /// Last resort: answer with this fixed text (provider `llmkit`, model `static-default`).
    /// Default: none, so the last error is returned.
    pub fn static_default(self, text: impl Into<String>) -> Self {
        self.static_response(ChatResponse {
            message: Message::assistant(text),
            finish_reason: FinishReason::Stop,
            model: "static-default".into(),
            provider: "llmkit".into(),
            ..Default::default()
        })
    }

    /// Last resort: answer with this fixed response.
    pub fn static_response(mut self, response: ChatResponse) -> Self {
        self.static_default = Some(response);
        self
    }

    /// Which errors fall through (default [`FallThrough::default`]).
    pub fn fall_through(mut self, rule: FallThrough) -> Self {
        self.rule = rule;
        self
    }

    /// Builds a chain of only the targets added with [`then`](Self::then).
    pub fn build(&self) -> Result<Arc<Fallback>> {
        if self.targets.is_empty() {
            return Err(Error::config(
                "fallback chain has no targets: add one with .then()",
            ));
        }
        Ok(Arc::new(self.chain(self.targets.clone())))
    }

    fn chain(&self, links: Vec<Arc<dyn ChatModel>>) -> Fallback {
        Fallback {
            links,
            cached: self.cached.clone(),
            static_default: self.static_default.clone(),
            rule: self.rule.clone(),
        }
    }
}

impl Layer for FallbackLayer {
    fn layer(&self, inner: Arc<dyn ChatModel>) -> Arc<dyn ChatModel> {
        let mut links = vec![inner];
        links.extend(self.targets.iter().cloned());
        Arc::new(self.chain(links))
    }
}

/// The fallback chain as a model; built by [`FallbackLayer`].
pub struct Fallback {
    links: Vec<Arc<dyn ChatModel>>,
    cached: Option<CachedAnswer>,
    static_default: Option<ChatResponse>,
    rule: FallThrough,
}

impl fmt::Debug for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fallback")
            .field(
                "links",
                &self
                    .links
                    .iter()
                    .map(|l| l.info().clone())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// The errors of every request the failed links sent, oldest first.
fn sent_errors(failed: &[(usize, Error)]) -> Vec<Error> {
    failed.iter().flat_map(|(_, e)| e.sent_errors()).collect()
}

fn label(index: usize, info: &ModelInfo) -> String {
    format!("link {index} {}/{}", info.provider, info.model)
}

/// Why the chain stopped walking the links.
enum Walk<T> {
    Answered(T, usize, Vec<(usize, Error)>),
    Stopped(Error),
    Exhausted(Vec<(usize, Error)>),
}

impl Fallback {
    /// The links, in order.
    pub fn links(&self) -> &[Arc<dyn ChatModel>] {
        &self.links
    }

    /// Calls the links in order until one answers. Returns the request back when a terminal
    /// answer may still need it (the cached-answer lookup).
    async fn walk<T, F, Fut>(&self, request: ChatRequest, call: F) -> (Walk<T>, Option<ChatRequest>)
    where
        F: Fn(Arc<dyn ChatModel>, ChatRequest) -> Fut + Send + Sync,
        Fut: Future<Output = Result<T>> + Send,
        T: Send,
    {
        let mut failed: Vec<(usize, Error)> = Vec::new();
        let last = self.links.len().saturating_sub(1);
        let mut request = Some(request);
        for (index, link) in self.links.iter().enumerate() {
            let info = link.info();
            let Some(req) = request.as_ref() else {
                break;
            };
            if remaining(&req.meta).is_some_and(|left| left.is_zero()) {
                failed.push((
                    index,
                    deadline_error(info, &format!("before fallback {}", label(index, info))),
                ));
                break;
            }
            // The last link gets the request itself unless the cached-answer lookup may still
            // need it: one copy of every message fewer per call (issue 23).
            let this = if index == last && self.cached.is_none() {
                request.take()
            } else {
                request.clone()
            };
            let Some(this) = this else {
                break;
            };
            let span = tracing::info_span!(
                "llmkit.fallback",
                link = index,
                gen_ai.provider.name = %info.provider,
                gen_ai.request.model = %info.model,
            );
            match call(link.clone(), this).instrument(span).await {
                Ok(value) => return (Walk::Answered(value, index, failed), None),
                Err(e) if self.rule.falls_through(&e) => {
                    tracing::warn!(
                        link = index,
                        gen_ai.provider.name = %info.provider,
                        gen_ai.request.model = %info.model,
                        error.type = e.kind().as_str(),
                        "llmkit fallback: link failed, moving on"
                    );
                    failed.push((index, e));
                }
                Err(e) => {
                    if failed.is_empty() {
                        return (Walk::Stopped(e), None);
                    }
                    let mut attempts = sent_errors(&failed);
                    attempts.extend(e.sent_errors());
                    return (Walk::Stopped(e.with_attempts(attempts)), None);
                }
            }
        }
        (Walk::Exhausted(failed), request)
    }

    async fn terminal(&self, request: Option<ChatRequest>) -> Option<(ChatResponse, &'static str)> {
        if let Some(lookup) = &self.cached
            && let Some(request) = request
            && let Some(resp) = lookup(request).await
        {
            return Some((resp, semconv::FALLBACK_CACHED_ANSWER));
        }
        self.static_default
            .clone()
            .map(|r| (r, semconv::FALLBACK_STATIC_DEFAULT))
    }

    fn exhausted(&self, failed: Vec<(usize, Error)>) -> Error {
        let attempts = sent_errors(&failed);
        match failed.into_iter().last() {
            Some((_, last)) => last.with_attempts(attempts),
            None => Error::config("fallback chain has no links"),
        }
    }

    /// One `fallback/skipped` note per failed link and one `fallback/attempt_failed` note per
    /// request it sent, so the trace counts every request of the logical call.
    fn skipped_notes(&self, resp: &mut ChatResponse, failed: &[(usize, Error)]) {
        for (index, error) in failed {
            if let Some(link) = self.links.get(*index) {
                let label = label(*index, link.info());
                for sent in error.sent_errors() {
                    resp.trail
                        .push("fallback", "attempt_failed", format!("{label}: {sent}"));
                }
                resp.trail
                    .push("fallback", "skipped", format!("{label}: {error}"));
            }
        }
    }
}

#[async_trait]
impl ChatModel for Fallback {
    fn info(&self) -> &ModelInfo {
        // `links` is never empty: the layer always adds the wrapped model, `build` checks.
        match self.links.first() {
            Some(l) => l.info(),
            None => &FALLBACK_INFO,
        }
    }

    /// Every link's candidates: any link may answer. The cached answer and the static default
    /// cost nothing, so they add none.
    fn candidates(&self) -> Vec<crate::model::Candidate> {
        self.links.iter().flat_map(|l| l.candidates()).collect()
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let (walk, request) = self
            .walk(request, |link, req| async move { link.chat(req).await })
            .await;
        match walk {
            Walk::Answered(mut resp, index, failed) => {
                self.skipped_notes(&mut resp, &failed);
                if let Some(link) = self.links.get(index) {
                    resp.trail
                        .push("fallback", "answered", label(index, link.info()));
                }
                Ok(resp)
            }
            Walk::Stopped(e) => Err(e),
            Walk::Exhausted(failed) => match self.terminal(request).await {
                Some((mut resp, which)) => {
                    self.skipped_notes(&mut resp, &failed);
                    resp.trail.push("fallback", "answered", which);
                    tracing::warn!("llmkit fallback: every link failed, answered with the {which}");
                    Ok(resp)
                }
                None => Err(self.exhausted(failed)),
            },
        }
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream> {
        let (walk, request) = self
            .walk(request, |link, req| async move {
                first_content(link.stream(req).await?).await
            })
            .await;
        match walk {
            Walk::Answered(stream, _, _) => Ok(stream),
            Walk::Stopped(e) => Err(e),
            Walk::Exhausted(failed) => match self.terminal(request).await {
                Some((resp, _)) => Ok(Box::pin(futures::stream::iter(
                    response_to_events(&resp).into_iter().map(Ok),
                ))),
                None => Err(self.exhausted(failed)),
            },
        }
    }
}

static FALLBACK_INFO: std::sync::LazyLock<ModelInfo> =
    std::sync::LazyLock::new(|| ModelInfo::new("llmkit", "fallback"));
