//! Guard throughput on mixed text (MB/s), against a plain `regex::RegexSet` scan over the same
//! patterns in the same run.
//!
//! `cargo bench --bench guard`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use llmkit::guard::input::charset::CharPolicy;
use llmkit::guard::input::pii::{self, PiiDetector, PiiGuard};
use llmkit::guard::input::secrets::{self, SecretDetector, SecretGuard};
use llmkit::guard::{GuardPipeline, InjectionGuard, InjectionScorer, Provenance};
use regex::RegexSetBuilder;

#[path = "../llmkit-guard/tests/support/mixed_text.rs"]
mod mixed_text;
use mixed_text::mixed_text;

fn bench(c: &mut Criterion) {
    let paras = mixed_text();
    let bytes: usize = paras.iter().map(String::len).sum();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();

    let pipeline = GuardPipeline::builder()
        .input(CharPolicy::new())
        .input(InjectionGuard::new())
        .input(PiiGuard::new())
        .input(SecretGuard::new())
        .build();
    let scorer = InjectionScorer::new();
    let pii_detector = PiiDetector::new();
    let secret_detector = SecretDetector::new();

    let mut patterns: Vec<String> = InjectionScorer::patterns();
    patterns.extend(pii::patterns());
    patterns.extend(secrets::patterns());
    // The combined automaton exceeds the default 10 MB compile limit; raise it for the baseline.
    let set = RegexSetBuilder::new(&patterns)
        .size_limit(256 << 20)
        .dfa_size_limit(256 << 20)
        .build()
        .unwrap();
    // Individual regexes too: a scan that also reports where each match is, which is what a
    // redacting guard needs.
    let singles: Vec<regex::Regex> = patterns
        .iter()
        .map(|p| regex::Regex::new(p).unwrap())
        .collect();

    let mut g = c.benchmark_group("guard_mixed_64k");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("pipeline_4_guards", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut blocked = 0;
                for p in &paras {
                    let c = pipeline.check_input(p, Provenance::Retrieved).await;
                    blocked += usize::from(c.blocked().is_some());
                }
                blocked
            })
        })
    });
    g.bench_function("detectors_direct", |b| {
        b.iter(|| {
            let mut n = 0;
            for p in &paras {
                n += scorer.score(p).signals.len();
                n += pii_detector.detect(p).len();
                n += secret_detector.detect(p).len();
            }
            n
        })
    });
    g.bench_function("baseline_regexset_matches", |b| {
        b.iter(|| {
            paras
                .iter()
                .map(|p| set.matches(p).iter().count())
                .sum::<usize>()
        })
    });
    g.bench_function("baseline_regex_find_iter", |b| {
        b.iter(|| {
            let mut n = 0;
            for p in &paras {
                for re in &singles {
                    n += re.find_iter(p).count();
                }
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
