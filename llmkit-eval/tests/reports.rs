//! Report formats (JUnit parses), gate exit codes and baselines, review export and import.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use quick_xml::Reader;
use quick_xml::events::Event;

use llmkit_eval::gate::{Baseline, EXIT_FAIL, EXIT_PASS, GateConfig, check, evaluate_gate};
use llmkit_eval::judge::{Calibration, JudgeInfo};
use llmkit_eval::review::{
    SampleOptions, Strategy, export_csv, export_jsonl, import_labels_csv, import_labels_jsonl,
    review_items, sample,
};
use llmkit_eval::{CompareOptions, Comparison, EvalError, report};

#[tokio::test]
async fn junit_xml_parses_and_counts_failures() {
    let mut run = common::run_passes("junit <&> run", &[true, false, true, false]).await;
    // Hostile output text: markup, quotes and a control character must not break the XML.
    let out = run.cases[1].output.as_mut().unwrap();
    out.text = "</failure><x a=\"1\">\u{1b}]0; & done".into();
    let xml = report::junit(&run);
    let mut reader = Reader::from_str(&xml);
    let (mut testcases, mut failures, mut suites) = (0, 0, 0);
    let mut names = Vec::new();
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                "testcase" => {
                    testcases += 1;
                    let name = e.try_get_attribute("name").unwrap().unwrap();
                    names.push(name.value.into_owned());
                }
                "failure" => failures += 1,
                "testsuite" => {
                    suites += 1;
                    let failures_attr = e.try_get_attribute("failures").unwrap().unwrap();
                    assert_eq!(&*failures_attr.value, "2");
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!((suites, testcases, failures), (1, 4, 2));
    assert_eq!(names, vec!["c0", "c1", "c2", "c3"]);
    assert!(
        xml.contains("eval.stats.b"),
        "class name carries the first tag"
    );
    assert!(xml.contains(&run.dataset.hash));
}

#[tokio::test]
async fn markdown_terminal_and_json_reports() {
    let base = common::run_passes("v1", &[true, true, true, false]).await;
    let cand = common::run_passes("v2", &[true, false, true, true]).await;
    let cmp = Comparison::new(&base, &cand, CompareOptions::default());
    let gate = evaluate_gate(&cand, None, &GateConfig::new().min_pass_rate(0.9));
    let md = report::markdown(&cand, Some(&cmp), Some(&gate));
    for needle in [
        "# Eval report: v2",
        "## Gate: FAIL",
        "❌ **pass rate**",
        "| c1 |",
        "## By tag",
        "| a |",
        "bootstrap CI",
        "McNemar",
        "## Failing cases",
    ] {
        assert!(md.contains(needle), "missing {needle}:\n{md}");
    }
    let term = report::terminal(&cand);
    assert!(term.contains("4 cases, 3 passed (75.0%)"), "{term}");
    assert!(term.contains("failing cases:") && term.contains("c1"));
    let back: llmkit_eval::RunResult = serde_json::from_str(&report::json(&cand)).unwrap();
    assert_eq!(back, cand);

    let dir = tempfile::tempdir().unwrap();
    let files = report::write_all(dir.path().join("out"), &cand, Some(&cmp), Some(&gate)).unwrap();
    let names: Vec<_> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        vec![
            "run.json",
            "report.md",
            "junit.xml",
            "comparison.json",
            "gate.json"
        ]
    );
}

