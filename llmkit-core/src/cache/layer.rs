//! The response-cache layer: exact-match hits, single-flight misses.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rust_decimal::Decimal;

use super::embedding::{CachedEmbedding, EmbeddingStore, MokaEmbeddingStore};
use super::key::{CacheKey, cache_key};
use super::store::{CacheStore, Fill, MokaCacheStore};
use crate::error::Result;
use crate::layer::Layer;
use crate::model::{ChatModel, ChatStream, EmbeddingModel, ModelInfo, response_to_events};
use crate::request::ChatRequest;
use crate::response::{ChatResponse, Cost, Usage};

/// Which requests are cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CachePolicy {
    /// Only deterministic-enough requests: temperature 0, or tagged `cache=on`. The default,
    /// because caching a sampled answer freezes one random draw.
    #[default]
    Deterministic,
    /// Every request not opted out with `meta.no_cache`.
    Always,
    /// Only requests tagged `cache=on`.
    OptIn,
}

impl CachePolicy {
    fn admits(self, request: &ChatRequest) -> bool {
        if request.meta.no_cache || request.meta.tags.get("cache").is_some_and(|v| v == "off") {
            return false;
        }
        let opted_in = request.meta.tags.get("cache").is_some_and(|v| v == "on");
        match self {
            CachePolicy::Always => true,
            CachePolicy::OptIn => opted_in,
            CachePolicy::Deterministic => opted_in || request.temperature == Some(0.0),
        }
    }
}

/// Counters for dashboards and the cost report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Requests answered from the cache.
    pub hits: u64,
    /// Cacheable requests that went upstream.
    pub misses: u64,
    /// Requests the policy did not admit.
    pub bypassed: u64,
    /// Requests that waited on an identical in-flight call instead of calling upstream.
    pub coalesced: u64,
    /// Money not spent thanks to hits (sum of the original calls' cost, over hits whose
    /// original cost was known).
    pub saved_usd: Decimal,
    /// Hits whose original answer carried no cost (an unpriced model): their saving is
    /// unknown, so it is counted here instead of as $0 in `saved_usd`.
    pub hits_unpriced: u64,
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) hits: AtomicU64,
    pub(super) misses: AtomicU64,
    pub(super) bypassed: AtomicU64,
    coalesced: AtomicU64,
    hits_unpriced: AtomicU64,
    saved: Mutex<Decimal>,
}

/// One upstream call that identical requests wait for instead of repeating it.
#[derive(Default)]
struct Flight {
    outcome: std::sync::OnceLock<Outcome>,
    done: tokio::sync::Notify,
}

/// How a flight ended, as its followers see it.
enum Outcome {
    /// The leader's result, for the followers to copy.
    Finished(Box<Result<ChatResponse>>),
    /// The leader's future was dropped before the answer came: a follower leads again.
    Abandoned,
}

/// Ends the leader's flight even when its future is dropped mid-call: otherwise followers
/// would wait forever on an answer nobody is fetching any more.
struct Lead<'a> {
    flights: &'a Mutex<HashMap<CacheKey, Arc<Flight>>>,
    key: &'a CacheKey,
    flight: Arc<Flight>,
    finished: bool,
}

impl Lead<'_> {
    /// Removes the flight from the map and hands `result` to the followers that joined it.
    fn finish(mut self, result: &Result<ChatResponse>) {
        self.finished = true;
        self.land(|| Outcome::Finished(Box::new(result.clone())));
    }

    fn land(&self, outcome: impl FnOnce() -> Outcome) {
        crate::sync::lock(self.flights).remove(self.key);
        // Out of the map, nobody new can join: the count is exactly leader + followers, so
        // the result is copied only when someone waits for it.
        if Arc::strong_count(&self.flight) > 1 {
            let _ = self.flight.outcome.set(outcome());
        } else {
            let _ = self.flight.outcome.set(Outcome::Abandoned);
        }
        self.flight.done.notify_waiters();
    }
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.land(|| Outcome::Abandoned);
        }
    }
}

