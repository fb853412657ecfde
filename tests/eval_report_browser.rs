//! The HTML eval report in a real browser: headless Chromium (Debian's `chromium`, installed by
//! `scripts/test-services.sh up`) opens the report `examples/eval_ci.rs` writes, after its
//! script ran (`--dump-dom` with a virtual time budget), and the test reads the rendered DOM:
//! the gate verdict, the regression list with its side-by-side diff, the calibration table, the
//! trend chart, the script's filter, and no console message or script error. It then saves the
//! screenshot `docs/img/eval-report.png` that docs/evals.md shows.
//!
//! Ignored by default (it needs a browser); CI runs it with `cargo test -- --ignored` after
//! provisioning, where a missing browser fails it.
#![cfg(feature = "eval")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[allow(dead_code, missing_docs)]
#[path = "../examples/eval_ci.rs"]
mod eval_ci;

use std::path::Path;

use llmkit::eval::gate::GateOutcome;
use llmkit::eval::report::html;
use llmkit::eval::runner::{TargetId, target_fn};
use llmkit::eval::{Case, Comparison, Dataset, RunResult, Runner, TargetOutput, assertions};

#[path = "support/chromium.rs"]
mod chromium;
use chromium::{browse, chromium};

/// The DOM after the page's script ran; fails on any console message or recorded script error.
fn dom(page: &Path, query: &str) -> String {
    let url = format!("file://{}{query}", page.display());
    let b = browse(&url, &["--virtual-time-budget=5000", "--dump-dom"]);
    // Chromium logs every console message (errors, CSP violations, uncaught exceptions) as
    // `INFO:CONSOLE:<line>] "..."`; the report logs nothing.
    let console: Vec<&str> = b
        .stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .collect();
    assert!(
        console.is_empty(),
        "console output on {url}:\n{}",
        console.join("\n")
    );
    assert!(
        b.stdout.contains("data-js=\"ready\""),
        "the script did not finish on {url}: {}",
        &b.stdout[..b.stdout.len().min(400)]
    );
    assert!(
        !b.stdout.contains("data-js-errors="),
        "script errors on {url}: {}",
        between(&b.stdout, "<html", ">")
    );
    b.stdout
}

