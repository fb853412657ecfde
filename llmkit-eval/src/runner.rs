//! The [`Runner`] runs a [`Target`] over a [`Dataset`] with bounded concurrency, caches target
//! outputs in an [`OutputCache`], applies the evaluators and returns a [`RunResult`].
//!
//! - A target is any async function from [`Case`] to [`TargetOutput`] ([`target_fn`]), or
//!   [`OutputsFile`]: outputs your application already produced, as JSON lines, so the
//!   harness runs without linking the application.
//! - Outputs are cached by (case id, case content hash, prompt version, model) — the
//!   [`TargetId`] names the last two — so re-running only the evaluators makes no target call.
//! - Rate-limited calls (`ErrorKind::RateLimited`/`Overloaded`) wait for the provider's
//!   retry-after (or one second) and retry, up to [`Runner::rate_limit_retries`] times.
//! - A progress bar is drawn only when stderr is a terminal, so CI logs stay clean.
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

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use llmkit_core::{ChatResponse, Cost, Decimal, ErrorKind, PromptRef, Usage, async_trait};
use serde::{Deserialize, Serialize};

use crate::dataset::{Case, Dataset, DatasetRef};
use crate::error::{EvalError, sha256_hex};
use crate::evaluator::Evaluator;
use crate::judge::JudgeInfo;
use crate::retrieval::RetrievalMetrics;

/// What a target produced for one case.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TargetOutput {
    /// The output text (for structured outputs, the JSON text).
    #[serde(alias = "output")]
    pub text: String,
    /// Tokens used.
    #[serde(default)]
    pub usage: Usage,
    /// Cost, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
    /// Wall time of the call (serialized as `latency_ms`).
    #[serde(default, rename = "latency_ms", with = "duration_ms")]
    pub latency: Duration,
    /// Ids of retrieved chunks or documents, for retrieval metrics.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retrieved_ids: Vec<String>,
    /// The prompt that produced the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<PromptRef>,
    /// The model that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

impl TargetOutput {
    /// An output with only text.
    pub fn text(text: impl Into<String>) -> Self {
        TargetOutput {
            text: text.into(),
            ..Default::default()
        }
    }

    /// Text, usage, cost, latency, prompt and model of a chat response; the request's
    /// `context_ids` are not on the response, so add retrieved ids with
    /// [`with_retrieved_ids`](Self::with_retrieved_ids).
    pub fn from_response(response: &ChatResponse) -> Self {
        TargetOutput {
            text: response.text(),
            usage: response.usage,
            cost: response.cost.clone(),
            latency: response.latency,
            retrieved_ids: Vec::new(),
            prompt: response.prompt.clone(),
            model: Some(response.model.clone()),
        }
    }

    /// Sets the retrieved ids.
    #[must_use]
    pub fn with_retrieved_ids<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        ids: I,
    ) -> Self {
        self.retrieved_ids = ids.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the latency.
    #[must_use]
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }
}

mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_micros() as f64 / 1e3)
    }

    /// Microsecond resolution, so a recorded latency survives a JSON round trip exactly.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = f64::deserialize(d)?;
        let micros = (ms * 1000.0).round();
        Ok(if micros.is_finite() && micros > 0.0 {
            Duration::from_micros(micros as u64)
        } else {
            Duration::ZERO
        })
    }
}

/// What identifies a target's outputs for caching: the prompt version and the model.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TargetId {
    /// Prompt version, e.g. `support_answer@2` or a full `id@version@hash`.
    pub prompt: String,
    /// Model, e.g. `gpt-4o-mini-2024-07-18`.
    pub model: String,
}

impl TargetId {
    /// A target id.
    pub fn new(prompt: impl Into<String>, model: impl Into<String>) -> Self {
        TargetId {
            prompt: prompt.into(),
            model: model.into(),
        }
    }
}

impl std::fmt::Display for TargetId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} on {}", self.prompt, self.model)
    }
}

