//! Batch lanes: bulk work at the providers' batch price, behind the same request types.
//!
//! A [`BatchLane`] submits many [`ChatRequest`]s under caller-chosen custom ids, reports progress
//! and returns per-item results mapped back by custom id. Provider lanes (OpenAI Batch API,
//! Anthropic Message Batches) live in `llmkit-providers`; [`LocalBatchLane`] runs a batch through
//! the normal path with bounded concurrency for providers without a batch API, so the calling code
//! is the same either way. [`run_batch`] submits, polls with backoff until done or a deadline, and
//! returns whatever finished — partial results on expiry, with every missing item reported.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use llmkit_core::batch::{run_batch, BatchItem, LocalBatchLane, PollPolicy};
//! use llmkit_core::{ChatRequest, ScriptedModel};
//!
//! let model = Arc::new(ScriptedModel::always("summary"));
//! let lane = LocalBatchLane::new(model, 4);
//! let items = (0..10).map(|i| BatchItem::new(format!("doc-{i}"), ChatRequest::user(format!("summarize {i}"))));
//! let report = run_batch(&lane, items.collect(), PollPolicy::default()).await?;
//! assert_eq!(report.succeeded().count(), 10);
//! assert!(report.results.contains_key("doc-7"));
//! # Ok::<(), llmkit_core::Error>(()) }).unwrap();
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::model::ChatModel;
use crate::request::ChatRequest;
use crate::response::ChatResponse;

/// One request in a batch, with the id its result is mapped back by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchItem {
    /// Caller-chosen id, unique within the batch.
    pub custom_id: String,
    /// The request.
    pub request: ChatRequest,
}

impl BatchItem {
    /// An item.
    pub fn new(custom_id: impl Into<String>, request: ChatRequest) -> Self {
        BatchItem {
            custom_id: custom_id.into(),
            request,
        }
    }
}

/// Where a submitted batch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BatchStatus {
    /// Accepted, not started.
    Queued,
    /// Running.
    InProgress,
    /// Every item finished (successfully or not); results are available.
    Completed,
    /// The provider's window passed; finished items are available, the rest expired.
    Expired,
    /// Cancelled; finished items are available.
    Cancelled,
    /// The batch as a whole failed (bad input file, ...).
    Failed,
}

impl BatchStatus {
    /// Whether the batch will not change any more.
    pub fn is_terminal(self) -> bool {
        !matches!(self, BatchStatus::Queued | BatchStatus::InProgress)
    }
}

/// A submitted batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchHandle {
    /// The provider's batch id.
    pub id: String,
    /// The provider (`openai`, `anthropic`, `local`).
    pub provider: String,
}

/// Progress of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchProgress {
    /// Overall status.
    pub status: BatchStatus,
    /// Items in the batch.
    pub total: u64,
    /// Items finished successfully.
    pub succeeded: u64,
    /// Items that failed.
    pub failed: u64,
}

/// A provider's batch API (or a local stand-in).
#[async_trait]
pub trait BatchLane: Send + Sync {
    /// Submits the items. Custom ids must be unique.
    async fn submit(&self, items: Vec<BatchItem>) -> Result<BatchHandle>;
    /// Reports progress.
    async fn progress(&self, handle: &BatchHandle) -> Result<BatchProgress>;
    /// Results of the items that finished, by custom id (call when the status is terminal).
    async fn results(&self, handle: &BatchHandle)
    -> Result<BTreeMap<String, Result<ChatResponse>>>;
    /// Asks the provider to stop the batch; finished items stay available.
    async fn cancel(&self, handle: &BatchHandle) -> Result<()>;
}

/// How [`run_batch`] polls. Defaults: first poll after 2 s, doubling to at most 60 s between
/// polls, give up waiting after 24 h (the providers' usual window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct PollPolicy {
    /// Wait before the first poll.
    pub initial: Duration,
    /// Longest wait between polls.
    pub max_interval: Duration,
    /// Stop waiting after this long and return what finished.
    pub deadline: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            initial: Duration::from_secs(2),
            max_interval: Duration::from_secs(60),
            deadline: Duration::from_secs(24 * 3600),
        }
    }
}

/// What came back from a batch.
#[derive(Debug, Clone)]
pub struct BatchReport {
    /// The batch.
    pub handle: BatchHandle,
    /// Final progress seen.
    pub progress: BatchProgress,
    /// One entry per submitted custom id: the response, the item's error, or an
    /// [`ErrorKind::Timeout`] error for items that never finished.
    pub results: BTreeMap<String, Result<ChatResponse>>,
}

impl BatchReport {
    /// Successful items.
    pub fn succeeded(&self) -> impl Iterator<Item = (&String, &ChatResponse)> {
        self.results
            .iter()
            .filter_map(|(k, v)| v.as_ref().ok().map(|r| (k, r)))
    }

    /// Failed or missing items.
    pub fn failed(&self) -> impl Iterator<Item = (&String, &Error)> {
        self.results
            .iter()
            .filter_map(|(k, v)| v.as_ref().err().map(|e| (k, e)))
    }
}

