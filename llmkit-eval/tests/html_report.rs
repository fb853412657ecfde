//! The HTML report: hostile text in every field cannot inject markup, the sections show the
//! run's data, and the `report` command writes the page from files.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeSet;

use llmkit_core::PromptRef;
use llmkit_eval::gate::{GateCheck, GateOutcome};
use llmkit_eval::judge::{Calibration, Disagreement, JudgeInfo};
use llmkit_eval::report::html;
use llmkit_eval::runner::{NamedScore, RunResult, Summary};

/// Breaks out of text, of both attribute quote styles and of a script, and flips the reading
/// direction; `id="injected"` marks an element that must never exist.
const PAYLOAD: &str =
    "<script>alert(1)</script>\"'><img id=\"injected\" src=x onerror=alert(1)>\u{202E}gnp.exe";

fn hostile(s: &str) -> String {
    format!("{s}{PAYLOAD}")
}

/// Puts the payload into every text field a run has.
fn poison(run: &mut RunResult) {
    run.name = hostile(&run.name);
    run.dataset.name = hostile(&run.dataset.name);
    run.dataset.hash = hostile(&run.dataset.hash);
    run.target.prompt = hostile(&run.target.prompt);
    run.target.model = hostile(&run.target.model);
    run.prompt_source = Some(hostile("You are a support agent.\n"));
    for (i, c) in run.cases.iter_mut().enumerate() {
        c.id = hostile(&c.id);
        c.tags = vec![hostile("tag")];
        c.inputs
            .insert(hostile("key"), serde_json::json!(hostile("value")));
        c.reference = Some(hostile("reference"));
        c.expected_ids = Some(vec![hostile("doc")]);
        if i == 0 {
            c.output = None;
            c.error = Some(hostile("target error"));
            c.passed = false;
        }
        if let Some(o) = c.output.as_mut() {
            o.text = hostile(&o.text);
            o.model = Some(hostile("model"));
            o.request_id = Some(hostile("req"));
            o.provider_request_id = Some(hostile("prov"));
            o.prompt = Some(PromptRef {
                id: hostile("prompt"),
                version: hostile("1"),
                hash: hostile("abc"),
            });
            o.retrieved_ids = vec![hostile("doc"), hostile("other")];
        }
        c.retrieval = Some(llmkit_eval::RetrievalMetrics::compute(
            &[hostile("doc")],
            &[hostile("doc")],
            3,
        ));
        for s in &mut c.scores {
            s.evaluator = hostile(&s.evaluator);
            s.reason = hostile(&s.reason);
        }
        c.scores.push(NamedScore {
            evaluator: hostile("judge"),
            value: 0.25,
            passed: false,
            reason: hostile("2/5"),
            error: false,
        });
    }
    let mut calibration = Calibration::from_pairs(hostile("judge"), [(true, false), (true, true)]);
    calibration.disagreements = vec![Disagreement {
        case_id: hostile("c1"),
        judge_passed: true,
        judge_reason: hostile("5/5"),
        human_passed: false,
        human_note: hostile("note"),
    }];
    run.judges = vec![
        JudgeInfo {
            name: hostile("judge"),
            prompt: PromptRef {
                id: hostile("rubric"),
                version: hostile("1"),
                hash: hostile("h"),
            },
            model: hostile("judge-model"),
            calibration: Some(calibration),
        },
        JudgeInfo {
            name: hostile("uncalibrated"),
            prompt: PromptRef {
                id: hostile("rubric"),
                version: hostile("2"),
                hash: hostile("h"),
            },
            model: hostile("judge-model"),
            calibration: None,
        },
    ];
    run.summary = Summary::from_cases(&run.cases);
}