/// The system under test: one output per case.
///
/// Implementors provide [`id`](Target::id) and [`run`](Target::run). Closures become targets
/// with [`target_fn`].
#[async_trait]
pub trait Target: Send + Sync {
    /// Prompt version and model, for the output cache and reports.
    fn id(&self) -> TargetId;

    /// Produces the output for one case.
    async fn run(&self, case: &Case) -> llmkit_core::Result<TargetOutput>;
}

type TargetFn = dyn Fn(Case) -> BoxFuture<'static, llmkit_core::Result<TargetOutput>> + Send + Sync;

/// A closure target; built by [`target_fn`].
pub struct FnTarget {
    id: TargetId,
    f: Box<TargetFn>,
}

impl std::fmt::Debug for FnTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnTarget")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Any async function from a case to an output, typically rendering a prompt and calling a
/// model pipeline.
pub fn target_fn<F, Fut>(id: TargetId, f: F) -> Arc<dyn Target>
where
    F: Fn(Case) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = llmkit_core::Result<TargetOutput>> + Send + 'static,
{
    Arc::new(FnTarget {
        id,
        f: Box::new(move |case| Box::pin(f(case))),
    })
}

#[async_trait]
impl Target for FnTarget {
    fn id(&self) -> TargetId {
        self.id.clone()
    }
    async fn run(&self, case: &Case) -> llmkit_core::Result<TargetOutput> {
        (self.f)(case.clone()).await
    }
}

/// One row of an outputs file.
#[derive(Debug, Deserialize)]
struct OutputRow {
    id: String,
    #[serde(flatten)]
    output: TargetOutput,
}

/// Outputs produced elsewhere (by the application, in CI), one JSON object per line:
/// `{"id": "case-1", "output": "...", "latency_ms": 812, "retrieved_ids": ["d1"], "usage": {...}}`.
/// Only `id` and `output` (or `text`) are required. A case without a row fails as a target
/// error.
#[derive(Debug, Clone)]
pub struct OutputsFile {
    id: TargetId,
    outputs: HashMap<String, TargetOutput>,
}

impl OutputsFile {
    /// Loads an outputs file. The target id takes the prompt and model of the first rows that
    /// name them, else `outputs@<sha256 prefix>` on model `recorded`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, EvalError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// Parses outputs-file text; `name` appears in errors.
    pub fn parse(name: &str, text: &str) -> Result<Self, EvalError> {
        let mut outputs = HashMap::new();
        let (mut prompt, mut model): (Option<String>, Option<String>) = (None, None);
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            if line.trim().is_empty() {
                continue;
            }
            let row: OutputRow =
                serde_json::from_str(line).map_err(|e| EvalError::format(name, line_no, e))?;
            if prompt.is_none() {
                prompt = row
                    .output
                    .prompt
                    .as_ref()
                    .map(|p| format!("{}@{}", p.id, p.version));
            }
            if model.is_none() {
                model.clone_from(&row.output.model);
            }
            if outputs.insert(row.id.clone(), row.output).is_some() {
                return Err(EvalError::format(
                    name,
                    line_no,
                    format!("duplicate output for case `{}`", row.id),
                ));
            }
        }
        let prompt = prompt.unwrap_or_else(|| {
            let hash = sha256_hex(text.as_bytes());
            format!("outputs@{}", hash.get(..12).unwrap_or(&hash))
        });
        let model = model.unwrap_or_else(|| "recorded".into());
        Ok(OutputsFile {
            id: TargetId::new(prompt, model),
            outputs,
        })
    }

    /// Number of outputs.
    pub fn len(&self) -> usize {
        self.outputs.len()
    }

    /// Whether the file held no output.
    pub fn is_empty(&self) -> bool {
        self.outputs.is_empty()
    }
}

#[async_trait]
impl Target for OutputsFile {
    fn id(&self) -> TargetId {
        self.id.clone()
    }
    async fn run(&self, case: &Case) -> llmkit_core::Result<TargetOutput> {
        self.outputs.get(&case.id).cloned().ok_or_else(|| {
            llmkit_core::Error::new(
                ErrorKind::NotFound,
                format!("outputs file has no row for case `{}`", case.id),
            )
        })
    }
}

