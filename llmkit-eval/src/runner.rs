//! The [`Runner`] runs a [`Target`] over a [`Dataset`] with bounded concurrency, caches target
//! outputs in an [`OutputCache`], applies the evaluators and returns a [`RunResult`].
//!
//! - A target is any async function from [`Case`] to [`TargetOutput`] ([`target_fn`]), or
//!   [`OutputsFile`]: outputs your application already produced, as JSON lines, so the
//!   harness runs without linking the application.
//! - Outputs are cached by (case id, case content hash, prompt version, model) — the
//!   [`TargetId`] names the last two — so re-running only the evaluators makes no target call.
//! - Target calls go through llmkit-core's [`RetryLayer`], the one retry owner: by default
//!   rate-limited calls (`ErrorKind::RateLimited`/`Overloaded`) wait for the provider's
//!   retry-after (at least one second) and retry, up to [`Runner::rate_limit_retries`] times;
//!   [`Runner::retry`] sets any other policy.
//! - A progress bar is drawn only when stderr is a terminal, so CI logs stay clean, and only
//!   with the `progress` feature (indicatif; the `cli` feature includes it).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! use llmkit_eval::{assertions, runner::{target_fn, Runner, TargetId}, Case, Dataset, TargetOutput};
//! let dataset = Dataset::from_cases("echo", vec![
//!     Case::new("a", serde_json::json!({"q": "hello"})),
//!     Case::new("b", serde_json::json!({"q": "bye"})),
//! ])?;
//! let target = target_fn(TargetId::new("echo@1", "none"), |case| async move {
//!     Ok(TargetOutput::text(case.input_text("q").unwrap_or_default()))
//! });
//! let run = Runner::new().evaluator(assertions::contains("hello")).run("demo", &dataset, &*target).await?;
//! assert_eq!(run.summary.passed, 1);
//! assert_eq!(run.stats.target_calls, 2);
//! # Ok::<(), llmkit_core::Error>(()) }).unwrap();
//! ```

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use llmkit_core::resilience::{Backoff, Jitter, RetryLayer, RetryPolicy};
use llmkit_core::{ErrorKind, ModelInfo, RequestMeta};

use crate::dataset::{Case, Dataset};
use crate::error::EvalError;
use crate::evaluator::Evaluator;
use crate::retrieval::RetrievalMetrics;

// The types a run is made of live in their own modules; these paths stay for code written
// against `llmkit_eval::runner::*`.
pub use crate::cache::OutputCache;
pub use crate::result::{CaseResult, GroupStats, NamedScore, RunResult, RunStats, Summary};
pub use crate::target::{FnTarget, OutputsFile, Target, TargetId, TargetOutput, target_fn};

/// The run's progress bar: indicatif's with the `progress` feature, nothing without it (so a
/// library user who never sees a terminal does not compile indicatif).
struct Progress {
    #[cfg(feature = "progress")]
    bar: indicatif::ProgressBar,
}

impl Progress {
    #[cfg_attr(not(feature = "progress"), allow(unused_variables))]
    fn new(visible: bool, len: usize) -> Self {
        Self {
            #[cfg(feature = "progress")]
            bar: if visible {
                indicatif::ProgressBar::new(len as u64)
            } else {
                indicatif::ProgressBar::hidden()
            },
        }
    }

    fn inc(&self) {
        #[cfg(feature = "progress")]
        self.bar.inc(1);
    }

    fn finish(&self) {
        #[cfg(feature = "progress")]
        self.bar.finish_and_clear();
    }
}

