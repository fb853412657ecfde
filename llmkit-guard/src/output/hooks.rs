//! Hooks for checks that need a model or a corpus: moderation and grounding.
//!
//! - [`Moderator`]: a provider's moderation endpoint (or any classifier of harmful content)
//!   behind a trait; [`ModerationGuard`] turns its verdict into a [`Decision`].
//! - [`GroundingCheck`]: "is this answer supported by the sources it was given?". The RAG crate
//!   implements it with its citations and retrieved chunks; [`GroundingGuard`] blocks or flags
//!   answers below a support score. [`LexicalGrounding`] is a small built-in implementation
//!   (word overlap with the request's non-system text) for tests and offline examples.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use llmkit_core::{ChatRequest, Message};
//! use llmkit_guard::{Guard, GuardContext};
//! use llmkit_guard::output::hooks::{GroundingGuard, LexicalGrounding};
//!
//! let req = ChatRequest::new(vec![Message::user("Context: refunds are accepted within 30 days of delivery.")]);
//! let guard = GroundingGuard::new(Arc::new(LexicalGrounding::new()));
//! let ctx = GuardContext::output().with_request(&req);
//! assert!(guard.check("Refunds are accepted within 30 days.", &ctx).await.is_allow());
//! assert!(guard.check("Refunds are instant and include a free laptop gift.", &ctx).await.is_block());
//! # })
//! ```

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use llmkit_core::{ChatRequest, Result, Role};
use serde::{Deserialize, Serialize};

use crate::guard::{Action, Decision, Guard, GuardContext, Verdict};
use crate::injection::scorer::sentence_ranges;

/// A moderation verdict.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ModerationResult {
    /// Whether the moderator flagged the text.
    pub flagged: bool,
    /// Category scores (`violence`, `self-harm`, ...), each in `0.0..=1.0`.
    pub categories: Vec<(String, f32)>,
}

/// A moderation endpoint. Implementors provide [`name`](Moderator::name) and
/// [`moderate`](Moderator::moderate).
#[async_trait]
pub trait Moderator: Send + Sync {
    /// A short name for reasons and traces.
    fn name(&self) -> &str;

    /// Moderates `text`.
    async fn moderate(&self, text: &str) -> Result<ModerationResult>;
}

/// Blocks (or flags) text a [`Moderator`] flags or scores at or above the threshold.
/// Defaults: threshold 0.5, action [`Action::Block`], fail-open (a moderator error flags the
/// text instead of blocking it; see [`ModerationGuard::fail_closed`]).
#[must_use]
#[derive(Clone)]
pub struct ModerationGuard {
    moderator: Arc<dyn Moderator>,
    threshold: f32,
    action: Action,
    fail_closed: bool,
}

impl fmt::Debug for ModerationGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModerationGuard")
            .field("moderator", &self.moderator.name())
            .field("threshold", &self.threshold)
            .finish()
    }
}

impl ModerationGuard {
    /// A guard around `moderator`.
    pub fn new(moderator: Arc<dyn Moderator>) -> Self {
        ModerationGuard {
            moderator,
            threshold: 0.5,
            action: Action::Block,
            fail_closed: false,
        }
    }

    /// Sets the category score threshold.
    pub fn threshold(mut self, t: f32) -> Self {
        self.threshold = t;
        self
    }

    /// Sets the action ([`Action::Redact`] behaves like block: moderation cannot be redacted).
    pub fn action(mut self, action: Action) -> Self {
        self.action = action;
        self
    }

    /// Blocks when the moderator fails (default: flag and continue).
    pub fn fail_closed(mut self, on: bool) -> Self {
        self.fail_closed = on;
        self
    }
}

fn with_action(mut d: Decision, action: Action) -> Decision {
    if d.is_block() && action == Action::Flag {
        d.verdict = Verdict::Flag;
    }
    d
}

#[async_trait]
impl Guard for ModerationGuard {
    fn name(&self) -> &str {
        "moderation"
    }