/// A directory of cached target outputs, one small JSON file per (case id, case content hash,
/// prompt version, model). Safe to share between runs; delete the directory to invalidate.
#[derive(Debug, Clone)]
pub struct OutputCache {
    dir: PathBuf,
}

impl OutputCache {
    /// Opens (and creates) the cache directory.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, EvalError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| EvalError::io(&dir, e))?;
        Ok(OutputCache { dir })
    }

    fn path(&self, case: &Case, target: &TargetId) -> PathBuf {
        let key = serde_json::json!([case.id, case.content_hash(), target.prompt, target.model]);
        self.dir
            .join(format!("{}.json", sha256_hex(key.to_string().as_bytes())))
    }

    /// The cached output, if any (an unreadable entry counts as a miss).
    pub fn get(&self, case: &Case, target: &TargetId) -> Option<TargetOutput> {
        let text = std::fs::read_to_string(self.path(case, target)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Stores an output; written to a temporary file and renamed so readers never see half.
    pub fn put(
        &self,
        case: &Case,
        target: &TargetId,
        output: &TargetOutput,
    ) -> Result<(), EvalError> {
        let path = self.path(case, target);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let text = serde_json::to_string(output)
            .map_err(|e| EvalError::format(path.display().to_string(), 1, e))?;
        std::fs::write(&tmp, text).map_err(|e| EvalError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| EvalError::io(&path, e))
    }

    /// Number of cached outputs.
    pub fn len(&self) -> usize {
        std::fs::read_dir(&self.dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                    .count()
            })
            .unwrap_or(0)
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One evaluator's score on one case, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedScore {
    /// Evaluator name.
    pub evaluator: String,
    /// Value in `0..=1`.
    pub value: f64,
    /// Passed.
    pub passed: bool,
    /// Why.
    pub reason: String,
    /// The evaluator itself failed (e.g. the judge model errored); counted as a fail.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub error: bool,
}

/// Everything recorded for one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    /// Case id.
    pub id: String,
    /// Case tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The target's output, unless it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<TargetOutput>,
    /// The target's error, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Every evaluator's score.
    #[serde(default)]
    pub scores: Vec<NamedScore>,
    /// Mean of the scores' values (0 on a target error, 1 with no evaluators).
    pub score: f64,
    /// No target error and every evaluator passed.
    pub passed: bool,
    /// Retrieval metrics, when the case expects ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrieval: Option<RetrievalMetrics>,
    /// The output came from the cache.
    #[serde(default)]
    pub cached: bool,
}

/// Pass rate and mean score of a group of cases (a tag, an evaluator).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct GroupStats {
    /// Cases in the group.
    pub cases: usize,
    /// Cases that passed.
    pub passed: usize,
    /// `passed / cases`.
    pub pass_rate: f64,
    /// Mean score.
    pub mean_score: f64,
}

impl GroupStats {
    fn from_pairs(pairs: impl IntoIterator<Item = (bool, f64)>) -> Self {
        let mut g = GroupStats::default();
        let mut sum = 0.0;
        for (passed, score) in pairs {
            g.cases += 1;
            g.passed += usize::from(passed);
            sum += score;
        }
        if g.cases > 0 {
            g.pass_rate = g.passed as f64 / g.cases as f64;
            g.mean_score = sum / g.cases as f64;
        }
        g
    }
}

/// Aggregates of a run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Cases run.
    pub cases: usize,
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed (target errors included).
    pub failed: usize,
    /// Cases whose target failed.
    pub target_errors: usize,
    /// Scores whose evaluator failed.
    pub evaluator_errors: usize,
    /// `passed / cases`.
    pub pass_rate: f64,
    /// Mean case score.
    pub mean_score: f64,
    /// Input tokens, summed.
    pub input_tokens: u64,
    /// Output tokens, summed.
    pub output_tokens: u64,
    /// Known costs, summed.
    pub cost_usd: Decimal,
    /// Cases whose cost was unknown.
    pub cost_unknown: usize,
    /// Median latency in milliseconds (nearest rank).
    pub latency_p50_ms: f64,
    /// 95th-percentile latency in milliseconds (nearest rank).
    pub latency_p95_ms: f64,
    /// Per-evaluator pass rate and mean.
    pub evaluators: BTreeMap<String, GroupStats>,
    /// Per-tag pass rate and mean.
    pub tags: BTreeMap<String, GroupStats>,
    /// Mean retrieval metrics over cases that expect ids, reported apart from generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrieval: Option<RetrievalMetrics>,
}

