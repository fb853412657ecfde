//! One self-contained HTML page per run: the gate verdict and why, per-evaluator scores with
//! intervals, the A/B comparison (regressions first, then improvements, each with a word-level
//! side-by-side diff of the two outputs), the judge's calibration and its disagreements with
//! humans, retrieval metrics per query, cost/tokens/latency per case and per version, the two
//! prompt versions' diff, filter and search across cases, and a trend chart of past runs.
//!
//! The page has inline CSS and a small inline script, loads nothing (a Content-Security-Policy
//! forbids it), and is complete with scripts off: the script only filters the case list.
//! Every text and attribute value from a run goes through one function, [`esc`].
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! use llmkit_eval::{assertions, report::html, runner::{target_fn, Runner, TargetId}, Case, Dataset, TargetOutput};
//! let dataset = Dataset::from_cases("d", vec![Case::new("a", serde_json::json!({"q": "hi"}))])?;
//! let runner = Runner::new().evaluator(assertions::contains("hello"));
//! let v1 = target_fn(TargetId::new("p@1", "m"), |_| async { Ok(TargetOutput::text("hello there")) });
//! let v2 = target_fn(TargetId::new("p@2", "m"), |_| async { Ok(TargetOutput::text("goodbye <b>there</b>")) });
//! let base = runner.run("p@1", &dataset, &*v1).await?;
//! let cand = runner.run("p@2", &dataset, &*v2).await?;
//! let page = html::render(&cand, Some(&base), None, &[]);
//! assert!(page.contains("Regressions (1)"));
//! // Word-level: `hello` became `goodbye`, the markup around `there` was added (as text).
//! assert!(page.contains("<del>hello</del>") && page.contains("<ins>&lt;b&gt;</ins>there"));
//! # Ok::<(), llmkit_core::Error>(()) }).unwrap();
//! ```

mod chart;
pub mod diff;
mod escape;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::path::Path;

pub use chart::{TrendPoint, trend_svg};
pub use escape::esc;

use crate::compare::bootstrap_mean_ci;
use crate::{
    CaseResult, CompareOptions, Comparison, EvalError, GateOutcome, JudgeInfo, RunResult,
    TargetOutput,
};
use diff::diff_words;
use llmkit_core::prompt::Edit;

const CSS: &str = include_str!("report.css");
const JS: &str = include_str!("report.js");

/// Renders the report of `run`: compared with `baseline` (another run on the same cases)
/// when given, with the `gate` verdict when given, and a trend chart when `history` holds
/// earlier runs.
pub fn render(
    run: &RunResult,
    baseline: Option<&RunResult>,
    gate: Option<&GateOutcome>,
    history: &[RunResult],
) -> String {
    Page {
        run,
        baseline,
        gate,
        history,
        comparison: baseline.map(|b| Comparison::new(b, run, CompareOptions::default())),
        index: run
            .cases
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.as_str(), i))
            .collect(),
        base_cases: baseline
            .map(|b| b.cases.iter().map(|c| (c.id.as_str(), c)).collect())
            .unwrap_or_default(),
    }
    .render()
}

/// [`render`] into a file.
pub fn write(
    path: impl AsRef<Path>,
    run: &RunResult,
    baseline: Option<&RunResult>,
    gate: Option<&GateOutcome>,
    history: &[RunResult],
) -> Result<(), EvalError> {
    let path = path.as_ref();
    std::fs::write(path, render(run, baseline, gate, history)).map_err(|e| EvalError::io(path, e))
}

struct Page<'a> {
    run: &'a RunResult,
    baseline: Option<&'a RunResult>,
    gate: Option<&'a GateOutcome>,
    history: &'a [RunResult],
    comparison: Option<Comparison>,
    /// Case id → position in `run.cases` (the page anchor `case-N`).
    index: HashMap<&'a str, usize>,
    /// Case id → the baseline's result, so per-case lookups stay O(1) on large runs.
    base_cases: HashMap<&'a str, &'a CaseResult>,
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn ms(o: &TargetOutput) -> String {
    format!("{:.0} ms", o.latency.as_secs_f64() * 1000.0)
}

fn cost(o: &TargetOutput) -> String {
    o.cost
        .as_ref()
        .map_or_else(|| "unknown".into(), |c| format!("${}", c.total_usd))
}

