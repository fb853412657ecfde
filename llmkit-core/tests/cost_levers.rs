//! Cost levers: response cache, semantic cache, router and budgets.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::Duration;

use llmkit_core::budget::{BudgetLayer, FlatPricer, OverBudget, Pricer};
use llmkit_core::cache::semantic::{NEGATION_PAIRS, false_hit_rate};
use llmkit_core::cache::*;
use llmkit_core::route::{FnClassifier, RouteRule, Router};
use llmkit_core::*;

fn info() -> ModelInfo {
    ModelInfo::new("openai", "gpt-x")
}

fn schema_request(schema_text: &str) -> ChatRequest {
    ChatRequest::user("q").with_response_format(ResponseFormat::JsonSchema {
        name: "v".into(),
        schema: serde_json::from_str(schema_text).unwrap(),
        strict: true,
    })
}

#[test]
fn key_ignores_field_order_whitespace_and_irrelevant_metadata() {
    let a = schema_request(
        r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"number"}}}"#,
    );
    let b = schema_request(
        "{ \"properties\": { \"b\": {\"type\": \"number\"},\n \"a\": {\"type\":\"string\"} },\n \"type\": \"object\" }",
    );
    assert_eq!(cache_key(&info(), &a, false), cache_key(&info(), &b, false));
    let tagged = a
        .clone()
        .with_request_id("r1")
        .with_idempotency_key("k")
        .with_tag("x", "y");
    assert_eq!(
        cache_key(&info(), &a, false),
        cache_key(&info(), &tagged, false)
    );
    // The tenant only matters when asked.
    let t = a.clone().with_tenant("acme");
    assert_eq!(cache_key(&info(), &a, false), cache_key(&info(), &t, false));
    assert_ne!(cache_key(&info(), &a, true), cache_key(&info(), &t, true));
}

#[test]
fn key_changes_with_everything_that_changes_the_answer() {
    let base = ChatRequest::user("q").with_temperature(0.0);
    let k = |r: &ChatRequest| cache_key(&info(), r, false);
    let p = |v: &str| PromptRef {
        id: "p".into(),
        version: v.into(),
        hash: format!("h{v}"),
    };
    let variants = [
        base.clone().with_model("other"),
        base.clone().with_temperature(0.5),
        base.clone().with_max_tokens(5),
        base.clone().with_seed(1),
        ChatRequest::user("q2").with_temperature(0.0),
        base.clone().with_prompt(p("1")),
        base.clone()
            .with_tool(ToolDefinition::new("t", "d", serde_json::json!({}))),
    ];
    for v in &variants {
        assert_ne!(k(&base), k(v), "{v:?}");
    }
    assert_ne!(
        k(&base.clone().with_prompt(p("1"))),
        k(&base.clone().with_prompt(p("2")))
    );
    assert_ne!(
        cache_key(&ModelInfo::new("anthropic", "gpt-x"), &base, false),
        k(&base)
    );
}

#[tokio::test]
async fn hits_cost_nothing_and_report_savings() {
    let provider = Arc::new(ScriptedModel::builder().fallback("Paris").build());
    let cache = CacheLayer::new();
    let stats = cache.stats_handle();
    let pricing = layer_fn("price", |r| r);
    let model = Pipeline::builder()
        .layer(cache)
        .layer(pricing)
        .build(Arc::new(PricedModel(provider.clone())));
    let req = || ChatRequest::user("capital of france").with_temperature(0.0);
    let first = model.chat(req()).await.unwrap();
    assert!(first.trail.has("cache", "miss"));
    let second = model.chat(req()).await.unwrap();
    assert!(second.trail.has("cache", "hit"));
    assert_eq!(second.usage, Usage::default());
    assert_eq!(second.cost.as_ref().unwrap().total_usd, Decimal::ZERO);
    assert_ne!(
        second.request_id, first.request_id,
        "a hit carries its own request id"
    );
    assert_eq!(provider.call_count(), 1);
    let s = stats.get();
    assert_eq!((s.hits, s.misses), (1, 1));
    assert_eq!(s.saved_usd, Decimal::new(1, 2));
}

