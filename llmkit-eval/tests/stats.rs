//! Statistics against known values: Cohen's kappa, McNemar, bootstrap CI, paired comparison.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use llmkit_eval::compare::{bootstrap_mean_ci, erfc, mcnemar};
use llmkit_eval::judge::Calibration;
use llmkit_eval::review::HumanLabel;
use llmkit_eval::{CompareOptions, Comparison};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() < tol
}

#[test]
fn cohens_kappa_matches_the_textbook_example() {
    // 50 items: both yes 20, judge yes/human no 5, judge no/human yes 10, both no 15.
    // p_o = 0.7; p_e = 0.5 · 0.6 + 0.5 · 0.4 = 0.5; kappa = 0.4.
    let pairs = std::iter::repeat_n((true, true), 20)
        .chain(std::iter::repeat_n((true, false), 5))
        .chain(std::iter::repeat_n((false, true), 10))
        .chain(std::iter::repeat_n((false, false), 15));
    let c = Calibration::from_pairs("judge", pairs);
    assert_eq!(c.n, 50);
    assert!(close(c.agreement, 0.7, 1e-12));
    assert!(close(c.kappa, 0.4, 1e-12));
    assert_eq!(
        (
            c.both_pass,
            c.judge_pass_human_fail,
            c.judge_fail_human_pass,
            c.both_fail
        ),
        (20, 5, 10, 15)
    );
    assert!(c.check(0.7).is_ok());
    let err = c.check(0.8).unwrap_err().to_string();
    assert!(
        err.contains("agreement 0.700") && err.contains("floor 0.8"),
        "{err}"
    );

    // Perfect agreement on both classes: kappa 1. Everything the same class: kappa undefined → 0.
    let perfect = Calibration::from_pairs("j", [(true, true), (false, false)]);
    assert!(close(perfect.kappa, 1.0, 1e-12));
    let degenerate = Calibration::from_pairs("j", [(true, true), (true, true)]);
    assert!(close(degenerate.agreement, 1.0, 1e-12) && degenerate.kappa == 0.0);
    assert!(
        Calibration::from_pairs("j", []).check(0.0).is_err(),
        "no labels, no trust"
    );
}

#[test]
fn mcnemar_matches_known_p_values() {
    // b = 1, c = 9: exact p = 2 · (C(10,0) + C(10,1)) / 2^10.
    let m = mcnemar(1, 9);
    assert!(close(m.exact_p, 22.0 / 1024.0, 1e-12));
    assert!(close(m.chi_square, 4.9, 1e-12));
    assert!(close(m.chi_square_p, 0.026_856_695_507_524_425, 1e-6));
    assert_eq!(m.p_value, m.exact_p, "small counts use the exact test");
    // b = 30, c = 10: chi-square (|30 - 10| - 1)² / 40 = 9.025.
    let m = mcnemar(30, 10);
    assert!(close(m.chi_square, 9.025, 1e-12));
    assert!(close(m.chi_square_p, 0.002_663_119_259_138_554, 1e-6));
    assert!(close(m.exact_p, 0.002_221_433_773_229_364_3, 1e-12));
    assert_eq!(m.p_value, m.chi_square_p);
    assert_eq!(mcnemar(0, 0).p_value, 1.0);
    assert_eq!(mcnemar(3, 3).exact_p, 1.0);
    assert!(close(erfc(0.0), 1.0, 1e-7) && close(erfc(-10.0), 2.0, 1e-7));
}

#[test]
fn bootstrap_ci_contains_the_true_difference_and_is_reproducible() {
    // Differences with a true mean of 0.2: 0.2 plus symmetric noise from a fixed LCG.
    let mut state: u64 = 12345;
    let diffs: Vec<f64> = (0..200)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            0.2 + ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5)
        })
        .collect();
    let ci = bootstrap_mean_ci(&diffs, 2000, 0.95, 42);
    assert!(ci.contains(0.2), "{ci:?}");
    assert!(!ci.contains(0.0), "a real improvement is detected: {ci:?}");
    assert!(ci.high - ci.low < 0.1, "{ci:?}");
    assert_eq!(
        ci,
        bootstrap_mean_ci(&diffs, 2000, 0.95, 42),
        "same seed, same interval"
    );
    assert_ne!(ci, bootstrap_mean_ci(&diffs, 2000, 0.95, 43));
    // Constant differences give a degenerate interval at that value.
    let flat = bootstrap_mean_ci(&[0.25; 10], 100, 0.9, 1);
    assert!(close(flat.low, 0.25, 1e-12) && close(flat.high, 0.25, 1e-12));
    assert_eq!(bootstrap_mean_ci(&[], 100, 0.95, 1).high, 0.0);
}

#[tokio::test]
async fn comparison_pairs_cases_and_lists_regressions() {
    let baseline = common::run_passes("v1", &[true, true, false, false, true, false]).await;
    let candidate = common::run_passes("v2", &[true, false, true, true, true, true]).await;
    let c = Comparison::new(&baseline, &candidate, CompareOptions::default());
    assert_eq!(c.paired, 6);
    assert!(c.same_dataset);
    assert_eq!(
        c.regressed
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        vec!["c1"]
    );
    assert_eq!(c.improved.len(), 3);
    assert_eq!((c.mcnemar.pass_to_fail, c.mcnemar.fail_to_pass), (1, 3));
    // exact p = 2 · (1 + 4) / 16 = 0.625.
    assert!(close(c.mcnemar.p_value, 0.625, 1e-12));
    assert!(!c.significant);
    assert!(close(c.mean_diff, 2.0 / 6.0, 1e-12));
    assert!(c.ci.low <= c.mean_diff && c.mean_diff <= c.ci.high);
    assert!(c.regressed[0].candidate_reason.contains("score"));
    assert!(c.summary().contains("regressed c1"));
}

#[tokio::test]
async fn calibration_from_a_run_and_human_labels() {
    let run = common::run_passes("judged", &[true, true, false, false]).await;
    let label = |id: &str, passed| HumanLabel {
        case_id: id.into(),
        passed,
        note: String::new(),
    };
    let labels = vec![
        label("c0", true),
        label("c1", false),
        label("c2", false),
        label("c3", false),
        label("zz", true),
    ];
    let c = Calibration::from_run(&run, "score", &labels).unwrap();
    assert_eq!(c.n, 4, "unknown case ids are skipped");
    assert!(close(c.agreement, 0.75, 1e-12));
    assert!(Calibration::from_run(&run, "no_such_judge", &labels).is_err());
}