    async fn check(&self, text: &str, _ctx: &GuardContext<'_>) -> Decision {
        match self.moderator.moderate(text).await {
            Ok(r) => {
                let score = r.categories.iter().map(|c| c.1).fold(0.0, f32::max);
                let hits: Vec<String> = r
                    .categories
                    .iter()
                    .filter(|c| c.1 >= self.threshold)
                    .map(|c| format!("{} ({:.2})", c.0, c.1))
                    .collect();
                if !r.flagged && hits.is_empty() {
                    let mut d = Decision::allow("moderation");
                    d.score = score;
                    return d;
                }
                let mut d = Decision::block("moderation", score.max(0.5), "");
                d.reasons = if hits.is_empty() {
                    vec![format!("flagged by {}", self.moderator.name())]
                } else {
                    hits
                };
                with_action(d, self.action)
            }
            Err(e) => {
                let mut d = Decision::block(
                    "moderation",
                    0.0,
                    format!("moderator {} failed: {}", self.moderator.name(), e.kind()),
                );
                if !self.fail_closed {
                    d.verdict = Verdict::Flag;
                }
                d
            }
        }
    }
}

/// How well an answer is supported by its sources.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GroundingReport {
    /// Fraction of the answer supported by the sources, in `0.0..=1.0`.
    pub score: f32,
    /// The unsupported claims or sentences, for the reasons.
    pub unsupported: Vec<String>,
}

/// Decides whether an answer is grounded in the sources behind `request` (retrieved chunks in
/// the prompt, or looked up by `request.meta.context_ids`). The RAG crate implements it.
/// Implementors provide [`check_grounding`](GroundingCheck::check_grounding); `name` defaults
/// to `grounding`.
#[async_trait]
pub trait GroundingCheck: Send + Sync {
    /// A short name for reasons and traces.
    fn name(&self) -> &str {
        "grounding"
    }

    /// Scores `answer` against the sources of `request`.
    async fn check_grounding(&self, answer: &str, request: &ChatRequest)
    -> Result<GroundingReport>;
}

/// Blocks (or flags) answers whose grounding score is below a minimum. Defaults: minimum 0.7,
/// action [`Action::Block`]; without a request in the context it flags "nothing to ground
/// against"; when the check fails it flags.
#[must_use]
#[derive(Clone)]
pub struct GroundingGuard {
    check: Arc<dyn GroundingCheck>,
    min_score: f32,
    action: Action,
}

impl fmt::Debug for GroundingGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroundingGuard")
            .field("check", &self.check.name())
            .field("min_score", &self.min_score)
            .finish()
    }
}

impl GroundingGuard {
    /// A guard around `check`.
    pub fn new(check: Arc<dyn GroundingCheck>) -> Self {
        GroundingGuard {
            check,
            min_score: 0.7,
            action: Action::Block,
        }
    }

    /// Sets the minimum support score.
    pub fn min_score(mut self, s: f32) -> Self {
        self.min_score = s;
        self
    }

    /// Sets the action ([`Action::Redact`] behaves like block).
    pub fn action(mut self, action: Action) -> Self {
        self.action = action;
        self
    }
}

#[async_trait]
impl Guard for GroundingGuard {
    fn name(&self) -> &str {
        "grounding"
    }

    async fn check(&self, text: &str, ctx: &GuardContext<'_>) -> Decision {
        let Some(req) = ctx.request else {
            let mut d =
                Decision::block("grounding", 0.0, "no request to ground the answer against");
            d.verdict = Verdict::Flag;
            return d;
        };
        match self.check.check_grounding(text, req).await {
            Ok(r) if r.score >= self.min_score => {
                let mut d = Decision::allow("grounding");
                d.score = 1.0 - r.score;
                d
            }
            Ok(r) => {
                let mut d = Decision::block(
                    "grounding",
                    1.0 - r.score,
                    format!("support {:.2} < {:.2}", r.score, self.min_score),
                );
                d.reasons.extend(
                    r.unsupported.iter().take(3).map(|s| {
                        format!("unsupported: {}", s.chars().take(80).collect::<String>())
                    }),
                );
                with_action(d, self.action)
            }
            Err(e) => {
                let mut d = Decision::block(
                    "grounding",
                    0.0,
                    format!("grounding check {} failed: {}", self.check.name(), e.kind()),
                );
                d.verdict = Verdict::Flag;
                d
            }
        }
    }
}

