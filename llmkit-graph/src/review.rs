//! Human in the loop: explicit thresholds, sampling of automatic decisions, a review queue.
//!
//! A [`HitlGate`] turns a score or confidence into a [`Verdict`] with two explicit bands:
//! at or above `approve_at` the case is auto-approved, below `reject_below` it is auto-rejected,
//! in between it is escalated to a human. A configurable share of the *automatic* decisions is
//! also sampled into the [`ReviewQueue`], so humans keep checking what the machine decides alone.
//! Counts of auto / escalated / sampled decisions are kept for metrics ([`HitlGate::counts`]).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use llmkit_graph::review::{HitlGate, MemoryReviewQueue, ReviewQueue, Thresholds, Verdict};
//!
//! let queue = Arc::new(MemoryReviewQueue::new());
//! let gate = HitlGate::new(Thresholds::new(0.9, 0.3)?, queue.clone()).sample_rate(0.0)?;
//! assert_eq!(gate.decide("case-1", 0.95, serde_json::json!({})).await?.verdict, Verdict::Approve);
//! assert_eq!(gate.decide("case-2", 0.50, serde_json::json!({})).await?.verdict, Verdict::Escalate);
//! assert_eq!(gate.decide("case-3", 0.10, serde_json::json!({})).await?.verdict, Verdict::Reject);
//! assert_eq!(queue.pending().await?.len(), 1, "only the escalated case waits for a human");
//! # Ok::<(), llmkit_core::Error>(()) }).unwrap();
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use llmkit_core::{Error, ErrorKind, Result};

/// The two bands of a gate. `approve_at` must be ≥ `reject_below`; both within 0..=1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Scores at or above this are approved automatically.
    pub approve_at: f64,
    /// Scores below this are rejected automatically.
    pub reject_below: f64,
}

impl Thresholds {
    /// Checks and builds the bands.
    pub fn new(approve_at: f64, reject_below: f64) -> Result<Self> {
        let in_range = |x: f64| (0.0..=1.0).contains(&x);
        if !in_range(approve_at) || !in_range(reject_below) || approve_at < reject_below {
            return Err(Error::config(format!(
                "thresholds must satisfy 0 <= reject_below ({reject_below}) <= approve_at ({approve_at}) <= 1"
            )));
        }
        Ok(Thresholds {
            approve_at,
            reject_below,
        })
    }

    /// The verdict for a score. A NaN score is escalated: a human decides what the machine cannot.
    pub fn verdict(&self, score: f64) -> Verdict {
        if score.is_nan() {
            Verdict::Escalate
        } else if score >= self.approve_at {
            Verdict::Approve
        } else if score < self.reject_below {
            Verdict::Reject
        } else {
            Verdict::Escalate
        }
    }
}

/// What the gate decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Approved automatically.
    Approve,
    /// Rejected automatically.
    Reject,
    /// Sent to a human.
    Escalate,
}

/// A gate decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateDecision {
    /// The verdict.
    pub verdict: Verdict,
    /// The score it was based on.
    pub score: f64,
    /// Whether an automatic decision was also sampled for human review.
    pub sampled: bool,
}

/// Why an item is in the review queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewReason {
    /// The score fell between the bands.
    Escalated,
    /// An automatic decision picked for audit.
    Sampled,
}

/// One case waiting for (or labelled by) a human.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewItem {
    /// The application's case id.
    pub id: String,
    /// The score.
    pub score: f64,
    /// What the gate decided (for sampled items) or `Escalate`.
    pub verdict: Verdict,
    /// Why it is here.
    pub reason: ReviewReason,
    /// Evidence for the reviewer.
    pub payload: serde_json::Value,
    /// The human's label, once given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// Where cases wait for humans. Implement it over a shared store (PostgreSQL, a ticketing
