//! [`terminal`]: a run as a plain-text summary table for a shell.

use std::fmt::Write;

use crate::result::{GroupStats, RunResult};

use super::text::clip;

fn row(out: &mut String, name: &str, g: &GroupStats) {
    let _ = writeln!(
        out,
        "  {name:<28} {:>5} {:>6} {:>7.1}% {:>7.3}",
        g.cases,
        g.passed,
        g.pass_rate * 100.0,
        g.mean_score
    );
}

/// A plain-text summary table: totals, per evaluator, per tag, retrieval, failing cases.
pub fn terminal(run: &RunResult) -> String {
    let s = &run.summary;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "eval {} | dataset {} | target {}",
        run.name,
        run.dataset.version(),
        run.target
    );
    let _ = writeln!(
        out,
        "  {} cases, {} passed ({:.1}%), mean score {:.3}, {} target errors, {} evaluator errors",
        s.cases,
        s.passed,
        s.pass_rate * 100.0,
        s.mean_score,
        s.target_errors,
        s.evaluator_errors
    );
    let _ = writeln!(
        out,
        "  tokens {} in / {} out, cost {}, latency p50 {:.0} ms p95 {:.0} ms, {} target calls, {} cache hits",
        s.input_tokens,
        s.output_tokens,
        s.cost_text(),
        s.latency_p50_ms,
        s.latency_p95_ms,
        run.stats.target_calls,
        run.stats.cache_hits
    );
    let _ = writeln!(
        out,
        "  {:<28} {:>5} {:>6} {:>8} {:>7}",
        "evaluator", "cases", "passed", "rate", "mean"
    );
    for (name, g) in &s.evaluators {
        row(&mut out, &clip(name, 28), g);
    }
    if !s.tags.is_empty() {
        let _ = writeln!(
            out,
            "  {:<28} {:>5} {:>6} {:>8} {:>7}",
            "tag", "cases", "passed", "rate", "mean"
        );
        for (name, g) in &s.tags {
            row(&mut out, &clip(name, 28), g);
        }
    }
    if let Some(r) = &s.retrieval {
        let _ = writeln!(
            out,
            "  retrieval over {} cases (k={}): recall {:.3}, precision {:.3}, mrr {:.3}, ndcg {:.3}, hit rate {:.3}",
            r.cases, r.k, r.recall, r.precision, r.mrr, r.ndcg, r.hit_rate
        );
    }
    for j in &run.judges {
        match &j.calibration {
            Some(c) => {
                let _ = writeln!(
                    out,
                    "  judge {} ({}): agreement {:.3}, kappa {:.3} on {} labels",
                    j.name, j.prompt, c.agreement, c.kappa, c.n
                );
            }
            None => {
                let _ = writeln!(out, "  judge {} ({}): not calibrated", j.name, j.prompt);
            }
        }
    }
    let failing: Vec<_> = run.cases.iter().filter(|c| !c.passed).collect();
    if !failing.is_empty() {
        let _ = writeln!(out, "  failing cases:");
        for c in failing {
            let why = c.failure_reason();
            let _ = writeln!(out, "    {} ({:.2}) {}", c.id, c.score, clip(&why, 110));
        }
    }
    out
}