/// Issue 17: a hit of an answer that carried no cost recorded `saved_usd=0`, as if the saving
/// were known to be nothing. It is unknown: the trail says so and the stats count it apart.
#[tokio::test]
async fn a_hit_of_an_unpriced_answer_records_an_unknown_saving() {
    let provider = Arc::new(
        ScriptedModel::builder()
            .model("house-model-7b")
            .fallback("Paris")
            .build(),
    );
    let cache = CacheLayer::new();
    let stats = cache.stats_handle();
    let model = Pipeline::builder().layer(cache).build(provider.clone());
    let req = || ChatRequest::user("capital of france").with_temperature(0.0);
    let first = model.chat(req()).await.unwrap();
    assert_eq!(first.cost, None, "the provider double prices nothing");
    let hit = model.chat(req()).await.unwrap();
    let note = hit
        .trail
        .0
        .iter()
        .find(|n| n.layer == "cache" && n.event == "hit")
        .unwrap();
    assert!(note.detail.starts_with("saved_usd=unknown "), "{note:?}");
    assert!(
        note.detail
            .contains(&format!("input_tokens={}", first.usage.input_tokens)),
        "{note:?}"
    );
    let s = stats.get();
    assert_eq!(
        (s.hits, s.hits_unpriced, s.saved_usd),
        (1, 1, Decimal::ZERO)
    );
}

/// Attaches a fixed cost of one cent to every reply, like a priced provider.
struct PricedModel(Arc<ScriptedModel>);

#[async_trait]
impl ChatModel for PricedModel {
    fn info(&self) -> &ModelInfo {
        ScriptedModel::info(&self.0)
    }
    async fn chat(&self, r: ChatRequest) -> Result<ChatResponse> {
        let mut resp = self.0.chat(r).await?;
        resp.cost = Some(Cost {
            total_usd: Decimal::new(1, 2),
            price_table: "test".into(),
            ..Default::default()
        });
        Ok(resp)
    }
}

#[tokio::test]
async fn policy_controls_what_is_cached() {
    let provider = Arc::new(ScriptedModel::always("x"));
    let model = Pipeline::builder()
        .layer(CacheLayer::new())
        .build(provider.clone());
    // Sampled (temperature unset) requests are not cached by default.
    model.chat(ChatRequest::user("a")).await.unwrap();
    model.chat(ChatRequest::user("a")).await.unwrap();
    assert_eq!(provider.call_count(), 2);
    // Opt in by tag; opt out per request.
    model
        .chat(ChatRequest::user("b").with_tag("cache", "on"))
        .await
        .unwrap();
    model
        .chat(ChatRequest::user("b").with_tag("cache", "on"))
        .await
        .unwrap();
    assert_eq!(provider.call_count(), 3);
    let mut no = ChatRequest::user("c").with_temperature(0.0);
    no.meta.no_cache = true;
    model.chat(no.clone()).await.unwrap();
    model.chat(no).await.unwrap();
    assert_eq!(provider.call_count(), 5);
    // Truncated and failed replies are never cached.
    let flaky = Arc::new(
        ScriptedModel::builder()
            .reply(Reply::Truncated("half".into()))
            .reply(Reply::server_error(500))
            .fallback("full")
            .build(),
    );
    let model = Pipeline::builder()
        .layer(CacheLayer::new().policy(CachePolicy::Always))
        .build(flaky.clone());
    assert_eq!(
        model
            .chat(ChatRequest::user("d"))
            .await
            .unwrap()
            .finish_reason,
        FinishReason::Length
    );
    assert!(model.chat(ChatRequest::user("d")).await.is_err());
    assert_eq!(
        model.chat(ChatRequest::user("d")).await.unwrap().text(),
        "full"
    );
    assert!(
        model
            .chat(ChatRequest::user("d"))
            .await
            .unwrap()
            .trail
            .has("cache", "hit")
    );
    assert_eq!(flaky.call_count(), 3);
}

