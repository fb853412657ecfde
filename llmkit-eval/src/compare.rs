//! Paired comparison of two runs on the same cases: a [`Comparison`] holds the mean score
//! difference with a seeded paired-bootstrap confidence interval ([`bootstrap_mean_ci`]),
//! McNemar's test on pass/fail ([`mcnemar`]) and the cases that regressed or improved.
//!
//! Cases are paired by id; cases present in only one run are counted, not compared.
//!
//! ```
//! use llmkit_eval::compare::mcnemar;
//! // 1 case went pass → fail, 9 went fail → pass: exact two-sided p = 2 · 11 / 1024.
//! let m = mcnemar(1, 9);
//! assert!((m.exact_p - 22.0 / 1024.0).abs() < 1e-12);
//! assert!((m.chi_square - 4.9).abs() < 1e-12);
//! ```

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::result::RunResult;

/// McNemar's test on paired pass/fail outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct McNemar {
    /// Baseline passed, candidate failed.
    pub pass_to_fail: usize,
    /// Baseline failed, candidate passed.
    pub fail_to_pass: usize,
    /// Exact two-sided binomial p-value (`B(b + c, 1/2)`), right for small counts.
    pub exact_p: f64,
    /// Chi-square statistic with continuity correction, `(|b - c| - 1)² / (b + c)`.
    pub chi_square: f64,
    /// p-value of `chi_square` with one degree of freedom.
    pub chi_square_p: f64,
    /// The p-value to report: exact when `b + c < 25`, chi-square otherwise.
    pub p_value: f64,
}

/// McNemar's test from the discordant counts `b` (pass → fail) and `c` (fail → pass).
pub fn mcnemar(b: usize, c: usize) -> McNemar {
    let n = b + c;
    if n == 0 {
        return McNemar {
            pass_to_fail: b,
            fail_to_pass: c,
            exact_p: 1.0,
            chi_square: 0.0,
            chi_square_p: 1.0,
            p_value: 1.0,
        };
    }
    let k = b.min(c);
    // Two-sided exact: 2 · P(X ≤ k) for X ~ Binomial(n, 1/2), summed in log space.
    let ln_half_n = n as f64 * 0.5f64.ln();
    let mut ln_choose = 0.0f64;
    let mut tail = 0.0f64;
    for i in 0..=k {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        tail += (ln_choose + ln_half_n).exp();
    }
    let exact_p = (2.0 * tail).min(1.0);
    let diff = (b as f64 - c as f64).abs();
    let chi_square = (diff - 1.0).max(0.0).powi(2) / n as f64;
    let chi_square_p = erfc((chi_square / 2.0).sqrt()).min(1.0);
    McNemar {
        pass_to_fail: b,
        fail_to_pass: c,
        exact_p,
        chi_square,
        chi_square_p,
        p_value: if n < 25 { exact_p } else { chi_square_p },
    }
}

/// Complementary error function (Numerical Recipes `erfcc`, fractional error below 1.2e-7),
/// enough for p-values.
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// A confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
    /// Confidence level, e.g. 0.95.
    pub level: f64,
}

impl Interval {
    /// Whether `x` lies inside.
    pub fn contains(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }
}

/// Percentile bootstrap interval of the mean of `diffs` (paired differences): `resamples`
/// resamples with replacement drawn from a ChaCha8 RNG seeded with `seed`, so the interval is
/// reproducible. Empty input gives `[0, 0]`.
pub fn bootstrap_mean_ci(diffs: &[f64], resamples: usize, level: f64, seed: u64) -> Interval {
    let level = level.clamp(0.0, 1.0);
    if diffs.is_empty() || resamples == 0 {
        return Interval {
            low: 0.0,
            high: 0.0,
            level,
        };
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = diffs.len();
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| {
            let mut sum = 0.0;
            for _ in 0..n {
                // Modulo bias is below 2^-40 for any realistic n; irrelevant here.
                let i = (rng.next_u64() % n as u64) as usize;
                sum += diffs.get(i).copied().unwrap_or(0.0);
            }
            sum / n as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    let alpha = (1.0 - level) / 2.0;
    let at = |q: f64| {
        let idx = ((q * (resamples - 1) as f64).round() as usize).min(resamples - 1);
        means.get(idx).copied().unwrap_or(0.0)
    };
    Interval {
        low: at(alpha),
        high: at(1.0 - alpha),
        level,
    }
}

/// Bootstrap and significance settings. Defaults: 2,000 resamples, 95 % level, seed 42,
/// significance 0.05.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CompareOptions {
    /// Bootstrap resamples.
    pub resamples: usize,
    /// Confidence level of the interval.
    pub level: f64,
    /// RNG seed.
    pub seed: u64,
    /// p-value below which a pass-rate change counts as significant.
    pub alpha: f64,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            resamples: 2000,
            level: 0.95,
            seed: 42,
            alpha: 0.05,
        }
    }
}