/// Builds a [`CacheLayer`]. Defaults: [`MokaCacheStore::default`] (10,000 entries, one hour),
/// [`CachePolicy::Deterministic`], not scoped by tenant, fail open, fill lease 60 s polled every
/// 50 ms, and for embedding models ([`Layer::layer_embedding`]) a
/// [`MokaEmbeddingStore::default`] caching each input's vector (see
/// [`embedding`](super::embedding): every input is cached unless the request opts out, and
/// [`CacheStats`] then counts inputs, not requests).
#[must_use]
pub struct CacheLayer {
    store: Arc<dyn CacheStore>,
    embedding_store: Arc<dyn EmbeddingStore>,
    policy: CachePolicy,
    scope_by_tenant: bool,
    counters: Arc<Counters>,
    fill: FillConfig,
}

/// How misses coordinate through the store, and what a store failure does.
#[derive(Debug, Clone, Copy)]
struct FillConfig {
    fail_open: bool,
    lease: Duration,
    poll: Duration,
}

impl std::fmt::Debug for CacheLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheLayer")
            .field("policy", &self.policy)
            .field("scope_by_tenant", &self.scope_by_tenant)
            .field("fail_open", &self.fill.fail_open)
            .finish_non_exhaustive()
    }
}

impl Default for CacheLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl CacheLayer {
    /// A cache layer with the defaults above.
    pub fn new() -> Self {
        CacheLayer {
            store: Arc::new(MokaCacheStore::default()),
            embedding_store: Arc::new(MokaEmbeddingStore::default()),
            policy: CachePolicy::default(),
            scope_by_tenant: false,
            counters: Arc::new(Counters::default()),
            fill: FillConfig {
                fail_open: true,
                lease: Duration::from_secs(60),
                poll: Duration::from_millis(50),
            },
        }
    }

    /// Whether a failing store lets calls through (default `true`: the cache is an
    /// optimisation, so an unreachable store costs upstream calls, never answers; the failure
    /// is logged). `false` returns the store's error instead.
    pub fn fail_open(mut self, open: bool) -> Self {
        self.fill.fail_open = open;
        self
    }

    /// How long a fill lease on a shared store holds a key before another replica may lead
    /// (default 60 s): keep it above the longest call. A leader that dies blocks its key's
    /// followers at most this long.
    pub fn fill_lease(mut self, lease: Duration) -> Self {
        self.fill.lease = lease;
        self
    }

    /// How often a follower polls a shared store for another replica's fill (default 50 ms).
    pub fn fill_poll(mut self, every: Duration) -> Self {
        self.fill.poll = every.max(Duration::from_millis(1));
        self
    }

    /// Uses another store (a bounded moka with your TTL, or a shared one).
    pub fn store(mut self, store: Arc<dyn CacheStore>) -> Self {
        self.store = store;
        self
    }

    /// Uses another store for embedding vectors (default: [`MokaEmbeddingStore::default`]).
    pub fn embedding_store(mut self, store: Arc<dyn EmbeddingStore>) -> Self {
        self.embedding_store = store;
        self
    }

    /// Sets which requests are cached.
    pub fn policy(mut self, policy: CachePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Keeps tenants' caches apart (their identical requests never share an answer).
    pub fn scope_by_tenant(mut self, on: bool) -> Self {
        self.scope_by_tenant = on;
        self
    }

    /// A handle on the counters, valid for every model this layer wraps.
    pub fn stats_handle(&self) -> CacheStatsHandle {
        CacheStatsHandle(self.counters.clone())
    }
}

/// Reads a cache layer's counters.
#[derive(Clone)]
pub struct CacheStatsHandle(Arc<Counters>);

impl std::fmt::Debug for CacheStatsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

impl CacheStatsHandle {
    /// The counters now.
    pub fn get(&self) -> CacheStats {
        let c = &self.0;
        CacheStats {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            bypassed: c.bypassed.load(Ordering::Relaxed),
            coalesced: c.coalesced.load(Ordering::Relaxed),
            saved_usd: *crate::sync::lock(&c.saved),
            hits_unpriced: c.hits_unpriced.load(Ordering::Relaxed),
        }
    }
}

impl Layer for CacheLayer {
    fn layer(&self, inner: Arc<dyn ChatModel>) -> Arc<dyn ChatModel> {
        Arc::new(Cached {
            inner,
            store: self.store.clone(),
            policy: self.policy,
            scope_by_tenant: self.scope_by_tenant,
            counters: self.counters.clone(),
            in_flight: Arc::new(Mutex::new(HashMap::new())),
            fill: self.fill,
        })
    }

