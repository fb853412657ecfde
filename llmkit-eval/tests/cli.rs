//! The `llmkit-eval` binary: help text, run → gate with exit codes, bad input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::{Command, Output};

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llmkit-eval"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn help_explains_every_command_and_flag() {
    let top = cli(&["--help"]);
    assert!(top.status.success());
    let text = stdout(&top);
    for needle in ["run", "compare", "gate", "Exit codes"] {
        assert!(text.contains(needle), "missing {needle}:\n{text}");
    }
    let run = stdout(&cli(&["run", "--help"]));
    for needle in [
        "--dataset",
        "--outputs",
        "--rouge-l",
        "--max-latency-ms",
        "Outputs produced by your application",
    ] {
        assert!(run.contains(needle), "missing {needle}:\n{run}");
    }
    let gate = stdout(&cli(&["gate", "--help"]));
    for needle in [
        "--baseline",
        "--min-pass-rate",
        "--max-regressed",
        "--judge-floor",
        "--write-baseline",
    ] {
        assert!(gate.contains(needle), "missing {needle}:\n{gate}");
    }
    assert!(stdout(&cli(&["compare", "--help"])).contains("--seed"));
}

#[test]
fn run_then_gate_from_files_with_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    std::fs::write(
        p("cases.jsonl"),
        "{\"id\": \"a\", \"inputs\": {\"q\": \"refund window?\"}, \"reference\": \"refunds within 30 days\", \"tags\": [\"billing\"]}\n\
         {\"id\": \"b\", \"inputs\": {\"q\": \"ship time?\"}, \"reference\": \"ships in 2 days\", \"expected_ids\": [\"ship-1\"]}\n",
    )
    .unwrap();
    std::fs::write(
        p("outputs.jsonl"),
        "{\"id\": \"a\", \"output\": \"Refunds within 30 days.\", \"latency_ms\": 120}\n\
         {\"id\": \"b\", \"output\": \"No idea.\", \"retrieved_ids\": [\"ship-1\"]}\n",
    )
    .unwrap();
    let out = cli(&[
        "run",
        "--dataset",
        &p("cases.jsonl"),
        "--outputs",
        &p("outputs.jsonl"),
        "--rouge-l",
        "0.6",
        "--out",
        &p("out"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout(&out).contains("2 cases, 1 passed"),
        "{}",
        stdout(&out)
    );
    for f in ["run.json", "report.md", "junit.xml"] {
        assert!(dir.path().join("out").join(f).exists(), "{f}");
    }
    let run_json = p("out/run.json");

    let failing = cli(&["gate", "--run", &run_json, "--min-pass-rate", "0.9"]);
    assert_eq!(failing.status.code(), Some(1));
    assert!(stdout(&failing).contains("gate: FAIL"));
    let passing = cli(&[
        "gate",
        "--run",
        &run_json,
        "--min-pass-rate",
        "0.5",
        "--min-recall",
        "1.0",
        "--write-baseline",
        &p("baseline.json"),
    ]);
    assert_eq!(passing.status.code(), Some(0), "{}", stdout(&passing));
    let vs_baseline = cli(&[
        "gate",
        "--run",
        &run_json,
        "--baseline",
        &p("baseline.json"),
        "--max-regressed",
        "0",
        "--json",
        &p("gate.json"),
    ]);
    assert_eq!(
        vs_baseline.status.code(),
        Some(0),
        "{}",
        stdout(&vs_baseline)
    );
    assert!(
        std::fs::read_to_string(p("gate.json"))
            .unwrap()
            .contains("regressed cases")
    );

    let cmp = cli(&["compare", "--baseline", &run_json, "--candidate", &run_json]);
    assert!(cmp.status.success());
    assert!(stdout(&cmp).contains("0 regressed"));
}

#[test]
fn bad_input_exits_2_with_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = dir.path().join("cases.jsonl");
    std::fs::write(
        &cases,
        "{\"id\": \"a\", \"inputs\": {}}\n{\"id\": \"a\", \"inputs\": {}}\n",
    )
    .unwrap();
    let out = cli(&[
        "run",
        "--dataset",
        cases.to_str().unwrap(),
        "--outputs",
        cases.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2: duplicate case id `a`"), "{err}");
    let missing = cli(&["gate", "--run", "/nonexistent/run.json"]);
    assert_eq!(missing.status.code(), Some(2));
}