/// The text between `start` and the next `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).unwrap_or_else(|| panic!("no {start}"));
    let rest = &text[from..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs chromium: scripts/test-services.sh up"]
async fn eval_ci_report_renders_in_chromium() {
    chromium();
    let out = tempfile::tempdir().unwrap();
    let args = |candidate: &str| eval_ci::Args {
        candidate: candidate.into(),
        out: out.path().to_owned(),
        write_baseline: false,
    };
    // The failing candidate first, then the default one: the second report's trend has both.
    let failing = eval_ci::run_suite(&args("v1")).await.unwrap();
    assert_eq!(failing.exit_code, 1);
    let failing_dom = dom(&failing.html, "");
    let verdict = between(&failing_dom, "id=\"verdict\"", "</section>");
    assert!(verdict.contains("data-verdict=\"fail\"") && verdict.contains("Gate: FAIL"));
    assert!(verdict.contains("regressed cases"), "the verdict says why");

    let passing = eval_ci::run_suite(&args("v2")).await.unwrap();
    assert_eq!(passing.exit_code, 0);
    let size = std::fs::metadata(&passing.html).unwrap().len();
    assert!(
        size < 512 * 1024,
        "the report is small enough to attach: {size} bytes"
    );
    let page = dom(&passing.html, "");
    let run = RunResult::load(out.path().join("run.json")).unwrap();
    let gate: GateOutcome =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("gate.json")).unwrap())
            .unwrap();
    assert!(gate.passed);
    let verdict = between(&page, "id=\"verdict\"", "</section>");
    assert!(verdict.contains("data-verdict=\"pass\"") && verdict.contains("Gate: PASS"));
    assert_eq!(
        verdict.matches("<li>").count(),
        gate.checks.len(),
        "one line per gate check"
    );

    // The regression list: exactly the comparison's regressed cases, each with a side-by-side
    // diff that marks the words v2 dropped and added.
    let comparison: Comparison =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("comparison.json")).unwrap())
            .unwrap();
    let regressions = between(&page, "<ol id=\"regressions\"", "</ol>");
    assert_eq!(
        regressions.matches("class=\"delta regressed\"").count(),
        comparison.regressed.len()
    );
    for r in &comparison.regressed {
        assert!(regressions.contains(&format!("<code>{}</code>", r.id)));
    }
    assert!(
        regressions.contains("<details open=\"\">"),
        "regressions open"
    );
    let sbs = between(regressions, "class=\"sbs\"", "</details>");
    assert!(sbs.contains("<del>") && sbs.contains("<ins>"), "{sbs}");
    assert!(
        sbs.contains("Saturdays"),
        "shipping-07 lost `Saturdays`: {sbs}"
    );
    let improvements = between(&page, "<ol id=\"improvements\"", "</ol>");
    assert_eq!(
        improvements.matches("class=\"delta improved\"").count(),
        comparison.improved.len()
    );
    assert!(page.find("id=\"regressions\"") < page.find("id=\"improvements\""));

    // The calibration table holds the judge's confusion matrix from the run.
    let cal = run.judges[0].calibration.as_ref().unwrap();
    let table = between(&page, "class=\"matrix calibration\"", "</table>");
    let cells: Vec<String> = table
        .split("<td>")
        .skip(1)
        .map(|c| c.split([' ', '<']).next().unwrap().to_owned())
        .collect();
    let want = [
        cal.both_pass,
        cal.judge_pass_human_fail,
        cal.judge_fail_human_pass,
        cal.both_fail,
    ]
    .map(|n| n.to_string());
    assert_eq!(cells, want);
    let disagreements = between(&page, "class=\"disagreements\"", "</table>");
    for d in &cal.disagreements {
        assert!(disagreements.contains(&d.case_id));
    }

    // Retrieval per query, the prompt diff, the trend over both runs, a trace record per case.
    let retrieval = between(&page, "id=\"retrieval\"", "</section>");
    let with_retrieval = run.cases.iter().filter(|c| c.retrieval.is_some()).count();
    assert_eq!(
        retrieval.matches("<tr><th scope=\"row\"><a").count(),
        with_retrieval
    );
    assert!(between(&page, "id=\"prompt-diff\"", "</div></div></div>").contains("<ins>"));
    let trend = between(&page, "<svg class=\"trend\"", "</svg>");
    assert_eq!(trend.matches("<circle").count(), 4, "two runs, two series");
    for c in &run.cases {
        let id = c.output.as_ref().unwrap().request_id.as_deref().unwrap();
        assert!(page.contains(&format!("<code class=\"request-id\">{id}</code>")));
    }
    assert_eq!(
        page.matches("class=\"prompt-ref\"").count(),
        run.cases.len() * 2
    );

    // The script's filter: only the regressed case stays visible.
    let filtered = dom(&passing.html, "?q=shipping&status=regressed");
    let cases: Vec<&str> = filtered.split("<details class=\"case\"").skip(1).collect();
    assert_eq!(cases.len(), run.cases.len());
    let shown: Vec<&&str> = cases
        .iter()
        .filter(|c| !c.contains(" hidden=\"\""))
        .collect();
    assert_eq!(shown.len(), comparison.regressed.len());
    assert!(filtered.contains(&format!(
        "{} of {} cases shown",
        comparison.regressed.len(),
        run.cases.len()
    )));

    // The screenshot docs/evals.md shows, from this data.
    let shot = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/img/eval-report.png");
    std::fs::create_dir_all(Path::new(shot).parent().unwrap()).unwrap();
    let b = browse(
        &format!("file://{}", passing.html.display()),
        &[
            "--window-size=1280,2000",
            "--virtual-time-budget=5000",
            &format!("--screenshot={shot}"),
        ],
    );
    assert!(!b.stderr.contains(":CONSOLE"));
    let png = std::fs::read(shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "a real screenshot"
    );
}

/// Breaks out of text, attributes and scripts, and flips the reading direction. Anything it
/// managed to run would set `data-pwned`; anything it managed to create would be an `<img>`.
const PAYLOAD: &str = "<img id=\"injected\" src=x onerror=\"document.documentElement.setAttribute('data-pwned','1')\">\
    \"'><script>document.documentElement.setAttribute('data-pwned','2')</script>\u{202E}txt.exe";

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs chromium: scripts/test-services.sh up"]
async fn hostile_outputs_stay_text_in_the_browser() {
    chromium();
    let dataset = Dataset::from_cases(
        PAYLOAD,
        vec![
            Case::new(PAYLOAD, serde_json::json!({ "question": PAYLOAD }))
                .with_reference(PAYLOAD)
                .with_tag(PAYLOAD),
        ],
    )
    .unwrap();
    let target = target_fn(TargetId::new(PAYLOAD, PAYLOAD), |_| async {
        Ok(TargetOutput::text(PAYLOAD))
    });
    let run = Runner::new()
        .progress(false)
        .evaluator(assertions::contains("never in the output"))
        .run(PAYLOAD, &dataset, &*target)
        .await
        .unwrap();
    let mut base = run.clone();
    base.name = format!("base {PAYLOAD}");
    base.cases[0].passed = true;
    base.cases[0].output.as_mut().unwrap().text = format!("safe {PAYLOAD}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.html");
    html::write(&path, &run, Some(&base), None, &[]).unwrap();
    let page = dom(&path, "");
    assert!(
        page.contains("<ol id=\"regressions\""),
        "the case is shown as regressed"
    );
    assert!(!page.contains("data-pwned=\""), "a payload ran");
    assert!(!page.contains("<img"), "a payload became an element");
    assert_eq!(
        page.matches("<script>").count(),
        1,
        "only the report's own script"
    );
    assert!(!page.contains('\u{202E}') && page.contains("[U+202E]txt.exe"));
    assert!(
        page.contains("&lt;img id=\"injected\""),
        "the payload is shown as text"
    );
}
