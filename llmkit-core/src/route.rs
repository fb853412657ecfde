//! Routing by difficulty: send the easy majority to a cheap model, the rest to a strong one.
//!
//! A [`Router`] is a [`ChatModel`] over named routes. Per request it picks a route by, in order:
//! rules (prompt id, tags, input size, tools needed: [`RouteRule`]), then a [`Classifier`] (a
//! small model or a Rust function returning a route), then the default route. With
//! [`RouterBuilder::escalate`], a reply from the cheap route that fails a check (validation, low
//! confidence) is retried on the stronger route. Every decision is noted in the response trail
//! (`router`/`route`, `router`/`escalated`) and a tracing event, and [`RouterStats`] reports
//! traffic share, cost and quality per route.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use llmkit_core::route::{Router, RouteRule};
//! use llmkit_core::{ChatModel, ChatRequest, ScriptedModel};
//!
//! let cheap = Arc::new(ScriptedModel::builder().model("small").fallback("cheap answer").build());
//! let strong = Arc::new(ScriptedModel::builder().model("large").fallback("careful answer").build());
//! let router = Router::builder("support")
//!     .route("cheap", cheap.clone())
//!     .route("strong", strong.clone())
//!     .rule(RouteRule::input_tokens_over(2_000), "strong")
//!     .rule(RouteRule::tag("tier", "enterprise"), "strong")
//!     .default_route("cheap")
//!     .build()?;
//! let reply = router.chat(ChatRequest::user("where is my parcel?")).await?;
//! assert_eq!(reply.text(), "cheap answer");
//! let reply = router.chat(ChatRequest::user("contract question").with_tag("tier", "enterprise")).await?;
//! assert_eq!(reply.text(), "careful answer");
//! assert_eq!(router.stats().routes["cheap"].requests, 1);
//! # Ok::<(), llmkit_core::Error>(()) }).unwrap();
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rust_decimal::Decimal;

use crate::error::{Error, Result};
use crate::model::{Candidate, Capabilities, ChatModel, ChatStream, ModelInfo};
use crate::request::ChatRequest;
use crate::response::ChatResponse;
use crate::tokens::TokenCounter;

type Predicate = Arc<dyn Fn(&ChatRequest) -> bool + Send + Sync>;

/// A condition on a request that sends it to a route.
#[derive(Clone)]
pub struct RouteRule {
    description: String,
    predicate: Predicate,
}

impl std::fmt::Debug for RouteRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

impl RouteRule {
    /// Any predicate, with a description for the trail.
    pub fn when(
        description: impl Into<String>,
        predicate: impl Fn(&ChatRequest) -> bool + Send + Sync + 'static,
    ) -> Self {
        RouteRule {
            description: description.into(),
            predicate: Arc::new(predicate),
        }
    }

    /// Requests rendered from this prompt id.
    pub fn prompt_id(id: impl Into<String>) -> Self {
        let id = id.into();
        Self::when(format!("prompt_id={id}"), move |r| {
            r.meta.prompt.as_ref().is_some_and(|p| p.id == id)
        })
    }

    /// Requests tagged `key=value`.
    pub fn tag(key: impl Into<String>, value: impl Into<String>) -> Self {
        let (key, value) = (key.into(), value.into());
        Self::when(format!("tag {key}={value}"), move |r| {
            r.meta.tags.get(&key).is_some_and(|v| *v == value)
        })
    }

    /// Requests whose input exceeds `tokens`, counted for the request's `model` when it names
    /// one ([`TokenCounter::for_model`]) and with the approximation otherwise: a rule runs before
    /// the route, and so before the target model is known.
    pub fn input_tokens_over(tokens: u64) -> Self {
        Self::when(format!("input_tokens>{tokens}"), move |r| {
            let counter = r
                .model
                .as_deref()
                .map_or_else(TokenCounter::approximate, TokenCounter::for_model);
            counter.count_chat(r) > tokens
        })
    }