/// Runs targets over datasets. Defaults: concurrency 4, no output cache, retrieval k = 5,
/// 3 rate-limit retries (see [`rate_limit_retries`](Runner::rate_limit_retries)), progress bar
/// when stderr is a terminal.
#[must_use]
#[derive(Clone)]
pub struct Runner {
    concurrency: usize,
    evaluators: Vec<Arc<dyn Evaluator>>,
    cache: Option<OutputCache>,
    retrieval_k: usize,
    retry: RetryLayer,
    progress: bool,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("concurrency", &self.concurrency)
            .field(
                "evaluators",
                &self
                    .evaluators
                    .iter()
                    .map(|e| e.name().to_owned())
                    .collect::<Vec<_>>(),
            )
            .field("cache", &self.cache)
            .field("retrieval_k", &self.retrieval_k)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Default for Runner {
    fn default() -> Self {
        Self::new()
    }
}

impl Runner {
    /// A runner with the defaults.
    pub fn new() -> Self {
        Runner {
            concurrency: 4,
            evaluators: Vec::new(),
            cache: None,
            retrieval_k: 5,
            retry: rate_limit_retry(3),
            progress: true,
        }
    }

    /// Most cases in flight at once (default 4, at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Adds an evaluator.
    pub fn evaluator(mut self, evaluator: Arc<dyn Evaluator>) -> Self {
        self.evaluators.push(evaluator);
        self
    }

    /// Adds several evaluators.
    pub fn evaluators(mut self, evaluators: impl IntoIterator<Item = Arc<dyn Evaluator>>) -> Self {
        self.evaluators.extend(evaluators);
        self
    }

