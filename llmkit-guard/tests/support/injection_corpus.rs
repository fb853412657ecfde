//! The labelled prompt-injection corpus in `tests/data/injection/` and its split.
//!
//! Every `*.jsonl` file there holds one record per line (`text`, `label` attack|benign,
//! `family`, `language`, `position` user|retrieved, `source`, `licence`). A record belongs to
//! the frozen evaluation part when the first byte of the SHA-256 of its text is below
//! [`EVAL_CUTOFF`] (about 30 %), to the tuning part otherwise. Rules, weights and thresholds
//! may be fitted to the tuning part only; quality numbers are reported on the frozen part.
//! `frozen.sha256` pins the frozen part (see `frozen_manifest`).
//!
//! Shared by `tests/corpus.rs` and the facade's `examples/injection_eval.rs` and
//! `examples/train_injection_head.rs` through `#[path]`.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// First-byte cutoff of the text's SHA-256 below which a record is in the frozen part.
pub const EVAL_CUTOFF: u8 = 0x4D;

/// One labelled record.
#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    pub text: String,
    pub label: String,
    pub family: String,
    pub language: String,
    pub position: String,
    pub source: String,
    pub licence: String,
    /// The raw line, hashed into the manifest so label or family edits are caught too.
    #[serde(skip)]
    pub line: String,
    /// The file the record came from.
    #[serde(skip)]
    pub file: String,
}

impl Record {
    pub fn is_attack(&self) -> bool {
        self.label == "attack"
    }

    pub fn text_hash(&self) -> String {
        hex(&Sha256::digest(self.text.as_bytes()))
    }

    pub fn line_hash(&self) -> String {
        hex(&Sha256::digest(self.line.as_bytes()))
    }

    /// Whether the record is in the frozen evaluation part.
    pub fn is_frozen(&self) -> bool {
        Sha256::digest(self.text.as_bytes())
            .first()
            .is_some_and(|b| *b < EVAL_CUTOFF)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The corpus directory (from llmkit-guard's tests, or from the workspace root's examples).
pub fn dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let own = root.join("tests/data/injection");
    if own.is_dir() {
        own
    } else {
        root.join("llmkit-guard/tests/data/injection")
    }
}

/// Every record of every `*.jsonl` file, files in name order. Panics on a malformed line:
/// this is test data, and a broken line must stop the run.
pub fn load() -> Vec<Record> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("corpus dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let body = std::fs::read_to_string(&path).expect("corpus file");
        for (i, line) in body.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let mut r: Record =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{name}:{}: {e}", i + 1));
            r.line = line.to_owned();
            r.file = name.clone();
            out.push(r);
        }
    }
    out
}

/// The manifest text of the frozen part: one `text-sha256 line-sha256` per frozen record,
/// sorted.
pub fn frozen_manifest(records: &[Record]) -> String {
    let mut lines: Vec<String> = records
        .iter()
        .filter(|r| r.is_frozen())
        .map(|r| format!("{} {}", r.text_hash(), r.line_hash()))
        .collect();
    lines.sort();
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

/// Detected / total counts for one slice.
#[derive(Debug, Default, Clone, Copy)]
pub struct Rate {
    pub hit: usize,
    pub n: usize,
}

impl Rate {
    pub fn add(&mut self, hit: bool) {
        self.n += 1;
        if hit {
            self.hit += 1;
        }
    }

    pub fn value(self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.hit as f64 / self.n as f64
        }
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.n == 0 {
            write!(f, "—")
        } else {
            write!(f, "{:.3} ({}/{})", self.value(), self.hit, self.n)
        }
    }
}

/// Recall on attacks and false-positive rate on benign records of one slice.
#[derive(Debug, Default, Clone, Copy)]
pub struct Slice {
    pub recall: Rate,
    pub fpr: Rate,
}

impl Slice {
    pub fn add(&mut self, attack: bool, flagged: bool) {
        if attack {
            self.recall.add(flagged);
        } else {
            self.fpr.add(flagged);
        }
    }
}

/// The provenance a record's position maps to.
pub fn provenance(r: &Record) -> llmkit_guard::Provenance {
    match r.position.as_str() {
        "user" => llmkit_guard::Provenance::User,
        _ => llmkit_guard::Provenance::Retrieved,
    }
}

/// The recommended input stack of docs/guardrails.md ("A guarded model"), default thresholds.
pub fn recommended_stack() -> llmkit_guard::GuardPipeline {
    recommended_stack_with(llmkit_guard::InjectionGuard::new())
}

