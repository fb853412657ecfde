//! [`IdempotencyLayer`]: one upstream call per logical request.
//!
//! A request carrying [`RequestMeta::idempotency_key`](crate::RequestMeta) is executed at most
//! once while its result is remembered: concurrent duplicates in this process share the one
//! in-flight call (single-flight), duplicates on other replicas see the store's in-flight claim
//! and wait for the stored result, and a duplicate after completion gets the stored response
//! back. Failures are not remembered: a failed call releases its claim so the request can be
//! tried again. Providers also send the key as an `Idempotency-Key` header where accepted.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{lock, remaining};
use crate::error::{Error, ErrorKind, Result};
use crate::layer::Layer;
use crate::model::{ChatModel, ChatStream, ModelInfo, response_to_events};
use crate::request::ChatRequest;
use crate::response::ChatResponse;

/// The answer to [`IdempotencyStore::claim`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Claim {
    /// Nobody holds the key: the caller now owns it and must call `put` or `release`.
    Acquired,
    /// Someone (this or another replica) is executing it and its lease has not expired.
    InFlight,
    /// It completed; here is the stored response.
    Completed(Box<ChatResponse>),
}

/// Where idempotency claims and completed responses live. The in-memory default is
/// [`MemoryIdempotencyStore`]; a shared store (Redis) lets many replicas de-duplicate together.
///
/// Semantics every implementation must keep:
/// - `claim(key, lease)` is **atomic**: if a completed response is stored, return it; else if
///   an in-flight mark exists whose lease has not expired, return `InFlight`; else write an
///   in-flight mark that expires after `lease` and return `Acquired`. (Redis: `SET key
///   "inflight" NX PX lease`, and `GET key` when that fails.)
/// - `put(key, response, ttl)` replaces the mark with the response, kept for `ttl`
///   (Redis: `SET key <json> PX ttl`; [`ChatResponse`] is serde-serializable).
/// - `release(key)` removes an in-flight mark (not a completed response) so a failed request can
///   be tried again (Redis: a small Lua script comparing the value before `DEL`).
/// - `get(key)` returns a completed response, if any.
///
/// A lease bounds how long a crashed owner blocks the key.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` for execution; see the trait docs for the exact semantics.
    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim>;
    /// Stores the completed response for `ttl`.
    async fn put(&self, key: &str, response: &ChatResponse, ttl: Duration) -> Result<()>;
    /// The completed response, if stored and not expired.
    async fn get(&self, key: &str) -> Result<Option<ChatResponse>>;
    /// Removes an in-flight mark after a failure.
    async fn release(&self, key: &str) -> Result<()>;
}

#[derive(Clone)]
enum Entry {
    InFlight {
        until: Instant,
    },
    Done {
        response: Arc<ChatResponse>,
        until: Instant,
    },
}

impl Entry {
    fn until(&self) -> Instant {
        match self {
            Entry::InFlight { until } | Entry::Done { until, .. } => *until,
        }
    }
}

struct EntryExpiry;

impl moka::Expiry<String, Entry> for EntryExpiry {
    fn expire_after_create(
        &self,
        _: &String,
        value: &Entry,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.until().saturating_duration_since(Instant::now()))
    }

    fn expire_after_update(
        &self,
        _: &String,
        value: &Entry,
        _: std::time::Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.until().saturating_duration_since(Instant::now()))
    }
}

/// In-process [`IdempotencyStore`] on a bounded moka cache. Expiry is checked against tokio's
/// clock on every read (exact, and testable with a paused clock); moka's own expiry only frees
/// the memory.
#[derive(Clone)]
pub struct MemoryIdempotencyStore {
    cache: moka::future::Cache<String, Entry>,
}

impl fmt::Debug for MemoryIdempotencyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryIdempotencyStore")
            .field("entries", &self.cache.entry_count())
            .finish()
    }
}

impl Default for MemoryIdempotencyStore {
    fn default() -> Self {
        Self::new(10_000)
    }
}

impl MemoryIdempotencyStore {
    /// A store keeping at most `capacity` keys (the default store keeps 10 000).
    pub fn new(capacity: u64) -> Self {
        MemoryIdempotencyStore {
            cache: moka::future::Cache::builder()
                .max_capacity(capacity)
                .expire_after(EntryExpiry)
                .build(),
        }
    }
}