const TAGS: &[&str] = &[
    "html", "head", "meta", "title", "style", "body", "main", "header", "nav", "a", "div", "code",
    "section", "span", "ul", "ol", "li", "b", "p", "table", "caption", "thead", "tbody", "tfoot",
    "tr", "th", "td", "h1", "h2", "h3", "h4", "details", "summary", "pre", "del", "ins", "dl",
    "dt", "dd", "form", "label", "input", "select", "option", "output", "svg", "line", "text",
    "polyline", "circle", "g", "rect", "i", "script",
];
const ATTRS: &[&str] = &[
    "lang",
    "charset",
    "name",
    "content",
    "http-equiv",
    "class",
    "id",
    "href",
    "style",
    "role",
    "aria-label",
    "aria-labelledby",
    "aria-hidden",
    "aria-controls",
    "aria-live",
    "data-status",
    "data-verdict",
    "open",
    "hidden",
    "for",
    "type",
    "placeholder",
    "value",
    "viewbox",
    "xmlns",
    "x",
    "y",
    "x1",
    "x2",
    "y1",
    "y2",
    "cx",
    "cy",
    "r",
    "width",
    "height",
    "points",
    "text-anchor",
    "colspan",
    "scope",
];

/// Tokenizes the page as a browser would: every `<` opens a tag (text never holds a raw `<`),
/// attribute values must be double-quoted, and `<style>`/`<script>` bodies are skipped. Returns
/// the tags and attribute names seen.
fn scan(page: &str) -> (BTreeSet<String>, BTreeSet<String>, usize) {
    let (mut tags, mut attrs, mut scripts) = (BTreeSet::new(), BTreeSet::new(), 0);
    let b = page.as_bytes();
    let mut i = 0;
    while let Some(off) = page[i..].find('<') {
        i += off + 1;
        if page[i..].starts_with("!doctype html>") || page[i..].starts_with('/') {
            let end = page[i..].find('>').unwrap();
            let name = &page[i..i + end];
            assert!(
                name == "!doctype html" || TAGS.contains(&&name[1..]),
                "unexpected closing tag <{name}>"
            );
            i += end + 1;
            continue;
        }
        let name_len = page[i..]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap();
        let name = page[i..i + name_len].to_ascii_lowercase();
        i += name_len;
        loop {
            while b[i].is_ascii_whitespace() {
                i += 1;
            }
            if b[i] == b'>' {
                i += 1;
                break;
            }
            if page[i..].starts_with("/>") {
                i += 2;
                break;
            }
            let attr_len = page[i..]
                .find(|c: char| c == '=' || c == '>' || c.is_ascii_whitespace())
                .unwrap();
            attrs.insert(page[i..i + attr_len].to_ascii_lowercase());
            i += attr_len;
            if b[i] == b'=' {
                assert_eq!(b[i + 1], b'"', "unquoted attribute value at byte {i}");
                let close = page[i + 2..].find('"').unwrap();
                i += 2 + close + 1;
            }
        }
        if name == "style" || name == "script" {
            scripts += usize::from(name == "script");
            i += page[i..].find(&format!("</{name}>")).unwrap();
        }
        tags.insert(name);
    }
    (tags, attrs, scripts)
}

#[tokio::test]
async fn hostile_text_in_every_field_injects_nothing() {
    let mut base = common::run_passes("base", &[true, true, false, true]).await;
    let mut cand = common::run_passes("cand", &[true, false, true, true]).await;
    let mut past = common::run_passes("past", &[false, false, true, true]).await;
    past.finished_at = 1;
    poison(&mut base);
    poison(&mut cand);
    poison(&mut past);
    let gate = GateOutcome {
        passed: false,
        checks: vec![GateCheck {
            name: hostile("check"),
            passed: false,
            detail: hostile("detail"),
        }],
        notes: vec![hostile("note")],
    };
    let page = html::render(&cand, Some(&base), Some(&gate), &[past]);
    let (tags, attrs, scripts) = scan(&page);
    for t in &tags {
        assert!(TAGS.contains(&t.as_str()), "injected element <{t}>");
    }
    for a in &attrs {
        assert!(ATTRS.contains(&a.as_str()), "injected attribute {a}");
    }
    assert_eq!(scripts, 1, "only the report's own script");
    assert!(
        !page.contains('\u{202E}'),
        "a raw RTL override reached the page"
    );
    assert!(
        page.contains("[U+202E]gnp.exe"),
        "the override is shown, not obeyed"
    );
    // The payload arrives as text, in every section.
    let shown =
        "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&gt;&lt;img id=&quot;injected&quot;";
    assert!(page.matches(shown).count() > 40);
    for section in [
        "id=\"verdict\"",
        "id=\"comparison\"",
        "id=\"prompt-diff\"",
        "id=\"judges\"",
        "id=\"retrieval\"",
        "id=\"trend\"",
        "id=\"cases\"",
    ] {
        assert!(page.contains(section), "missing {section}");
    }
}