/// Checks custom ids before anything is sent: empty or duplicate ids would make results
/// impossible to map back.
pub fn validate_items(items: &[BatchItem]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for (i, item) in items.iter().enumerate() {
        if item.custom_id.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                format!("batch item {i} has an empty custom_id"),
            ));
        }
        if !seen.insert(item.custom_id.as_str()) {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                format!("batch custom_id `{}` appears twice", item.custom_id),
            ));
        }
    }
    if items.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidRequest,
            "a batch needs at least one item",
        ));
    }
    Ok(())
}

/// Submits `items`, polls with backoff until the batch is terminal or the deadline passes, and
/// returns one result per custom id (items that never finished get a timeout error).
pub async fn run_batch(
    lane: &dyn BatchLane,
    items: Vec<BatchItem>,
    poll: PollPolicy,
) -> Result<BatchReport> {
    validate_items(&items)?;
    let ids: Vec<String> = items.iter().map(|i| i.custom_id.clone()).collect();
    let handle = lane.submit(items).await?;
    let started = tokio::time::Instant::now();
    let mut wait = poll.initial;
    let mut progress = lane.progress(&handle).await?;
    while !progress.status.is_terminal() {
        let elapsed = started.elapsed();
        if elapsed >= poll.deadline {
            tracing::warn!(batch = %handle.id, "llmkit.batch.deadline_passed");
            break;
        }
        tokio::time::sleep(wait.min(poll.deadline - elapsed)).await;
        wait = (wait * 2).min(poll.max_interval);
        progress = lane.progress(&handle).await?;
    }
    let mut results = if progress.status == BatchStatus::Failed {
        BTreeMap::new()
    } else if progress.status.is_terminal() {
        lane.results(&handle).await?
    } else {
        // Deadline passed while running: collect what finished where the lane can tell.
        lane.results(&handle).await.unwrap_or_default()
    };
    for id in ids {
        results.entry(id).or_insert_with(|| {
            Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "batch item did not finish (batch {} ended {:?})",
                    handle.id, progress.status
                ),
            ))
        });
    }
    Ok(BatchReport {
        handle,
        progress,
        results,
    })
}

type LocalResults = BTreeMap<String, Result<ChatResponse>>;

/// Runs a batch through the normal path with bounded concurrency, for providers without a batch
/// API (and for tests). Items run in the background as soon as they are submitted.
pub struct LocalBatchLane {
    model: Arc<dyn ChatModel>,
    concurrency: usize,
    batches: Arc<Mutex<HashMap<String, (u64, LocalResults)>>>,
    next_id: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for LocalBatchLane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBatchLane")
            .field("model", &self.model.info().model)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl LocalBatchLane {
    /// A lane over `model` running at most `concurrency` calls at once (minimum 1).
    pub fn new(model: Arc<dyn ChatModel>, concurrency: usize) -> Self {
        LocalBatchLane {
            model,
            concurrency: concurrency.max(1),
            batches: Arc::new(Mutex::new(HashMap::new())),
            next_id: std::sync::atomic::AtomicU64::new(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, LocalResults)>> {
        crate::sync::lock(&self.batches)
    }
}

fn unknown_batch(id: &str) -> Error {
    Error::new(ErrorKind::NotFound, format!("no local batch `{id}`"))
}

#[async_trait]
impl BatchLane for LocalBatchLane {
    async fn submit(&self, items: Vec<BatchItem>) -> Result<BatchHandle> {
        validate_items(&items)?;
        let id = format!(
            "local_batch_{}",
            self.next_id
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        self.lock()
            .insert(id.clone(), (items.len() as u64, BTreeMap::new()));
        let model = self.model.clone();
        let batches = self.batches.clone();
        let concurrency = self.concurrency;
        let batch_id = id.clone();
        tokio::spawn(async move {
            let mut calls = futures::stream::iter(items.into_iter().map(|item| {
                let model = model.clone();
                async move { (item.custom_id, model.chat(item.request).await) }
            }))
            .buffer_unordered(concurrency);
            while let Some((custom_id, result)) = calls.next().await {
                let mut guard = crate::sync::lock(&batches);
                match guard.get_mut(&batch_id) {
                    Some((_, results)) => {
                        results.insert(custom_id, result);
                    }
                    // Cancelled: stop starting new calls.
                    None => break,
                }
            }
        });
        Ok(BatchHandle {
            id,
            provider: "local".into(),
        })
    }

    async fn progress(&self, handle: &BatchHandle) -> Result<BatchProgress> {
        let batches = self.lock();
        let (total, results) = batches
            .get(&handle.id)
            .ok_or_else(|| unknown_batch(&handle.id))?;
        let succeeded = results.values().filter(|r| r.is_ok()).count() as u64;
        let failed = results.len() as u64 - succeeded;
        let status = if succeeded + failed == *total {
            BatchStatus::Completed
        } else {
            BatchStatus::InProgress
        };
        Ok(BatchProgress {
            status,
            total: *total,
            succeeded,
            failed,
        })
    }

    async fn results(&self, handle: &BatchHandle) -> Result<LocalResults> {
        let batches = self.lock();
        let (_, results) = batches
            .get(&handle.id)
            .ok_or_else(|| unknown_batch(&handle.id))?;
        Ok(results.clone())
    }

    async fn cancel(&self, handle: &BatchHandle) -> Result<()> {
        self.lock()
            .remove(&handle.id)
            .map(|_| ())
            .ok_or_else(|| unknown_batch(&handle.id))
    }
}