#[async_trait]
impl IdempotencyStore for MemoryIdempotencyStore {
    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim> {
        let now = Instant::now();
        let result = self
            .cache
            .entry(key.to_owned())
            .and_compute_with(|existing| async move {
                match existing.map(moka::Entry::into_value) {
                    Some(e) if e.until() > now => moka::ops::compute::Op::Nop,
                    _ => moka::ops::compute::Op::Put(Entry::InFlight { until: now + lease }),
                }
            })
            .await;
        use moka::ops::compute::CompResult;
        Ok(match result {
            CompResult::Inserted(_) | CompResult::ReplacedWith(_) => Claim::Acquired,
            CompResult::Unchanged(entry) => match entry.into_value() {
                Entry::InFlight { .. } => Claim::InFlight,
                Entry::Done { response, .. } => Claim::Completed(Box::new((*response).clone())),
            },
            CompResult::StillNone(_) | CompResult::Removed(_) => Claim::InFlight,
        })
    }

    async fn put(&self, key: &str, response: &ChatResponse, ttl: Duration) -> Result<()> {
        let entry = Entry::Done {
            response: Arc::new(response.clone()),
            until: Instant::now() + ttl,
        };
        self.cache.insert(key.to_owned(), entry).await;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<ChatResponse>> {
        Ok(match self.cache.get(key).await {
            Some(Entry::Done { response, until }) if until > Instant::now() => {
                Some((*response).clone())
            }
            _ => None,
        })
    }

    async fn release(&self, key: &str) -> Result<()> {
        self.cache
            .entry(key.to_owned())
            .and_compute_with(|existing| async move {
                match existing.map(moka::Entry::into_value) {
                    Some(Entry::InFlight { .. }) => moka::ops::compute::Op::Remove,
                    _ => moka::ops::compute::Op::Nop,
                }
            })
            .await;
        Ok(())
    }
}

type Shared = watch::Sender<Option<Result<ChatResponse>>>;

/// De-duplicates requests by idempotency key; requests without one pass straight through.
///
/// Place it outside the fallback and retry layers (a duplicate must not re-run the whole chain)
/// and outside budgets (a duplicate must not be charged twice). Trail: `idempotency/replayed`
/// (answered from the store), `idempotency/joined` (shared a concurrent call).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use llmkit_core::resilience::IdempotencyLayer;
/// use llmkit_core::{ChatModel, ChatRequest, Layer, ScriptedModel};
///
/// let provider = Arc::new(ScriptedModel::always("charged once"));
/// let model = IdempotencyLayer::new().layer(provider.clone());
/// let req = ChatRequest::user("refund order 42").with_idempotency_key("refund-42");
/// model.chat(req.clone()).await?;
/// let again = model.chat(req).await?;
/// assert!(again.trail.has("idempotency", "replayed"));
/// assert_eq!(provider.call_count(), 1);
/// # Ok::<(), llmkit_core::Error>(()) }).unwrap();
/// ```
#[must_use]
#[derive(Clone)]
pub struct IdempotencyLayer {
    store: Arc<dyn IdempotencyStore>,
    ttl: Duration,
    lease: Duration,
    poll: Duration,
    local: Arc<Local>,
}

#[derive(Default)]
struct Local {
    in_flight: Mutex<HashMap<String, Shared>>,
    abandoned: Mutex<HashSet<String>>,
}

impl fmt::Debug for IdempotencyLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdempotencyLayer")
            .field("ttl", &self.ttl)
            .field("lease", &self.lease)
            .field("poll", &self.poll)
            .finish_non_exhaustive()
    }
}

impl Default for IdempotencyLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl IdempotencyLayer {
    /// Defaults: a [`MemoryIdempotencyStore`] of 10 000 keys, results kept 1 h, in-flight lease
    /// 2 min, other replicas' claims polled every 100 ms.
    pub fn new() -> Self {
        IdempotencyLayer {
            store: Arc::new(MemoryIdempotencyStore::default()),
            ttl: Duration::from_secs(3600),
            lease: Duration::from_secs(120),
            poll: Duration::from_millis(100),
            local: Arc::new(Local::default()),
        }
    }

    /// Uses another store (for example a Redis-backed one shared by replicas).
    pub fn store(mut self, store: Arc<dyn IdempotencyStore>) -> Self {
        self.store = store;
        self
    }

    /// How long completed responses are remembered (default 1 h).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long an in-flight claim blocks duplicates if its owner dies (default 2 min); keep it
    /// above the longest call you allow.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How often a duplicate polls a claim held by another replica (default 100 ms).
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll = every.max(Duration::from_millis(1));
        self
    }
}