    /// Caches target outputs in this cache (default: none).
    pub fn cache(mut self, cache: OutputCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Retrieval cutoff `k` (default 5, at least 1).
    pub fn retrieval_k(mut self, k: usize) -> Self {
        self.retrieval_k = k.max(1);
        self
    }

    /// Retries after a rate-limit or overload error (default 3): each waits the provider's
    /// retry-after, at least one second; other errors are recorded at once. Replaces any
    /// [`retry`](Self::retry) set before.
    pub fn rate_limit_retries(mut self, n: u32) -> Self {
        self.retry = rate_limit_retry(n);
        self
    }

    /// Retries target calls with this layer's policy, backoff and budget instead (default:
    /// [`rate_limit_retries`](Self::rate_limit_retries)`(3)`).
    pub fn retry(mut self, retry: RetryLayer) -> Self {
        self.retry = retry;
        self
    }

    /// Whether to draw a progress bar when stderr is a terminal (default true). Without the
    /// `progress` feature no bar is ever drawn.
    pub fn progress(mut self, on: bool) -> Self {
        self.progress = on;
        self
    }

    /// Runs `target` over `dataset` and evaluates every output.
    pub async fn run(
        &self,
        name: &str,
        dataset: &Dataset,
        target: &dyn Target,
    ) -> Result<RunResult, EvalError> {
        let target_id = target.id();
        // Names the target in the retry layer's logs.
        let info = ModelInfo::new("llmkit-eval", target_id.to_string());
        let bar = Progress::new(
            self.progress && std::io::stderr().is_terminal(),
            dataset.len(),
        );
        let mut stats = RunStats::default();
        let mut results: Vec<(usize, CaseResult, usize)> =
            futures::stream::iter(dataset.cases().iter().enumerate())
                .map(|(index, case)| {
                    let (target_id, info, bar) = (&target_id, &info, &bar);
                    async move {
                        let (result, calls) = self.run_case(case, target, target_id, info).await;
                        bar.inc();
                        (index, result, calls)
                    }
                })
                .buffer_unordered(self.concurrency)
                .collect()
                .await;
        bar.finish();
        results.sort_by_key(|(i, _, _)| *i);
        let cases: Vec<CaseResult> = results
            .into_iter()
            .map(|(_, r, calls)| {
                stats.target_calls += calls;
                stats.cache_hits += usize::from(r.cached);
                r
            })
            .collect();
        let summary = Summary::from_cases(&cases);
        tracing::info!(
            run = name,
            dataset = %dataset.reference().version(),
            cases = summary.cases,
            passed = summary.passed,
            target_calls = stats.target_calls,
            cache_hits = stats.cache_hits,
            "eval run finished"
        );
        Ok(RunResult {
            name: name.to_owned(),
            dataset: dataset.reference(),
            target: target_id,
            finished_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            retrieval_k: self.retrieval_k,
            cases,
            summary,
            stats,
            judges: self.evaluators.iter().flat_map(|e| e.judges()).collect(),
            prompt_source: None,
        })
    }

    /// Output (cached or fresh) and scores of one case; also returns target calls made.
    async fn run_case(
        &self,
        case: &Case,
        target: &dyn Target,
        target_id: &TargetId,
        info: &ModelInfo,
    ) -> (CaseResult, usize) {
        let calls = AtomicUsize::new(0);
        let cached = self.cache.as_ref().and_then(|c| c.get(case, target_id));
        let was_cached = cached.is_some();
        let output = match cached {
            Some(o) => Ok(o),
            None => {
                let attempt = || async {
                    calls.fetch_add(1, Ordering::Relaxed);
                    let started = Instant::now();
                    let mut o = target.run(case).await?;
                    if o.latency.is_zero() {
                        // Microseconds: what the JSON results keep.
                        let micros =
                            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                        o.latency = Duration::from_micros(micros.max(1));
                    }
                    Ok(o)
                };
                self.retry
                    .call(info, &RequestMeta::default(), attempt)
                    .await
            }
        };
        let calls = calls.into_inner();
        let mut result = CaseResult {
            id: case.id.clone(),
            tags: case.tags.clone(),
            inputs: case.inputs.clone(),
            reference: case.reference.clone(),
            expected_ids: case.expected_ids.clone(),
            output: None,
            error: None,
            scores: Vec::new(),
            score: 0.0,
            passed: false,
            retrieval: None,
            cached: was_cached,
        };
        let output = match output {
            Ok(o) => o,
            Err(e) => {
                result.error = Some(e.to_string());
                return (result, calls);
            }
        };
        if let Some(cache) = self.cache.as_ref().filter(|_| !was_cached) {
            // Stored as soon as it exists, so an interrupted run keeps what it paid for. The
            // cache only saves money: a failed write is logged, never fails the run.
            if let Err(e) = cache.put(case, target_id, &output) {
                tracing::warn!(case = %case.id, error = %e, "eval output cache write failed");
            }
        }
        for evaluator in &self.evaluators {
            let named = match evaluator.evaluate(case, &output).await {
                Ok(s) => NamedScore {
                    evaluator: evaluator.name().to_owned(),
                    value: s.value,
                    passed: s.passed,
                    reason: s.reason,
                    error: false,
                },
                Err(e) => NamedScore {
                    evaluator: evaluator.name().to_owned(),
                    value: 0.0,
                    passed: false,
                    reason: format!("evaluator error: {e}"),
                    error: true,
                },
            };
            result.scores.push(named);
        }
        result.passed = result.scores.iter().all(|s| s.passed);
        result.score = if result.scores.is_empty() {
            1.0
        } else {
            result.scores.iter().map(|s| s.value).sum::<f64>() / result.scores.len() as f64
        };
        result.retrieval = case.expected_ids.as_ref().map(|expected| {
            RetrievalMetrics::compute(&output.retrieved_ids, expected, self.retrieval_k)
        });
        result.output = Some(output);
        (result, calls)
    }
}

/// The runner's default retry: only rate limits and overloads, `n` times, waiting the
/// provider's retry-after (uncapped: an eval run would rather wait than record a failure) and
/// at least one second; no retry budget, since a run's concurrency is already bounded.
fn rate_limit_retry(n: u32) -> RetryLayer {
    RetryLayer::new()
        .policy(
            RetryPolicy::new()
                .max_attempts(n.saturating_add(1))
                .max_retry_after(Duration::MAX)
                .retry_if(|e| matches!(e.kind(), ErrorKind::RateLimited | ErrorKind::Overloaded)),
        )
        .backoff(
            Backoff::exponential()
                .base(Duration::from_secs(1))
                .factor(1.0)
                .jitter(Jitter::None),
        )
        .no_budget()
}
