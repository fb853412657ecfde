//! Multi-process tests of shared state on Redis (issue 20 (a)–(d), (f), (g)): separate OS
//! processes (`mp-worker`, one replica each) share one Redis and call a local fake
//! OpenAI-compatible provider that counts requests.
//! Needs `LLMKIT_TEST_REDIS_URL` and `LLMKIT_TEST_REDIS_SERVER` (`scripts/test-services.sh up`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../support/services.rs"]
mod services;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::serve::ListenerExt;
use llmkit_core::Decimal;
use llmkit_core::budget::BudgetLedger;
use llmkit_multiprocess_tests::unix_ms;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

/// A fake OpenAI-compatible provider: counts requests, answers `answer #n` after `delay_ms`.
#[derive(Clone, Default)]
struct Provider {
    requests: Arc<AtomicU64>,
    delay_ms: Arc<AtomicU64>,
    first_at: Arc<AtomicU64>,
}

async fn complete(State(p): State<Provider>, Json(_body): Json<Value>) -> Json<Value> {
    let n = p.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let _ = p
        .first_at
        .compare_exchange(0, unix_ms(), Ordering::SeqCst, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(p.delay_ms.load(Ordering::SeqCst))).await;
    Json(json!({
        "id": format!("fake-{n}"),
        "object": "chat.completion",
        "created": 0,
        "model": "fake-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": format!("answer #{n}")}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    }))
}

