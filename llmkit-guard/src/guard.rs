//! The [`Guard`] trait and the [`Decision`] every guard returns.
//!
//! A guard looks at one piece of text (a user message, a tool result, a retrieved chunk, the
//! model's answer) and decides: let it through ([`Verdict::Allow`]), let it through but note it
//! ([`Verdict::Flag`]), rewrite it ([`Verdict::Transform`]: redact or truncate) or stop the call
//! ([`Verdict::Block`]). Detectors find [`Finding`]s; the configured [`Action`] turns findings
//! into a verdict through [`Decision::from_findings`], so every built-in guard can block, redact
//! or only flag.
//!
//! Transforms are expressed as byte-range [`Edit`]s against the text the guard saw. That lets
//! the pipeline run independent guards concurrently on the same text and merge their edits
//! afterwards ([`apply_edits`]).
//!
//! ```
//! use llmkit_guard::guard::{Action, Decision, Finding, Verdict, apply_edits};
//!
//! let text = "mail me at a@b.io";
//! let finding = Finding::new("email", 11..17, 0.9).with_replacement("[EMAIL]");
//! let d = Decision::from_findings("pii", Action::Redact, 0.5, vec![finding]);
//! let Verdict::Transform { edits, .. } = &d.verdict else { unreachable!() };
//! assert_eq!(apply_edits(text, edits), "mail me at [EMAIL]");
//! ```

use std::fmt;
use std::ops::Range;

use async_trait::async_trait;
use llmkit_core::ChatRequest;
use serde::{Deserialize, Serialize};

/// What a guard does when its detector fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Stop the call with [`llmkit_core::ErrorKind::GuardBlocked`] (the default).
    #[default]
    Block,
    /// Replace the offending spans (or truncate) and let the call continue.
    Redact,
    /// Let the call continue unchanged and record the finding.
    Flag,
}

impl Action {
    /// The lower-case name (`block`, `redact`, `flag`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Block => "block",
            Action::Redact => "redact",
            Action::Flag => "flag",
        }
    }
}

/// Which side of the model call a text is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// On the way to the model.
    Input,
    /// Coming back from the model.
    Output,
}

/// Where a text came from. Injection thresholds differ by provenance: retrieved documents and
/// tool results should never contain instructions at all, so they get a stricter threshold than
/// a user who may legitimately say "ignore my previous message".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provenance {
    /// Typed by the end user.
    User,
    /// A retrieved document or chunk (RAG, web page, email, file).
    Retrieved,
    /// The result of a tool call.
    ToolResult,
    /// Written by the model.
    Model,
    /// The application's own instructions (trusted).
    System,
}

impl Provenance {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Provenance::User => "user",
            Provenance::Retrieved => "retrieved",
            Provenance::ToolResult => "tool_result",
            Provenance::Model => "model",
            Provenance::System => "system",
        }
    }
}

/// What a guard gets besides the text.
#[derive(Debug, Clone, Copy)]
pub struct GuardContext<'a> {
    /// Input or output.
    pub stage: Stage,
    /// Who wrote the text.
    pub provenance: Provenance,
    /// The request being guarded (for output guards: the request that produced the answer).
    pub request: Option<&'a ChatRequest>,
}

impl<'a> GuardContext<'a> {
    /// A context for input text of this provenance, without a request.
    pub fn input(provenance: Provenance) -> Self {
        GuardContext {
            stage: Stage::Input,
            provenance,
            request: None,
        }
    }

    /// A context for model output, without a request.
    pub fn output() -> Self {
        GuardContext {
            stage: Stage::Output,
            provenance: Provenance::Model,
            request: None,
        }
    }

    /// The same context carrying `request`.
    #[must_use]
    pub fn with_request(mut self, request: &'a ChatRequest) -> Self {
        self.request = Some(request);
        self
    }
}

/// One thing a detector found. It never holds the matched value itself, only where it is, so
/// findings can be logged and traced without leaking what they protect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// What was found: `email`, `aws_access_key`, `instruction_override`, ...
    pub kind: String,
    /// Byte range in the text the guard saw.
    pub range: Range<usize>,
    /// How sure the detector is, in `0.0..=1.0`.
    pub score: f32,
    /// A human-readable explanation without the matched value (e.g. the rule that fired).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// What to put in place of the range when the action is [`Action::Redact`]; `None` means
    /// `[KIND]` in upper case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
}