    /// Requests that offer tools.
    pub fn needs_tools() -> Self {
        Self::when("needs_tools", |r| !r.tools.is_empty())
    }
}

/// Picks a route for a request when no rule matched: a cheap model asked "easy or hard?", or a
/// Rust function. Returns a route name.
#[async_trait]
pub trait Classifier: Send + Sync {
    /// The route for this request.
    async fn classify(&self, request: &ChatRequest) -> Result<String>;
}

/// A [`Classifier`] from a synchronous function.
pub struct FnClassifier<F>(pub F);

#[async_trait]
impl<F> Classifier for FnClassifier<F>
where
    F: Fn(&ChatRequest) -> String + Send + Sync,
{
    async fn classify(&self, request: &ChatRequest) -> Result<String> {
        Ok((self.0)(request))
    }
}

type Accept = Arc<dyn Fn(&ChatResponse) -> bool + Send + Sync>;

struct Escalation {
    from: String,
    to: String,
    accept: Accept,
}

/// Per-route counters.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RouteStats {
    /// Requests first sent to this route.
    pub requests: u64,
    /// Replies this route gave that were returned to the caller.
    pub answered: u64,
    /// Requests that failed on this route.
    pub errors: u64,
    /// Replies from this route rejected by the escalation check.
    pub escalated_away: u64,
    /// Requests this route received as the target of an escalation (not counted in
    /// `requests`, which counts first routing decisions).
    pub escalated_in: u64,
    /// Spend on this route (calls with a known cost).
    pub cost_usd: Decimal,
    /// Calls whose cost was unknown.
    pub cost_unknown: u64,
    /// Sum and count of quality scores reported with [`Router::record_quality`].
    pub quality_sum: f64,
    /// Number of quality scores.
    pub quality_count: u64,
}

impl RouteStats {
    /// Mean reported quality, when any was reported.
    pub fn mean_quality(&self) -> Option<f64> {
        (self.quality_count > 0).then(|| self.quality_sum / self.quality_count as f64)
    }
}

/// What the router did, per route.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RouterStats {
    /// Counters by route name.
    pub routes: BTreeMap<String, RouteStats>,
}

impl RouterStats {
    /// A plain-text table: route, share of the answers returned to callers (an escalation target
    /// gets the share of the escalations it answered), requests, cost, cost per answer, quality.
    pub fn report(&self) -> String {
        let total: u64 = self.routes.values().map(|r| r.answered).sum();
        let mut out = format!(
            "{:<12} {:>7} {:>9} {:>12} {:>12} {:>8}\n",
            "route", "share", "requests", "cost_usd", "usd/request", "quality"
        );
        for (name, r) in &self.routes {
            let share = if total == 0 {
                0.0
            } else {
                r.answered as f64 / total as f64 * 100.0
            };
            let per = if r.answered == 0 {
                Decimal::ZERO
            } else {
                (r.cost_usd / Decimal::from(r.answered)).round_dp(6)
            };
            let q = r
                .mean_quality()
                .map_or_else(|| "-".to_owned(), |q| format!("{q:.3}"));
            out.push_str(&format!(
                "{name:<12} {share:>6.1}% {:>9} {:>12} {per:>12} {q:>8}\n",
                r.requests,
                r.cost_usd.round_dp(6)
            ));
        }
        out
    }
}

/// Builds a [`Router`]. Nothing is routed until at least one route and a default exist.
#[must_use]
pub struct RouterBuilder {
    name: String,
    routes: Vec<(String, Arc<dyn ChatModel>)>,
    rules: Vec<(RouteRule, String)>,
    classifier: Option<Arc<dyn Classifier>>,
    default_route: Option<String>,
    escalation: Option<Escalation>,
}

impl RouterBuilder {
    /// Adds a named route.
    pub fn route(mut self, name: impl Into<String>, model: Arc<dyn ChatModel>) -> Self {
        self.routes.push((name.into(), model));
        self
    }

    /// Sends requests matching `rule` to `route` (rules are checked in the order added).
    pub fn rule(mut self, rule: RouteRule, route: impl Into<String>) -> Self {
        self.rules.push((rule, route.into()));
        self
    }