#[tokio::test]
async fn never_serves_across_prompt_versions_or_models() {
    let provider = Arc::new(
        ScriptedModel::builder()
            .fallback(Reply::dynamic(|r: &ChatRequest| {
                Reply::text(format!(
                    "{}:{}",
                    r.model.clone().unwrap_or_default(),
                    r.meta
                        .prompt
                        .as_ref()
                        .map(|p| p.version.clone())
                        .unwrap_or_default()
                ))
            }))
            .build(),
    );
    let model = Pipeline::builder()
        .layer(CacheLayer::new().policy(CachePolicy::Always))
        .build(provider.clone());
    let p = |v: &str| PromptRef {
        id: "p".into(),
        version: v.into(),
        hash: v.into(),
    };
    let r1 = model
        .chat(ChatRequest::user("q").with_model("a").with_prompt(p("1")))
        .await
        .unwrap();
    let r2 = model
        .chat(ChatRequest::user("q").with_model("a").with_prompt(p("2")))
        .await
        .unwrap();
    let r3 = model
        .chat(ChatRequest::user("q").with_model("b").with_prompt(p("1")))
        .await
        .unwrap();
    assert_eq!([r1.text(), r2.text(), r3.text()], ["a:1", "a:2", "b:1"]);
    assert_eq!(provider.call_count(), 3);
}

#[tokio::test(start_paused = true)]
async fn single_flight_under_concurrency() {
    let provider = Arc::new(
        ScriptedModel::builder()
            .fallback(Reply::text("slow answer").after(Duration::from_millis(500)))
            .build(),
    );
    let cache = CacheLayer::new();
    let stats = cache.stats_handle();
    let model = Pipeline::builder().layer(cache).build(provider.clone());
    let calls = (0..20).map(|_| {
        let m = model.clone();
        tokio::spawn(async move {
            m.chat(ChatRequest::user("same").with_temperature(0.0))
                .await
        })
    });
    let results = futures::future::join_all(calls).await;
    assert!(
        results
            .into_iter()
            .all(|r| r.unwrap().unwrap().text() == "slow answer")
    );
    assert_eq!(
        provider.call_count(),
        1,
        "twenty identical misses, one upstream call"
    );
    let s = stats.get();
    assert_eq!(s.misses, 1);
    assert_eq!(s.coalesced, 19);
}