    fn layer_embedding(&self, inner: Arc<dyn EmbeddingModel>) -> Option<Arc<dyn EmbeddingModel>> {
        Some(Arc::new(CachedEmbedding {
            inner,
            store: self.embedding_store.clone(),
            scope_by_tenant: self.scope_by_tenant,
            counters: self.counters.clone(),
            fail_open: self.fill.fail_open,
        }))
    }
}

/// How [`Cached::lead_fill`] ended.
enum Filled {
    /// This call leads (with the store's lease token, if it took one).
    Lead(Option<String>),
    /// Another replica filled the key.
    Stored(Box<ChatResponse>),
}

struct Cached {
    inner: Arc<dyn ChatModel>,
    store: Arc<dyn CacheStore>,
    policy: CachePolicy,
    scope_by_tenant: bool,
    counters: Arc<Counters>,
    in_flight: Arc<Mutex<HashMap<CacheKey, Arc<Flight>>>>,
    fill: FillConfig,
}

/// Turns a stored response into a hit noted by `layer`: zero usage and cost (nothing was
/// spent), the original cost and tokens recorded in the trail as the saving. The saving is
/// `None`, and the trail says `saved_usd=unknown`, when the stored answer carried no cost: an
/// unpriced answer saved an unknown amount, not $0.
pub(crate) fn as_hit(
    mut stored: ChatResponse,
    request: &ChatRequest,
    layer: &str,
    extra: &str,
) -> (ChatResponse, Option<Decimal>) {
    let saved = stored.cost.as_ref().map(|c| c.total_usd);
    let saved_text = saved.map_or_else(|| "unknown".to_owned(), |d| d.to_string());
    let original_usage = stored.usage;
    // The trail of the call that produced the answer (its retries, fallbacks) is not this
    // call's: a hit made no attempt.
    stored.trail = Default::default();
    stored.trail.push(
        layer,
        "hit",
        format!(
            "saved_usd={saved_text} input_tokens={} output_tokens={}{extra}",
            original_usage.input_tokens, original_usage.output_tokens
        ),
    );
    stored.usage = Usage::default();
    stored.cost = stored.cost.map(|c| Cost {
        price_table: c.price_table,
        ..Default::default()
    });
    stored.request_id.clone_from(&request.meta.request_id);
    stored.prompt.clone_from(&request.meta.prompt);
    (stored, saved)
}

impl Cached {
    /// Calls upstream for a key nobody else is fetching, stores a complete answer and hands
    /// the result to whoever joined the flight meanwhile.
    async fn lead(
        &self,
        request: ChatRequest,
        key: &CacheKey,
        flight: Arc<Flight>,
    ) -> Result<ChatResponse> {
        let lead = Lead {
            flights: &self.in_flight,
            key,
            flight,
            finished: false,
        };
        // Across processes: a shared store names one leader per key; the others wait for its
        // stored answer (dropping `lead` on an error hands local followers back to the loop).
        let token = match self.lead_fill(&request, key).await? {
            Filled::Lead(token) => token,
            Filled::Stored(stored) => {
                let stored = *stored;
                lead.finish(&Ok(stored.clone()));
                self.counters.coalesced.fetch_add(1, Ordering::Relaxed);
                let (hit, saved) = as_hit(stored, &request, "cache", "");
                self.record_hit(saved);
                return Ok(hit);
            }
        };
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        let result = self.inner.chat(request).await;
        if let Ok(resp) = &result {
            // Only complete answers are worth serving again.
            if (resp.finish_reason == crate::response::FinishReason::Stop
                || resp.finish_reason == crate::response::FinishReason::ToolCalls)
                && let Err(e) = self.store.put(key, resp).await
            {
                tracing::warn!(error = %e, "llmkit.cache.store_failed");
            }
        }
        if let Some(token) = token
            && let Err(e) = self.store.end_fill(key, &token).await
        {
            tracing::warn!(error = %e, "llmkit.cache.end_fill_failed");
        }
        lead.finish(&result);
        let mut resp = result?;
        resp.trail.push("cache", "miss", "");
        Ok(resp)
    }