/// One case's change between two runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseDelta {
    /// Case id.
    pub id: String,
    /// Baseline score.
    pub baseline_score: f64,
    /// Candidate score.
    pub candidate_score: f64,
    /// Baseline passed.
    pub baseline_passed: bool,
    /// Candidate passed.
    pub candidate_passed: bool,
    /// Why the candidate failed (its failing evaluators' reasons).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub candidate_reason: String,
}

/// Case-by-case comparison of a candidate run against a baseline run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Baseline run name.
    pub baseline: String,
    /// Candidate run name.
    pub candidate: String,
    /// Cases in both runs.
    pub paired: usize,
    /// Cases in only one run.
    pub unpaired: usize,
    /// Whether both runs used the same dataset content.
    pub same_dataset: bool,
    /// Mean baseline score over paired cases.
    pub baseline_mean: f64,
    /// Mean candidate score over paired cases.
    pub candidate_mean: f64,
    /// Mean of candidate − baseline scores.
    pub mean_diff: f64,
    /// Bootstrap interval of `mean_diff`.
    pub ci: Interval,
    /// Baseline pass rate over paired cases.
    pub baseline_pass_rate: f64,
    /// Candidate pass rate over paired cases.
    pub candidate_pass_rate: f64,
    /// McNemar's test on pass/fail.
    pub mcnemar: McNemar,
    /// Whether the pass/fail change is significant at the configured alpha.
    pub significant: bool,
    /// Cases that passed in the baseline and fail in the candidate.
    pub regressed: Vec<CaseDelta>,
    /// Cases that failed in the baseline and pass in the candidate.
    pub improved: Vec<CaseDelta>,
    /// Settings used.
    pub options: CompareOptions,
}

impl Comparison {
    /// Compares `candidate` against `baseline`.
    pub fn new(baseline: &RunResult, candidate: &RunResult, options: CompareOptions) -> Self {
        let mut diffs = Vec::new();
        let (mut b_sum, mut c_sum, mut b_pass, mut c_pass) = (0.0, 0.0, 0usize, 0usize);
        let (mut regressed, mut improved) = (Vec::new(), Vec::new());
        for base in &baseline.cases {
            let Some(cand) = candidate.case(&base.id) else {
                continue;
            };
            diffs.push(cand.score - base.score);
            b_sum += base.score;
            c_sum += cand.score;
            b_pass += usize::from(base.passed);
            c_pass += usize::from(cand.passed);
            if base.passed != cand.passed {
                let delta = CaseDelta {
                    id: base.id.clone(),
                    baseline_score: base.score,
                    candidate_score: cand.score,
                    baseline_passed: base.passed,
                    candidate_passed: cand.passed,
                    candidate_reason: cand.failure_reason(),
                };
                if base.passed {
                    regressed.push(delta);
                } else {
                    improved.push(delta);
                }
            }
        }
        let paired = diffs.len();
        let only_candidate = candidate
            .cases
            .iter()
            .filter(|c| baseline.case(&c.id).is_none())
            .count();
        let unpaired = baseline.cases.len() - paired + only_candidate;
        let n = paired.max(1) as f64;
        let mcnemar = mcnemar(regressed.len(), improved.len());
        Comparison {
            baseline: baseline.name.clone(),
            candidate: candidate.name.clone(),
            paired,
            unpaired,
            same_dataset: baseline.dataset.hash == candidate.dataset.hash,
            baseline_mean: b_sum / n,
            candidate_mean: c_sum / n,
            mean_diff: diffs.iter().sum::<f64>() / n,
            ci: bootstrap_mean_ci(&diffs, options.resamples, options.level, options.seed),
            baseline_pass_rate: b_pass as f64 / n,
            candidate_pass_rate: c_pass as f64 / n,
            significant: mcnemar.p_value < options.alpha,
            mcnemar,
            regressed,
            improved,
            options,
        }
    }

    /// A few lines for a terminal.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "{} vs {} on {} paired cases{}\n",
            self.candidate,
            self.baseline,
            self.paired,
            if self.same_dataset {
                ""
            } else {
                " (datasets differ!)"
            }
        );
        out += &format!(
            "mean score {:.3} -> {:.3}: diff {:+.3}, {:.0}% CI [{:+.3}, {:+.3}]\n",
            self.baseline_mean,
            self.candidate_mean,
            self.mean_diff,
            self.ci.level * 100.0,
            self.ci.low,
            self.ci.high
        );
        out += &format!(
            "pass rate {:.1}% -> {:.1}%: {} regressed, {} improved, McNemar p = {:.4}{}\n",
            self.baseline_pass_rate * 100.0,
            self.candidate_pass_rate * 100.0,
            self.regressed.len(),
            self.improved.len(),
            self.mcnemar.p_value,
            if self.significant {
                " (significant)"
            } else {
                ""
            }
        );
        for r in &self.regressed {
            out += &format!(
                "  regressed {}: {:.2} -> {:.2} {}\n",
                r.id, r.baseline_score, r.candidate_score, r.candidate_reason
            );
        }
        out
    }
}
