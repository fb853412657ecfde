//! The support agent of the examples, as the service runs it: grounded answers with citations
//! from the policy corpus (`examples/rag_support_agent.rs`), a structured refund verdict from the
//! versioned `refund_verdict` prompt (`examples/structured_output.rs`), and the human-review
//! gate (`llmkit::graph::review`) for verdicts the model is not sure of. Guards sit in the model
//! stack, so every call this agent makes passes them.

use std::sync::Arc;

use llmkit::core::prompt::PromptRegistry;
use llmkit::core::structured::Structured;
use llmkit::core::{ChatModel, Error, ErrorKind, PromptRef, Result};
use llmkit::graph::review::{HitlGate, MemoryReviewQueue, ReviewQueue, Thresholds, Verdict};
use llmkit::rag::{Chunker, Document, GroundedAnswerer, Index, UnsupportedPolicy, load_dir};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The refund decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Refund.
    Approve,
    /// No refund.
    Reject,
    /// A human decides.
    Escalate,
}

/// The structured verdict the model returns.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RefundVerdict {
    /// What to do.
    pub decision: Decision,
    /// How sure the model is, from 0 to 1.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub confidence: f64,
    /// Policy clauses behind the decision.
    pub reasons: Vec<String>,
}

/// `POST /v1/support/answer` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AskRequest {
    /// The end user (decides the canary bucket; never logged in clear).
    pub user_id: String,
    /// The customer's question.
    pub question: String,
    /// Set for refund requests: the service asks for a verdict too.
    #[serde(default)]
    pub refund: Option<RefundFacts>,
}

/// Facts the application computed (never taken from the model).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundFacts {
    /// Days since delivery.
    pub days_since_purchase: u32,
}

/// A citation: which paragraph of which policy supports a claim.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Citation {
    /// Chunk id.
    pub chunk_id: String,
    /// Source document.
    pub doc_id: String,
    /// Byte range in the document.
    pub start: usize,
    /// End of the byte range.
    pub end: usize,
    /// Whether the claim's words are found in the chunk.
    pub supported: bool,
}

/// The verdict with the gate's outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerdictOut {
    /// The model's verdict.
    pub verdict: RefundVerdict,
    /// The prompt that produced it (`id@version@hash`).
    pub prompt: String,
    /// `auto_approved`, `auto_rejected` or `pending_review`.
    pub outcome: String,
    /// Review item id when a human must decide.
    pub review_id: Option<String>,
}

/// `POST /v1/support/answer` response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AskResponse {
    /// The request id (also the `x-request-id` header).
    pub request_id: String,
    /// `production` or `canary`.
    pub prompt_label: String,
    /// The answer text (or a refusal).
    pub answer: String,
    /// Whether the agent refused (the sources do not support an answer).
    pub refused: bool,
    /// Citations behind the answer.
    pub citations: Vec<Citation>,
    /// The refund verdict, for refund requests.
    pub verdict: Option<VerdictOut>,
}

/// The agent's fixed parts: prompts, knowledge base, review gate.
pub struct Agent {
    prompts: PromptRegistry,
    refund_policy: String,
    index: Arc<Index>,
    gate: HitlGate,
    queue: Arc<MemoryReviewQueue>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent").finish_non_exhaustive()
    }
}

fn config_err(what: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Config, what.to_string())
}

impl Agent {
    /// Loads prompts and policies and indexes them. Embeddings are the scripted model's hashed
    /// bag of words (offline, deterministic), as in `examples/rag_support_agent.rs`.
    pub async fn load(
        prompts_dir: &std::path::Path,
        policies_dir: &std::path::Path,
        review: &crate::config::Review,
    ) -> Result<Agent> {
        let prompts = PromptRegistry::load_dir(prompts_dir)
            .map_err(|e| config_err(format!("prompts in {}: {e}", prompts_dir.display())))?;
        let mut docs: Vec<Document> = load_dir(policies_dir, "*.{md,html}")
            .map_err(|e| config_err(format!("policies in {}: {e}", policies_dir.display())))?;
        for doc in &mut docs {
            if let Some(stem) = std::path::Path::new(&doc.id).file_stem() {
                doc.id = stem.to_string_lossy().into_owned();
            }
        }
        let refund_policy = docs
            .iter()
            .find(|d| d.id == "refunds")
            .map(|d| d.text.clone())
            .ok_or_else(|| config_err("the policies have no `refunds` document"))?;
        let embedder = Arc::new(
            llmkit::core::ScriptedModel::builder()
                .embedding_dimensions(512)
                .build(),
        );
        let index =
            Arc::new(Index::new(embedder).with_chunker(Chunker::new().max_size(40).overlap(0)));
        index.sync(docs).await?;
        let queue = Arc::new(MemoryReviewQueue::new());
        let gate = HitlGate::new(
            Thresholds::new(review.approve_at, review.reject_below)?,
            queue.clone(),
        )
        .sample_rate(0.0)?;
        Ok(Agent {
            prompts,
            refund_policy,
            index,
            gate,
            queue,
        })
    }