impl Provider {
    async fn start(delay: Duration) -> (Provider, String) {
        let p = Provider::default();
        p.delay(delay);
        let app = axum::Router::new()
            .route("/v1/chat/completions", axum::routing::post(complete))
            .with_state(p.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        // TCP_NODELAY on every accepted socket (see shared/DESIGN.md: Nagle meets delayed ACK).
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        (p, url)
    }

    fn delay(&self, d: Duration) {
        self.delay_ms
            .store(u64::try_from(d.as_millis()).unwrap(), Ordering::SeqCst);
    }

    fn count(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    async fn wait_for(&self, n: u64) {
        for _ in 0..500 {
            if self.count() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the provider never saw {n} requests (saw {})", self.count());
    }
}

/// One test's Redis URL, key prefix and provider.
struct Run {
    redis: String,
    prefix: String,
    provider_url: String,
}

impl Run {
    fn new(redis: String, name: &str, provider_url: &str) -> Run {
        Run {
            redis,
            prefix: format!("llmkit-mp:{name}:{:08x}", fastrand::u32(..)),
            provider_url: provider_url.to_owned(),
        }
    }

    /// Starts one worker process; `start_at` lets several begin together.
    fn spawn(&self, scenario: &str, args: &[(&str, String)]) -> Child {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mp-worker"));
        cmd.arg(scenario)
            .arg(format!("redis={}", self.redis))
            .arg(format!("prefix={}", self.prefix))
            .arg(format!("provider={}", self.provider_url))
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in args {
            cmd.arg(format!("{k}={v}"));
        }
        cmd.spawn().unwrap()
    }

    fn ledger(&self) -> llmkit_redis::RedisBudgetLedger {
        let conn = llmkit_redis::RedisConnection::open(&self.redis)
            .unwrap()
            .with_prefix(&self.prefix);
        llmkit_redis::RedisBudgetLedger::new(conn)
    }

    /// Deletes the keys this run created.
    async fn cleanup(&self) {
        let client = redis::Client::open(self.redis.as_str()).unwrap();
        let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<i64, _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
        }
    }
}

/// Waits for a worker and parses its JSON lines; a worker that failed fails the test.
async fn lines(child: Child) -> Vec<Value> {
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success(), "worker failed: {:?}", out.status);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn all_lines(children: Vec<Child>) -> Vec<Value> {
    let mut all = Vec::new();
    for c in children {
        all.extend(lines(c).await);
    }
    all
}

fn ok(v: &Value) -> bool {
    v["ok"].as_bool() == Some(true)
}

fn has_trail(v: &Value, note: &str) -> bool {
    v["trail"]
        .as_array()
        .is_some_and(|t| t.iter().any(|n| n.as_str() == Some(note)))
}

/// The tests in this file run one at a time: each drives several processes against timing
/// (leases, a rate), and they should not compete for the 2 CI cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Workers start this long after being spawned, so both processes begin together.
fn soon() -> u64 {
    unix_ms() + 1500
}

fn redis_url() -> String {
    services::service("LLMKIT_TEST_REDIS_URL")
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs redis: run scripts/test-services.sh up"]
async fn a_a_global_budget_holds_exactly_across_processes() {
    let _serial = SERIAL.lock().await;
    let (provider, url) = Provider::start(Duration::from_millis(300)).await;
    let run = Run::new(redis_url(), "budget", &url);
    // $0.025 for everyone; every call costs exactly $0.001: 25 of 2 × 50 concurrent calls fit.
    let args = [
        ("calls", "50".to_owned()),
        ("budget_millis", "25".to_owned()),
        ("start_at", soon().to_string()),
    ];
    let all = all_lines(vec![run.spawn("budget", &args), run.spawn("budget", &args)]).await;
    assert_eq!(all.len(), 100);
    let admitted = all.iter().filter(|l| ok(l)).count();
    let refused = all
        .iter()
        .filter(|l| l["kind"].as_str() == Some("budget_exceeded"))
        .count();
    assert_eq!((admitted, refused), (25, 75));
    assert_eq!(provider.count(), 25, "no refused call reached the provider");
    // The ledger equals the sum of settled costs: nothing leaked, nothing counted twice.
    let spent = run.ledger().spent("global").await.unwrap();
    assert_eq!(spent, Decimal::new(25, 3));
    run.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs redis: run scripts/test-services.sh up"]
async fn b_identical_requests_across_processes_make_one_upstream_call() {
    let _serial = SERIAL.lock().await;
    let (provider, url) = Provider::start(Duration::from_millis(500)).await;
    let run = Run::new(redis_url(), "cache", &url);
    let args = [("calls", "10".to_owned()), ("start_at", soon().to_string())];
    let all = all_lines(vec![run.spawn("cache", &args), run.spawn("cache", &args)]).await;
    assert_eq!(all.len(), 20);
    assert!(all.iter().all(ok), "{all:?}");
    assert_eq!(provider.count(), 1);
    assert!(all.iter().all(|l| l["text"] == "answer #1"));
    let hits = all.iter().filter(|l| has_trail(l, "cache/hit")).count();
    assert_eq!(
        hits, 19,
        "one miss, nineteen served from the leader's answer"
    );
    run.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs redis: run scripts/test-services.sh up"]
async fn c_one_idempotency_key_makes_one_upstream_call_across_processes() {
    let _serial = SERIAL.lock().await;
    let (provider, url) = Provider::start(Duration::from_millis(300)).await;
    let run = Run::new(redis_url(), "idem", &url);
    let args = [
        ("calls", "5".to_owned()),
        ("key", "refund-42".to_owned()),
        ("start_at", soon().to_string()),
    ];
    let all = all_lines(vec![
        run.spawn("idempotency", &args),
        run.spawn("idempotency", &args),
    ])
    .await;
    assert_eq!(all.len(), 10);
    assert!(all.iter().all(ok), "{all:?}");
    assert_eq!(provider.count(), 1);
    assert!(all.iter().all(|l| l["text"] == "answer #1"));
    // Later calls, from a fresh process, replay the stored result.
    let later = lines(run.spawn(
        "idempotency",
        &[("calls", "3".to_owned()), ("key", "refund-42".to_owned())],
    ))
    .await;
    assert_eq!(later.len(), 3);
    assert!(
        later
            .iter()
            .all(|l| ok(l) && has_trail(l, "idempotency/replayed")),
        "{later:?}"
    );
    assert_eq!(provider.count(), 1);
    run.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs redis: run scripts/test-services.sh up"]
async fn d_a_shared_requests_limit_holds_within_five_percent() {
    let _serial = SERIAL.lock().await;
    let (provider, url) = Provider::start(Duration::ZERO).await;
    let run = Run::new(redis_url(), "limit", &url);
    // 20 requests per second, bucket full at the start: in 4 s GCRA admits 20 + 4 × 20 = 100,
    // however many processes and tasks ask.
    let start = soon();
    let args = [
        ("calls", "4".to_owned()),
        ("limit", "20".to_owned()),
        ("period_ms", "1000".to_owned()),
        ("start_at", start.to_string()),
        ("until", (start + 4000).to_string()),
    ];
    let all = all_lines(vec![run.spawn("limit", &args), run.spawn("limit", &args)]).await;
    let admitted = all.len();
    assert_eq!(u64::try_from(admitted).unwrap(), provider.count());
    eprintln!("shared limit: {admitted} admitted in 4 s (expected 100)");
    assert!(
        (95..=105).contains(&admitted),
        "admitted {admitted}, expected 100 ± 5%"
    );
    run.cleanup().await;
}

/// Kills a worker with SIGKILL once its call is at the (hanging) provider, then checks that
/// others wait for the lease, take over after it expires, and that later calls reuse the result.
async fn killed_holder(scenario: &str, extra: (&str, &str), done_note: &str) {
    let (provider, url) = Provider::start(Duration::from_secs(120)).await;
    let run = Run::new(redis_url(), scenario, &url);
    let lease_ms = 1500u64;
    let mut args = vec![
        ("calls", "1".to_owned()),
        ("lease_ms", lease_ms.to_string()),
        (extra.0, extra.1.to_owned()),
    ];
    let mut holder = run.spawn(scenario, &args);
    provider.wait_for(1).await;
    let taken_at = provider.first_at.load(Ordering::SeqCst);
    holder.kill().await.unwrap(); // SIGKILL: no destructor, no release
    provider.delay(Duration::from_millis(100));
    args[0].1 = "3".to_owned();
    let takers = lines(run.spawn(scenario, &args)).await;
    assert_eq!(takers.len(), 3);
    assert!(takers.iter().all(ok), "{takers:?}");
    // Nobody went upstream while the dead holder's lease was live ...
    let first_end = takers
        .iter()
        .map(|l| l["end"].as_u64().unwrap())
        .min()
        .unwrap();
    assert!(
        first_end + 50 >= taken_at + lease_ms,
        "took over {} ms after the claim, before the {lease_ms} ms lease expired",
        first_end - taken_at
    );
    // ... and then exactly one call did: the dead holder's call and the takeover are the
    // documented at-least-once window; the three takers shared one call.
    assert_eq!(provider.count(), 2);
    assert!(takers.iter().all(|l| l["text"] == "answer #2"));
    args[0].1 = "2".to_owned();
    let later = lines(run.spawn(scenario, &args)).await;
    assert!(
        later.iter().all(|l| ok(l) && has_trail(l, done_note)),
        "{later:?}"
    );
    assert_eq!(provider.count(), 2, "nothing runs a third time");
    run.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs redis: run scripts/test-services.sh up"]
async fn f_kill_9_of_a_cache_lease_holder() {
    let _serial = SERIAL.lock().await;
    killed_holder("cache", ("question", "capital of Peru?"), "cache/hit").await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs redis: run scripts/test-services.sh up"]
async fn f_kill_9_of_an_idempotency_claimant() {
    let _serial = SERIAL.lock().await;
    killed_holder("idempotency", ("key", "order-7"), "idempotency/replayed").await;
}

/// A private Redis this test may kill and restart (the shared one serves other tests).
async fn private_redis(port: u16) -> Child {
    let server = services::service("LLMKIT_TEST_REDIS_SERVER");
    let child = Command::new(server)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("private redis-server did not start on {port}");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs redis: run scripts/test-services.sh up"]
async fn g_redis_restarted_mid_run_follows_the_failure_policy() {
    let _serial = SERIAL.lock().await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut server = private_redis(port).await;
    let (provider, url) = Provider::start(Duration::from_millis(20)).await;
    let run = Run::new(format!("redis://127.0.0.1:{port}"), "restart", &url);
    let start = soon();
    let (down_at, up_at, until) = (start + 2000, start + 5000, start + 8000);
    let args = |name: &str| {
        vec![
            ("name", name.to_owned()),
            ("budget_millis", "1000000".to_owned()),
            ("every_ms", "100".to_owned()),
            ("start_at", start.to_string()),
            ("until", until.to_string()),
        ]
    };
    let workers = vec![
        run.spawn("mixed", &args("a")),
        run.spawn("mixed", &args("b")),
    ];
    tokio::time::sleep(Duration::from_millis(down_at.saturating_sub(unix_ms()))).await;
    server.kill().await.unwrap();
    tokio::time::sleep(Duration::from_millis(up_at.saturating_sub(unix_ms()))).await;
    let _server = private_redis(port).await;
    let all = all_lines(workers).await;
    let window = |layer: &str, from: u64, to: u64| -> Vec<&Value> {
        all.iter()
            .filter(|l| {
                l["layer"] == layer
                    && l["start"].as_u64().unwrap() >= from
                    && l["end"].as_u64().unwrap() <= to
            })
            .collect()
    };
    for layer in ["budget", "cache", "idempotency"] {
        let before = window(layer, start, down_at);
        let during = window(layer, down_at + 200, up_at);
        let after = window(layer, up_at + 1500, until + 2000);
        assert!(
            // A call during the outage takes a few hundred ms (the client's reconnection
            // attempt), so there are fewer of them.
            before.len() >= 10 && during.len() >= 6 && after.len() >= 10,
            "{layer}: too few calls before/during/after: {}/{}/{} of {all:?}",
            before.len(),
            during.len(),
            after.len()
        );
        assert!(before.iter().all(|l| ok(l)), "{layer} before: {before:?}");
        assert!(
            after.iter().all(|l| ok(l)),
            "{layer} after the restart: {after:?}"
        );
        if layer == "cache" {
            // Fail open: Redis down costs upstream calls, never answers.
            assert!(during.iter().all(|l| ok(l)), "cache during: {during:?}");
        } else {
            // Fail closed: budget and idempotency refuse with a typed transport error.
            assert!(
                during.iter().all(|l| !ok(l) && l["kind"] == "transport"),
                "{layer} during: {during:?}"
            );
        }
    }
    // Refused budget and idempotency calls never reached the provider: it saw every call
    // before and after, and during the outage only the cache's.
    let upstream_ok = all.iter().filter(|l| ok(l)).count();
    assert_eq!(u64::try_from(upstream_ok).unwrap(), provider.count());
}
