//! [`junit`]: a run as JUnit XML, one `<testcase>` per case (failures carry the reason), so CI
//! systems show eval cases like tests.

use std::fmt::Write;

use quick_xml::escape::escape;

use crate::result::RunResult;

/// XML 1.0 forbids most control characters even when escaped; model output may contain them.
fn xml_text(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .filter(|c| {
            matches!(c, '\t' | '\n' | '\r') || (*c >= ' ' && *c != '\u{fffe}' && *c != '\u{ffff}')
        })
        .collect();
    escape(cleaned.as_str()).into_owned()
}

/// JUnit XML: one `<testsuite>` per run, one `<testcase>` per eval case (class name
/// `eval.<dataset>.<first tag>`), a `<failure>` with the failing evaluators' reasons, an
/// `<error>` when the target failed, and the dataset hash and target as properties.
pub fn junit(run: &RunResult) -> String {
    let s = &run.summary;
    let total_secs: f64 = run
        .cases
        .iter()
        .filter_map(|c| c.output.as_ref())
        .map(|o| o.latency.as_secs_f64())
        .sum();
    let failures = s.failed - s.target_errors;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{}\" time=\"{total_secs:.3}\">",
        xml_text(&run.name),
        s.cases,
        s.target_errors
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{}\" skipped=\"0\" time=\"{total_secs:.3}\">",
        xml_text(&format!("{} ({})", run.name, run.dataset.name)),
        s.cases,
        s.target_errors
    );
    let _ = writeln!(out, "    <properties>");
    for (k, v) in [
        ("dataset", run.dataset.version()),
        ("dataset_hash", run.dataset.hash.clone()),
        ("target", run.target.to_string()),
        ("pass_rate", format!("{:.4}", s.pass_rate)),
        ("mean_score", format!("{:.4}", s.mean_score)),
    ] {
        let _ = writeln!(
            out,
            "      <property name=\"{k}\" value=\"{}\"/>",
            xml_text(&v)
        );
    }
    let _ = writeln!(out, "    </properties>");
    for c in &run.cases {
        let class = format!(
            "eval.{}.{}",
            run.dataset.name,
            c.tags.first().map_or("untagged", String::as_str)
        );
        let time = c.output.as_ref().map_or(0.0, |o| o.latency.as_secs_f64());
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{time:.3}\"",
            xml_text(&class),
            xml_text(&c.id)
        );
        if c.passed {
            out.push_str("/>\n");
            continue;
        }
        out.push_str(">\n");
        if let Some(e) = &c.error {
            let _ = writeln!(
                out,
                "      <error message=\"{}\" type=\"target\">{}</error>",
                xml_text(&super::text::clip(e, 200)),
                xml_text(e)
            );
        } else {
            let failing: Vec<String> = c
                .scores
                .iter()
                .filter(|x| !x.passed)
                .map(|x| format!("{} ({:.3}): {}", x.evaluator, x.value, x.reason))
                .collect();
            let message = super::text::clip(&failing.join("; "), 200);
            let mut body = failing.join("\n");
            if let Some(o) = &c.output {
                body.push_str("\n--- output ---\n");
                body.push_str(&o.text);
            }
            let _ = writeln!(
                out,
                "      <failure message=\"{}\" type=\"eval\">{}</failure>",
                xml_text(&message),
                xml_text(&body)
            );
        }
        let _ = writeln!(out, "    </testcase>");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
