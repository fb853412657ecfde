//! The system under test: a [`Target`] produces one [`TargetOutput`] per [`Case`].
//!
//! - [`target_fn`]: any async function from a case to an output (typically a prompt rendered
//!   and sent through a model pipeline).
//! - [`OutputsFile`]: outputs an application already produced, as JSON lines, so the harness
//!   runs without linking the application.
//! - [`TargetId`] (prompt version and model) names a target's outputs for the output cache and
//!   reports.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use llmkit_core::{ChatResponse, Cost, ErrorKind, PromptRef, Usage, async_trait};
use serde::{Deserialize, Serialize};

use crate::dataset::Case;
use crate::error::{EvalError, sha256_hex};

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
    /// The request id of the call (`RequestMeta::request_id`), so a case leads to its trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The provider's id for the call, for the provider's own logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_request_id: Option<String>,
}

impl TargetOutput {
    /// An output with only text.
    pub fn text(text: impl Into<String>) -> Self {
        TargetOutput {
            text: text.into(),
            ..Default::default()
        }
    }

    /// Text, usage, cost, latency, prompt, model and request ids of a chat response; the request's
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
            request_id: response.request_id.clone(),
            provider_request_id: response.provider_request_id.clone(),
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