#[tokio::test]
async fn gate_exit_codes_absolute_thresholds() {
    let run = common::run_with("r", &[1.0, 0.9, 0.2, 0.8]).await;
    let pass = evaluate_gate(
        &run,
        None,
        &GateConfig::new()
            .min_pass_rate(0.75)
            .min_mean_score(0.7)
            .max_errors(0),
    );
    assert!(pass.passed, "{}", pass.report());
    assert_eq!(pass.exit_code(), EXIT_PASS);
    let fail = evaluate_gate(
        &run,
        None,
        &GateConfig::new().min_pass_rate(0.8).min_mean_score(0.7),
    );
    assert_eq!(fail.exit_code(), EXIT_FAIL);
    assert_eq!(fail.failures().count(), 1);
    assert!(
        fail.report().contains("[FAIL] pass rate: 0.750 (min 0.8)"),
        "{}",
        fail.report()
    );
    match check(&run, None, &GateConfig::new().min_pass_rate(0.8)) {
        Err(EvalError::GateFailed(msg)) => assert!(msg.contains("pass rate")),
        other => panic!("{other:?}"),
    }
    let per_eval = evaluate_gate(
        &run,
        None,
        &GateConfig::new()
            .min_evaluator_pass_rate("score", 0.5)
            .min_evaluator_pass_rate("ghost", 0.1),
    );
    let by_name = |n: &str| per_eval.checks.iter().find(|c| c.name == n).unwrap().passed;
    assert!(!per_eval.passed && by_name("evaluator score") && !by_name("evaluator ghost"));
    let none = evaluate_gate(&run, None, &GateConfig::new());
    assert!(none.passed && none.notes[0].contains("trivially"));
    let no_retrieval = evaluate_gate(&run, None, &GateConfig::new().min_retrieval_recall(0.5));
    assert!(!no_retrieval.passed);
}