impl Summary {
    /// Cost for humans: `$0.0123`, `$0.0123 (2 of 30 unknown)`, or `unknown` when no case
    /// reported one (never a misleading `$0`).
    pub fn cost_text(&self) -> String {
        if self.cases > 0 && self.cost_unknown >= self.cases {
            "unknown".into()
        } else if self.cost_unknown > 0 {
            format!(
                "${} ({} of {} unknown)",
                self.cost_usd, self.cost_unknown, self.cases
            )
        } else {
            format!("${}", self.cost_usd)
        }
    }

    /// Aggregates case results.
    pub fn from_cases(cases: &[CaseResult]) -> Self {
        let overall = GroupStats::from_pairs(cases.iter().map(|c| (c.passed, c.score)));
        let mut s = Summary {
            cases: overall.cases,
            passed: overall.passed,
            failed: overall.cases - overall.passed,
            pass_rate: overall.pass_rate,
            mean_score: overall.mean_score,
            ..Default::default()
        };
        let mut latencies = Vec::new();
        let mut by_eval: BTreeMap<String, Vec<(bool, f64)>> = BTreeMap::new();
        let mut by_tag: BTreeMap<String, Vec<(bool, f64)>> = BTreeMap::new();
        for c in cases {
            s.target_errors += usize::from(c.error.is_some());
            s.evaluator_errors += c.scores.iter().filter(|x| x.error).count();
            if let Some(o) = &c.output {
                s.input_tokens += o.usage.input_tokens;
                s.output_tokens += o.usage.output_tokens;
                match &o.cost {
                    Some(cost) => s.cost_usd += cost.total_usd,
                    None => s.cost_unknown += 1,
                }
                latencies.push(o.latency.as_secs_f64() * 1000.0);
            }
            for x in &c.scores {
                by_eval
                    .entry(x.evaluator.clone())
                    .or_default()
                    .push((x.passed, x.value));
            }
            for t in &c.tags {
                by_tag
                    .entry(t.clone())
                    .or_default()
                    .push((c.passed, c.score));
            }
        }
        s.evaluators = by_eval
            .into_iter()
            .map(|(k, v)| (k, GroupStats::from_pairs(v)))
            .collect();
        s.tags = by_tag
            .into_iter()
            .map(|(k, v)| (k, GroupStats::from_pairs(v)))
            .collect();
        latencies.sort_by(f64::total_cmp);
        s.latency_p50_ms = nearest_rank(&latencies, 0.50);
        s.latency_p95_ms = nearest_rank(&latencies, 0.95);
        s.retrieval = RetrievalMetrics::mean(cases.iter().filter_map(|c| c.retrieval.as_ref()));
        s
    }
}

fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted.get(rank - 1).copied().unwrap_or(0.0)
}

/// Target calls and cache use of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunStats {
    /// Calls made to the target (retries included).
    pub target_calls: usize,
    /// Outputs served from the cache.
    pub cache_hits: usize,
}

/// A complete run: which dataset and target, every case, the summary. Serialize it with
/// [`save`](RunResult::save) to compare or gate it later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Run name (e.g. `support@v2`).
    pub name: String,
    /// Dataset name, hash and size.
    pub dataset: DatasetRef,
    /// Target prompt version and model.
    pub target: TargetId,
    /// Unix seconds when the run finished.
    pub finished_at: u64,
    /// Retrieval cutoff used.
    pub retrieval_k: usize,
    /// Per-case results in dataset order.
    pub cases: Vec<CaseResult>,
    /// Aggregates.
    pub summary: Summary,
    /// Target calls and cache hits.
    pub stats: RunStats,
    /// LLM judges used, with their calibration.
    #[serde(default)]
    pub judges: Vec<JudgeInfo>,
}