    /// The review queue (for the review endpoints).
    pub fn queue(&self) -> &Arc<MemoryReviewQueue> {
        &self.queue
    }

    /// The prompt a label resolves to, for logs and metrics.
    pub fn prompt_ref(&self, label: &str) -> Result<PromptRef> {
        let rendered = self
            .prompts
            .render(
                &format!("refund_verdict@{label}"),
                serde_json::json!({"policy": "", "request": "", "days_since_purchase": 0}),
            )
            .map_err(config_err)?;
        Ok(rendered.prompt_ref)
    }

    /// Answers one request with `model` (the service's full stack). `label` is the prompt label
    /// the canary chose; `request_id` names the review item.
    pub async fn ask(
        &self,
        model: Arc<dyn ChatModel>,
        request: &AskRequest,
        label: &str,
        request_id: &str,
    ) -> Result<AskResponse> {
        let answerer = GroundedAnswerer::new(self.index.clone(), model.clone())
            .top_k(3)
            .policy(UnsupportedPolicy::Refuse);
        let report = answerer.answer(&request.question).await?;
        let mut citations = Vec::new();
        for checked in &report.claims {
            for id in &checked.claim.chunk_ids {
                if let Some(chunk) = self.index.chunk(id) {
                    citations.push(Citation {
                        chunk_id: id.clone(),
                        doc_id: chunk.doc_id.clone(),
                        start: chunk.start,
                        end: chunk.end,
                        supported: checked.supported,
                    });
                }
            }
        }
        let verdict = match &request.refund {
            None => None,
            Some(facts) => Some(
                self.verdict(&*model, request, facts, label, request_id)
                    .await?,
            ),
        };
        Ok(AskResponse {
            request_id: request_id.to_owned(),
            prompt_label: label.to_owned(),
            answer: report.answer,
            refused: report.refused,
            citations,
            verdict,
        })
    }

    async fn verdict(
        &self,
        model: &dyn ChatModel,
        request: &AskRequest,
        facts: &RefundFacts,
        label: &str,
        request_id: &str,
    ) -> Result<VerdictOut> {
        let rendered = self
            .prompts
            .render(
                &format!("refund_verdict@{label}"),
                serde_json::json!({
                    "policy": self.refund_policy,
                    "request": request.question,
                    "days_since_purchase": facts.days_since_purchase,
                }),
            )
            .map_err(config_err)?;
        let prompt = rendered.prompt_ref.to_string();
        let generated = Structured::<RefundVerdict>::new()
            .max_attempts(2)
            .generate(model, rendered.into_request())
            .await?;
        let verdict = generated.value;
        // One score for the two-band gate: how strongly the model says "refund".
        let score = match verdict.decision {
            Decision::Approve => verdict.confidence,
            Decision::Reject => 1.0 - verdict.confidence,
            Decision::Escalate => f64::NAN,
        };
        let decided = self
            .gate
            .decide(
                request_id,
                score,
                serde_json::json!({"question": request.question, "days_since_purchase": facts.days_since_purchase, "verdict": verdict, "prompt": prompt}),
            )
            .await?;
        let (outcome, review_id) = match decided.verdict {
            Verdict::Approve => ("auto_approved", None),
            Verdict::Reject => ("auto_rejected", None),
            Verdict::Escalate => ("pending_review", Some(request_id.to_owned())),
        };
        Ok(VerdictOut {
            verdict,
            prompt,
            outcome: outcome.to_owned(),
            review_id,
        })
    }

    /// Items waiting for a human.
    pub async fn pending_reviews(&self) -> Result<Vec<llmkit::graph::review::ReviewItem>> {
        self.queue.pending().await
    }

    /// Records a human's decision.
    pub async fn label_review(&self, id: &str, label: &str) -> Result<()> {
        self.queue.label(id, label).await
    }
}
