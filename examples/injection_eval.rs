//! Prompt-injection quality on the frozen evaluation part of the labelled corpus, for the rules
//! alone and for the rules with the semantic detector (all-MiniLM-L6-v2 + the shipped head).
//!
//! ```sh
//! scripts/fetch-minilm.sh            # the weights, into .cache/models/all-MiniLM-L6-v2
//! cargo run --features local-embeddings --example injection_eval
//! ```
//!
//! Prints recall and false-positive rate of the recommended input stack (docs/guardrails.md;
//! flagged = blocked) on the frozen part only, overall, per position, family and language,
//! and a threshold sweep. `-- --tuning` prints the same for the tuning part (for rule work,
//! never for reporting); `-- --tuning --misses` also lists the tuning attacks let through and
//! the tuning benign texts blocked. The frozen part's texts are never listed: nobody reads
//! them while writing rules. `LLMKIT_MINILM_DIR` overrides the model directory.

#![allow(clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../llmkit-guard/tests/support/injection_corpus.rs"]
#[allow(dead_code)]
mod injection_corpus;

use std::sync::Arc;

use llmkit::guard::InjectionGuard;
use llmkit::guard::injection::{LinearHead, SemanticDetector};
use llmkit::local::LocalEmbeddingModel;

fn model_dir() -> std::path::PathBuf {
    std::env::var_os("LLMKIT_MINILM_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/models/all-MiniLM-L6-v2"),
        Into::into,
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let tuning = args.iter().any(|a| a == "--tuning");
    let misses = tuning && args.iter().any(|a| a == "--misses");
    let records = injection_corpus::load();
    let part: Vec<&injection_corpus::Record> =
        records.iter().filter(|r| r.is_frozen() != tuning).collect();
    println!(
        "{} part: {} records ({} attacks, {} benign) of {} (split: SHA-256(text)[0] < 0x{:02X} is frozen)",
        if tuning {
            "tuning"
        } else {
            "frozen evaluation"
        },
        part.len(),
        part.iter().filter(|r| r.is_attack()).count(),
        part.iter().filter(|r| !r.is_attack()).count(),
        records.len(),
        injection_corpus::EVAL_CUTOFF
    );

    let rules = injection_corpus::evaluate(&part).await;
    println!("\n## Rules alone (default thresholds)\n\n{}", rules.table());
    if misses {
        print_misses(&rules);
    }

    let model = LocalEmbeddingModel::load(model_dir())
        .unwrap_or_else(|e| panic!("{e} (run scripts/fetch-minilm.sh first)"));
    let head = LinearHead::minilm_l6_v2().expect("shipped head");
    let detector = SemanticDetector::new(Arc::new(model), head).expect("detector");
    let guard = InjectionGuard::new().semantic(detector);
    let started = std::time::Instant::now();
    let both = injection_corpus::evaluate_with(&part, guard.clone()).await;
    println!(
        "\n## Rules + semantic (all-MiniLM-L6-v2, shipped head and operating points: user {:.2}, retrieved {:.2})\n\n{}",
        guard.threshold_for(llmkit::guard::Provenance::User),
        guard.threshold_for(llmkit::guard::Provenance::Retrieved),
        both.table()
    );
    println!("(rules + semantic evaluated in {:.1?})", started.elapsed());
    if misses {
        print_misses(&both);
    }
    println!(
        "\nsummary: rules recall {} FPR {} | rules+semantic recall {} FPR {}",
        rules.overall.recall, rules.overall.fpr, both.overall.recall, both.overall.fpr
    );
}

fn print_misses(e: &injection_corpus::Eval) {
    for (score, text) in &e.misses {
        println!("MISS  {score:.2} {}", text.replace('\n', "⏎"));
    }
    for (score, text) in &e.false_alarms {
        println!("FALSE {score:.2} {}", text.replace('\n', "⏎"));
    }
}