impl Finding {
    /// A finding of `kind` at `range` with `score`.
    pub fn new(kind: impl Into<String>, range: Range<usize>, score: f32) -> Self {
        Finding {
            kind: kind.into(),
            range,
            score: score.clamp(0.0, 1.0),
            detail: String::new(),
            replacement: None,
        }
    }

    /// Sets the explanation.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// Sets the redaction replacement.
    #[must_use]
    pub fn with_replacement(mut self, replacement: impl Into<String>) -> Self {
        self.replacement = Some(replacement.into());
        self
    }

    /// The edit that redacts this finding.
    pub fn redaction(&self) -> Edit {
        Edit {
            range: self.range.clone(),
            replacement: self
                .replacement
                .clone()
                .unwrap_or_else(|| format!("[{}]", self.kind.to_uppercase())),
        }
    }
}

/// Replace `range` (bytes of the checked text) with `replacement`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edit {
    /// Byte range to replace; must lie on character boundaries.
    pub range: Range<usize>,
    /// The new text.
    pub replacement: String,
}

/// Why a text is rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransformKind {
    /// Spans were replaced by placeholders or removed.
    Redact,
    /// The tail was cut off.
    Truncate,
}

/// The outcome of one guard on one text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing to do.
    Allow,
    /// Allowed, but something was found and recorded ([`Action::Flag`]).
    Flag,
    /// Allowed after rewriting.
    Transform {
        /// Redaction or truncation.
        kind: TransformKind,
        /// Edits against the checked text, non-overlapping.
        edits: Vec<Edit>,
    },
    /// Stopped.
    Block,
}

impl Verdict {
    /// A short lower-case word for traces: `allow`, `flag`, `redact`, `truncate`, `block`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Flag => "flag",
            Verdict::Transform {
                kind: TransformKind::Redact,
                ..
            } => "redact",
            Verdict::Transform {
                kind: TransformKind::Truncate,
                ..
            } => "truncate",
            Verdict::Block => "block",
        }
    }
}

/// A guard's decision: verdict, score, reasons and the guard's name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The guard that decided.
    pub guard: String,
    /// What happens to the text.
    pub verdict: Verdict,
    /// The strongest signal, in `0.0..=1.0` (0 when nothing was found).
    pub score: f32,
    /// Human-readable reasons, never containing the protected values.
    pub reasons: Vec<String>,
    /// What the detector found.
    pub findings: Vec<Finding>,
}

impl Decision {
    /// Nothing found.
    pub fn allow(guard: impl Into<String>) -> Self {
        Decision {
            guard: guard.into(),
            verdict: Verdict::Allow,
            score: 0.0,
            reasons: Vec::new(),
            findings: Vec::new(),
        }
    }

    /// A block with one reason.
    pub fn block(guard: impl Into<String>, score: f32, reason: impl Into<String>) -> Self {
        Decision {
            guard: guard.into(),
            verdict: Verdict::Block,
            score: score.clamp(0.0, 1.0),
            reasons: vec![reason.into()],
            findings: Vec::new(),
        }
    }

    /// Turns findings into a decision under `action`: no finding at or above `threshold` →
    /// allow; otherwise block, redact (one edit per finding at or above the threshold) or flag.
    /// Reasons list each distinct kind once with its count.
    pub fn from_findings(
        guard: impl Into<String>,
        action: Action,
        threshold: f32,
        findings: Vec<Finding>,
    ) -> Self {
        let guard = guard.into();
        let firing: Vec<&Finding> = findings.iter().filter(|f| f.score >= threshold).collect();
        if firing.is_empty() {
            let score = findings.iter().map(|f| f.score).fold(0.0, f32::max);
            let mut d = Decision::allow(guard);
            d.score = score;
            d.findings = findings;
            return d;
        }
        let score = firing.iter().map(|f| f.score).fold(0.0, f32::max);
        let reasons = summarize_kinds(firing.iter().map(|f| (f.kind.as_str(), f.detail.as_str())));
        let verdict = match action {
            Action::Block => Verdict::Block,
            Action::Flag => Verdict::Flag,
            Action::Redact => Verdict::Transform {
                kind: TransformKind::Redact,
                edits: non_overlapping(firing.iter().map(|f| f.redaction()).collect()),
            },
        };
        Decision {
            guard,
            verdict,
            score,
            reasons,
            findings,
        }
    }

