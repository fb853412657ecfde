#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Detector quality on the labelled corpora in `tests/data/`.
//!
//! `injection/` is the prompt-injection corpus with its frozen evaluation split (see
//! `support/injection_corpus.rs`): its numbers are the only ones docs/guardrails.md reports.
//! `injection.jsonl` and `pii.jsonl` were written together with the rules, so their floors are
//! regression checks, not quality numbers. Run with `--nocapture` to see the tables and misses.

use std::collections::BTreeSet;

use llmkit_guard::input::charset::CharPolicy;
use llmkit_guard::input::pii::PiiDetector;
use llmkit_guard::input::secrets::SecretDetector;
use llmkit_guard::input::{pii::PiiGuard, secrets::SecretGuard};
use llmkit_guard::{Action, GuardPipeline, InjectionGuard, InjectionScorer, Provenance};
use serde_json::Value;

#[path = "support/injection_corpus.rs"]
#[allow(dead_code)]
mod injection_corpus;

fn lines(name: &str) -> Vec<Value> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn provenance(s: &str) -> Provenance {
    match s {
        "user" => Provenance::User,
        "retrieved" => Provenance::Retrieved,
        "tool_result" => Provenance::ToolResult,
        other => panic!("unknown provenance {other}"),
    }
}

#[derive(Default, Debug)]
struct Counts {
    tp: usize,
    fp: usize,
    fn_: usize,
    tn: usize,
}

impl Counts {
    fn precision(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fp).max(1) as f64
    }
    fn recall(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fn_).max(1) as f64
    }
    fn fpr(&self) -> f64 {
        self.fp as f64 / (self.fp + self.tn).max(1) as f64
    }
}

#[test]
fn injection_corpus_metrics() {
    let items = lines("injection.jsonl");
    assert!(items.len() >= 60, "corpus too small: {}", items.len());
    let guard = InjectionGuard::new();
    let scorer = InjectionScorer::new();
    let mut c = Counts::default();
    for item in &items {
        let text = item["text"].as_str().unwrap();
        let p = provenance(item["provenance"].as_str().unwrap());
        let is_attack = item["label"] == "injection";
        let report = scorer.score(text);
        let predicted = report.score >= guard.threshold_for(p);
        match (is_attack, predicted) {
            (true, true) => c.tp += 1,
            (true, false) => {
                c.fn_ += 1;
                println!("MISS  {:.2} {text}", report.score);
            }
            (false, true) => {
                c.fp += 1;
                println!("FALSE {:.2} {text} {:?}", report.score, report.reasons());
            }
            (false, false) => c.tn += 1,
        }
    }
    println!(
        "injection: n={} tp={} fp={} fn={} tn={} precision={:.3} recall={:.3} fpr={:.3}",
        items.len(),
        c.tp,
        c.fp,
        c.fn_,
        c.tn,
        c.precision(),
        c.recall(),
        c.fpr()
    );
    assert!(c.precision() >= PRECISION_FLOOR, "{c:?}");
    assert!(c.recall() >= RECALL_FLOOR, "{c:?}");
    assert!(c.fpr() <= FPR_CEILING, "{c:?}");
}

const PRECISION_FLOOR: f64 = 0.95;
const RECALL_FLOOR: f64 = 0.93;
const FPR_CEILING: f64 = 0.05;

fn detected_kinds(text: &str) -> BTreeSet<String> {
    let mut k: BTreeSet<String> = PiiDetector::new()
        .detect(text)
        .into_iter()
        .map(|m| m.kind.as_str().to_owned())
        .collect();
    if !SecretDetector::new().detect(text).is_empty() {
        k.insert("secret".into());
    }
    k
}

