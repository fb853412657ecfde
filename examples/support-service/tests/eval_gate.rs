//! The eval gate the CI step runs (`cargo run -p support-service -- eval`): the shipped set
//! passes through the real handler, and a set the service does not satisfy fails the gate.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

use support_service::{App, Config, Secrets};

async fn app() -> App {
    let config = Config::parse(
        support_service::config::DEFAULT_TOML,
        Vec::new(),
        Path::new(env!("CARGO_MANIFEST_DIR")),
    )
    .unwrap();
    App::build(config, Secrets::default()).await.unwrap()
}

#[tokio::test]
async fn shipped_eval_set_passes_the_gate() {
    let app = app().await;
    let (outcome, run) = support_service::eval::run(
        &app,
        Path::new(support_service::eval::DEFAULT_CASES),
        Path::new(support_service::eval::DEFAULT_GATE),
    )
    .await
    .unwrap();
    assert_eq!(outcome.exit_code(), 0, "{}", outcome.report());
    assert_eq!(run.summary.cases, run.summary.passed);
    assert!(run.summary.cases >= 14);
}

#[tokio::test]
async fn a_regression_fails_the_gate() {
    let app = app().await;
    let dir = std::env::temp_dir().join(format!("support-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = dir.join("cases.jsonl");
    // The service approves refunds within 30 days; this case says it must reject them.
    std::fs::write(
        &cases,
        r#"{"id": "wrong", "inputs": {"question": "Can I get a refund 10 days after delivery?", "days_since_purchase": 10}, "metadata": {"expect_decision": "reject"}}
{"id": "right", "inputs": {"question": "Do you ship to Switzerland?"}, "metadata": {"expect_doc": "shipping"}}
"#,
    )
    .unwrap();
    let (outcome, run) =
        support_service::eval::run(&app, &cases, Path::new(support_service::eval::DEFAULT_GATE))
            .await
            .unwrap();
    assert_eq!(outcome.exit_code(), 1, "{}", outcome.report());
    assert_eq!(run.summary.passed, 1);
    let _ = std::fs::remove_dir_all(&dir);
}