    /// Whether the call must stop.
    pub fn is_block(&self) -> bool {
        matches!(self.verdict, Verdict::Block)
    }

    /// Whether the text passes unchanged and unflagged.
    pub fn is_allow(&self) -> bool {
        matches!(self.verdict, Verdict::Allow)
    }

    /// The reasons joined with `; `.
    pub fn reason(&self) -> String {
        self.reasons.join("; ")
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} score={:.2}",
            self.guard,
            self.verdict.as_str(),
            self.score
        )?;
        if !self.reasons.is_empty() {
            write!(f, " ({})", self.reasons.join("; "))?;
        }
        Ok(())
    }
}

/// `kind` or `kind ×n` per distinct kind, in first-seen order, with the first detail.
fn summarize_kinds<'a>(items: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    let mut seen: Vec<(&str, &str, usize)> = Vec::new();
    for (kind, detail) in items {
        if let Some(e) = seen.iter_mut().find(|e| e.0 == kind) {
            e.2 += 1;
        } else {
            seen.push((kind, detail, 1));
        }
    }
    seen.into_iter()
        .map(|(kind, detail, n)| {
            let mut s = kind.to_owned();
            if n > 1 {
                s.push_str(&format!(" x{n}"));
            }
            if !detail.is_empty() {
                s.push_str(": ");
                s.push_str(detail);
            }
            s
        })
        .collect()
}

/// Sorts edits by start and drops any that overlap an earlier-starting one (the first, i.e.
/// usually the longer, match wins).
pub fn non_overlapping(mut edits: Vec<Edit>) -> Vec<Edit> {
    edits.sort_by(|a, b| {
        a.range
            .start
            .cmp(&b.range.start)
            .then(b.range.end.cmp(&a.range.end))
    });
    let mut out: Vec<Edit> = Vec::with_capacity(edits.len());
    for e in edits {
        if out
            .last()
            .is_none_or(|last| e.range.start >= last.range.end)
        {
            out.push(e);
        }
    }
    out
}

/// Applies non-overlapping edits (any order) to `text`. Edits that fall outside the text, off a
/// character boundary or overlap an earlier one are skipped rather than panicking.
pub fn apply_edits(text: &str, edits: &[Edit]) -> String {
    let edits = non_overlapping(edits.to_vec());
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for e in &edits {
        let (Some(before), Some(_)) = (text.get(pos..e.range.start), text.get(e.range.clone()))
        else {
            continue;
        };
        out.push_str(before);
        out.push_str(&e.replacement);
        pos = e.range.end;
    }
    out.push_str(text.get(pos..).unwrap_or(""));
    out
}

/// A guard: looks at one text and decides.
///
/// Implementors provide [`name`](Guard::name) and [`check`](Guard::check). A guard must not
/// panic on any input and should be fast: precompile patterns at construction, never per call.
/// Guards are independent of each other; the pipeline may run them concurrently on the same
/// text and merges their edits.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a llmkit `Guard`",
    note = "implement `name` and `check` with `#[async_trait::async_trait]`"
)]
#[async_trait]
pub trait Guard: Send + Sync {
    /// A short stable name used in decisions, traces and errors (`pii`, `injection`, ...).
    fn name(&self) -> &str;

    /// Decides about `text`.
    async fn check(&self, text: &str, ctx: &GuardContext<'_>) -> Decision;
}

#[async_trait]
impl<G: Guard + ?Sized> Guard for std::sync::Arc<G> {
    fn name(&self) -> &str {
        (**self).name()
    }

    async fn check(&self, text: &str, ctx: &GuardContext<'_>) -> Decision {
        (**self).check(text, ctx).await
    }
}

/// Rewrites a pattern to ASCII word boundaries and ASCII digits. Unicode `\b` makes the
/// regex crate's fast DFA give up on any non-ASCII byte and fall back to a much slower engine,
/// and Unicode `\d` inflates every automaton; the guards' patterns are about ASCII shapes
/// (keys, numbers, English keywords), so ASCII semantics cost nothing in recall and about an
/// order of magnitude in speed on text containing accents.
pub fn ascii_pattern(pattern: &str) -> String {
    pattern.replace(r"\b", r"(?-u:\b)").replace(r"\d", "[0-9]")
}

/// A built-in pattern that does not compile. Returned when a detector is constructed
/// ([`crate::warm_up`], `try_new`), so a broken rule is a construction error, never a rule
/// silently missing at request time.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PatternError {
    /// The table the pattern belongs to (`injection`, `secrets`, `pii`).
    pub table: &'static str,
    /// The rule's name within the table.
    pub rule: String,
    /// The regex compiler's message.
    pub message: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} pattern {:?} does not compile: {}",
            self.table, self.rule, self.message
        )
    }
}