/// The recommended input stack with this injection guard (e.g. one with the semantic detector).
pub fn recommended_stack_with(
    injection: llmkit_guard::InjectionGuard,
) -> llmkit_guard::GuardPipeline {
    use llmkit_guard::input::charset::CharPolicy;
    use llmkit_guard::input::size::SizeLimit;
    use llmkit_guard::input::{pii::PiiGuard, secrets::SecretGuard};
    llmkit_guard::GuardPipeline::builder()
        .input(SizeLimit::new().max_chars(8_000))
        .input(CharPolicy::new().action(llmkit_guard::Action::Redact))
        .input(injection)
        .input(PiiGuard::new())
        .input(SecretGuard::new())
        .build()
}

/// The evaluation of one part of the corpus.
#[derive(Debug, Default)]
pub struct Eval {
    pub overall: Slice,
    pub by_position: std::collections::BTreeMap<String, Slice>,
    pub by_family: std::collections::BTreeMap<String, Slice>,
    pub by_language: std::collections::BTreeMap<String, Slice>,
    pub by_file: std::collections::BTreeMap<String, Slice>,
    /// `(threshold, slice)`: the injection guard's score against one threshold for every
    /// position.
    pub sweep: Vec<(f32, Slice)>,
    /// Attacks the stack let through (score, text), lowest score first.
    pub misses: Vec<(f32, String)>,
    /// Benign records the stack blocked (score, text).
    pub false_alarms: Vec<(f32, String)>,
}

/// Runs the recommended stack (blocked = flagged) and the scorer sweep over `records`.
pub async fn evaluate(records: &[&Record]) -> Eval {
    evaluate_with(records, llmkit_guard::InjectionGuard::new()).await
}

/// Runs the recommended stack with `injection` (blocked = flagged) and sweeps one threshold
/// over `injection`'s combined score.
pub async fn evaluate_with(records: &[&Record], injection: llmkit_guard::InjectionGuard) -> Eval {
    let stack = recommended_stack_with(injection.clone());
    let thresholds: Vec<f32> = (1..=19).map(|i| i as f32 * 0.05).collect();
    let mut e = Eval {
        sweep: thresholds.iter().map(|t| (*t, Slice::default())).collect(),
        ..Eval::default()
    };
    for r in records {
        let attack = r.is_attack();
        let checked = stack.check_input(&r.text, provenance(r)).await;
        let flagged = checked.blocked().is_some();
        let score = injection.combined_score(&r.text, provenance(r)).await.0;
        e.overall.add(attack, flagged);
        e.by_position
            .entry(r.position.clone())
            .or_default()
            .add(attack, flagged);
        e.by_family
            .entry(format!("{} {}", r.label, r.family))
            .or_default()
            .add(attack, flagged);
        e.by_language
            .entry(r.language.clone())
            .or_default()
            .add(attack, flagged);
        e.by_file
            .entry(r.file.clone())
            .or_default()
            .add(attack, flagged);
        for (t, s) in &mut e.sweep {
            s.add(attack, score >= *t);
        }
        match (attack, flagged) {
            (true, false) => e.misses.push((score, r.text.clone())),
            (false, true) => e.false_alarms.push((score, r.text.clone())),
            _ => {}
        }
    }
    e.misses.sort_by(|a, b| a.0.total_cmp(&b.0));
    e
}

impl Eval {
    /// The tables as Markdown.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let row = |s: &mut String, name: &str, v: &Slice| {
            s.push_str(&format!("| {name} | {} | {} |\n", v.recall, v.fpr));
        };
        s.push_str("| slice | recall (attacks flagged) | FPR (benign flagged) |\n|---|---|---|\n");
        row(&mut s, "**all**", &self.overall);
        for (k, v) in &self.by_position {
            row(&mut s, &format!("position {k}"), v);
        }
        for (k, v) in &self.by_file {
            row(&mut s, &format!("source {k}"), v);
        }
        s.push_str("\n| family | recall | FPR |\n|---|---|---|\n");
        for (k, v) in &self.by_family {
            row(&mut s, k, v);
        }
        s.push_str("\n| language | recall | FPR |\n|---|---|---|\n");
        for (k, v) in &self.by_language {
            row(&mut s, k, v);
        }
        s.push_str(
            "\nThreshold sweep (injection score >= t, same t for every position):\n\n\
             | t | recall | FPR |\n|---|---|---|\n",
        );
        for (t, v) in &self.sweep {
            row(&mut s, &format!("{t:.2}"), v);
        }
        s
    }
}
