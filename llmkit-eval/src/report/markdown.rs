//! [`markdown`]: a run as a Markdown report (summary, per-evaluator and per-tag tables,
//! retrieval, failing cases), with an optional comparison and gate outcome, for pull requests.

use std::fmt::Write;

use crate::compare::Comparison;
use crate::gate::GateOutcome;
use crate::result::RunResult;

use super::text::clip;

fn cell(s: &str) -> String {
    clip(s, 120).replace('|', "\\|")
}

/// A Markdown report (for PR comments and job summaries): summary, gate, comparison,
/// per-evaluator and per-tag tables, retrieval, judges and failing cases.
pub fn markdown(
    run: &RunResult,
    comparison: Option<&Comparison>,
    gate: Option<&GateOutcome>,
) -> String {
    let s = &run.summary;
    let mut out = String::new();
    let _ = writeln!(out, "# Eval report: {}\n", cell(&run.name));
    let _ = writeln!(
        out,
        "Dataset `{}` ({} cases), target `{}`.\n",
        run.dataset.version(),
        s.cases,
        run.target
    );
    let _ = writeln!(
        out,
        "| cases | passed | pass rate | mean score | errors | tokens in/out | cost | p50 / p95 latency |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|");
    let _ = writeln!(
        out,
        "| {} | {} | {:.1}% | {:.3} | {} | {} / {} | {} | {:.0} / {:.0} ms |\n",
        s.cases,
        s.passed,
        s.pass_rate * 100.0,
        s.mean_score,
        s.target_errors + s.evaluator_errors,
        s.input_tokens,
        s.output_tokens,
        s.cost_text(),
        s.latency_p50_ms,
        s.latency_p95_ms
    );
    if let Some(g) = gate {
        let _ = writeln!(out, "## Gate: {}\n", if g.passed { "PASS" } else { "FAIL" });
        for c in &g.checks {
            let _ = writeln!(
                out,
                "- {} **{}**: {}",
                if c.passed { "✅" } else { "❌" },
                c.name,
                cell(&c.detail)
            );
        }
        for n in &g.notes {
            let _ = writeln!(out, "- note: {}", cell(n));
        }
        out.push('\n');
    }
    if let Some(c) = comparison {
        let _ = writeln!(out, "## Comparison with `{}`\n", cell(&c.baseline));
        let _ = writeln!(
            out,
            "Mean score {:.3} → {:.3} (diff {:+.3}, {:.0}% bootstrap CI [{:+.3}, {:+.3}], {} resamples, seed {}).  ",
            c.baseline_mean,
            c.candidate_mean,
            c.mean_diff,
            c.ci.level * 100.0,
            c.ci.low,
            c.ci.high,
            c.options.resamples,
            c.options.seed
        );
        let _ = writeln!(
            out,
            "Pass rate {:.1}% → {:.1}%; McNemar: {} regressed, {} improved, p = {:.4}{}.\n",
            c.baseline_pass_rate * 100.0,
            c.candidate_pass_rate * 100.0,
            c.regressed.len(),
            c.improved.len(),
            c.mcnemar.p_value,
            if c.significant { " (significant)" } else { "" }
        );
        if !c.regressed.is_empty() {
            let _ = writeln!(
                out,
                "| regressed case | baseline | candidate | why |\n|---|---:|---:|---|"
            );
            for r in &c.regressed {
                let _ = writeln!(
                    out,
                    "| {} | {:.2} | {:.2} | {} |",
                    cell(&r.id),
                    r.baseline_score,
                    r.candidate_score,
                    cell(&r.candidate_reason)
                );
            }
            out.push('\n');
        }
    }
    let table =
        |out: &mut String,
         title: &str,
         rows: &std::collections::BTreeMap<String, crate::result::GroupStats>| {
            if rows.is_empty() {
                return;
            }
            let _ = writeln!(
                out,
                "## By {title}\n\n| {title} | cases | passed | pass rate | mean |\n|---|---:|---:|---:|---:|"
            );
            for (name, g) in rows {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {:.1}% | {:.3} |",
                    cell(name),
                    g.cases,
                    g.passed,
                    g.pass_rate * 100.0,
                    g.mean_score
                );
            }
            out.push('\n');
        };
    table(&mut out, "evaluator", &s.evaluators);
    table(&mut out, "tag", &s.tags);
    if let Some(r) = &s.retrieval {
        let _ = writeln!(
            out,
            "## Retrieval (k = {}, {} cases)\n\n| recall | precision | MRR | nDCG | hit rate |\n|---:|---:|---:|---:|---:|\n| {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
            r.k, r.cases, r.recall, r.precision, r.mrr, r.ndcg, r.hit_rate
        );
    }
    if !run.judges.is_empty() {
        let _ = writeln!(out, "## Judges\n");
        for j in &run.judges {
            match &j.calibration {
                Some(c) => {
                    let _ = writeln!(
                        out,
                        "- `{}` rubric `{}` on `{}`: agreement {:.3}, Cohen's kappa {:.3} on {} human labels",
                        j.name, j.prompt, j.model, c.agreement, c.kappa, c.n
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "- `{}` rubric `{}` on `{}`: not calibrated",
                        j.name, j.prompt, j.model
                    );
                }
            }
        }
        out.push('\n');
    }
    let failing: Vec<_> = run.cases.iter().filter(|c| !c.passed).collect();
    if !failing.is_empty() {
        let _ = writeln!(
            out,
            "## Failing cases\n\n| case | score | why |\n|---|---:|---|"
        );
        for c in failing {
            let why = c.failure_reason();
            let _ = writeln!(out, "| {} | {:.2} | {} |", cell(&c.id), c.score, cell(&why));
        }
    }
    out
}