    /// Asks `classifier` when no rule matched.
    pub fn classifier(mut self, classifier: Arc<dyn Classifier>) -> Self {
        self.classifier = Some(classifier);
        self
    }

    /// The route used when neither rules nor classifier decide.
    pub fn default_route(mut self, route: impl Into<String>) -> Self {
        self.default_route = Some(route.into());
        self
    }

    /// When a reply from route `from` is not accepted by `accept` (schema or semantic validation,
    /// a confidence below a floor), ask route `to` instead and return its reply.
    pub fn escalate(
        mut self,
        from: impl Into<String>,
        to: impl Into<String>,
        accept: impl Fn(&ChatResponse) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.escalation = Some(Escalation {
            from: from.into(),
            to: to.into(),
            accept: Arc::new(accept),
        });
        self
    }

    /// Checks that every named route exists and builds the router.
    pub fn build(self) -> Result<Router> {
        let names: Vec<&str> = self.routes.iter().map(|(n, _)| n.as_str()).collect();
        let known = |n: &str| names.contains(&n);
        let Some(default_route) = self.default_route.clone() else {
            return Err(Error::config(format!(
                "router `{}` needs a default route: call .default_route(name)",
                self.name
            )));
        };
        let mut referenced: Vec<&str> = vec![default_route.as_str()];
        referenced.extend(self.rules.iter().map(|(_, r)| r.as_str()));
        if let Some(e) = &self.escalation {
            referenced.push(&e.from);
            referenced.push(&e.to);
        }
        if let Some(missing) = referenced.into_iter().find(|r| !known(r)) {
            return Err(Error::config(format!(
                "router `{}` refers to route `{missing}`, which was not added (routes: {names:?})",
                self.name
            )));
        }
        // The router can only promise what every route can do.
        let mut caps = Capabilities::all();
        for (_, m) in &self.routes {
            let c = m.info().capabilities;
            caps.json_schema &= c.json_schema;
            caps.tools &= c.tools;
            caps.streaming &= c.streaming;
            caps.prompt_caching &= c.prompt_caching;
            caps.batch &= c.batch;
            caps.embeddings &= c.embeddings;
            caps.vision &= c.vision;
        }
        let stats = self
            .routes
            .iter()
            .map(|(n, _)| (n.clone(), RouteStats::default()))
            .collect();
        Ok(Router {
            info: ModelInfo::new("router", self.name).with_capabilities(caps),
            routes: self.routes.into_iter().collect(),
            rules: self.rules,
            classifier: self.classifier,
            default_route,
            escalation: self.escalation,
            stats: Mutex::new(RouterStats { routes: stats }),
        })
    }
}

/// A [`ChatModel`] that routes each request to one of several models. See the [module docs](self).
pub struct Router {
    info: ModelInfo,
    routes: BTreeMap<String, Arc<dyn ChatModel>>,
    rules: Vec<(RouteRule, String)>,
    classifier: Option<Arc<dyn Classifier>>,
    default_route: String,
    escalation: Option<Escalation>,
    stats: Mutex<RouterStats>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("info", &self.info)
            .field("routes", &self.routes.keys().collect::<Vec<_>>())
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

impl Router {
    /// Starts a router named `name` (reported as the model name; provider `router`).
    pub fn builder(name: impl Into<String>) -> RouterBuilder {
        RouterBuilder {
            name: name.into(),
            routes: Vec::new(),
            rules: Vec::new(),
            classifier: None,
            default_route: None,
            escalation: None,
        }
    }

    /// The route a request would take, and why.
    pub async fn decide(&self, request: &ChatRequest) -> Result<(String, String)> {
        if let Some((rule, route)) = self.rules.iter().find(|(r, _)| (r.predicate)(request)) {
            return Ok((route.clone(), format!("rule {}", rule.description)));
        }
        if let Some(c) = &self.classifier {
            let route = c.classify(request).await?;
            if self.routes.contains_key(&route) {
                return Ok((route, "classifier".into()));
            }
            tracing::warn!(route = %route, "llmkit.router.unknown_classifier_route");
        }
        Ok((self.default_route.clone(), "default".into()))
    }

