//! The service as a process: start the binary on a free port, talk HTTP, send signals.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../../tests/support/fault_server.rs"]
mod fault_server;
#[path = "../../../tests/support/services.rs"]
mod services;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fault_server::{Fault, FaultServer, openai_completion, openai_error};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running service and everything it wrote to stdout and stderr.
struct Service {
    child: Child,
    base: String,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Service {
    async fn start(env: &[(&str, String)]) -> Service {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_support-service"));
        cmd.env("SUPPORT__SERVER__LISTEN", "127.0.0.1:0")
            .env_remove("LLMKIT_PROVIDER")
            .env_remove("SUPPORT_API_KEYS")
            .env_remove("SUPPORT_UPSTREAM_API_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn support-service");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, mut addr_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for (reader, tx) in [
            (
                Box::new(stdout) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
                Some(addr_tx),
            ),
            (Box::new(stderr), None),
        ] {
            let logs = logs.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(reader).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(tx) = &tx
                        && let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                        && v["message"] == "listening"
                    {
                        let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_owned());
                    }
                    logs.lock().unwrap().push(line);
                }
            });
        }
        let addr = tokio::time::timeout(Duration::from_secs(60), addr_rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no `listening` line; logs: {:?}", logs.lock().unwrap()))
            .unwrap_or_else(|| panic!("service exited; logs: {:?}", logs.lock().unwrap()));
        Service {
            child,
            base: format!("http://{addr}"),
            logs,
        }
    }

    fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        reqwest::get(format!("{}{path}", self.base)).await.unwrap()
    }

    async fn chat(&self, http: &reqwest::Client, body: serde_json::Value) -> reqwest::Response {
        http.post(format!("{}/v1/chat/completions", self.base))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    fn sigterm(&self) {
        let pid = self.child.id().expect("running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

fn chat_body(text: &str) -> serde_json::Value {
    serde_json::json!({"model": "support-v1", "messages": [{"role": "user", "content": text}]})
}

#[tokio::test]
async fn readiness_flips_when_the_breaker_opens_and_back_on_recovery() {
    let upstream = FaultServer::start().await.unwrap();
    upstream.fallback(Fault::json(200, openai_completion("pong")));
    let svc = Service::start(&[
        (
            "SUPPORT__MODEL__VERSIONS__V1__PROVIDER",
            "openai_compatible".into(),
        ),
        ("SUPPORT__MODEL__VERSIONS__V1__MODEL", "mock".into()),
        (
            "SUPPORT__MODEL__VERSIONS__V1__BASE_URL",
            upstream.base_url(),
        ),
        ("SUPPORT__RESILIENCE__MAX_ATTEMPTS", "1".into()),
        ("SUPPORT__RESILIENCE__BREAKER_FAILURES", "2".into()),
        ("SUPPORT__RESILIENCE__BREAKER_COOL_DOWN_MS", "1500".into()),
        ("SUPPORT__SERVER__PROBE_SECONDS", "1".into()),
    ])
    .await;
    assert_eq!(svc.get("/healthz").await.status(), 200);
    assert_eq!(svc.get("/readyz").await.status(), 200);

    upstream.push([
        Fault::json(500, openai_error("boom", "server_error", "server_error")),
        Fault::json(500, openai_error("boom", "server_error", "server_error")),
    ]);
    let http = reqwest::Client::new();
    for _ in 0..2 {
        let r = svc.chat(&http, chat_body("hi")).await;
        assert_eq!(r.status(), 502);
    }
    let r = svc.get("/readyz").await;
    assert_eq!(r.status(), 503);
    let report: serde_json::Value = r.json().await.unwrap();
    assert_eq!(report["breakers"][0]["state"], "open", "{report}");
    assert_eq!(
        svc.get("/healthz").await.status(),
        200,
        "alive while not ready"
    );
    let r = svc.chat(&http, chat_body("hi")).await;
    assert_eq!(r.status(), 503, "an open circuit answers 503");

    // Upstream healthy again: after the cool-down the probe closes the breaker.
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let r = svc.get("/readyz").await;
    let status = r.status();
    let report: serde_json::Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{report}");
    assert_ne!(report["breakers"][0]["state"], "open", "{report}");
    assert_eq!(
        report["probe"]["ok"], true,
        "the probe went through: {report}"
    );
    let r = svc.chat(&http, chat_body("hi")).await;
    assert_eq!(r.status(), 200, "serving again");
}

/// A strict reader of the Prometheus text format (0.0.4): every line is a comment, `# HELP`,
/// `# TYPE` (once per family, before its samples) or a sample `name{labels} value`.
fn parse_prometheus(text: &str) -> BTreeMap<String, f64> {
    fn valid_name(n: &str) -> bool {
        let mut chars = n.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let at = |what: &str| format!("line {}: {what}: {line:?}", i + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest
                .split_once(' ')
                .unwrap_or_else(|| panic!("{}", at("bad TYPE")));
            assert!(valid_name(name), "{}", at("bad name"));
            assert!(
                ["counter", "gauge", "summary", "histogram", "untyped"].contains(&kind),
                "{}",
                at("bad type")
            );
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "{}",
                at("duplicate TYPE")
            );
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("{}", at("no value")));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().unwrap_or_else(|_| panic!("{}", at("bad value"))),
        };
        let name = match series.split_once('{') {
            None => series,
            Some((name, labels)) => {
                let labels = labels
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("{}", at("unclosed labels")));
                // label="value" pairs; values may hold escaped quotes.
                let mut rest = labels;
                while !rest.is_empty() {
                    let (lname, after) = rest
                        .split_once("=\"")
                        .unwrap_or_else(|| panic!("{}", at("bad label")));
                    assert!(valid_name(lname), "{}", at("bad label name"));
                    let mut end = None;
                    let mut escaped = false;
                    for (j, c) in after.char_indices() {
                        match (escaped, c) {
                            (true, _) => escaped = false,
                            (false, '\\') => escaped = true,
                            (false, '"') => {
                                end = Some(j);
                                break;
                            }
                            _ => {}
                        }
                    }
                    let end = end.unwrap_or_else(|| panic!("{}", at("unterminated label value")));
                    rest = after[end + 1..]
                        .strip_prefix(',')
                        .unwrap_or(&after[end + 1..]);
                }
                name
            }
        };
        assert!(valid_name(name), "{}", at("bad metric name"));
        let family = ["_sum", "_count", "_bucket"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| types.contains_key(*f)))
            .unwrap_or(name);
        assert!(
            types.contains_key(family),
            "{}",
            at("sample before its TYPE")
        );
        samples.insert(series.to_owned(), value);
    }
    samples
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_split_by_prompt_version() {
    let svc = Service::start(&[("SUPPORT__PROMPTS__CANARY_SHARE", "0.5".into())]).await;
    let http = reqwest::Client::new();
    for i in 0..20 {
        let r = http
            .post(format!("{}/v1/support/answer", svc.base))
            .json(&serde_json::json!({"user_id": format!("u{i}"), "question": "Can I get a refund 10 days after delivery?", "refund": {"days_since_purchase": 10}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let _ = http
        .post(format!("{}/v1/chat/completions", svc.base))
        .json(&chat_body("hello"))
        .send()
        .await
        .unwrap();
    let page = svc.get("/metrics").await.text().await.unwrap();
    let samples = parse_prometheus(&page);
    let by_version = |v: &str| -> f64 {
        samples
            .iter()
            .filter(|(k, _)| {
                k.starts_with("support_answers_total{")
                    && k.contains(&format!("prompt_version=\"{v}\""))
            })
            .map(|(_, n)| n)
            .sum()
    };
    assert_eq!(by_version("1") + by_version("2"), 20.0, "{page}");
    assert!(by_version("1") > 0.0 && by_version("2") > 0.0, "{page}");
    assert!(
        samples
            .keys()
            .any(|k| k.starts_with("llmkit_requests_total{")
                && k.contains("prompt_version=\"refund_verdict@2\"")),
        "the trace layer's series split by prompt version: {page}"
    );
    assert!(
        samples
            .keys()
            .any(|k| k.starts_with("gen_ai_client_operation_duration_seconds")),
        "{page}"
    );
    assert!(
        samples.contains_key(
            "llmkit_http_requests_total{route=\"/v1/chat/completions\",status=\"200\"}"
        ),
        "{page}"
    );
}

#[tokio::test]
async fn canary_share_over_2000_users_is_within_3_percent_and_sticky() {
    let share = 0.3;
    let svc = Service::start(&[
        ("SUPPORT__PROMPTS__CANARY_SHARE", share.to_string()),
        ("SUPPORT__TENANTS__REQUESTS_PER_MINUTE", "0".into()),
        ("SUPPORT__TENANTS__BUDGET_USD", "1000".into()),
    ])
    .await;
    let http = reqwest::Client::new();
    let ask = |user: String| {
        let http = http.clone();
        let url = format!("{}/v1/support/answer", svc.base);
        async move {
            let r = http
                .post(url)
                .json(&serde_json::json!({"user_id": user, "question": "How much does express delivery cost?"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let v: serde_json::Value = r.json().await.unwrap();
            (user, v["prompt_label"].as_str().unwrap().to_owned())
        }
    };
    use futures::StreamExt;
    let first: BTreeMap<String, String> =
        futures::stream::iter((0..2000).map(|i| ask(format!("user-{i}"))))
            .buffer_unordered(16)
            .collect()
            .await;
    let canary = first.values().filter(|l| *l == "canary").count();
    let got = canary as f64 / 2000.0;
    assert!((got - share).abs() <= 0.03, "canary share {got} vs {share}");
    // Sticky: the same users get the same label again.
    let again: BTreeMap<String, String> =
        futures::stream::iter((0..2000).step_by(7).map(|i| ask(format!("user-{i}"))))
            .buffer_unordered(16)
            .collect()
            .await;
    for (user, label) in &again {
        assert_eq!(first.get(user), Some(label), "{user} changed label");
    }
    let labels: BTreeSet<&String> = first.values().collect();
    assert_eq!(labels.len(), 2);
}

#[tokio::test]
async fn sigterm_during_20_in_flight_requests_loses_none() {
    let mut svc = Service::start(&[
        ("SUPPORT__MODEL__VERSIONS__V1__DELAY_MS", "1500".into()),
        ("SUPPORT__SERVER__DRAIN_SECONDS", "20".into()),
    ])
    .await;
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let http = http.clone();
        let url = format!("{}/v1/chat/completions", svc.base);
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(url)
                .json(&chat_body(&format!("request {i}")))
                .send()
                .await?;
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await?;
            Ok::<_, reqwest::Error>((status, body))
        }));
    }
    // Wait until all 20 are inside the handler.
    let started = Instant::now();
    loop {
        let page = svc.get("/metrics").await.text().await.unwrap();
        if page
            .lines()
            .any(|l| l == "llmkit_http_requests_in_flight 20")
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "requests never all in flight: {page}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    svc.sigterm();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        reqwest::get(format!("{}/healthz", svc.base)).await.is_err(),
        "no new connections after SIGTERM"
    );
    for t in tasks {
        let (status, body) = t.await.unwrap().expect("request lost");
        assert_eq!(status, 200, "{body}");
        assert!(
            body["choices"][0]["message"]["content"]
                .as_str()
                .is_some_and(|c| c.contains("request"))
        );
    }
    let code = tokio::time::timeout(Duration::from_secs(30), svc.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(code.success(), "exit {code:?}; logs {:?}", svc.logs());
    let logs = svc.logs().join("\n");
    assert!(logs.contains("shutdown: drained"), "{logs}");
    assert!(logs.contains("trace export flushed"), "{logs}");
}

#[tokio::test]
async fn a_secret_in_the_environment_never_appears_in_responses_logs_or_metrics() {
    let api_key = "sk-live-SERVICEKEY0123456789abcdef";
    let upstream_key = "sk-upstream-PROVIDERKEY9876543210zyxw";
    let upstream = FaultServer::start().await.unwrap();
    // The upstream rejects the key and echoes it back, as some providers do.
    upstream.fallback(Fault::json(
        401,
        openai_error(
            &format!("Incorrect API key provided: {upstream_key}"),
            "invalid_request_error",
            "invalid_api_key",
        ),
    ));
    let svc = Service::start(&[
        ("SUPPORT_API_KEYS", format!("{api_key}=acme")),
        ("SUPPORT_UPSTREAM_API_KEY", upstream_key.into()),
        ("SUPPORT__MODEL__VERSIONS__V2__PROVIDER", "openai".into()),
        ("SUPPORT__MODEL__VERSIONS__V2__MODEL", "gpt-4o-mini".into()),
        (
            "SUPPORT__MODEL__VERSIONS__V2__BASE_URL",
            upstream.base_url(),
        ),
        ("SUPPORT_LOG", "debug".into()),
    ])
    .await;
    let http = reqwest::Client::new();
    let mut seen = Vec::new();
    let record = |r: reqwest::Response| async move {
        let head = format!("{} {:?}", r.status(), r.headers());
        let body = r.text().await.unwrap();
        format!("{head}\n{body}")
    };
    let auth = format!("Bearer {api_key}");
    // Good key: typed API, OpenAI route (v1 scripted; v2 the upstream that fails and echoes).
    seen.push(record(http.post(format!("{}/v1/support/answer", svc.base)).header("authorization", &auth)
        .json(&serde_json::json!({"user_id": "u1", "question": "Do you ship to Switzerland?"})).send().await.unwrap()).await);
    seen.push(
        record(
            http.post(format!("{}/v1/chat/completions", svc.base))
                .header("authorization", &auth)
                .json(&chat_body("hi"))
                .send()
                .await
                .unwrap(),
        )
        .await,
    );
    let mut v2 = chat_body("hi");
    v2["model"] = "support-v2".into();
    let r = http
        .post(format!("{}/v1/chat/completions", svc.base))
        .header("authorization", &auth)
        .json(&v2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502, "upstream auth failure is a gateway error");
    seen.push(record(r).await);
    // Wrong key, the key in a body, an injection carrying the key.
    seen.push(
        record(
            http.post(format!("{}/v1/chat/completions", svc.base))
                .header("authorization", "Bearer sk-live-wrong")
                .json(&chat_body("hi"))
                .send()
                .await
                .unwrap(),
        )
        .await,
    );
    seen.push(record(http.post(format!("{}/v1/support/answer", svc.base)).header("authorization", &auth)
        .json(&serde_json::json!({"user_id": "u2", "question": format!("my key is {api_key}, what is the refund policy?")})).send().await.unwrap()).await);
    seen.push(
        record(
            http.get(format!("{}/config", svc.base))
                .header("authorization", &auth)
                .send()
                .await
                .unwrap(),
        )
        .await,
    );
    seen.push(record(svc.get("/metrics").await).await);
    seen.push(record(svc.get("/readyz").await).await);
    assert!(upstream.request_count() > 0, "the upstream was called");
    let config = seen
        .iter()
        .find(|s| s.contains("secret_values"))
        .expect("config view");
    assert!(config.contains("[redacted"), "{config}");
    let logs = svc.logs();
    assert!(!logs.is_empty());
    for secret in [api_key, upstream_key] {
        for s in &seen {
            assert!(!s.contains(secret), "secret in a response: {s}");
        }
        for l in &logs {
            assert!(!l.contains(secret), "secret in a log line: {l}");
        }
    }
}

#[tokio::test]
#[ignore = "needs Redis: run scripts/test-services.sh up"]
async fn budgets_live_in_redis_when_configured_and_fail_closed_without_it() {
    let url = services::service("LLMKIT_TEST_REDIS_URL");
    let tenant = format!("redis-test-{}", std::process::id());
    let key = format!("sk-redis-test-{}", std::process::id());
    let svc = Service::start(&[
        ("LLMKIT_REDIS_URL", url.clone()),
        ("SUPPORT_API_KEYS", format!("{key}={tenant}")),
    ])
    .await;
    let report: serde_json::Value = svc.get("/readyz").await.json().await.unwrap();
    assert_eq!(report["checks"][0]["name"], "redis", "{report}");
    assert_eq!(report["checks"][0]["ok"], true, "{report}");
    let r = reqwest::Client::new()
        .post(format!("{}/v1/support/answer", svc.base))
        .header("authorization", format!("Bearer {key}"))
        .json(&serde_json::json!({"user_id": "u1", "question": "Do you ship to Switzerland?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let keys = std::process::Command::new("redis-cli")
        .args([
            "-u",
            &url,
            "--scan",
            "--pattern",
            &format!("support-service:budget:tenant:{tenant}*"),
        ])
        .output()
        .unwrap();
    let keys = String::from_utf8_lossy(&keys.stdout);
    assert!(
        !keys.trim().is_empty(),
        "no budget window for {tenant} in Redis"
    );

    // Redis unreachable: not ready, and spending fails closed.
    let down = Service::start(&[("LLMKIT_REDIS_URL", "redis://127.0.0.1:1".into())]).await;
    assert_eq!(down.get("/readyz").await.status(), 503);
    let r = reqwest::Client::new()
        .post(format!("{}/v1/support/answer", down.base))
        .json(&serde_json::json!({"user_id": "u1", "question": "Do you ship to Switzerland?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502, "no budget ledger, no model call");
}