/// Wilson score interval (95 %) of `passed` successes in `n` trials.
fn wilson(passed: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 0.0);
    }
    let (z, nf) = (1.96f64, n as f64);
    let p = passed as f64 / nf;
    let denom = 1.0 + z * z / nf;
    let center = (p + z * z / (2.0 * nf)) / denom;
    let half = z * (p * (1.0 - p) / nf + z * z / (4.0 * nf * nf)).sqrt() / denom;
    ((center - half).max(0.0), (center + half).min(1.0))
}

/// A 0–1 bar with an interval whisker.
fn bar(value: f64, low: f64, high: f64) -> String {
    let c = |x: f64| x.clamp(0.0, 1.0) * 100.0;
    format!(
        "<div class=\"bar\" aria-hidden=\"true\"><span style=\"width:{:.1}%\"></span><i style=\"left:{:.1}%;width:{:.1}%\"></i></div>",
        c(value),
        c(low),
        (c(high) - c(low)).max(0.5)
    )
}

/// `YYYY-MM-DD HH:MM UTC` from Unix seconds (civil-from-days, proleptic Gregorian).
fn utc(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// Side-by-side word diff: the old text with removed words marked, the new with added ones.
fn side_by_side(old_label: &str, old: &str, new_label: &str, new: &str) -> String {
    let (mut left, mut right) = (String::new(), String::new());
    for (change, text) in diff_words(old, new) {
        let t = esc(&text);
        match change {
            Edit::Same => {
                left.push_str(&t);
                right.push_str(&t);
            }
            Edit::Removed => {
                let _ = write!(left, "<del>{t}</del>");
            }
            Edit::Added => {
                let _ = write!(right, "<ins>{t}</ins>");
            }
        }
    }
    format!(
        "<div class=\"sbs\" role=\"group\" aria-label=\"{} versus {}\"><div><h4>{}</h4><pre class=\"old\">{left}</pre></div><div><h4>{}</h4><pre class=\"new\">{right}</pre></div></div>",
        esc(old_label),
        esc(new_label),
        esc(old_label),
        esc(new_label)
    )
}

impl Page<'_> {
    fn render(&self) -> String {
        let run = self.run;
        let mut out = String::with_capacity(64 * 1024);
        let _ = write!(
            out,
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\
             <title>Eval report: {}</title><style>{CSS}</style></head><body><main>",
            esc(&run.name)
        );
        let _ = write!(
            out,
            "<header class=\"top\"><h1>Eval report: {}</h1><div class=\"meta\">dataset <code>{}</code> ({} cases) · target <code>{}</code> · finished {}</div>",
            esc(&run.name),
            esc(&run.dataset.version()),
            run.dataset.cases,
            esc(&run.target.to_string()),
            utc(run.finished_at)
        );
        out.push_str("<nav class=\"toc\" aria-label=\"Sections\"><a href=\"#verdict\">Verdict</a><a href=\"#evaluators\">Evaluators</a>");
        if self.comparison.is_some() {
            out.push_str("<a href=\"#comparison\">A/B comparison</a>");
        }
        out.push_str("<a href=\"#versions\">Versions, cost &amp; latency</a>");
        if !run.judges.is_empty() {
            out.push_str("<a href=\"#judges\">Judge calibration</a>");
        }
        if run.cases.iter().any(|c| c.retrieval.is_some()) {
            out.push_str("<a href=\"#retrieval\">Retrieval</a>");
        }
        if !self.history.is_empty() {
            out.push_str("<a href=\"#trend\">Trend</a>");
        }
        out.push_str("<a href=\"#cases\">Cases</a></nav></header>");
        self.verdict(&mut out);
        self.evaluators(&mut out);
        self.comparison_section(&mut out);
        self.versions(&mut out);
        self.judges(&mut out);
        self.retrieval(&mut out);
        self.trend(&mut out);
        self.cases(&mut out);
        let _ = writeln!(out, "</main><script>{JS}</script></body></html>");
        out
    }

    fn verdict(&self, out: &mut String) {
        let s = &self.run.summary;
        match self.gate {
            Some(g) => {
                let (class, word) = if g.passed {
                    ("pass", "PASS")
                } else {
                    ("fail", "FAIL")
                };
                let failed = g.checks.iter().filter(|c| !c.passed).count();
                let _ = write!(
                    out,
                    "<section id=\"verdict\" class=\"verdict {class}\" data-verdict=\"{class}\" aria-label=\"Gate verdict\"><span class=\"word\">Gate: {word}</span><span>{} of {} checks passed</span><ul class=\"checks\">",
                    g.checks.len() - failed,
                    g.checks.len()
                );
                // Why first: failing checks before passing ones.
                let mut checks: Vec<_> = g.checks.iter().collect();
                checks.sort_by_key(|c| c.passed);
                for c in checks {
                    let _ = write!(
                        out,
                        "<li><span class=\"badge {}\">{}</span> <b>{}</b>: {}</li>",
                        if c.passed { "pass" } else { "fail" },
                        if c.passed { "ok" } else { "failed" },
                        esc(&c.name),
                        esc(&c.detail)
                    );
                }
                for n in &g.notes {
                    let _ = write!(out, "<li class=\"muted\">note: {}</li>", esc(n));
                }
                out.push_str("</ul></section>");
            }
            None => out.push_str(
                "<section id=\"verdict\" class=\"verdict none\" data-verdict=\"none\" aria-label=\"Gate verdict\"><span class=\"word\">Not gated</span><span>no gate outcome was given (<code>llmkit-eval report --gate gate.json</code>)</span></section>",
            ),
        }
        let _ = write!(
            out,
            "<div class=\"cards\" style=\"margin-top:10px\"><div class=\"card\">cases<b>{}</b></div><div class=\"card\">passed<b>{} ({})</b></div><div class=\"card\">mean score<b>{:.3}</b></div><div class=\"card\">errors<b>{}</b></div><div class=\"card\">tokens in / out<b>{} / {}</b></div><div class=\"card\">cost<b>{}</b></div><div class=\"card\">latency p50 / p95<b>{:.0} / {:.0} ms</b></div></div>",
            s.cases,
            s.passed,
            pct(s.pass_rate),
            s.mean_score,
            s.target_errors + s.evaluator_errors,
            s.input_tokens,
            s.output_tokens,
            esc(&s.cost_text()),
            s.latency_p50_ms,
            s.latency_p95_ms
        );
    }

    fn evaluators(&self, out: &mut String) {
        let mut by: BTreeMap<&str, (Vec<bool>, Vec<f64>)> = BTreeMap::new();
        for c in &self.run.cases {
            for x in &c.scores {
                let e = by.entry(&x.evaluator).or_default();
                e.0.push(x.passed);
                e.1.push(x.value);
            }
        }
        out.push_str("<section id=\"evaluators\" aria-labelledby=\"evaluators-h\"><h2 id=\"evaluators-h\">Scores by evaluator</h2><p class=\"muted\">Pass rate with a 95 % Wilson interval; mean score with a 95 % bootstrap interval (2,000 resamples, seed 42).</p><div class=\"scroll\"><table><thead><tr><th scope=\"col\">evaluator</th><th class=\"num\" scope=\"col\">cases</th><th class=\"num\" scope=\"col\">pass rate [95 % CI]</th><th scope=\"col\">pass rate</th><th class=\"num\" scope=\"col\">mean [95 % CI]</th>");
        if self.baseline.is_some() {
            out.push_str("<th class=\"num\" scope=\"col\">baseline pass rate</th>");
        }
        out.push_str("</tr></thead><tbody>");
        for (name, (passes, values)) in &by {
            let n = passes.len();
            let k = passes.iter().filter(|p| **p).count();
            let rate = if n == 0 { 0.0 } else { k as f64 / n as f64 };
            let (lo, hi) = wilson(k, n);
            let mean = values.iter().sum::<f64>() / n.max(1) as f64;
            let ci = bootstrap_mean_ci(values, 2000, 0.95, 42);
            let _ = write!(
                out,
                "<tr><th scope=\"row\">{}</th><td class=\"num\">{n}</td><td class=\"num\">{} [{}, {}]</td><td>{}</td><td class=\"num\">{mean:.3} [{:.3}, {:.3}]</td>",
                esc(name),
                pct(rate),
                pct(lo),
                pct(hi),
                bar(rate, lo, hi),
                ci.low,
                ci.high
            );
            if let Some(b) = self.baseline {
                let cell = b
                    .summary
                    .evaluators
                    .get(*name)
                    .map_or_else(|| "—".to_owned(), |g| pct(g.pass_rate));
                let _ = write!(out, "<td class=\"num\">{cell}</td>");
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table></div>");
        if !self.run.summary.tags.is_empty() {
            out.push_str("<h3>By tag</h3><div class=\"scroll\"><table><thead><tr><th scope=\"col\">tag</th><th class=\"num\" scope=\"col\">cases</th><th class=\"num\" scope=\"col\">passed</th><th class=\"num\" scope=\"col\">pass rate</th><th class=\"num\" scope=\"col\">mean</th></tr></thead><tbody>");
            for (tag, g) in &self.run.summary.tags {
                let _ = write!(
                    out,
                    "<tr><th scope=\"row\">{}</th><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.3}</td></tr>",
                    esc(tag),
                    g.cases,
                    g.passed,
                    pct(g.pass_rate),
                    g.mean_score
                );
            }
            out.push_str("</tbody></table></div>");
        }
        out.push_str("</section>");
    }

    fn case_anchor(&self, id: &str) -> String {
        format!("case-{}", self.index.get(id).copied().unwrap_or(0))
    }

    fn output_diff(&self, id: &str) -> String {
        let text = |r: Option<&CaseResult>| {
            r.map_or_else(String::new, |c| match (&c.output, &c.error) {
                (Some(o), _) => o.text.clone(),
                (None, Some(e)) => format!("(target error) {e}"),
                (None, None) => String::new(),
            })
        };
        let base_name = self.baseline.map_or("baseline", |b| b.name.as_str());
        let candidate = self.index.get(id).and_then(|i| self.run.cases.get(*i));
        side_by_side(
            base_name,
            &text(self.base_cases.get(id).copied()),
            &self.run.name,
            &text(candidate),
        )
    }

    fn comparison_section(&self, out: &mut String) {
        let Some(c) = &self.comparison else {
            return;
        };
        let _ = write!(
            out,
            "<section id=\"comparison\" aria-labelledby=\"comparison-h\"><h2 id=\"comparison-h\">A/B comparison: {} vs {}</h2><p>Mean score {:.3} → {:.3}: diff <b>{:+.3}</b>, {:.0} % bootstrap CI [{:+.3}, {:+.3}]. Pass rate {} → {}; McNemar p = {:.4} ({}). {} paired cases{}{}.</p>",
            esc(&c.candidate),
            esc(&c.baseline),
            c.baseline_mean,
            c.candidate_mean,
            c.mean_diff,
            c.ci.level * 100.0,
            c.ci.low,
            c.ci.high,
            pct(c.baseline_pass_rate),
            pct(c.candidate_pass_rate),
            c.mcnemar.p_value,
            if c.significant {
                "significant"
            } else {
                "not significant"
            },
            c.paired,
            if c.unpaired > 0 {
                format!(", {} unpaired", c.unpaired)
            } else {
                String::new()
            },
            if c.same_dataset {
                ""
            } else {
                "; <b>the two runs used different dataset versions</b>"
            }
        );
        for (title, list_id, class, deltas, open) in [
            (
                "Regressions",
                "regressions",
                "regressed",
                &c.regressed,
                true,
            ),
            (
                "Improvements",
                "improvements",
                "improved",
                &c.improved,
                false,
            ),
        ] {
            let _ = write!(
                out,
                "<h3>{title} ({})</h3><ol id=\"{list_id}\" class=\"deltas\">",
                deltas.len()
            );
            if deltas.is_empty() {
                out.push_str("<li class=\"muted\">none</li>");
            }
            for d in deltas {
                let _ = write!(
                    out,
                    "<li class=\"delta {class}\"><a href=\"#{}\"><code>{}</code></a> <span class=\"badge {class}\">{class}</span> score {:.2} → {:.2}{}<details{}><summary>side-by-side output diff</summary>{}</details></li>",
                    self.case_anchor(&d.id),
                    esc(&d.id),
                    d.baseline_score,
                    d.candidate_score,
                    if d.candidate_reason.is_empty() {
                        String::new()
                    } else {
                        format!(" — {}", esc(&d.candidate_reason))
                    },
                    if open { " open" } else { "" },
                    self.output_diff(&d.id)
                );
            }
            out.push_str("</ol>");
        }
        out.push_str("</section>");
    }

    fn versions(&self, out: &mut String) {
        out.push_str("<section id=\"versions\" aria-labelledby=\"versions-h\"><h2 id=\"versions-h\">Versions: cost, tokens and latency</h2><div class=\"scroll\"><table><thead><tr><th scope=\"col\">run</th><th scope=\"col\">prompt</th><th scope=\"col\">model</th><th class=\"num\" scope=\"col\">pass rate</th><th class=\"num\" scope=\"col\">mean</th><th class=\"num\" scope=\"col\">tokens in / out</th><th class=\"num\" scope=\"col\">cost</th><th class=\"num\" scope=\"col\">p50 / p95 latency</th><th class=\"num\" scope=\"col\">target calls / cache hits</th></tr></thead><tbody>");
        let rows = self
            .baseline
            .map(|b| ("baseline", b))
            .into_iter()
            .chain([("candidate", self.run)]);
        for (role, r) in rows {
            let s = &r.summary;
            let _ = write!(
                out,
                "<tr><th scope=\"row\">{} <span class=\"muted\">({role})</span></th><td><code class=\"ref\">{}</code></td><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{:.3}</td><td class=\"num\">{} / {}</td><td class=\"num\">{}</td><td class=\"num\">{:.0} / {:.0} ms</td><td class=\"num\">{} / {}</td></tr>",
                esc(&r.name),
                esc(&r.target.prompt),
                esc(&r.target.model),
                pct(s.pass_rate),
                s.mean_score,
                s.input_tokens,
                s.output_tokens,
                esc(&s.cost_text()),
                s.latency_p50_ms,
                s.latency_p95_ms,
                r.stats.target_calls,
                r.stats.cache_hits
            );
        }
        out.push_str("</tbody></table></div>");
        match (
            self.baseline.and_then(|b| b.prompt_source.as_ref()),
            &self.run.prompt_source,
        ) {
            (Some(old), Some(new)) => {
                let _ = write!(
                    out,
                    "<h3>Prompt diff</h3><div id=\"prompt-diff\">{}</div>",
                    side_by_side(
                        &self.baseline.map_or_else(String::new, |b| b.target.prompt.clone()),
                        old,
                        &self.run.target.prompt,
                        new
                    )
                );
            }
            (None, Some(new)) => {
                let _ = write!(
                    out,
                    "<h3>Prompt</h3><pre id=\"prompt-source\">{}</pre>",
                    esc(new)
                );
            }
            _ => out.push_str("<p class=\"muted\">The runs carry no prompt text (set <code>RunResult::prompt_source</code>) so no prompt diff is shown.</p>"),
        }
        out.push_str("</section>");
    }

    fn judge(out: &mut String, j: &JudgeInfo, index: usize) {
        let _ = write!(
            out,
            "<h3>{} <span class=\"muted\">rubric <code>{}@{}@{}</code> on <code>{}</code></span></h3>",
            esc(&j.name),
            esc(&j.prompt.id),
            esc(&j.prompt.version),
            esc(&j.prompt.hash),
            esc(&j.model)
        );
        let Some(c) = &j.calibration else {
            out.push_str("<p><span class=\"badge fail\">not calibrated</span> no human labels were compared with this judge: its scores are unverified.</p>");
            return;
        };
        let _ = write!(
            out,
            "<p>Agreement <b>{:.3}</b>, Cohen's kappa <b>{:.3}</b> on {} human labels.</p><div class=\"scroll\"><table class=\"matrix calibration\" id=\"calibration-{index}\"><caption class=\"muted\">Confusion matrix: judge (rows) vs human (columns)</caption><thead><tr><th scope=\"col\"></th><th scope=\"col\">human pass</th><th scope=\"col\">human fail</th></tr></thead><tbody><tr><th scope=\"row\">judge pass</th><td>{}</td><td>{} <span class=\"muted\">(too lenient)</span></td></tr><tr><th scope=\"row\">judge fail</th><td>{} <span class=\"muted\">(too strict)</span></td><td>{}</td></tr></tbody></table></div>",
            c.agreement,
            c.kappa,
            c.n,
            c.both_pass,
            c.judge_pass_human_fail,
            c.judge_fail_human_pass,
            c.both_fail
        );
        if c.disagreements.is_empty() {
            return;
        }
        out.push_str("<h4>Where judge and human disagree</h4><div class=\"scroll\"><table class=\"disagreements\"><thead><tr><th scope=\"col\">case</th><th scope=\"col\">judge</th><th scope=\"col\">human</th><th scope=\"col\">judge's reason</th><th scope=\"col\">human's note</th></tr></thead><tbody>");
        let verdict = |p: bool| if p { "pass" } else { "fail" };
        for d in &c.disagreements {
            let _ = write!(
                out,
                "<tr><th scope=\"row\"><code>{}</code></th><td><span class=\"badge {}\">{}</span></td><td><span class=\"badge {}\">{}</span></td><td>{}</td><td>{}</td></tr>",
                esc(&d.case_id),
                verdict(d.judge_passed),
                verdict(d.judge_passed),
                verdict(d.human_passed),
                verdict(d.human_passed),
                esc(&d.judge_reason),
                esc(&d.human_note)
            );
        }
        out.push_str("</tbody></table></div>");
    }

    fn judges(&self, out: &mut String) {
        if self.run.judges.is_empty() {
            return;
        }
        out.push_str("<section id=\"judges\" aria-labelledby=\"judges-h\"><h2 id=\"judges-h\">Judge calibration</h2>");
        for (i, j) in self.run.judges.iter().enumerate() {
            Self::judge(out, j, i);
        }
        out.push_str("</section>");
    }

    fn retrieval(&self, out: &mut String) {
        let rows: Vec<(usize, &CaseResult)> = self
            .run
            .cases
            .iter()
            .enumerate()
            .filter(|(_, c)| c.retrieval.is_some())
            .collect();
        if rows.is_empty() {
            return;
        }
        let _ = write!(
            out,
            "<section id=\"retrieval\" aria-labelledby=\"retrieval-h\"><h2 id=\"retrieval-h\">Retrieval (k = {})</h2><p class=\"muted\">Measured on retrieved ids against the cases' expected ids, apart from generation scores: a right answer from the wrong documents and a wrong answer from the right ones are different bugs. Found ids are in bold.</p><div class=\"scroll\"><table><thead><tr><th scope=\"col\">case</th><th scope=\"col\">retrieved</th><th scope=\"col\">expected</th><th class=\"num\" scope=\"col\">recall@k</th><th class=\"num\" scope=\"col\">precision@k</th><th class=\"num\" scope=\"col\">MRR</th><th class=\"num\" scope=\"col\">nDCG@k</th><th class=\"num\" scope=\"col\">hit</th></tr></thead><tbody>",
            self.run.retrieval_k
        );
        for (i, c) in rows {
            let Some(m) = &c.retrieval else { continue };
            let expected = c.expected_ids.clone().unwrap_or_default();
            let retrieved: Vec<String> = c
                .output
                .as_ref()
                .map(|o| {
                    o.retrieved_ids
                        .iter()
                        .map(|id| {
                            if expected.contains(id) {
                                format!("<span class=\"found\">{}</span>", esc(id))
                            } else {
                                esc(id)
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            let expected: Vec<String> = expected.iter().map(|id| esc(id)).collect();
            let _ = write!(
                out,
                "<tr><th scope=\"row\"><a href=\"#case-{i}\"><code>{}</code></a></th><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td class=\"num\">{:.3}</td><td class=\"num\">{:.3}</td><td class=\"num\">{:.3}</td><td class=\"num\">{:.3}</td><td class=\"num\">{:.0}</td></tr>",
                esc(&c.id),
                retrieved.join(", "),
                expected.join(", "),
                m.recall,
                m.precision,
                m.mrr,
                m.ndcg,
                m.hit_rate
            );
        }
        out.push_str("</tbody><tfoot>");
        let runs = self
            .baseline
            .map(|b| ("baseline mean", b))
            .into_iter()
            .chain([("mean", self.run)]);
        for (label, r) in runs {
            if let Some(m) = &r.summary.retrieval {
                let _ = write!(
                    out,
                    "<tr><th scope=\"row\" colspan=\"3\">{label} over {} cases ({})</th><td class=\"num\">{:.3}</td><td class=\"num\">{:.3}</td><td class=\"num\">{:.3}</td><td class=\"num\">{:.3}</td><td class=\"num\">{:.3}</td></tr>",
                    m.cases,
                    esc(&r.name),
                    m.recall,
                    m.precision,
                    m.mrr,
                    m.ndcg,
                    m.hit_rate
                );
            }
        }
        out.push_str("</tfoot></table></div></section>");
    }

    fn trend(&self, out: &mut String) {
        if self.history.is_empty() {
            return;
        }
        let mut runs: Vec<&RunResult> = self.history.iter().chain([self.run]).collect();
        runs.sort_by_key(|r| r.finished_at);
        let points: Vec<TrendPoint> = runs
            .iter()
            .map(|r| TrendPoint {
                label: r.name.clone(),
                pass_rate: r.summary.pass_rate,
                mean_score: r.summary.mean_score,
            })
            .collect();
        let _ = write!(
            out,
            "<section id=\"trend\" aria-labelledby=\"trend-h\"><h2 id=\"trend-h\">Trend over {} runs</h2>{}<div class=\"scroll\"><table><thead><tr><th scope=\"col\">run</th><th scope=\"col\">finished</th><th class=\"num\" scope=\"col\">pass rate</th><th class=\"num\" scope=\"col\">mean</th><th class=\"num\" scope=\"col\">cost</th></tr></thead><tbody>",
            runs.len(),
            trend_svg(&points)
        );
        for r in runs {
            let _ = write!(
                out,
                "<tr><th scope=\"row\">{}</th><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{:.3}</td><td class=\"num\">{}</td></tr>",
                esc(&r.name),
                utc(r.finished_at),
                pct(r.summary.pass_rate),
                r.summary.mean_score,
                esc(&r.summary.cost_text())
            );
        }
        out.push_str("</tbody></table></div></section>");
    }

    fn cases(&self, out: &mut String) {
        let _ = write!(
            out,
            "<section id=\"cases\" aria-labelledby=\"cases-h\"><h2 id=\"cases-h\">Cases ({})</h2>\
             <form id=\"case-filters\" class=\"filters\" hidden role=\"search\">\
             <label for=\"case-search\">Search cases (id, tag, input, output, reason)<input id=\"case-search\" type=\"search\" placeholder=\"e.g. refund\" aria-controls=\"case-list\"></label>\
             <label for=\"case-status\">Show<select id=\"case-status\" aria-controls=\"case-list\"><option value=\"all\">all cases</option><option value=\"fail\">failing</option><option value=\"pass\">passing</option><option value=\"regressed\">regressed</option><option value=\"improved\">improved</option><option value=\"changed\">output changed</option></select></label>\
             <output id=\"case-count\" aria-live=\"polite\"></output></form><div id=\"case-list\">",
            self.run.cases.len()
        );
        for (i, c) in self.run.cases.iter().enumerate() {
            self.case(out, i, c);
        }
        out.push_str("</div></section>");
    }

    fn case(&self, out: &mut String, index: usize, c: &CaseResult) {
        let base = self.base_cases.get(c.id.as_str()).copied();
        let mut status = vec![if c.passed { "pass" } else { "fail" }];
        let mut badge = if c.passed { "pass" } else { "fail" };
        if let Some(b) = base {
            if b.passed && !c.passed {
                status.push("regressed");
                badge = "regressed";
            } else if !b.passed && c.passed {
                status.push("improved");
                badge = "improved";
            }
            let text = |r: &CaseResult| r.output.as_ref().map(|o| o.text.clone());
            if text(b) != text(c) {
                status.push("changed");
            }
        }
        let score = match base {
            Some(b) => format!("{:.2} → {:.2}", b.score, c.score),
            None => format!("{:.2}", c.score),
        };
        let (latency, tokens, price) = c.output.as_ref().map_or_else(
            || ("—".to_owned(), "—".to_owned(), "—".to_owned()),
            |o| {
                (
                    ms(o),
                    format!("{} / {} tok", o.usage.input_tokens, o.usage.output_tokens),
                    cost(o),
                )
            },
        );
        let why = c.failure_reason();
        let _ = write!(
            out,
            "<details class=\"case\" id=\"case-{index}\" data-status=\"{}\"{}><summary><code>{}</code><span><span class=\"badge {badge}\">{badge}</span> {}</span><span class=\"num\">score {score}</span><span class=\"num\">{latency}</span><span class=\"num\">{tokens}</span><span class=\"num\">{}</span>{}</summary><div class=\"body\">",
            status.join(" "),
            if badge == "regressed" { " open" } else { "" },
            esc(&c.id),
            esc(&c.tags.join(", ")),
            esc(&price),
            if why.is_empty() {
                String::new()
            } else {
                format!("<span class=\"why\">{}</span>", esc(&why))
            }
        );
        // The trace record: what to search for in traces and provider logs.
        out.push_str("<dl class=\"trace\" aria-label=\"Trace record\">");
        let runs = base
            .map(|b| (self.baseline.map_or("baseline", |r| r.name.as_str()), b))
            .into_iter()
            .chain([(self.run.name.as_str(), c)]);
        for (run_name, r) in runs {
            let Some(o) = &r.output else {
                let _ = write!(
                    out,
                    "<dt>{}</dt><dd>no output (target error)</dd>",
                    esc(run_name)
                );
                continue;
            };
            let prompt = o.prompt.as_ref().map_or_else(
                || "—".to_owned(),
                |p| format!("{}@{}@{}", p.id, p.version, p.hash),
            );
            let _ = write!(
                out,
                "<dt>{}</dt><dd>request id <code class=\"request-id\">{}</code> · provider id <code>{}</code> · prompt <code class=\"prompt-ref\">{}</code> · model <code>{}</code>{}</dd>",
                esc(run_name),
                esc(o.request_id.as_deref().unwrap_or("—")),
                esc(o.provider_request_id.as_deref().unwrap_or("—")),
                esc(&prompt),
                esc(o.model.as_deref().unwrap_or("—")),
                if r.cached { " · from cache" } else { "" }
            );
        }
        out.push_str("</dl>");
        if !c.inputs.is_empty() {
            out.push_str("<dl class=\"trace\" aria-label=\"Inputs\">");
            for (k, v) in &c.inputs {
                let text = v.as_str().map_or_else(|| v.to_string(), ToOwned::to_owned);
                let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(&text));
            }
            if let Some(r) = &c.reference {
                let _ = write!(out, "<dt>reference</dt><dd>{}</dd>", esc(r));
            }
            out.push_str("</dl>");
        }
        if base.is_some() {
            out.push_str(&self.output_diff(&c.id));
        } else {
            let text = c
                .output
                .as_ref()
                .map_or_else(|| c.error.clone().unwrap_or_default(), |o| o.text.clone());
            let _ = write!(out, "<pre class=\"output\">{}</pre>", esc(&text));
        }
        if !c.scores.is_empty() {
            out.push_str("<div class=\"scroll\"><table class=\"scores\"><thead><tr><th scope=\"col\">evaluator</th>");
            if base.is_some() {
                out.push_str("<th class=\"num\" scope=\"col\">baseline</th>");
            }
            out.push_str("<th class=\"num\" scope=\"col\">score</th><th scope=\"col\">reason</th></tr></thead><tbody>");
            for x in &c.scores {
                let _ = write!(out, "<tr><th scope=\"row\">{}</th>", esc(&x.evaluator));
                if let Some(b) = base {
                    let cell = b
                        .scores
                        .iter()
                        .find(|y| y.evaluator == x.evaluator)
                        .map_or_else(
                            || "—".to_owned(),
                            |y| format!("{:.2} {}", y.value, if y.passed { "✓" } else { "✗" }),
                        );
                    let _ = write!(out, "<td class=\"num\">{cell}</td>");
                }
                let _ = write!(
                    out,
                    "<td class=\"num\">{:.2} {}</td><td>{}</td></tr>",
                    x.value,
                    if x.passed { "✓" } else { "✗" },
                    esc(&x.reason)
                );
            }
            out.push_str("</tbody></table></div>");
        }
        out.push_str("</div></details>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_interval_brackets_the_rate() {
        let (lo, hi) = wilson(8, 10);
        assert!(lo < 0.8 && 0.8 < hi);
        assert!((lo - 0.4902).abs() < 1e-3 && (hi - 0.9433).abs() < 1e-3);
        assert_eq!(wilson(0, 0), (0.0, 0.0));
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_796_517_000), "2026-12-06 00:30 UTC");
    }
}