    /// Takes the store's fill lease for `key`, or waits for the replica holding it: its
    /// stored answer, or the lease when it ends (the leader failed or died). `Lead(None)`: the
    /// store failed and the policy is fail-open, so this call goes upstream without a lease.
    async fn lead_fill(&self, request: &ChatRequest, key: &CacheKey) -> Result<Filled> {
        loop {
            match self.store.try_fill(key, self.fill.lease).await {
                Ok(Fill::Lead(token)) => return Ok(Filled::Lead(Some(token))),
                Ok(Fill::Wait) => {}
                Err(e) => return self.store_failed(e).map(|()| Filled::Lead(None)),
            }
            let deadline_near = request.meta.deadline.is_some_and(|d| {
                d.saturating_duration_since(tokio::time::Instant::now().into_std())
                    <= self.fill.poll
            });
            if deadline_near {
                return Err(crate::Error::new(
                    crate::ErrorKind::Timeout,
                    "overall deadline exceeded waiting for another replica to fill the cache",
                )
                .unsent());
            }
            tokio::time::sleep(self.fill.poll).await;
            match self.store.get(key).await {
                Ok(Some(stored)) => return Ok(Filled::Stored(Box::new(stored))),
                Ok(None) => {}
                Err(e) => return self.store_failed(e).map(|()| Filled::Lead(None)),
            }
        }
    }

    /// Applies the failure policy to a store error: `Ok` (logged) when failing open.
    fn store_failed(&self, e: crate::Error) -> Result<()> {
        if self.fill.fail_open {
            tracing::warn!(error = %e, "llmkit.cache.store_unavailable");
            Ok(())
        } else {
            Err(e)
        }
    }

    /// Reads the store under the failure policy: a failing store reads as a miss when open.
    async fn stored(&self, key: &CacheKey) -> Result<Option<ChatResponse>> {
        match self.store.get(key).await {
            Ok(found) => Ok(found),
            Err(e) => self.store_failed(e).map(|()| None),
        }
    }

    fn record_hit(&self, saved: Option<Decimal>) {
        self.counters.hits.fetch_add(1, Ordering::Relaxed);
        match saved {
            Some(usd) => *crate::sync::lock(&self.counters.saved) += usd,
            None => {
                self.counters.hits_unpriced.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[async_trait]
impl ChatModel for Cached {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    fn candidates(&self) -> Vec<crate::model::Candidate> {
        self.inner.candidates()
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        if !self.policy.admits(&request) {
            self.counters.bypassed.fetch_add(1, Ordering::Relaxed);
            return self.inner.chat(request).await;
        }
        let key = cache_key(self.inner.info(), &request, self.scope_by_tenant);
        if let Some(stored) = self.stored(&key).await? {
            let (hit, saved) = as_hit(stored, &request, "cache", "");
            self.record_hit(saved);
            tracing::debug!(key = %key, "llmkit.cache.hit");
            return Ok(hit);
        }
        // Single flight: the first miss for a key calls upstream; identical requests arriving
        // meanwhile wait for its answer instead of paying again.
        loop {
            let (flight, leader) = {
                let mut in_flight = crate::sync::lock(&self.in_flight);
                match in_flight.get(&key) {
                    Some(f) => (f.clone(), false),
                    None => {
                        let f = Arc::new(Flight::default());
                        in_flight.insert(key.clone(), f.clone());
                        (f, true)
                    }
                }
            };
            if leader {
                return self.lead(request, &key, flight).await;
            }
            // Registered before the check, so a notification between the two is not lost.
            let done = flight.done.notified();
            if flight.outcome.get().is_none() {
                done.await;
            }
            match flight.outcome.get() {
                Some(Outcome::Finished(result)) => {
                    self.counters.coalesced.fetch_add(1, Ordering::Relaxed);
                    let (hit, saved) = as_hit((**result).clone()?, &request, "cache", "");
                    self.record_hit(saved);
                    return Ok(hit);
                }
                // The leader gave up: the answer may have been stored meanwhile, else lead.
                Some(Outcome::Abandoned) | None => {
                    if let Some(stored) = self.stored(&key).await? {
                        let (hit, saved) = as_hit(stored, &request, "cache", "");
                        self.record_hit(saved);
                        return Ok(hit);
                    }
                }
            }
        }
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream> {
        // Hits replay as a stream; misses stream straight through (a partial stream is never
        // cached).
        if self.policy.admits(&request) {
            let key = cache_key(self.inner.info(), &request, self.scope_by_tenant);
            if let Some(stored) = self.stored(&key).await? {
                let (hit, saved) = as_hit(stored, &request, "cache", "");
                self.record_hit(saved);
                let events = response_to_events(&hit);
                return Ok(Box::pin(futures::stream::iter(events.into_iter().map(Ok))));
            }
        }
        self.inner.stream(request).await
    }
}