/// A lexical grounding check: an answer sentence is supported when at least `min_overlap` of
/// its content words (four letters or more) appear in the request's user and tool text. Crude
/// (paraphrases fail, copied nonsense passes) but deterministic and offline. Default overlap:
/// 0.6.
#[derive(Debug, Clone)]
#[must_use]
pub struct LexicalGrounding {
    min_overlap: f32,
}

impl Default for LexicalGrounding {
    fn default() -> Self {
        LexicalGrounding::new()
    }
}

impl LexicalGrounding {
    /// The default overlap.
    pub fn new() -> Self {
        LexicalGrounding { min_overlap: 0.6 }
    }

    /// Sets the overlap fraction a sentence needs.
    pub fn min_overlap(mut self, f: f32) -> Self {
        self.min_overlap = f;
        self
    }
}

fn content_words(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| {
            w.chars().count() >= 4 || w.chars().all(|c| c.is_ascii_digit()) && !w.is_empty()
        })
        .map(str::to_lowercase)
}

#[async_trait]
impl GroundingCheck for LexicalGrounding {
    fn name(&self) -> &str {
        "lexical"
    }

    async fn check_grounding(
        &self,
        answer: &str,
        request: &ChatRequest,
    ) -> Result<GroundingReport> {
        let mut source: HashSet<String> = HashSet::new();
        for m in request.messages.iter().filter(|m| m.role != Role::System) {
            source.extend(content_words(&m.text()));
            for part in &m.content {
                if let llmkit_core::ContentPart::ToolResult(r) = part {
                    source.extend(content_words(&r.content));
                }
            }
        }
        let mut total = 0usize;
        let mut supported = 0usize;
        let mut unsupported = Vec::new();
        for r in sentence_ranges(answer) {
            let sentence = answer.get(r).unwrap_or("").trim();
            let words: Vec<String> = content_words(sentence).collect();
            if words.is_empty() {
                continue;
            }
            total += 1;
            let hit = words.iter().filter(|w| source.contains(*w)).count();
            if hit as f32 >= self.min_overlap * words.len() as f32 {
                supported += 1;
            } else {
                unsupported.push(sentence.to_owned());
            }
        }
        let score = if total == 0 {
            1.0
        } else {
            supported as f32 / total as f32
        };
        Ok(GroundingReport { score, unsupported })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmkit_core::{Error, ErrorKind};

    struct Fixed(std::result::Result<ModerationResult, ErrorKind>);

    #[async_trait]
    impl Moderator for Fixed {
        fn name(&self) -> &str {
            "fixed"
        }
        async fn moderate(&self, _text: &str) -> Result<ModerationResult> {
            self.0.clone().map_err(|k| Error::new(k, "down"))
        }
    }

    #[tokio::test]
    async fn moderation_paths() {
        let ctx = GuardContext::output();
        let flagged = ModerationResult {
            flagged: true,
            categories: vec![("violence".into(), 0.92), ("hate".into(), 0.1)],
        };
        let g = ModerationGuard::new(Arc::new(Fixed(Ok(flagged.clone()))));
        let d = g.check("x", &ctx).await;
        assert!(d.is_block());
        assert_eq!(d.reasons, vec!["violence (0.92)".to_owned()]);
        let g = ModerationGuard::new(Arc::new(Fixed(Ok(flagged)))).action(Action::Flag);
        assert_eq!(g.check("x", &ctx).await.verdict, Verdict::Flag);
        let g = ModerationGuard::new(Arc::new(Fixed(Ok(ModerationResult::default()))));
        assert!(g.check("x", &ctx).await.is_allow());
        let g = ModerationGuard::new(Arc::new(Fixed(Err(ErrorKind::Timeout))));
        assert_eq!(g.check("x", &ctx).await.verdict, Verdict::Flag);
        let g = ModerationGuard::new(Arc::new(Fixed(Err(ErrorKind::Timeout)))).fail_closed(true);
        assert!(g.check("x", &ctx).await.is_block());
    }
}
