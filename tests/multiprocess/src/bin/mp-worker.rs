//! One replica of a service for the multi-process tests. Usage:
//! `mp-worker <scenario> key=value…` with `redis`, `provider` (OpenAI-compatible base URL),
//! `prefix`, `start_at` (Unix ms), `calls`, and scenario options. Prints one JSON line per call:
//! `{"ok":bool,"kind":…,"text":…,"trail":[…],"start":ms,"end":ms}`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use llmkit_core::budget::{BudgetLayer, Pricer};
use llmkit_core::cache::CacheLayer;
use llmkit_core::resilience::{IdempotencyLayer, LimitLayer};
use llmkit_core::{ChatModel, ChatRequest, Cost, Decimal, Error, Layer, Usage};
use llmkit_multiprocess_tests::{unix_ms, wait_until};
use llmkit_providers::openai::OpenAiModel;
use llmkit_redis::{
    RedisBudgetLedger, RedisCacheStore, RedisConnection, RedisIdempotencyStore, RedisRateLimitStore,
};

type Args = HashMap<String, String>;

fn arg<T: std::str::FromStr>(args: &Args, name: &str, default: T) -> T {
    args.get(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn text(args: &Args, name: &str) -> Result<String, String> {
    args.get(name)
        .cloned()
        .ok_or_else(|| format!("missing {name}=…"))
}

/// Every call costs exactly `per_call` USD, estimated and settled alike, so the budget test can
/// state the exact number of calls a limit admits.
struct PerCall(Decimal);

impl Pricer for PerCall {
    fn price(&self, _: &str, _: &str, _: &Usage) -> Option<Cost> {
        Some(Cost {
            total_usd: self.0,
            ..Default::default()
        })
    }
}

fn report(start: u64, result: &Result<llmkit_core::ChatResponse, Error>) {
    let line = match result {
        Ok(resp) => serde_json::json!({
            "ok": true,
            "text": resp.text(),
            "trail": resp.trail.0.iter().map(|n| format!("{}/{}", n.layer, n.event)).collect::<Vec<_>>(),
            "start": start,
            "end": unix_ms(),
        }),
        Err(e) => serde_json::json!({
            "ok": false,
            "kind": e.kind().as_str(),
            "message": e.to_string(),
            "start": start,
            "end": unix_ms(),
        }),
    };
    println!("{line}");
}

/// Runs `calls` concurrent calls of `request` on `model`, reporting each.
async fn concurrent(model: Arc<dyn ChatModel>, calls: usize, request: ChatRequest) {
    let tasks = (0..calls).map(|_| {
        let model = model.clone();
        let request = request.clone();
        async move {
            let start = unix_ms();
            let result = model.chat(request).await;
            report(start, &result);
        }
    });
    futures::future::join_all(tasks).await;
}

async fn run(scenario: &str, args: &Args) -> Result<(), String> {
    let redis = RedisConnection::open(&text(args, "redis")?)
        .map_err(|e| e.to_string())?
        .with_prefix(&text(args, "prefix")?);
    let provider: Arc<dyn ChatModel> = Arc::new(
        OpenAiModel::compatible(text(args, "provider")?, "fake-model")
            .map_err(|e| e.to_string())?,
    );
    let calls = arg(args, "calls", 1usize);
    let start_at = arg(args, "start_at", 0u64);
    let ms = |name: &str, default: u64| Duration::from_millis(arg(args, name, default));
    let cached = || {
        CacheLayer::new()
            .store(Arc::new(RedisCacheStore::new(redis.clone())))
            .fill_lease(ms("lease_ms", 10_000))
            .fill_poll(Duration::from_millis(20))
    };
    let idempotent = || {
        IdempotencyLayer::new()
            .store(Arc::new(RedisIdempotencyStore::new(redis.clone())))
            .lease(ms("lease_ms", 10_000))
            .poll_interval(Duration::from_millis(20))
    };
    let budgeted = || {
        BudgetLayer::new(Arc::new(PerCall(Decimal::new(1, 3))))
            .global_usd(
                Decimal::new(arg(args, "budget_millis", 25), 3),
                Duration::from_secs(3600),
            )
            .ledger(Arc::new(RedisBudgetLedger::new(redis.clone())))
    };
    let question = ChatRequest::user(
        args.get("question")
            .map_or("capital of France?", String::as_str),
    )
    .with_temperature(0.0);
    match scenario {
        // (a) every call reserves $0.001 against one global budget.
        "budget" => {
            let model = budgeted().layer(provider);
            wait_until(start_at).await;
            concurrent(model, calls, question.with_tag("cache", "off")).await;
        }
        // (b), (f): identical cacheable requests.
        "cache" => {
            let model = cached().layer(provider);
            wait_until(start_at).await;
            concurrent(model, calls, question).await;
        }
        // (c), (f): one idempotency key.
        "idempotency" => {
            let key = text(args, "key")?;
            let model = idempotent().layer(provider);
            wait_until(start_at).await;
            concurrent(model, calls, question.with_idempotency_key(key)).await;
        }
        // (d): hammer a shared requests-per-period limit until `until` (Unix ms).
        "limit" => {
            let model = LimitLayer::new()
                .requests_per(arg(args, "limit", 20), ms("period_ms", 1000))
                .fail_fast()
                .store(Arc::new(RedisRateLimitStore::new(redis.clone())))
                .layer(provider);
            let until = arg(args, "until", 0u64);
            wait_until(start_at).await;
            let tasks = (0..calls.max(1)).map(|_| {
                let model = model.clone();
                async move {
                    while unix_ms() < until {
                        let start = unix_ms();
                        match model.chat(ChatRequest::user("ping")).await {
                            Ok(resp) => report(start, &Ok(resp)),
                            Err(e) => {
                                let pause = e.retry_after().unwrap_or_default();
                                tokio::time::sleep(pause.min(Duration::from_millis(5))).await;
                            }
                        }
                    }
                }
            });
            futures::future::join_all(tasks).await;
        }
        // (g): one budgeted, one cached and one idempotent call every `every_ms` until `until`.
        "mixed" => {
            let budget = budgeted().layer(provider.clone());
            let cache = cached().layer(provider.clone());
            let idem = idempotent().layer(provider);
            let until = arg(args, "until", 0u64);
            let every = ms("every_ms", 100);
            let me = text(args, "name")?;
            wait_until(start_at).await;
            let mut n = 0u64;
            while unix_ms() < until {
                n += 1;
                let start = unix_ms();
                let q = |what: &str| {
                    ChatRequest::user(format!("{what} {me} {n}")).with_temperature(0.0)
                };
                let (b, c, i) = futures::join!(
                    budget.chat(q("budget").with_tag("cache", "off")),
                    cache.chat(q("cache")),
                    idem.chat(q("idem").with_idempotency_key(format!("{me}-{n}"))),
                );
                for (layer, result) in [("budget", b), ("cache", c), ("idempotency", i)] {
                    let ok = result.is_ok();
                    let kind = result.as_ref().err().map(|e| e.kind().as_str());
                    println!(
                        "{}",
                        serde_json::json!({"layer": layer, "ok": ok, "kind": kind, "start": start, "end": unix_ms()})
                    );
                }
                tokio::time::sleep(every).await;
            }
        }
        other => return Err(format!("unknown scenario {other}")),
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut argv = std::env::args().skip(1);
    let scenario = argv.next().unwrap_or_default();
    let args: Args = argv
        .filter_map(|a| a.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    match run(&scenario, &args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mp-worker: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