#[tokio::test]
async fn gate_against_a_stored_baseline() {
    let accepted = common::run_passes("main", &[true, true, true, true, false]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("baseline.json");
    Baseline::from_run(&accepted).save(&path).unwrap();
    let baseline = Baseline::load(&path).unwrap();
    assert_eq!(baseline.cases.len(), 5);

    let config = GateConfig::new()
        .max_pass_rate_drop(0.1)
        .max_regressed_cases(0)
        .max_mean_score_drop(0.05);
    let same = common::run_passes("pr-1", &[true, true, true, true, true]).await;
    assert_eq!(
        evaluate_gate(&same, Some(&baseline), &config).exit_code(),
        EXIT_PASS
    );
    let worse = common::run_passes("pr-2", &[true, false, true, true, true]).await;
    let outcome = evaluate_gate(&worse, Some(&baseline), &config);
    assert_eq!(outcome.exit_code(), EXIT_FAIL, "{}", outcome.report());
    let regressed = outcome
        .checks
        .iter()
        .find(|c| c.name == "regressed cases")
        .unwrap();
    assert!(
        !regressed.passed && regressed.detail.contains("c1"),
        "{}",
        regressed.detail
    );
    let skipped = evaluate_gate(&worse, None, &config);
    assert!(skipped.passed && skipped.notes[0].contains("no baseline"));
    assert!(Baseline::load(dir.path().join("missing.json")).is_err());
}

#[tokio::test]
async fn gate_refuses_uncalibrated_or_untrusted_judges() {
    let mut run = common::run_passes("judged", &[true, true]).await;
    let prompt = llmkit_core::PromptRef {
        id: "rubric".into(),
        version: "1".into(),
        hash: "abc".into(),
    };
    run.judges = vec![JudgeInfo {
        name: "judge".into(),
        prompt: prompt.clone(),
        model: "m".into(),
        calibration: None,
    }];
    let config = GateConfig::new().judge_agreement_floor(0.8);
    assert!(!evaluate_gate(&run, None, &config).passed);
    let good = Calibration::from_pairs(
        "judge",
        [
            (true, true),
            (false, false),
            (true, true),
            (false, false),
            (true, false),
        ],
    );
    run.judges[0].calibration = Some(good);
    assert!(evaluate_gate(&run, None, &config).passed);
    assert!(!evaluate_gate(&run, None, &GateConfig::new().judge_agreement_floor(0.9)).passed);
}

#[tokio::test]
async fn review_sample_export_and_import() {
    let passes: Vec<bool> = (0..20).map(|i| i % 4 != 0).collect(); // 5 failed, 15 passed
    let run = common::run_passes("review", &passes).await;
    let opts = SampleOptions {
        size: 8,
        passed_share: 0.25,
        ..SampleOptions::default()
    };
    let picked = sample(&run, &opts);
    assert_eq!(picked.len(), 8);
    assert_eq!(
        picked.iter().filter(|c| c.passed).count(),
        3,
        "5 failed available, rest from passed"
    );
    let ids: Vec<_> = picked.iter().map(|c| c.id.clone()).collect();
    assert_eq!(
        ids,
        sample(&run, &opts)
            .iter()
            .map(|c| c.id.clone())
            .collect::<Vec<_>>(),
        "seeded"
    );
    let mostly_passed = sample(
        &run,
        &SampleOptions {
            size: 4,
            passed_share: 0.5,
            strategy: Strategy::Random,
            seed: 1,
        },
    );
    assert_eq!(mostly_passed.iter().filter(|c| c.passed).count(), 2);
    let strat = sample(
        &run,
        &SampleOptions {
            size: 4,
            passed_share: 1.0,
            strategy: Strategy::StratifiedByTag,
            seed: 3,
        },
    );
    let tags: Vec<_> = strat.iter().map(|c| c.tags[0].clone()).collect();
    assert_eq!(
        tags.iter().filter(|t| *t == "a").count(),
        2,
        "stratified alternates tags: {tags:?}"
    );

    let ds = common::dataset(20);
    let mut items = review_items(&run, &ds, &opts);
    assert!(items[0].reference.starts_with("reference"));
    assert!(items[0].inputs.contains("\"i\""));
    let mut csv_out = Vec::new();
    export_csv(&items, &mut csv_out).unwrap();
    let csv_text = String::from_utf8(csv_out.clone()).unwrap();
    assert!(csv_text.starts_with("case_id,tags,inputs,output,reference,auto_passed,auto_score,auto_reason,human_passed,human_note"));
    assert!(
        import_labels_csv(csv_out.as_slice()).unwrap().is_empty(),
        "unlabelled rows are skipped"
    );

    items[0].human_passed = "yes".into();
    items[1].human_passed = "fail".into();
    items[1].human_note = "wrong, see policy, clause 3".into();
    let mut csv_out = Vec::new();
    export_csv(&items, &mut csv_out).unwrap();
    let labels = import_labels_csv(csv_out.as_slice()).unwrap();
    assert_eq!(labels.len(), 2);
    assert!(labels[0].passed && !labels[1].passed);
    assert_eq!(labels[1].note, "wrong, see policy, clause 3");

    let mut jsonl = Vec::new();
    export_jsonl(&items, &mut jsonl).unwrap();
    let back = import_labels_jsonl(&String::from_utf8(jsonl).unwrap()).unwrap();
    assert_eq!(back, labels);
    let simple = import_labels_jsonl("{\"case_id\": \"c1\", \"passed\": true}\n").unwrap();
    assert!(simple[0].passed);

    let bad = import_labels_csv("case_id,human_passed\nc1,maybe\n".as_bytes())
        .unwrap_err()
        .to_string();
    assert!(bad.contains(":2:") && bad.contains("maybe"), "{bad}");
    assert!(import_labels_csv("id,verdict\n".as_bytes()).is_err());
}

mod parsers {
    use llmkit_eval::OutputsFile;
    use llmkit_eval::review::{import_labels_csv, import_labels_jsonl};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn label_and_output_parsers_never_panic(text in "\\PC{0,200}") {
            let _ = import_labels_csv(text.as_bytes());
            let _ = import_labels_jsonl(&text);
            let _ = OutputsFile::parse("p", &text);
        }

        #[test]
        fn csv_labels_round_trip(rows in proptest::collection::vec(("[a-z0-9,\" -]{1,12}", any::<bool>(), "\\PC{0,20}"), 0..10)) {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(["case_id", "human_passed", "human_note"]).unwrap();
            for (id, passed, note) in &rows {
                w.write_record([id.as_str(), if *passed { "yes" } else { "no" }, note.as_str()]).unwrap();
            }
            let bytes = w.into_inner().unwrap();
            let labels = import_labels_csv(bytes.as_slice()).unwrap();
            prop_assert_eq!(labels.len(), rows.len());
            for (l, (id, passed, note)) in labels.iter().zip(&rows) {
                prop_assert_eq!(&l.case_id, id);
                prop_assert_eq!(l.passed, *passed);
                prop_assert_eq!(&l.note, note);
            }
        }
    }
}