    /// Reports a quality score (0..=1) for a reply that came from `route`, for the report.
    pub fn record_quality(&self, route: &str, score: f64) {
        let mut stats = self.lock();
        if let Some(r) = stats.routes.get_mut(route) {
            r.quality_sum += score;
            r.quality_count += 1;
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> RouterStats {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RouterStats> {
        crate::sync::lock(&self.stats)
    }

    fn model(&self, route: &str) -> Result<&Arc<dyn ChatModel>> {
        self.routes
            .get(route)
            .ok_or_else(|| Error::config(format!("router has no route `{route}`")))
    }

    fn account(&self, route: &str, result: &Result<ChatResponse>, answered: bool) {
        let mut stats = self.lock();
        let Some(r) = stats.routes.get_mut(route) else {
            return;
        };
        match result {
            Ok(resp) => {
                if answered {
                    r.answered += 1;
                } else {
                    r.escalated_away += 1;
                }
                match &resp.cost {
                    Some(c) => r.cost_usd += c.total_usd,
                    None => r.cost_unknown += 1,
                }
            }
            Err(_) => r.errors += 1,
        }
    }
}

#[async_trait]
impl ChatModel for Router {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Every route's candidates, plus "escalation source, then target" paths: an escalated call
    /// pays for the rejected reply and the strong one.
    fn candidates(&self) -> Vec<Candidate> {
        let mut all: Vec<Candidate> = self.routes.values().flat_map(|m| m.candidates()).collect();
        if let Some(e) = &self.escalation
            && let (Some(from), Some(to)) = (self.routes.get(&e.from), self.routes.get(&e.to))
        {
            let targets = to.candidates();
            for first in from.candidates() {
                all.extend(targets.iter().map(|t| first.clone().then(t)));
            }
        }
        all
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let (route, why) = self.decide(&request).await?;
        if let Some(r) = self.lock().routes.get_mut(&route) {
            r.requests += 1;
        }
        tracing::info!(route = %route, reason = %why, "llmkit.router.route");
        let escalation = self.escalation.as_ref().filter(|e| e.from == route);
        let first = self.model(&route)?.chat(request.clone()).await;
        let accepted = match (&first, escalation) {
            (Ok(resp), Some(e)) => (e.accept)(resp),
            _ => true,
        };
        self.account(&route, &first, accepted);
        let mut resp = match (first, escalation) {
            (Ok(resp), _) if accepted => resp,
            (Ok(rejected), Some(e)) => {
                tracing::info!(from = %e.from, to = %e.to, "llmkit.router.escalated");
                if let Some(r) = self.lock().routes.get_mut(&e.to) {
                    r.escalated_in += 1;
                }
                let second = self.model(&e.to)?.chat(request).await;
                self.account(&e.to, &second, true);
                let mut resp = second?;
                resp.trail.push(
                    "router",
                    "escalated",
                    format!("from={} to={} first_reply_rejected", e.from, e.to),
                );
                // The rejected attempt was paid for too.
                if let (Some(total), Some(paid)) = (resp.cost.as_mut(), rejected.cost.as_ref()) {
                    total.add(paid);
                }
                resp.usage.add(&rejected.usage);
                resp
            }
            (Ok(resp), None) => resp,
            (Err(e), _) => return Err(e),
        };
        resp.trail
            .push("router", "route", format!("{route} ({why})"));
        Ok(resp)
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream> {
        // Escalation needs the whole reply, so streams take the routed model without it.
        let (route, why) = self.decide(&request).await?;
        if let Some(r) = self.lock().routes.get_mut(&route) {
            r.requests += 1;
        }
        tracing::info!(route = %route, reason = %why, "llmkit.router.route");
        self.model(&route)?.stream(request).await
    }
}