impl Layer for IdempotencyLayer {
    fn layer(&self, inner: Arc<dyn ChatModel>) -> Arc<dyn ChatModel> {
        Arc::new(Idempotent {
            config: self.clone(),
            inner,
        })
    }
}

struct Idempotent {
    config: IdempotencyLayer,
    inner: Arc<dyn ChatModel>,
}

enum Role {
    Lead(Shared),
    Join(watch::Receiver<Option<Result<ChatResponse>>>),
}

/// Removes the local in-flight entry when the leader finishes or is dropped; remembers an
/// unfinished claim so the next local leader may release it instead of waiting for the lease.
struct LeaderGuard<'a> {
    local: &'a Local,
    key: &'a str,
    finished: bool,
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        lock(&self.local.in_flight).remove(self.key);
        if !self.finished {
            lock(&self.local.abandoned).insert(self.key.to_owned());
        }
    }
}

impl Idempotent {
    /// Executes through the store: claim, call, store or release.
    async fn lead(&self, key: &str, request: ChatRequest) -> Result<ChatResponse> {
        let cfg = &self.config;
        loop {
            match cfg.store.claim(key, cfg.lease).await? {
                Claim::Acquired => {
                    let result = self.inner.chat(request).await;
                    match &result {
                        Ok(resp) => {
                            if let Err(e) = cfg.store.put(key, resp, cfg.ttl).await {
                                tracing::warn!(error.type = e.kind().as_str(), "llmkit idempotency: could not store the result: {e}");
                            }
                        }
                        Err(_) => {
                            if let Err(e) = cfg.store.release(key).await {
                                tracing::warn!(error.type = e.kind().as_str(), "llmkit idempotency: could not release the claim: {e}");
                            }
                        }
                    }
                    return result;
                }
                Claim::Completed(resp) => {
                    let mut resp = *resp;
                    resp.trail
                        .push("idempotency", "replayed", "completed earlier");
                    return Ok(resp);
                }
                Claim::InFlight => {
                    if lock(&self.config.local.abandoned).remove(key) {
                        cfg.store.release(key).await?;
                        continue;
                    }
                    if remaining(&request.meta).is_some_and(|left| left <= cfg.poll) {
                        let info = self.inner.info();
                        return Err(Error::new(
                            ErrorKind::Timeout,
                            "overall deadline exceeded waiting for a duplicate request in flight",
                        )
                        .unsent()
                        .or_context(&info.provider, &info.model));
                    }
                    tokio::time::sleep(cfg.poll).await;
                }
            }
        }
    }
}

#[async_trait]
impl ChatModel for Idempotent {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    fn candidates(&self) -> Vec<crate::model::Candidate> {
        self.inner.candidates()
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let Some(key) = request.meta.idempotency_key.clone() else {
            return self.inner.chat(request).await;
        };
        let local = &self.config.local;
        loop {
            let role = {
                let mut map = lock(&local.in_flight);
                match map.get(&key) {
                    Some(tx) => Role::Join(tx.subscribe()),
                    None => {
                        let (tx, _) = watch::channel(None);
                        map.insert(key.clone(), tx.clone());
                        Role::Lead(tx)
                    }
                }
            };
            match role {
                Role::Lead(tx) => {
                    let mut guard = LeaderGuard {
                        local,
                        key: &key,
                        finished: false,
                    };
                    let result = self.lead(&key, request.clone()).await;
                    guard.finished = true;
                    tx.send_replace(Some(result.clone()));
                    drop(guard);
                    return result;
                }
                Role::Join(mut rx) => {
                    let shared = loop {
                        if let Some(r) = rx.borrow_and_update().clone() {
                            break Some(r);
                        }
                        if rx.changed().await.is_err() {
                            break rx.borrow().clone();
                        }
                    };
                    match shared {
                        Some(Ok(mut resp)) => {
                            resp.trail.push(
                                "idempotency",
                                "joined",
                                "shared a concurrent identical call",
                            );
                            return Ok(resp);
                        }
                        Some(Err(e)) => return Err(e),
                        // The leader was cancelled: take over.
                        None => continue,
                    }
                }
            }
        }
    }

    /// Replays a stored response as a stream; otherwise streams straight through (a stream is
    /// not shared between callers).
    async fn stream(&self, request: ChatRequest) -> Result<ChatStream> {
        if let Some(key) = &request.meta.idempotency_key
            && let Some(resp) = self.config.store.get(key).await?
        {
            return Ok(Box::pin(futures::stream::iter(
                response_to_events(&resp).into_iter().map(Ok),
            )));
        }
        self.inner.stream(request).await
    }
}