#[test]
fn the_scanner_catches_an_injection() {
    let (tags, _, _) = scan("<p>ok</p><img src=\"x\">");
    assert!(tags.contains("img"));
    let caught = std::panic::catch_unwind(|| scan("<p title=x>"));
    assert!(caught.is_err(), "unquoted attributes are flagged");
}

#[tokio::test]
async fn sections_show_the_comparison_calibration_and_trend() {
    let base = common::run_passes("v1", &[true, true, false, true]).await;
    let mut cand = common::run_passes("v2", &[true, false, true, true]).await;
    cand.judges = vec![JudgeInfo {
        name: "judge".into(),
        prompt: PromptRef {
            id: "rubric".into(),
            version: "1".into(),
            hash: "0123456789abcdef".into(),
        },
        model: "judge-model".into(),
        calibration: Some(Calibration::from_pairs(
            "judge",
            [(true, true), (true, true), (false, false), (true, false)],
        )),
    }];
    let page = html::render(&cand, Some(&base), None, std::slice::from_ref(&base));
    assert!(page.contains("data-verdict=\"none\""));
    // Regressions come before improvements, each with its case and the output diff.
    let reg = page.find("<ol id=\"regressions\"").unwrap();
    let imp = page.find("<ol id=\"improvements\"").unwrap();
    assert!(reg < imp);
    assert!(page[reg..imp].contains("<code>c1</code>"));
    assert!(page[reg..imp].contains("<del>1</del>") && page[reg..imp].contains("<ins>0</ins>"));
    assert!(page[imp..].contains("<code>c2</code>"));
    // Confusion matrix cells in order: both pass, lenient, strict, both fail.
    let m = page.find("class=\"matrix calibration\"").unwrap();
    let cells: Vec<&str> = page[m..]
        .split("<td>")
        .skip(1)
        .take(4)
        .map(|c| c.split([' ', '<']).next().unwrap())
        .collect();
    assert_eq!(cells, ["2", "1", "0", "1"]);
    assert!(page.contains("Cohen's kappa <b>0.500</b>"));
    assert_eq!(page.matches("<circle").count(), 4, "two runs, two series");
    // Scores by evaluator carry intervals: 3 of 4 passed.
    assert!(page.contains("75.0% [30.1%, 95.4%]"));
}

// The binary exists only with the `cli` feature (clap); `--all-features` runs this test.
#[cfg(feature = "cli")]
#[tokio::test]
async fn cli_writes_the_page_and_rejects_a_gate_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    let base = common::run_passes("v1", &[true, true]).await;
    let cand = common::run_passes("v2", &[true, false]).await;
    base.save(p("base.json")).unwrap();
    cand.save(p("run.json")).unwrap();
    llmkit_eval::Baseline::from_run(&base)
        .save(p("baseline.json"))
        .unwrap();
    let gate = llmkit_eval::gate::evaluate_gate(
        &cand,
        None,
        &llmkit_eval::GateConfig::new().min_pass_rate(0.9),
    );
    std::fs::write(p("gate.json"), serde_json::to_string(&gate).unwrap()).unwrap();
    let s = |name: &str| p(name).display().to_string();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_llmkit-eval"))
            .arg("report")
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&[
        &s("run.json"),
        "--html",
        &s("r.html"),
        "--baseline",
        &s("base.json"),
        "--gate",
        &s("gate.json"),
        "--history",
        &s("base.json"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(p("r.html")).unwrap();
    assert!(page.contains("data-verdict=\"fail\"") && page.contains("Gate: FAIL"));
    assert!(page.contains("Regressions (1)") && page.contains("id=\"trend\""));
    let out = run(&[
        &s("run.json"),
        "--html",
        &s("r2.html"),
        "--baseline",
        &s("baseline.json"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a gate baseline file, not a run"));
    assert!(!p("r2.html").exists());
}
