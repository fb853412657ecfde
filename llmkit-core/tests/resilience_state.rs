//! Circuit breaker, fallback, idempotency and limit behaviour, on tokio's paused clock.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::Duration;

use llmkit_core::resilience::{
    Backoff, CircuitBreakerLayer, CircuitState, FallThrough, FallbackLayer, IdempotencyLayer,
    Jitter, LimitLayer, RetryLayer, TimeoutLayer, target_pipeline,
};
use llmkit_core::{
    ChatModel, ChatRequest, ChatResponse, Error, ErrorKind, Layer, Message, Reply, ScriptedModel,
};
use tokio::time::Instant;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn scripted(provider: &str, replies: Vec<Reply>) -> Arc<ScriptedModel> {
    Arc::new(
        ScriptedModel::builder()
            .provider(provider)
            .model(format!("{provider}-model"))
            .replies(replies)
            .build(),
    )
}

fn always(provider: &str, reply: Reply) -> Arc<ScriptedModel> {
    Arc::new(
        ScriptedModel::builder()
            .provider(provider)
            .model(format!("{provider}-model"))
            .fallback(reply)
            .build(),
    )
}

// ---------------------------------------------------------------- circuit breaker

#[tokio::test(start_paused = true)]
async fn breaker_opens_fails_fast_half_opens_and_closes() {
    let provider = scripted(
        "p",
        vec![
            Reply::server_error(500),
            Reply::timeout(),
            Reply::overloaded(),
            Reply::text("recovered"),
        ],
    );
    let breakers = CircuitBreakerLayer::new()
        .consecutive_failures(3)
        .cool_down(secs(30));
    let model = breakers.layer(provider.clone());
    for _ in 0..3 {
        assert!(model.chat(ChatRequest::user("x")).await.is_err());
    }
    let b = breakers.existing("p", "p-model").unwrap();
    assert_eq!(b.state(), CircuitState::Open);
    let snap = b.snapshot();
    assert_eq!(snap.retry_in, Some(secs(30)));

    let err = model.chat(ChatRequest::user("x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    assert!(!err.is_retryable());
    assert_eq!(provider.call_count(), 3, "fail fast: no upstream call");

    tokio::time::advance(secs(30)).await;
    assert_eq!(b.state(), CircuitState::HalfOpen);
    let resp = model.chat(ChatRequest::user("x")).await.unwrap();
    assert_eq!(resp.text(), "recovered");
    assert!(resp.trail.has("breaker", "half_open"), "{:?}", resp.trail);
    assert!(resp.trail.has("breaker", "closed"));
    assert_eq!(b.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn failed_probe_reopens() {
    let provider = always("p", Reply::server_error(503));
    let breakers = CircuitBreakerLayer::new()
        .consecutive_failures(1)
        .cool_down(secs(10));
    let model = breakers.layer(provider.clone());
    let _ = model.chat(ChatRequest::user("x")).await;
    tokio::time::advance(secs(10)).await;
    let _ = model.chat(ChatRequest::user("probe")).await;
    let b = breakers.existing("p", "p-model").unwrap();
    assert_eq!(b.state(), CircuitState::Open);
    assert_eq!(provider.call_count(), 2);
    assert_eq!(b.snapshot().retry_in, Some(secs(10)), "a fresh cool-down");
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_a_limited_number_of_probes() {
    let provider = scripted(
        "p",
        vec![
            Reply::server_error(500),
            Reply::text("slow probe").after(secs(5)),
            Reply::text("second probe").after(secs(5)),
            Reply::text("third"),
        ],
    );
    let breakers = CircuitBreakerLayer::new()
        .consecutive_failures(1)
        .cool_down(secs(10))
        .half_open_probes(2)
        .close_after(2);
    let model = breakers.layer(provider.clone());
    let _ = model.chat(ChatRequest::user("x")).await;
    tokio::time::advance(secs(10)).await;

    let (a, b, c) = tokio::join!(
        model.chat(ChatRequest::user("1")),
        model.chat(ChatRequest::user("2")),
        async {
            tokio::task::yield_now().await;
            model.chat(ChatRequest::user("3")).await
        }
    );
    assert!(a.is_ok() && b.is_ok());
    let c = c.unwrap_err();
    assert_eq!(c.kind(), ErrorKind::CircuitOpen);
    assert!(c.message().contains("probe limit"), "{c}");
    assert_eq!(provider.call_count(), 3, "two probes went upstream");
    assert_eq!(
        breakers.existing("p", "p-model").unwrap().state(),
        CircuitState::Closed,
        "closed after two successful probes"
    );
}

#[tokio::test(start_paused = true)]
async fn breaker_trips_on_failure_rate_over_the_window() {
    let mut replies = Vec::new();
    for i in 0..10 {
        replies.push(if i % 2 == 0 {
            Reply::server_error(500)
        } else {
            Reply::text("ok")
        });
    }
    let provider = scripted("p", replies);
    let breakers = CircuitBreakerLayer::new()
        .consecutive_failures(0)
        .failure_rate(0.5)
        .min_requests(10)
        .window(secs(60));
    let model = breakers.layer(provider.clone());
    for i in 0..9 {
        let _ = model.chat(ChatRequest::user("x")).await;
        assert_eq!(
            breakers.existing("p", "p-model").unwrap().state(),
            CircuitState::Closed,
            "call {i}: under the minimum request count"
        );
    }
    let snap = breakers.snapshots().pop().unwrap();
    assert_eq!((snap.window_requests, snap.window_failures), (9, 5));
    // 10th call succeeds and the 11th fails with `Other` (script exhausted), which is not a
    // health failure: the rate is only evaluated when a health failure arrives.
    let _ = model.chat(ChatRequest::user("x")).await;
    let _ = model.chat(ChatRequest::user("x")).await;
    let snap = breakers.snapshots().pop().unwrap();
    assert_eq!(snap.state, CircuitState::Closed, "5/11 < 50 %: {snap:?}");

    // A second breaker that sees 5 failures of 10.
    let provider = scripted(
        "q",
        (0..10)
            .map(|i| {
                if i < 5 {
                    Reply::text("ok")
                } else {
                    Reply::server_error(502)
                }
            })
            .collect(),
    );
    let model = breakers.layer(provider);
    for _ in 0..10 {
        let _ = model.chat(ChatRequest::user("x")).await;
    }
    assert_eq!(
        breakers.existing("q", "q-model").unwrap().state(),
        CircuitState::Open
    );
}

#[tokio::test(start_paused = true)]
async fn bad_requests_do_not_trip_the_breaker() {
    let provider = always(
        "p",
        Reply::fail(Error::new(ErrorKind::InvalidRequest, "bad schema").with_status(400)),
    );
    let breakers = CircuitBreakerLayer::new().consecutive_failures(2);
    let model = breakers.layer(provider.clone());
    for _ in 0..10 {
        let err = model.chat(ChatRequest::user("x")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    }
    assert_eq!(breakers.snapshots()[0].state, CircuitState::Closed);
    assert_eq!(provider.call_count(), 10);
}

#[tokio::test(start_paused = true)]
async fn breakers_are_per_provider_and_model() {
    let breakers = CircuitBreakerLayer::new().consecutive_failures(1);
    let a = breakers.layer(always("a", Reply::server_error(500)));
    let b = breakers.layer(always("b", Reply::text("fine")));
    let _ = a.chat(ChatRequest::user("x")).await;
    b.chat(ChatRequest::user("x")).await.unwrap();
    // A request naming another model of provider `a` has its own breaker.
    let _ = a.chat(ChatRequest::user("x").with_model("a-other")).await;
    let states: Vec<_> = breakers
        .snapshots()
        .into_iter()
        .map(|s| (s.provider, s.model, s.state))
        .collect();
    assert_eq!(
        states,
        [
            ("a".into(), "a-model".into(), CircuitState::Open),
            ("a".into(), "a-other".into(), CircuitState::Open),
            ("b".into(), "b-model".into(), CircuitState::Closed),
        ]
    );
}

// ---------------------------------------------------------------- fallback

#[tokio::test(start_paused = true)]
async fn fallback_walks_links_in_order_and_says_why() {
    let a = always("a", Reply::server_error(503));
    let b = always("b", Reply::rate_limited(secs(1)));
    let c = always("c", Reply::text("from c"));
    let d = always("d", Reply::text("never"));
    let model = FallbackLayer::new()
        .then(b.clone())
        .then(c.clone())
        .then(d.clone())
        .layer(a.clone());
    let resp = model.chat(ChatRequest::user("x")).await.unwrap();
    assert_eq!(resp.text(), "from c");
    // One `attempt_failed` per request a skipped link sent, so the trace counts them.
    assert_eq!(
        resp.trail
            .by_layer("fallback")
            .filter(|e| e.event == "attempt_failed")
            .count(),
        2
    );
    let notes: Vec<_> = resp
        .trail
        .by_layer("fallback")
        .filter(|e| e.event != "attempt_failed")
        .map(|e| (e.event.as_str(), e.detail.clone()))
        .collect();
    assert_eq!(notes.len(), 3);
    assert_eq!(notes[0].0, "skipped");
    assert!(
        notes[0].1.starts_with("link 0 a/a-model: server"),
        "{notes:?}"
    );
    assert!(
        notes[1].1.starts_with("link 1 b/b-model: rate_limited"),
        "{notes:?}"
    );
    assert_eq!(notes[2], ("answered", "link 2 c/c-model".into()));
    assert_eq!(
        [
            a.call_count(),
            b.call_count(),
            c.call_count(),
            d.call_count()
        ],
        [1, 1, 1, 0]
    );
}

#[tokio::test(start_paused = true)]
async fn non_fall_through_errors_stop_the_chain() {
    for kind in [
        ErrorKind::InvalidRequest,
        ErrorKind::Auth,
        ErrorKind::ContextLength,
    ] {
        let a = always("a", Reply::fail(Error::new(kind, "request problem")));
        let b = always("b", Reply::text("never"));
        let model = FallbackLayer::new().then(b.clone()).layer(a);
        let err = model.chat(ChatRequest::user("x")).await.unwrap_err();
        assert_eq!(err.kind(), kind);
        assert_eq!(b.call_count(), 0, "{kind} fell through");
    }
    // Quota and an open circuit do fall through.
    for kind in [ErrorKind::QuotaExhausted, ErrorKind::CircuitOpen] {
        let a = always("a", Reply::fail(Error::new(kind, "x")));
        let b = always("b", Reply::text("b answers"));
        let model = FallbackLayer::new().then(b).layer(a);
        assert_eq!(
            model.chat(ChatRequest::user("x")).await.unwrap().text(),
            "b answers"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn fall_through_rule_is_configurable() {
    let a = always(
        "a",
        Reply::fail(Error::new(ErrorKind::ContextLength, "too long")),
    );
    let b = always("b", Reply::text("bigger window"));
    let model = FallbackLayer::new()
        .then(b)
        .fall_through(FallThrough::default().also(ErrorKind::ContextLength))
        .layer(a);
    assert_eq!(
        model.chat(ChatRequest::user("x")).await.unwrap().text(),
        "bigger window"
    );
}

#[tokio::test(start_paused = true)]
async fn terminal_links_cached_then_static() {
    let a = always("a", Reply::server_error(500));
    let cached = FallbackLayer::new()
        .cached_answer(|req: ChatRequest| async move {
            req.text().contains("known").then(|| ChatResponse {
                message: Message::assistant("cached reply"),
                ..Default::default()
            })
        })
        .static_default("Sorry, please try again later.");
    let model = cached.layer(a.clone());
    let hit = model
        .chat(ChatRequest::user("known question"))
        .await
        .unwrap();
    assert_eq!(hit.text(), "cached reply");
    assert!(
        hit.trail
            .entries()
            .iter()
            .any(|e| e.event == "answered" && e.detail == "cached answer")
    );
    let miss = model.chat(ChatRequest::user("new question")).await.unwrap();
    assert_eq!(miss.text(), "Sorry, please try again later.");
    assert_eq!(miss.provider, "llmkit");
}

#[tokio::test(start_paused = true)]
async fn exhausted_chain_returns_every_link_error() {
    let a = always("a", Reply::server_error(500));
    let b = always("b", Reply::overloaded());
    let model = FallbackLayer::new().then(b).layer(a);
    let err = model.chat(ChatRequest::user("x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Overloaded);
    let kinds: Vec<_> = err.attempts().iter().map(Error::kind).collect();
    assert_eq!(kinds, [ErrorKind::Server, ErrorKind::Overloaded]);
}

#[tokio::test(start_paused = true)]
async fn open_circuit_hands_over_to_the_next_target_fast() {
    let primary = always("primary", Reply::server_error(503));
    let backup = always("backup", Reply::text("backup answer"));
    let breakers = CircuitBreakerLayer::new().consecutive_failures(3);
    let stack = |m: Arc<ScriptedModel>| {
        target_pipeline(
            RetryLayer::new()
                .max_attempts(3)
                .backoff(Backoff::exponential().base(ms(100)).jitter(Jitter::None)),
            breakers.clone(),
            None,
            TimeoutLayer::new(),
        )
        .build(m)
    };
    let model = FallbackLayer::new()
        .then(stack(backup.clone()))
        .layer(stack(primary.clone()));

    // First call: 3 attempts on the primary trip its breaker, then the backup answers.
    let resp = model.chat(ChatRequest::user("x")).await.unwrap();
    assert_eq!(resp.text(), "backup answer");
    assert_eq!(primary.call_count(), 3);
    // Second call: the primary's circuit is open, no retries, no upstream call, no waiting.
    let start = Instant::now();
    let resp = model.chat(ChatRequest::user("x")).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(primary.call_count(), 3);
    assert!(
        resp.trail
            .entries()
            .iter()
            .any(|e| e.detail.contains("circuit_open")),
        "{:?}",
        resp.trail
    );
}

// ---------------------------------------------------------------- idempotency

#[tokio::test(start_paused = true)]
async fn concurrent_duplicates_share_one_upstream_call() {
    let provider = Arc::new(
        ScriptedModel::builder()
            .fallback(Reply::text("charged once").after(secs(1)))
            .build(),
    );
    let model = IdempotencyLayer::new().layer(provider.clone());
    let req = ChatRequest::user("refund order 42").with_idempotency_key("refund-42");
    let calls: Vec<_> = (0..20).map(|_| model.chat(req.clone())).collect();
    let results = futures::future::join_all(calls).await;
    assert_eq!(provider.call_count(), 1);
    let joined = results
        .iter()
        .filter(|r| r.as_ref().unwrap().trail.has("idempotency", "joined"))
        .count();
    assert_eq!(joined, 19);
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().unwrap().text() == "charged once")
    );
}

#[tokio::test(start_paused = true)]
async fn completed_results_are_replayed_until_the_ttl_passes() {
    let provider = Arc::new(ScriptedModel::always("answer"));
    let model = IdempotencyLayer::new()
        .ttl(secs(60))
        .layer(provider.clone());
    let req = ChatRequest::user("x").with_idempotency_key("k1");
    model.chat(req.clone()).await.unwrap();
    tokio::time::advance(secs(59)).await;
    let replay = model.chat(req.clone()).await.unwrap();
    assert!(replay.trail.has("idempotency", "replayed"));
    assert_eq!(provider.call_count(), 1);
    tokio::time::advance(secs(2)).await;
    model.chat(req.clone()).await.unwrap();
    assert_eq!(provider.call_count(), 2, "expired after the ttl");
    // Requests without a key are never de-duplicated.
    model.chat(ChatRequest::user("x")).await.unwrap();
    model.chat(ChatRequest::user("x")).await.unwrap();
    assert_eq!(provider.call_count(), 4);
}

#[tokio::test(start_paused = true)]
async fn failures_are_not_remembered() {
    let provider = Arc::new(
        ScriptedModel::builder()
            .reply(Reply::server_error(500))
            .reply("second try")
            .build(),
    );
    let model = IdempotencyLayer::new().layer(provider.clone());
    let req = ChatRequest::user("x").with_idempotency_key("k2");
    assert!(model.chat(req.clone()).await.is_err());
    assert_eq!(model.chat(req).await.unwrap().text(), "second try");
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_leader_does_not_block_the_key() {
    let provider = Arc::new(
        ScriptedModel::builder()
            .reply(Reply::text("never delivered").after(secs(10)))
            .reply("delivered")
            .build(),
    );
    let model = IdempotencyLayer::new()
        .lease(secs(120))
        .layer(provider.clone());
    let req = ChatRequest::user("x").with_idempotency_key("k3");
    assert!(
        tokio::time::timeout(secs(1), model.chat(req.clone()))
            .await
            .is_err()
    );
    let start = Instant::now();
    assert_eq!(model.chat(req).await.unwrap().text(), "delivered");
    assert!(
        start.elapsed() < secs(1),
        "did not wait for the 120 s lease"
    );
}

// ---------------------------------------------------------------- limits

#[tokio::test(start_paused = true)]
async fn token_bucket_estimates_then_settles_with_real_usage() {
    let provider = Arc::new(ScriptedModel::always("twelve chars"));
    let limits = LimitLayer::new().tokens_per_minute(1000);
    let model = limits.layer(provider.clone());
    let prompt = "x".repeat(400); // 100 tokens by estimate_tokens
    let resp = model
        .chat(ChatRequest::user(prompt).with_max_tokens(300))
        .await
        .unwrap();
    let used = resp.usage.total_tokens();
    assert_eq!(used, 100 + 3);
    let snap = limits.snapshot("scripted", "scripted-model").unwrap();
    assert_eq!(snap.tokens_available, Some(1000.0 - used as f64));
    assert!(
        resp.trail
            .entries()
            .iter()
            .any(|e| e.event == "settled" && e.detail.contains("estimated 400"))
    );
    // Refill is continuous: 1000 per minute.
    tokio::time::advance(ms(6_000)).await;
    let snap = limits.snapshot("scripted", "scripted-model").unwrap();
    assert!((snap.tokens_available.unwrap() - (1000.0 - used as f64 + 100.0)).abs() < 1e-6);
}

#[tokio::test(start_paused = true)]
async fn requests_per_minute_waits_for_the_next_slot() {
    let provider = Arc::new(ScriptedModel::always("ok"));
    let model = LimitLayer::new().requests_per_minute(2).layer(provider);
    let start = Instant::now();
    for _ in 0..2 {
        model.chat(ChatRequest::user("x")).await.unwrap();
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
    let third = model.chat(ChatRequest::user("x")).await.unwrap();
    assert_eq!(start.elapsed(), secs(30), "one request per 30 s refills");
    assert!(third.trail.has("limit", "waited"));
}

#[tokio::test(start_paused = true)]
async fn limit_wait_respects_the_deadline() {
    let provider = Arc::new(ScriptedModel::always("ok"));
    let model = LimitLayer::new()
        .requests_per_minute(1)
        .layer(provider.clone());
    model.chat(ChatRequest::user("x")).await.unwrap();
    let start = Instant::now();
    let err = model
        .chat(ChatRequest::user("x").with_deadline((Instant::now() + secs(10)).into_std()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded);
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "failed at once instead of sleeping in vain"
    );
    assert_eq!(err.retry_after(), Some(secs(60)));
    assert_eq!(provider.call_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn oversized_requests_fail_even_when_waiting() {
    let provider = Arc::new(ScriptedModel::always("ok"));
    let model = LimitLayer::new().tokens_per_minute(100).layer(provider);
    let err = model
        .chat(ChatRequest::user("x".repeat(1000)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded);
    assert!(err.message().contains("per minute"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn concurrency_limit_waits_or_fails_fast() {
    let slow = || {
        Arc::new(
            ScriptedModel::builder()
                .fallback(Reply::text("done").after(secs(1)))
                .build(),
        )
    };
    let waiting = LimitLayer::new().max_concurrency(2).layer(slow());
    let start = Instant::now();
    let results =
        futures::future::join_all((0..3).map(|_| waiting.chat(ChatRequest::user("x")))).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(start.elapsed(), secs(2), "the third call waited for a slot");

    let limits = LimitLayer::new().max_concurrency(2).fail_fast();
    let failing = limits.layer(slow());
    let results =
        futures::future::join_all((0..3).map(|_| failing.chat(ChatRequest::user("x")))).await;
    let refused: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].kind(), ErrorKind::LimitExceeded);
    assert_eq!(limits.snapshots()[0].in_flight, 0, "slots released");
}

// ---------------------------------------------------------------- streams through stateful layers

#[tokio::test(start_paused = true)]
async fn stream_failures_count_for_the_breaker() {
    let provider = always("p", Reply::server_error(503));
    let breakers = CircuitBreakerLayer::new().consecutive_failures(2);
    let model = breakers.layer(provider.clone());
    for _ in 0..2 {
        assert!(model.stream(ChatRequest::user("x")).await.is_err());
    }
    let err = model.stream(ChatRequest::user("x")).await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    assert_eq!(provider.call_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn stream_ending_without_done_is_not_a_health_failure() {
    use futures::StreamExt;
    let provider = always("p", Reply::CutStream("half an ans".into()));
    let breakers = CircuitBreakerLayer::new().consecutive_failures(1);
    let model = breakers.layer(provider.clone());
    let stream = model.stream(ChatRequest::user("x")).await.unwrap();
    let events: Vec<_> = stream.collect().await;
    assert!(
        events.iter().all(Result::is_ok),
        "the scripted cut ends without Done"
    );
    // Ending without `Done` is not proof of ill health by itself (the caller may stop early).
    assert_eq!(breakers.snapshots()[0].state, CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn streamed_usage_settles_the_token_bucket() {
    let provider = Arc::new(ScriptedModel::always("a streamed reply"));
    let limits = LimitLayer::new().tokens_per_minute(1000).max_concurrency(1);
    let model = limits.layer(provider);
    let stream = model
        .stream(ChatRequest::user("y".repeat(40)).with_max_tokens(500))
        .await
        .unwrap();
    let mid = limits.snapshot("scripted", "scripted-model").unwrap();
    assert_eq!(
        mid.in_flight, 1,
        "the slot is held while the stream is open"
    );
    assert_eq!(
        mid.tokens_available,
        Some(1000.0 - 510.0),
        "estimate reserved"
    );
    let resp = llmkit_core::collect_stream(
        stream,
        &llmkit_core::ModelInfo::new("scripted", "scripted-model"),
    )
    .await
    .unwrap();
    let after = limits.snapshot("scripted", "scripted-model").unwrap();
    assert_eq!(after.in_flight, 0);
    assert_eq!(
        after.tokens_available,
        Some(1000.0 - resp.usage.total_tokens() as f64)
    );
}
