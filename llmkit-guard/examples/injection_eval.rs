//! Prompt-injection quality on the frozen evaluation part of the labelled corpus.
//!
//! `cargo run -p llmkit-guard --example injection_eval` prints recall and false-positive rate
//! of the recommended input stack (docs/guardrails.md, default thresholds) on the frozen part
//! only, per position, family and language, and a sweep of the scorer's threshold.
//! `-- --tuning` prints the same for the tuning part (for rule work, never for reporting);
//! `-- --tuning --misses` also lists the tuning attacks let through and the tuning benign texts
//! blocked. The frozen part's texts are never listed: nobody reads them while writing rules.

#![allow(clippy::expect_used, clippy::panic)]

#[path = "../tests/support/injection_corpus.rs"]
#[allow(dead_code)]
mod injection_corpus;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let tuning = args.iter().any(|a| a == "--tuning");
    let records = injection_corpus::load();
    let part: Vec<&injection_corpus::Record> =
        records.iter().filter(|r| r.is_frozen() != tuning).collect();
    let e = injection_corpus::evaluate(&part).await;
    println!(
        "{} part: {} records ({} attacks, {} benign) of {} (split: SHA-256(text)[0] < 0x{:02X} is frozen)\n",
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
    println!("{}", e.table());
    if tuning && args.iter().any(|a| a == "--misses") {
        for (score, text) in &e.misses {
            println!("MISS  {score:.2} {}", text.replace('\n', "⏎"));
        }
        for (score, text) in &e.false_alarms {
            println!("FALSE {score:.2} {}", text.replace('\n', "⏎"));
        }
    }
}