/// A caller that gives up (its future is dropped) while leading a flight must not strand the
/// identical requests waiting on it: one of them takes over and calls upstream itself.
#[tokio::test(start_paused = true)]
async fn abandoned_leader_hands_the_flight_over() {
    let provider = Arc::new(
        ScriptedModel::builder()
            .fallback(Reply::text("slow answer").after(Duration::from_millis(500)))
            .build(),
    );
    let cache = CacheLayer::new();
    let stats = cache.stats_handle();
    let model = Pipeline::builder().layer(cache).build(provider.clone());
    let request = || ChatRequest::user("same").with_temperature(0.0);
    let leader = {
        let m = model.clone();
        tokio::spawn(async move { m.chat(request()).await })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    let followers: Vec<_> = (0..3)
        .map(|_| {
            let m = model.clone();
            tokio::spawn(async move { m.chat(request()).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(10)).await;
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    for f in futures::future::join_all(followers).await {
        assert_eq!(f.unwrap().unwrap().text(), "slow answer");
    }
    assert_eq!(
        provider.call_count(),
        2,
        "the abandoned call and one call by the follower that took over"
    );
    let s = stats.get();
    assert_eq!(s.misses, 2);
    assert_eq!(s.coalesced, 2);
    // A hit's trail is its own: no attempts or misses of the call that filled the cache.
    let hit = model.chat(request()).await.unwrap();
    assert_eq!(hit.trail.entries().len(), 1, "{:?}", hit.trail);
}

#[tokio::test]
async fn moka_store_ttl_and_capacity() {
    let store = MokaCacheStore::new(2, Duration::from_millis(30));
    let resp = ChatResponse {
        model: "m".into(),
        ..Default::default()
    };
    for i in 0..5 {
        store.put(&CacheKey(format!("k{i}")), &resp).await.unwrap();
    }
    store.run_pending_tasks().await;
    assert!(
        store.entry_count() <= 2,
        "capacity bound holds: {}",
        store.entry_count()
    );
    store.put(&CacheKey("fresh".into()), &resp).await.unwrap();
    assert!(
        store
            .get(&CacheKey("fresh".into()))
            .await
            .unwrap()
            .is_some()
    );
    // moka keeps its own clock, so expiry needs real time to pass.
    std::thread::sleep(Duration::from_millis(60));
    assert!(
        store
            .get(&CacheKey("fresh".into()))
            .await
            .unwrap()
            .is_none(),
        "expired after ttl"
    );
}

#[tokio::test]
async fn stream_hits_replay() {
    let provider = Arc::new(ScriptedModel::always("streamed"));
    let model = Pipeline::builder()
        .layer(CacheLayer::new())
        .build(provider.clone());
    model
        .chat(ChatRequest::user("s").with_temperature(0.0))
        .await
        .unwrap();
    let s = model
        .stream(ChatRequest::user("s").with_temperature(0.0))
        .await
        .unwrap();
    let resp = collect_stream(s, model.info()).await.unwrap();
    assert_eq!(resp.text(), "streamed");
    assert_eq!(provider.call_count(), 1);
}

#[tokio::test]
async fn semantic_cache_is_opt_in_scoped_and_measured() {
    let embedder: Arc<dyn EmbeddingModel> =
        Arc::new(ScriptedModel::builder().embedding_dimensions(256).build());
    let provider = Arc::new(
        ScriptedModel::builder()
            .fallback(Reply::dynamic(|r: &ChatRequest| {
                Reply::text(format!("answer to {}", r.text()))
            }))
            .build(),
    );
    let model = Pipeline::builder()
        .layer(SemanticCacheLayer::new(embedder.clone()).threshold(0.95))
        .build(provider.clone());
    let ask = |t: &str| ChatRequest::user(t).with_tag("semantic_cache", "on");
    model
        .chat(ask("What are your opening hours"))
        .await
        .unwrap();
    let hit = model
        .chat(ask("what are your OPENING hours?"))
        .await
        .unwrap();
    assert!(hit.trail.has("semantic_cache", "hit"));
    assert_eq!(provider.call_count(), 1);
    // Not opted in: never served from the semantic cache.
    model
        .chat(ChatRequest::user("What are your opening hours"))
        .await
        .unwrap();
    assert_eq!(provider.call_count(), 2);
    // A different system prompt is a different scope.
    let other = ChatRequest::new(vec![
        Message::system("You are a pirate."),
        Message::user("What are your opening hours"),
    ])
    .with_tag("semantic_cache", "on");
    model.chat(other).await.unwrap();
    assert_eq!(provider.call_count(), 3);

    // The bundled negation set: at 0.95 the offline embedder never confuses a request with its opposite.
    let rate = false_hit_rate(embedder.as_ref(), 0.95).await.unwrap();
    assert_eq!(rate, 0.0, "false-hit rate at 0.95");
    let loose = false_hit_rate(embedder.as_ref(), 0.5).await.unwrap();
    assert!(loose > 0.5, "a loose threshold confuses opposites: {loose}");
    assert_eq!(NEGATION_PAIRS.len(), 20);
}

#[tokio::test]
async fn router_rules_classifier_and_default() {
    let cheap = Arc::new(
        ScriptedModel::builder()
            .model("small")
            .fallback("cheap")
            .build(),
    );
    let strong = Arc::new(
        ScriptedModel::builder()
            .model("large")
            .fallback("strong")
            .build(),
    );
    let router = Router::builder("r")
        .route("cheap", cheap.clone())
        .route("strong", strong.clone())
        .rule(RouteRule::needs_tools(), "strong")
        .rule(RouteRule::prompt_id("legal_review"), "strong")
        .classifier(Arc::new(FnClassifier(|r: &ChatRequest| {
            if r.text().contains("contract") {
                "strong".to_owned()
            } else {
                "cheap".to_owned()
            }
        })))
        .default_route("cheap")
        .build()
        .unwrap();
    let t = |r: ChatRequest| {
        let router = &router;
        async move { router.chat(r).await.unwrap() }
    };
    assert_eq!(t(ChatRequest::user("hello")).await.text(), "cheap");
    assert_eq!(
        t(ChatRequest::user("review this contract")).await.text(),
        "strong"
    );
    let with_tool =
        ChatRequest::user("hello").with_tool(ToolDefinition::new("x", "y", serde_json::json!({})));
    let resp = t(with_tool).await;
    assert_eq!(resp.text(), "strong");
    assert!(
        resp.trail
            .entries()
            .iter()
            .any(|e| e.layer == "router" && e.detail.contains("needs_tools"))
    );
    let legal = ChatRequest::user("hi").with_prompt(PromptRef {
        id: "legal_review".into(),
        version: "1".into(),
        hash: "h".into(),
    });
    assert_eq!(t(legal).await.text(), "strong");
    let stats = router.stats();
    assert_eq!(stats.routes["cheap"].requests, 1);
    assert_eq!(stats.routes["strong"].requests, 3);
    assert!(router.stats().report().contains("75.0%"));
    // Bad configuration is caught at build time.
    let err = Router::builder("bad")
        .route("a", cheap.clone())
        .default_route("zzz")
        .build()
        .unwrap_err();
    assert!(err.message().contains("route `zzz`"));
    assert!(Router::builder("bad").route("a", cheap).build().is_err());
}

#[tokio::test]
async fn router_escalates_on_rejected_output() {
    let cheap = Arc::new(
        ScriptedModel::builder()
            .model("small")
            .reply("{\"confidence\": 0.2}")
            .reply("{\"confidence\": 0.9}")
            .build(),
    );
    let strong = Arc::new(
        ScriptedModel::builder()
            .model("large")
            .fallback("{\"confidence\": 0.99}")
            .build(),
    );
    let router = Router::builder("r")
        .route("cheap", cheap.clone())
        .route("strong", strong.clone())
        .default_route("cheap")
        .escalate("cheap", "strong", |resp| {
            serde_json::from_str::<serde_json::Value>(&resp.text())
                .ok()
                .and_then(|v| v["confidence"].as_f64())
                .is_some_and(|c| c >= 0.5)
        })
        .build()
        .unwrap();
    let first = router.chat(ChatRequest::user("q1")).await.unwrap();
    assert_eq!(first.model, "large");
    assert!(first.trail.has("router", "escalated"));
    assert!(
        first.usage.input_tokens > strong.requests()[0].text().len() as u64 / 4,
        "usage includes the rejected attempt"
    );
    let second = router.chat(ChatRequest::user("q2")).await.unwrap();
    assert_eq!(second.model, "small");
    let s = router.stats();
    assert_eq!(s.routes["cheap"].escalated_away, 1);
    assert_eq!(s.routes["cheap"].answered, 1);
    assert_eq!(s.routes["strong"].answered, 1);
    router.record_quality("cheap", 0.8);
    assert_eq!(router.stats().routes["cheap"].mean_quality(), Some(0.8));
}

fn pricer() -> Arc<FlatPricer> {
    // $10 / M tokens in and out: 1,000 tokens = one cent.
    Arc::new(FlatPricer::per_million(
        Decimal::from(10),
        Decimal::from(10),
    ))
}

#[tokio::test]
async fn budget_estimates_and_enforces_per_request() {
    let budget = BudgetLayer::new(pricer()).per_request_usd(Decimal::new(1, 2));
    let info = ModelInfo::new("p", "m");
    // 400 chars ≈ 100 tokens in, 500 out: 600 tokens ≈ $0.006.
    let est = budget
        .estimate(
            &info,
            &ChatRequest::user("x".repeat(400)).with_max_tokens(500),
        )
        .unwrap();
    assert_eq!(est.total_usd, Decimal::new(6, 3));
    let provider = Arc::new(ScriptedModel::always("ok"));
    let model = Pipeline::builder().layer(budget).build(provider.clone());
    assert!(
        model
            .chat(ChatRequest::user("x".repeat(400)).with_max_tokens(500))
            .await
            .is_ok()
    );
    let err = model
        .chat(ChatRequest::user("x".repeat(400)).with_max_tokens(5000))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BudgetExceeded);
    assert!(err.message().contains("per-request limit"), "{err}");
    assert_eq!(provider.call_count(), 1, "refused before the call");
}

#[tokio::test(start_paused = true)]
async fn budget_per_tenant_period_settles_and_resets() {
    let budget =
        BudgetLayer::new(pricer()).per_tenant_usd(Decimal::new(2, 2), Duration::from_secs(3600));
    let provider = Arc::new(ScriptedModel::always("ok"));
    let model = Pipeline::builder()
        .layer(budget.clone())
        .build(provider.clone());
    // Each call: ~1,000 tokens reserved, settled to the real (much smaller) scripted usage.
    let call = |t: &str| ChatRequest::user("hi").with_max_tokens(1000).with_tenant(t);
    for _ in 0..5 {
        model.chat(call("acme")).await.unwrap();
    }
    let spent = budget.tenant_spend("acme").await.unwrap();
    assert!(
        spent < Decimal::new(1, 3),
        "settled to real usage, not the estimate: {spent}"
    );
    // A tenant that really spends hits the wall; others are unaffected.
    let big = |t: &str| {
        ChatRequest::user("x".repeat(4000))
            .with_max_tokens(1000)
            .with_tenant(t)
    };
    model.chat(big("globex")).await.unwrap();
    assert_eq!(
        model.chat(big("globex")).await.unwrap_err().kind(),
        ErrorKind::BudgetExceeded
    );
    assert!(model.chat(big("initech")).await.is_ok());
    // After the period the tenant may spend again.
    tokio::time::advance(Duration::from_secs(3601)).await;
    assert!(model.chat(big("globex")).await.is_ok());
}

#[tokio::test]
async fn budget_downgrades_by_policy_and_releases_on_error() {
    let cheap_pricer = Arc::new(FlatPricer::per_million(
        Decimal::from(10),
        Decimal::from(10),
    ));
    let cheap = Arc::new(
        ScriptedModel::builder()
            .model("mini")
            .fallback("mini answer")
            .build(),
    );
    let budget = BudgetLayer::new(cheap_pricer)
        .per_request_usd(Decimal::new(1, 2))
        .on_exceed(OverBudget::Downgrade(cheap.clone()));
    let strong = Arc::new(
        ScriptedModel::builder()
            .model("large")
            .reply(Reply::server_error(500))
            .fallback("large answer")
            .build(),
    );
    let model = Pipeline::builder()
        .layer(budget.clone())
        .build(strong.clone());
    // FlatPricer prices every model alike, so a request over the limit stays over: it fails.
    let err = model
        .chat(ChatRequest::user("q").with_max_tokens(5000))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BudgetExceeded);
    // With a pricer that knows the small model is ten times cheaper, the call is downgraded.
    let by_model = |_: &str, model: &str, u: &Usage| {
        let per_m = if model == "mini" {
            Decimal::from(1)
        } else {
            Decimal::from(10)
        };
        FlatPricer::per_million(per_m, per_m).price("", model, u)
    };
    let strong2 = Arc::new(
        ScriptedModel::builder()
            .model("large")
            .fallback("large answer")
            .build(),
    );
    let downgrading = BudgetLayer::new(Arc::new(by_model))
        .per_request_usd(Decimal::new(1, 2))
        .on_exceed(OverBudget::Downgrade(cheap.clone()));
    let m = Pipeline::builder()
        .layer(downgrading)
        .build(strong2.clone());
    let resp = m
        .chat(ChatRequest::user("q").with_max_tokens(5000))
        .await
        .unwrap();
    assert_eq!(resp.text(), "mini answer");
    assert!(resp.trail.has("budget", "downgraded"));
    assert_eq!(strong2.call_count(), 0);
    // Errors release their reservation.
    let tenant_budget =
        BudgetLayer::new(pricer()).per_tenant_usd(Decimal::new(2, 2), Duration::from_secs(60));
    let m = Pipeline::builder()
        .layer(tenant_budget.clone())
        .build(strong);
    assert!(
        m.chat(
            ChatRequest::user("q")
                .with_max_tokens(1000)
                .with_tenant("t")
        )
        .await
        .is_err()
    );
    assert_eq!(
        tenant_budget.tenant_spend("t").await.unwrap(),
        Decimal::ZERO
    );
}

mod batch {
    use super::*;
    use llmkit_core::batch::*;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    #[tokio::test]
    async fn local_lane_runs_everything_and_maps_results_by_id() {
        let model = Arc::new(
            ScriptedModel::builder()
                .on_call(3, Reply::server_error(500))
                .fallback(Reply::dynamic(|r: &ChatRequest| {
                    Reply::text(format!("done: {}", r.text()))
                }))
                .build(),
        );
        let lane = LocalBatchLane::new(model.clone(), 2);
        let items: Vec<BatchItem> = (0..6)
            .map(|i| BatchItem::new(format!("id-{i}"), ChatRequest::user(format!("job {i}"))))
            .collect();
        let report = run_batch(
            &lane,
            items,
            PollPolicy {
                initial: Duration::from_millis(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(report.progress.status, BatchStatus::Completed);
        assert_eq!(report.results.len(), 6);
        assert_eq!(report.succeeded().count(), 5);
        assert_eq!(report.failed().count(), 1);
        for (id, resp) in report.succeeded() {
            assert_eq!(
                resp.text(),
                format!("done: job {}", id.trim_start_matches("id-"))
            );
        }
        assert_eq!(model.call_count(), 6);
    }

    #[tokio::test]
    async fn bad_items_are_rejected_before_sending() {
        let lane = LocalBatchLane::new(Arc::new(ScriptedModel::always("x")), 1);
        let dup = vec![
            BatchItem::new("a", ChatRequest::user("1")),
            BatchItem::new("a", ChatRequest::user("2")),
        ];
        assert!(
            run_batch(&lane, dup, PollPolicy::default())
                .await
                .unwrap_err()
                .message()
                .contains("appears twice")
        );
        assert!(
            run_batch(&lane, vec![], PollPolicy::default())
                .await
                .is_err()
        );
        assert!(
            run_batch(
                &lane,
                vec![BatchItem::new("", ChatRequest::user("1"))],
                PollPolicy::default()
            )
            .await
            .is_err()
        );
    }

    /// A lane that never finishes one item, to test polling and partial results.
    struct Stuck {
        polls: Mutex<u32>,
    }

    #[async_trait]
    impl BatchLane for Stuck {
        async fn submit(&self, _: Vec<BatchItem>) -> Result<BatchHandle> {
            Ok(BatchHandle {
                id: "b1".into(),
                provider: "fake".into(),
            })
        }
        async fn progress(&self, _: &BatchHandle) -> Result<BatchProgress> {
            *self.polls.lock().unwrap() += 1;
            Ok(BatchProgress {
                status: BatchStatus::InProgress,
                total: 2,
                succeeded: 1,
                failed: 0,
            })
        }
        async fn results(&self, _: &BatchHandle) -> Result<BTreeMap<String, Result<ChatResponse>>> {
            let mut m = BTreeMap::new();
            m.insert(
                "done".to_owned(),
                Ok(ChatResponse {
                    message: Message::assistant("ok"),
                    ..Default::default()
                }),
            );
            Ok(m)
        }
        async fn cancel(&self, _: &BatchHandle) -> Result<()> {
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn polling_backs_off_and_returns_partial_results_at_the_deadline() {
        let lane = Stuck {
            polls: Mutex::new(0),
        };
        let items = vec![
            BatchItem::new("done", ChatRequest::user("a")),
            BatchItem::new("never", ChatRequest::user("b")),
        ];
        let policy = PollPolicy {
            initial: Duration::from_secs(1),
            max_interval: Duration::from_secs(8),
            deadline: Duration::from_secs(30),
        };
        let started = tokio::time::Instant::now();
        let report = run_batch(&lane, items, policy).await.unwrap();
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        // Polls at 0, 1, 3, 7, 15, 23, 30 s: doubling, capped at 8 s, cut at the deadline.
        assert_eq!(*lane.polls.lock().unwrap(), 7);
        assert!(report.results["done"].is_ok());
        assert_eq!(
            report.results["never"].as_ref().unwrap_err().kind(),
            ErrorKind::Timeout
        );
    }
}