/// system) for many replicas; memory and JSON-lines file stores are the defaults.
#[async_trait]
pub trait ReviewQueue: Send + Sync {
    /// Adds an item.
    async fn push(&self, item: ReviewItem) -> Result<()>;
    /// Items without a label.
    async fn pending(&self) -> Result<Vec<ReviewItem>>;
    /// Records a human's label for an item; fails when the id is unknown.
    async fn label(&self, id: &str, label: &str) -> Result<()>;
    /// Every item, labelled or not.
    async fn all(&self) -> Result<Vec<ReviewItem>>;
}

/// A review queue in memory.
#[derive(Debug, Default)]
pub struct MemoryReviewQueue {
    items: Mutex<Vec<ReviewItem>>,
}

impl MemoryReviewQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<ReviewItem>> {
        llmkit_core::sync::lock(&self.items)
    }
}

fn unknown_item(id: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("review item `{id}` is not in the queue"),
    )
}

#[async_trait]
impl ReviewQueue for MemoryReviewQueue {
    async fn push(&self, item: ReviewItem) -> Result<()> {
        self.lock().push(item);
        Ok(())
    }
    async fn pending(&self) -> Result<Vec<ReviewItem>> {
        Ok(self
            .lock()
            .iter()
            .filter(|i| i.label.is_none())
            .cloned()
            .collect())
    }
    async fn label(&self, id: &str, label: &str) -> Result<()> {
        let mut items = self.lock();
        let item = items
            .iter_mut()
            .find(|i| i.id == id)
            .ok_or_else(|| unknown_item(id))?;
        item.label = Some(label.to_owned());
        Ok(())
    }
    async fn all(&self) -> Result<Vec<ReviewItem>> {
        Ok(self.lock().clone())
    }
}

/// A review queue as a JSON-lines file: one line per item, rewritten atomically on label.
/// Suits one machine; reviewers can also read the file directly.
#[derive(Debug)]
pub struct FileReviewQueue {
    path: PathBuf,
    lock: Mutex<()>,
}

impl FileReviewQueue {
    /// A queue stored at `path` (created on first push).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileReviewQueue {
            path: path.into(),
            lock: Mutex::new(()),
        }
    }

    fn read(&self) -> Result<Vec<ReviewItem>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(file_err(&self.path, &e)),
        };
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(n, l)| {
                serde_json::from_str(l).map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidResponse,
                        format!("{}:{}: bad review item: {e}", self.path.display(), n + 1),
                    )
                })
            })
            .collect()
    }

    fn write_all(&self, items: &[ReviewItem]) -> Result<()> {
        let mut out = String::new();
        for item in items {
            out.push_str(&serde_json::to_string(item)?);
            out.push('\n');
        }
        let tmp = self.path.with_extension("jsonl.tmp");
        std::fs::write(&tmp, out).map_err(|e| file_err(&tmp, &e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| file_err(&self.path, &e))
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        llmkit_core::sync::lock(&self.lock)
    }
}

fn file_err(path: &std::path::Path, e: &std::io::Error) -> Error {
    Error::new(
        ErrorKind::Other,
        format!("review queue file {}: {e}", path.display()),
    )
}

#[async_trait]
impl ReviewQueue for FileReviewQueue {
    async fn push(&self, item: ReviewItem) -> Result<()> {
        let _g = self.guard();
        let mut items = self.read()?;
        items.push(item);
        self.write_all(&items)
    }
    async fn pending(&self) -> Result<Vec<ReviewItem>> {
        let _g = self.guard();
        Ok(self
            .read()?
            .into_iter()
            .filter(|i| i.label.is_none())
            .collect())
    }
    async fn label(&self, id: &str, label: &str) -> Result<()> {
        let _g = self.guard();
        let mut items = self.read()?;
        let item = items
            .iter_mut()
            .find(|i| i.id == id)
            .ok_or_else(|| unknown_item(id))?;
        item.label = Some(label.to_owned());
        self.write_all(&items)
    }
    async fn all(&self) -> Result<Vec<ReviewItem>> {
        let _g = self.guard();
        self.read()
    }
}