#[test]
fn pii_corpus_metrics() {
    let items = lines("pii.jsonl");
    assert!(items.len() >= 60, "corpus too small: {}", items.len());
    let mut c = Counts::default();
    let (mut near, mut near_hit) = (0usize, 0usize);
    for item in &items {
        let text = item["text"].as_str().unwrap();
        let expected: BTreeSet<String> = item["kinds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        let got = detected_kinds(text);
        for k in &expected {
            if got.contains(k) {
                c.tp += 1;
            } else {
                c.fn_ += 1;
                println!("MISS  {k}: {text} (got {got:?})");
            }
        }
        for k in got.difference(&expected) {
            c.fp += 1;
            println!("FALSE {k}: {text}");
        }
        if expected.is_empty() {
            near += 1;
            if !got.is_empty() {
                near_hit += 1;
            }
        }
    }
    let near_fpr = near_hit as f64 / near.max(1) as f64;
    println!(
        "pii+secrets: n={} tp={} fp={} fn={} precision={:.3} recall={:.3} near-miss fpr={:.3} ({near_hit}/{near})",
        items.len(),
        c.tp,
        c.fp,
        c.fn_,
        c.precision(),
        c.recall(),
        near_fpr
    );
    assert!(c.precision() >= PII_PRECISION_FLOOR, "{c:?}");
    assert!(c.recall() >= PII_RECALL_FLOOR, "{c:?}");
    assert!(near_fpr <= PII_NEAR_MISS_FPR_CEILING);
}

const PII_PRECISION_FLOOR: f64 = 0.97;
const PII_RECALL_FLOOR: f64 = 0.97;
const PII_NEAR_MISS_FPR_CEILING: f64 = 0.05;

/// The whole default input pipeline on benign text: how much of it passes untouched.
#[tokio::test]
async fn benign_text_stays_untouched() {
    let pipeline = GuardPipeline::builder()
        .input(CharPolicy::new().action(Action::Redact))
        .input(InjectionGuard::new())
        .input(PiiGuard::new())
        .input(SecretGuard::new())
        .build();
    let items = lines("injection.jsonl");
    let benign: Vec<&Value> = items.iter().filter(|i| i["label"] == "benign").collect();
    let mut untouched = 0;
    for item in &benign {
        let text = item["text"].as_str().unwrap();
        let p = provenance(item["provenance"].as_str().unwrap());
        let checked = pipeline.check_input(text, p).await;
        if checked.blocked().is_none() && checked.text == text {
            untouched += 1;
        } else {
            let why: Vec<String> = checked
                .decisions
                .iter()
                .filter(|d| !d.is_allow())
                .map(ToString::to_string)
                .collect();
            println!("TOUCHED {text} {why:?}");
        }
    }
    let rate = untouched as f64 / benign.len() as f64;
    println!("benign untouched: {untouched}/{} = {rate:.3}", benign.len());
    assert!(rate >= UNTOUCHED_FLOOR);
}

const UNTOUCHED_FLOOR: f64 = 0.95;

/// The frozen evaluation part is pinned: adding, removing or editing a frozen record (text,
/// label, family, anything on its line) changes `frozen.sha256` and fails here. Quality
/// numbers are only comparable across changes while this holds.
#[test]
fn frozen_split_is_unchanged() {
    let records = injection_corpus::load();
    let expected = std::fs::read_to_string(injection_corpus::dir().join("frozen.sha256")).unwrap();
    let actual = injection_corpus::frozen_manifest(&records);
    if actual != expected {
        let new = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("frozen.sha256.new");
        std::fs::write(&new, &actual).unwrap();
        panic!(
            "the frozen evaluation part changed; if that is intended (and the change is \
             reported), copy {} over tests/data/injection/frozen.sha256",
            new.display()
        );
    }
}

/// What the corpus must cover (issue 18): ≥ 500 attacks and ≥ 500 benign look-alikes, both
/// positions, ≥ 6 languages incl. non-Latin scripts, every attack family in the frozen part,
/// unique texts, a source and licence on every record, a frozen part of about 30 %.
#[test]
fn corpus_composition() {
    let records = injection_corpus::load();
    let attacks = records.iter().filter(|r| r.is_attack()).count();
    let benign = records.iter().filter(|r| r.label == "benign").count();
    assert_eq!(attacks + benign, records.len(), "labels are attack|benign");
    assert!(
        attacks >= 500 && benign >= 500,
        "{attacks} attacks, {benign} benign"
    );
    let texts: BTreeSet<&str> = records.iter().map(|r| r.text.as_str()).collect();
    assert_eq!(texts.len(), records.len(), "duplicate texts");
    for r in &records {
        assert!(!r.source.is_empty() && !r.licence.is_empty(), "{}", r.text);
        assert!(
            r.position == "user" || r.position == "retrieved",
            "{}",
            r.position
        );
    }
    let languages: BTreeSet<&str> = records.iter().map(|r| r.language.as_str()).collect();
    assert!(languages.len() >= 6, "{languages:?}");
    for non_latin in ["ru", "zh", "ja", "ar"] {
        assert!(languages.contains(non_latin), "{non_latin}");
    }
    for family in [
        "paraphrased_override",
        "claimed_authority",
        "persona_roleplay",
        "role_tag_spoof",
        "comment_hidden",
        "exfiltration_tool",
        "obfuscated",
        "format_hijack",
        "hypothetical_framing",
    ] {
        for position in ["user", "retrieved"] {
            assert!(
                records
                    .iter()
                    .any(|r| r.is_attack() && r.family == family && r.position == position),
                "{family} {position}"
            );
        }
        assert!(
            records
                .iter()
                .any(|r| r.is_attack() && r.family == family && r.is_frozen()),
            "{family} has no frozen record"
        );
    }
    let frozen = records.iter().filter(|r| r.is_frozen()).count() as f64;
    let share = frozen / records.len() as f64;
    assert!((0.25..0.35).contains(&share), "frozen share {share}");
}

/// The frozen-split evaluation (the rules-alone table of `cargo run --features
/// local-embeddings --example injection_eval`), with floors at the numbers docs/guardrails.md
/// reports minus a small margin, so a change that makes detection worse on unseen text fails here.
#[tokio::test]
async fn frozen_split_metrics() {
    let records = injection_corpus::load();
    let frozen: Vec<&injection_corpus::Record> = records.iter().filter(|r| r.is_frozen()).collect();
    let e = injection_corpus::evaluate(&frozen).await;
    println!("{}", e.table());
    let recall = e.overall.recall.value();
    let fpr = e.overall.fpr.value();
    assert!(recall >= FROZEN_RECALL_FLOOR, "recall {recall}");
    assert!(fpr <= FROZEN_FPR_CEILING, "fpr {fpr}");
}

const FROZEN_RECALL_FLOOR: f64 = 0.47;
const FROZEN_FPR_CEILING: f64 = 0.06;