impl CaseResult {
    /// Why the case failed: the target error, or each failing evaluator's `name: reason`
    /// joined by `; ` (empty when it passed).
    pub fn failure_reason(&self) -> String {
        if let Some(e) = &self.error {
            return e.clone();
        }
        self.scores
            .iter()
            .filter(|x| !x.passed)
            .map(|x| format!("{}: {}", x.evaluator, x.reason))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl RunResult {
    /// The result of a case.
    pub fn case(&self, id: &str) -> Option<&CaseResult> {
        self.cases.iter().find(|c| c.id == id)
    }

    /// Writes the run as pretty JSON.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), EvalError> {
        crate::error::write_json_file(path.as_ref(), self)
    }

    /// Reads a run written by [`save`](Self::save).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, EvalError> {
        crate::error::read_json_file(path.as_ref())
    }
}

/// Runs targets over datasets. Defaults: concurrency 4, no output cache, retrieval k = 5,
/// 3 rate-limit retries, progress bar when stderr is a terminal.
#[must_use]
#[derive(Clone)]
pub struct Runner {
    concurrency: usize,
    evaluators: Vec<Arc<dyn Evaluator>>,
    cache: Option<OutputCache>,
    retrieval_k: usize,
    rate_limit_retries: u32,
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
            rate_limit_retries: 3,
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

    /// Retries after a rate-limit or overload error (default 3).
    pub fn rate_limit_retries(mut self, n: u32) -> Self {
        self.rate_limit_retries = n;
        self
    }

    /// Whether to draw a progress bar when stderr is a terminal (default true).
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
        let bar = if self.progress && std::io::stderr().is_terminal() {
            indicatif::ProgressBar::new(dataset.len() as u64)
        } else {
            indicatif::ProgressBar::hidden()
        };
        let mut stats = RunStats::default();
        let mut results: Vec<(usize, CaseResult, usize)> =
            futures::stream::iter(dataset.cases().iter().enumerate())
                .map(|(index, case)| {
                    let target_id = &target_id;
                    let bar = &bar;
                    async move {
                        let (result, calls) = self.run_case(case, target, target_id).await;
                        bar.inc(1);
                        (index, result, calls)
                    }
                })
                .buffer_unordered(self.concurrency)
                .collect()
                .await;
        bar.finish_and_clear();
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
        })
    }

    /// Output (cached or fresh) and scores of one case; also returns target calls made.
    async fn run_case(
        &self,
        case: &Case,
        target: &dyn Target,
        target_id: &TargetId,
    ) -> (CaseResult, usize) {
        let mut calls = 0;
        let cached = self.cache.as_ref().and_then(|c| c.get(case, target_id));
        let was_cached = cached.is_some();
        let output = match cached {
            Some(o) => Ok(o),
            None => {
                let mut attempt = 0;
                loop {
                    calls += 1;
                    let started = Instant::now();
                    match target.run(case).await {
                        Ok(mut o) => {
                            if o.latency.is_zero() {
                                // Microseconds: what the JSON results keep.
                                let micros = u64::try_from(started.elapsed().as_micros())
                                    .unwrap_or(u64::MAX);
                                o.latency = Duration::from_micros(micros.max(1));
                            }
                            break Ok(o);
                        }
                        Err(e)
                            if attempt < self.rate_limit_retries
                                && matches!(
                                    e.kind(),
                                    ErrorKind::RateLimited | ErrorKind::Overloaded
                                ) =>
                        {
                            attempt += 1;
                            tokio::time::sleep(e.retry_after().unwrap_or(Duration::from_secs(1)))
                                .await;
                        }
                        Err(e) => break Err(e),
                    }
                }
            }
        };
        let mut result = CaseResult {
            id: case.id.clone(),
            tags: case.tags.clone(),
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