impl std::error::Error for PatternError {}

/// Compiles every `(name, pattern)` of a table through [`ascii_pattern`], or names the first
/// one that fails. Nothing is skipped: a table is whole or an error.
pub(crate) fn compile_table<'a>(
    table: &'static str,
    rows: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Vec<regex::Regex>, PatternError> {
    rows.into_iter()
        .map(|(rule, pattern)| {
            regex::Regex::new(&ascii_pattern(pattern)).map_err(|e| PatternError {
                table,
                rule: rule.to_owned(),
                message: e.to_string(),
            })
        })
        .collect()
}

/// Compiles a pattern through [`ascii_pattern`]; `None` when it is invalid (every pattern in
/// this crate is a constant covered by a test, so `None` never happens in practice, and a guard
/// missing one rule beats a panic).
pub(crate) fn compile(pattern: &str) -> Option<regex::Regex> {
    regex::Regex::new(&ascii_pattern(pattern)).ok()
}

/// Compiles a whole table (through [`ascii_pattern`]) for one-pass matching
/// ([`crate::scan::PatternScan`]), or names the first rule that does not compile.
pub(crate) fn compile_scan<'a>(
    table: &'static str,
    rows: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
) -> Result<crate::scan::PatternScan, PatternError> {
    let regexes = compile_table(table, rows.clone())?;
    let patterns: Vec<String> = rows.into_iter().map(|(_, p)| ascii_pattern(p)).collect();
    Ok(crate::scan::PatternScan::new(&patterns, regexes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An invalid pattern is a typed error naming its table and rule, never a skipped rule.
    #[test]
    fn invalid_pattern_is_a_typed_error() {
        let ok = compile_table("t", [("a", r"\bfoo\b"), ("b", "bar")]);
        assert_eq!(ok.map(|v| v.len()), Ok(2));
        let err = compile_table("t", [("a", "foo"), ("broken", "(unclosed"), ("c", "x")]);
        let Err(e) = err else {
            panic!("an invalid pattern must be an error")
        };
        assert_eq!((e.table, e.rule.as_str()), ("t", "broken"));
        assert!(e.to_string().contains("broken"), "{e}");
        assert!(crate::warm_up().is_ok());
    }

    #[test]
    fn from_findings_respects_action_and_threshold() {
        let f = || {
            vec![
                Finding::new("email", 0..3, 0.9),
                Finding::new("weak", 4..5, 0.2),
            ]
        };
        let b = Decision::from_findings("g", Action::Block, 0.5, f());
        assert!(b.is_block());
        assert_eq!(b.reasons, vec!["email".to_owned()]);
        let fl = Decision::from_findings("g", Action::Flag, 0.5, f());
        assert_eq!(fl.verdict, Verdict::Flag);
        let r = Decision::from_findings("g", Action::Redact, 0.5, f());
        assert_eq!(
            apply_edits(
                "abc def",
                match &r.verdict {
                    Verdict::Transform { edits, .. } => edits,
                    _ => unreachable!(),
                }
            ),
            "[EMAIL] def"
        );
        let a = Decision::from_findings("g", Action::Block, 0.95, f());
        assert!(a.is_allow());
        assert!((a.score - 0.9).abs() < 1e-6);
    }

    #[test]
    fn edits_skip_overlaps_and_bad_ranges() {
        let text = "héllo world";
        let edits = vec![
            Edit {
                range: 0..5,
                replacement: "X".into(),
            },
            Edit {
                range: 2..4,
                replacement: "Y".into(),
            },
            Edit {
                range: 1..2,
                replacement: "Z".into(),
            },
            Edit {
                range: 40..50,
                replacement: "W".into(),
            },
        ];
        let out = apply_edits(text, &edits);
        assert_eq!(out, "Xo world");
    }
}
