//! Issue 17 items 6 and 7: an open breaker's snapshot says what opened it; router stats give an
//! escalation target the share of the answers it gave.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use llmkit_core::resilience::{CircuitBreakerLayer, CircuitState};
use llmkit_core::route::Router;
use llmkit_core::{ChatModel, ChatRequest, ErrorKind, Layer, Reply, ScriptedModel};

#[tokio::test(start_paused = true)]
async fn an_open_breakers_snapshot_shows_the_failures_that_opened_it() {
    let provider = Arc::new(
        ScriptedModel::builder()
            .fallback(Reply::server_error(503))
            .build(),
    );
    let breakers = CircuitBreakerLayer::new().consecutive_failures(3);
    let model = breakers.layer(provider);
    for _ in 0..3 {
        let _ = model.chat(ChatRequest::user("hi")).await;
    }
    let snap = &breakers.snapshots()[0];
    assert_eq!(snap.state, CircuitState::Open);
    let opened = snap.opened.as_ref().expect("an open breaker says why");
    assert_eq!(opened.reason, "consecutive failures");
    assert_eq!(opened.consecutive_failures, 3);
    assert_eq!((opened.window_requests, opened.window_failures), (3, 3));
    assert_eq!(opened.last_error, ErrorKind::Server);
    assert!(opened.opened_at_unix_ms > 0);
    let json = serde_json::to_value(snap).unwrap();
    assert_eq!(json["opened"]["last_error"], "server");
}

#[tokio::test]
async fn an_escalation_target_gets_the_share_of_answers_it_gave() {
    let cheap = Arc::new(
        ScriptedModel::builder()
            .model("small")
            .fallback("unsure")
            .build(),
    );
    let strong = Arc::new(
        ScriptedModel::builder()
            .model("large")
            .fallback("sure")
            .build(),
    );
    let router = Router::builder("r")
        .route("cheap", cheap)
        .route("strong", strong)
        .escalate("cheap", "strong", |r| r.text() != "unsure")
        .default_route("cheap")
        .build()
        .unwrap();
    for _ in 0..4 {
        assert_eq!(
            router.chat(ChatRequest::user("q")).await.unwrap().text(),
            "sure"
        );
    }
    let stats = router.stats();
    assert_eq!(stats.routes["strong"].escalated_in, 4);
    assert_eq!(stats.routes["strong"].answered, 4);
    assert_eq!(stats.routes["cheap"].escalated_away, 4);
    let report = stats.report();
    let strong_line = report.lines().find(|l| l.starts_with("strong")).unwrap();
    assert!(strong_line.contains("100.0%"), "{report}");
    let cheap_line = report.lines().find(|l| l.starts_with("cheap")).unwrap();
    assert!(cheap_line.contains("0.0%"), "{report}");
}