/// Counts of gate decisions, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GateCounts {
    /// Auto-approved.
    pub auto_approved: u64,
    /// Auto-rejected.
    pub auto_rejected: u64,
    /// Escalated to a human.
    pub escalated: u64,
    /// Automatic decisions also sampled for review.
    pub sampled: u64,
}

/// Thresholds plus sampling plus a queue. See the [module docs](self).
pub struct HitlGate {
    thresholds: Thresholds,
    sample_rate: f64,
    rng: Mutex<u64>,
    queue: Arc<dyn ReviewQueue>,
    approved: AtomicU64,
    rejected: AtomicU64,
    escalated: AtomicU64,
    sampled: AtomicU64,
}

impl std::fmt::Debug for HitlGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HitlGate")
            .field("thresholds", &self.thresholds)
            .field("sample_rate", &self.sample_rate)
            .field("counts", &self.counts())
            .finish()
    }
}

impl HitlGate {
    /// A gate with these bands writing to `queue`. Defaults: 5% of automatic decisions sampled,
    /// seed 0x5eed.
    pub fn new(thresholds: Thresholds, queue: Arc<dyn ReviewQueue>) -> Self {
        HitlGate {
            thresholds,
            sample_rate: 0.05,
            rng: Mutex::new(0x5eed),
            queue,
            approved: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            escalated: AtomicU64::new(0),
            sampled: AtomicU64::new(0),
        }
    }

    /// Sets the share (0..=1) of automatic decisions copied to the review queue.
    pub fn sample_rate(mut self, rate: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&rate) {
            return Err(Error::config(format!(
                "sample rate {rate} must be within 0..=1"
            )));
        }
        self.sample_rate = rate;
        Ok(self)
    }

    /// Seeds the sampler, for reproducible tests and audits.
    #[must_use]
    pub fn seed(self, seed: u64) -> Self {
        *llmkit_core::sync::lock(&self.rng) = seed;
        self
    }

    /// Decides a case; escalated and sampled cases go to the queue with `payload`.
    pub async fn decide(
        &self,
        id: &str,
        score: f64,
        payload: serde_json::Value,
    ) -> Result<GateDecision> {
        let verdict = self.thresholds.verdict(score);
        let mut sampled = false;
        let reason = match verdict {
            Verdict::Escalate => {
                self.escalated.fetch_add(1, Ordering::Relaxed);
                Some(ReviewReason::Escalated)
            }
            auto => {
                let counter = if auto == Verdict::Approve {
                    &self.approved
                } else {
                    &self.rejected
                };
                counter.fetch_add(1, Ordering::Relaxed);
                if self.next_unit() < self.sample_rate {
                    sampled = true;
                    self.sampled.fetch_add(1, Ordering::Relaxed);
                    Some(ReviewReason::Sampled)
                } else {
                    None
                }
            }
        };
        if let Some(reason) = reason {
            self.queue
                .push(ReviewItem {
                    id: id.to_owned(),
                    score,
                    verdict,
                    reason,
                    payload,
                    label: None,
                })
                .await?;
        }
        tracing::info!(id, score, ?verdict, sampled, "llmkit.hitl.decision");
        Ok(GateDecision {
            verdict,
            score,
            sampled,
        })
    }

    /// The bands in use.
    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }

    /// Decision counts so far.
    pub fn counts(&self) -> GateCounts {
        GateCounts {
            auto_approved: self.approved.load(Ordering::Relaxed),
            auto_rejected: self.rejected.load(Ordering::Relaxed),
            escalated: self.escalated.load(Ordering::Relaxed),
            sampled: self.sampled.load(Ordering::Relaxed),
        }
    }

    /// SplitMix64: tiny, seedable, good enough for audit sampling.
    fn next_unit(&self) -> f64 {
        let mut s = llmkit_core::sync::lock(&self.rng);
        *s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}
