//! Shared setup of the overhead benches: a loopback OpenAI-style server, the three call paths
//! (raw reqwest, provider alone, full recommended stack) and a small closed-loop load driver.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::serve::ListenerExt as _;
use llmkit::core::budget::BudgetLayer;
use llmkit::core::cache::{CacheLayer, CachePolicy};
use llmkit::core::resilience::{
    CircuitBreakerLayer, FallbackLayer, LimitLayer, RetryLayer, TimeoutLayer, target_pipeline,
};
use llmkit::core::telemetry::{CallRecord, ExportQueue, RecordSink, TraceLayer};
use llmkit::core::{
    ChatModel, ChatRequest, ChatResponse, Decimal, FinishReason, Message, ModelInfo, Pipeline,
    PriceTable, Usage, async_trait,
};
use llmkit::guard::GuardPipeline;
use llmkit::guard::InjectionGuard;
use llmkit::guard::input::{
    charset::CharPolicy, pii::PiiGuard, secrets::SecretGuard, size::SizeLimit,
};
use llmkit::guard::output::canary::{Canary, CanaryGuard};
use llmkit::providers::openai::OpenAiModel;
use llmkit::providers::{ProviderConfig, ProviderKind};

/// The canned completion the loopback server answers with (a real OpenAI response shape).
pub const CANNED: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1764300000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Refunds are accepted within 30 days of delivery.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":24,"completion_tokens":11,"total_tokens":35,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}},"system_fingerprint":"fp_bench"}"#;

/// The model every path asks for.
pub const MODEL: &str = "gpt-4o-mini";

/// Runs the server on `listener` until the process ends. `TCP_NODELAY` on accepted sockets:
/// without it a reused keep-alive connection shows a flat ~40 ms per request.
pub async fn serve(listener: tokio::net::TcpListener) {
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(|body: axum::body::Bytes| async move {
            std::hint::black_box(body);
            ([("content-type", "application/json")], CANNED)
        }),
    );
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let _ = axum::serve(listener, app).await;
}

/// Starts the server on its own thread and current-thread runtime; returns its address.
pub fn start_server() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("bench-server".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                serve(listener).await;
            });
        })
        .unwrap();
    rx.recv().unwrap()
}

/// The client runtime: one worker, so client and server each get one of the two cores.
pub fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Distinct prompts, so the full stack's cache always misses (the same text goes to every
/// path, so every path does the same work on the wire).
static SEQ: AtomicU64 = AtomicU64::new(0);

/// The next prompt.
pub fn next_prompt() -> String {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("What is the refund window for order {n}? Please answer in one sentence.")
}

/// One way of sending the request.
#[derive(Clone)]
pub enum Path {
    /// reqwest by hand: build the JSON body, POST, parse the JSON answer.
    Raw {
        /// Same settings as the provider's shared client (pool, `TCP_NODELAY`, no retries).
        client: reqwest::Client,
        /// Full chat completions URL.
        url: String,
    },
    /// An llmkit model (the provider alone or a whole stack).
    Model(Arc<dyn ChatModel>),
}

impl Path {
    /// One call with a fresh prompt; returns the answer's length so nothing is optimised away.
    pub async fn call(&self) -> usize {
        let prompt = next_prompt();
        match self {
            Path::Raw { client, url } => {
                let body = serde_json::json!({
                    "model": MODEL,
                    "messages": [{"role": "user", "content": prompt}],
                });
                let resp = client
                    .post(url)
                    .bearer_auth("sk-bench")
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert!(resp.status().is_success());
                let bytes = resp.bytes().await.unwrap();
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                v["choices"][0]["message"]["content"]
                    .as_str()
                    .map_or(0, str::len)
            }
            Path::Model(m) => m
                .chat(ChatRequest::user(prompt))
                .await
                .unwrap()
                .text()
                .len(),
        }
    }
}

/// The raw reqwest path.
pub fn raw(addr: SocketAddr) -> Path {
    let client = llmkit::providers::http::build_client(&Default::default()).unwrap();
    Path::Raw {
        client,
        url: format!("http://{addr}/v1/chat/completions"),
    }
}

/// The OpenAI provider alone, pointed at the loopback server (provider name `openai`, so the
/// stack's budget and trace layers price it from the bundled table).
pub fn provider(addr: SocketAddr) -> Arc<dyn ChatModel> {
    let config = ProviderConfig::new(ProviderKind::OpenAi, MODEL)
        .with_api_key("sk-bench")
        .with_base_url(format!("http://{addr}/v1"));
    Arc::new(OpenAiModel::from_config(&config).unwrap())
}

/// Discards export records: the bench measures the hand-off, not a disk.
struct Discard;
impl RecordSink for Discard {
    fn write(&self, record: &CallRecord) -> std::io::Result<()> {
        std::hint::black_box(record);
        Ok(())
    }
}

fn guards() -> GuardPipeline {
    GuardPipeline::builder()
        .input(SizeLimit::new())
        .input(CharPolicy::new())
        .input(InjectionGuard::new())
        .input(PiiGuard::new())
        .input(SecretGuard::new())
        .output(SecretGuard::new())
        .output(CanaryGuard::new(Canary::new()))
        .build()
}

fn trace(prices: Arc<PriceTable>) -> TraceLayer {
    TraceLayer::builder()
        .price_table(prices)
        .export(ExportQueue::spawn(Arc::new(Discard), 1 << 16))
        .build()
}

fn budget(prices: Arc<PriceTable>) -> BudgetLayer {
    BudgetLayer::new(prices)
        .per_request_usd(Decimal::ONE)
        .global_usd(Decimal::new(1_000_000_000, 0), Duration::from_secs(3600))
}

fn limit() -> LimitLayer {
    LimitLayer::new()
        .max_concurrency(1024)
        .requests_per_minute(100_000_000)
        .tokens_per_minute(100_000_000_000)
}

/// The full recommended stack around `model`, outermost first: Trace → guards (default input
/// guards; output guards on the way back) → Cache (policy `Always`; prompts differ, so it
/// misses) → Budget → Fallback (one target) → Retry → Breaker → Limit → Timeout → `model`.
pub fn full_stack(model: Arc<dyn ChatModel>) -> Arc<dyn ChatModel> {
    let target = target_pipeline(
        RetryLayer::new(),
        CircuitBreakerLayer::new(),
        Some(limit()),
        TimeoutLayer::new(),
    )
    .build(model);
    let prices = Arc::new(PriceTable::default());
    Pipeline::builder()
        .layer(trace(prices.clone()))
        .layer(guards())
        .layer(CacheLayer::new().policy(CachePolicy::Always))
        .layer(budget(prices))
        .layer(FallbackLayer::new())
        .build(target)
}

/// The layers of [`full_stack`], each alone over `model`, named as in the docs' per-layer
/// table: where the full stack's cost goes.
pub fn each_layer(model: &Arc<dyn ChatModel>) -> Vec<(&'static str, Arc<dyn ChatModel>)> {
    let prices = Arc::new(PriceTable::default());
    let one = |b: Pipeline| b.build(model.clone());
    vec![
        ("pipeline only", one(Pipeline::builder())),
        (
            "trace",
            one(Pipeline::builder().layer(trace(prices.clone()))),
        ),
        ("guards", one(Pipeline::builder().layer(guards()))),
        (
            "cache (miss)",
            one(Pipeline::builder().layer(CacheLayer::new().policy(CachePolicy::Always))),
        ),
        ("budget", one(Pipeline::builder().layer(budget(prices)))),
        (
            "fallback",
            one(Pipeline::builder().layer(FallbackLayer::new())),
        ),
        ("retry", one(Pipeline::builder().layer(RetryLayer::new()))),
        (
            "breaker",
            one(Pipeline::builder().layer(CircuitBreakerLayer::new())),
        ),
        ("limit", one(Pipeline::builder().layer(limit()))),
        (
            "timeout",
            one(Pipeline::builder().layer(TimeoutLayer::new())),
        ),
    ]
}

/// A model that answers instantly and records nothing: what a scripted model costs at its
/// cheapest, so the no-HTTP benches measure llmkit's layers and nothing else.
pub struct InstantModel(pub ModelInfo);

impl InstantModel {
    /// An `openai` / `gpt-4o-mini` stand-in.
    pub fn shared() -> Arc<dyn ChatModel> {
        Arc::new(InstantModel(ModelInfo::new("openai", MODEL)))
    }
}

#[async_trait]
impl ChatModel for InstantModel {
    fn info(&self) -> &ModelInfo {
        &self.0
    }
    async fn chat(&self, _request: ChatRequest) -> llmkit::core::Result<ChatResponse> {
        Ok(ChatResponse {
            message: Message::assistant("Refunds are accepted within 30 days of delivery."),
            finish_reason: FinishReason::Stop,
            usage: Usage {
                input_tokens: 24,
                output_tokens: 11,
                ..Default::default()
            },
            model: "gpt-4o-mini-2024-07-18".into(),
            provider: "openai".into(),
            ..Default::default()
        })
    }
}

/// [`InstantModel`] that first yields to the scheduler `n` times, so a call is polled `n + 1`
/// times and its task is rescheduled `n` times, as a call over HTTP is, without any I/O.
pub struct YieldingModel(pub InstantModel, pub usize);

impl YieldingModel {
    /// An `openai` / `gpt-4o-mini` stand-in that yields `n` times.
    pub fn shared(n: usize) -> Arc<dyn ChatModel> {
        Arc::new(YieldingModel(
            InstantModel(ModelInfo::new("openai", MODEL)),
            n,
        ))
    }
}

#[async_trait]
impl ChatModel for YieldingModel {
    fn info(&self) -> &ModelInfo {
        self.0.info()
    }
    async fn chat(&self, request: ChatRequest) -> llmkit::core::Result<ChatResponse> {
        for _ in 0..self.1 {
            tokio::task::yield_now().await;
        }
        self.0.chat(request).await
    }
}

/// [`InstantModel`] that first makes `n` trivial system calls (`getpid`), as a call over HTTP
/// makes a few (`writev`, `recvfrom`, `epoll_wait`), without any I/O: isolates what entering
/// the kernel does to the speed of the code that runs after it.
pub struct SyscallModel(pub InstantModel, pub usize);

impl SyscallModel {
    /// An `openai` / `gpt-4o-mini` stand-in that makes `n` system calls per call.
    pub fn shared(n: usize) -> Arc<dyn ChatModel> {
        Arc::new(SyscallModel(
            InstantModel(ModelInfo::new("openai", MODEL)),
            n,
        ))
    }
}

#[async_trait]
impl ChatModel for SyscallModel {
    fn info(&self) -> &ModelInfo {
        self.0.info()
    }
    async fn chat(&self, request: ChatRequest) -> llmkit::core::Result<ChatResponse> {
        for _ in 0..self.1 {
            std::hint::black_box(std::process::id());
        }
        self.0.chat(request).await
    }
}

/// How [`WaitingModel`] spends the time before it answers.
#[derive(Clone, Copy)]
pub enum Wait {
    /// Blocks the thread: the core idles, as a client core does while its server answers.
    Sleep(Duration),
    /// Spins: the core stays busy and the caches keep what they held.
    Spin(Duration),
    /// Writes then reads this many bytes of its own buffer, one cache line at a time: the
    /// core stays busy but its private caches are refilled with other data, as hyper, the
    /// kernel's TCP path and the other calls in flight do between the stack's two halves.
    Touch(usize),
}

/// [`InstantModel`] that first waits (see [`Wait`]): tells what idle time or foreign work
/// between calls does to the speed of the code that runs after it.
pub struct WaitingModel {
    inner: InstantModel,
    wait: Wait,
    buffer: std::sync::Mutex<Vec<u8>>,
}

impl WaitingModel {
    /// A stand-in that waits as `wait` says before each answer.
    pub fn shared(wait: Wait) -> Arc<dyn ChatModel> {
        let len = if let Wait::Touch(n) = wait { n } else { 0 };
        Arc::new(WaitingModel {
            inner: InstantModel(ModelInfo::new("openai", MODEL)),
            wait,
            buffer: std::sync::Mutex::new(vec![0; len]),
        })
    }
}

#[async_trait]
impl ChatModel for WaitingModel {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }
    async fn chat(&self, request: ChatRequest) -> llmkit::core::Result<ChatResponse> {
        match self.wait {
            Wait::Sleep(d) => std::thread::sleep(d),
            Wait::Spin(d) => {
                let until = Instant::now() + d;
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
            }
            Wait::Touch(_) => {
                let mut buf = self.buffer.lock().unwrap();
                let mut sum = 0u8;
                for line in buf.chunks_mut(64) {
                    line[0] = line[0].wrapping_add(1);
                    sum = sum.wrapping_add(line[0]);
                }
                std::hint::black_box(sum);
            }
        }
        self.inner.chat(request).await
    }
}

/// Latencies and wall time of one configuration, summed over rounds.
#[derive(Default)]
pub struct Sample {
    /// Per-call latencies.
    pub latencies: Vec<Duration>,
    /// Wall time spent driving load.
    pub elapsed: Duration,
}

impl Sample {
    /// Calls per second.
    pub fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    /// The `q` quantile (0..=1) in microseconds.
    pub fn quantile_us(&mut self, q: f64) -> f64 {
        self.latencies.sort_unstable();
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() - 1) as f64 * q).round() as usize;
        self.latencies[i].as_secs_f64() * 1e6
    }
}

/// Closed-loop load: `concurrency` tasks each send one call after the other for `duration`.
pub async fn drive(path: &Path, concurrency: usize, duration: Duration, into: &mut Sample) {
    let start = Instant::now();
    let stop = start + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(8192);
            while Instant::now() < stop {
                let t = Instant::now();
                std::hint::black_box(path.call().await);
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    for t in tasks {
        into.latencies.extend(t.await.unwrap());
    }
    into.elapsed += start.elapsed();
}

/// Sends `calls` calls split over `concurrency` tasks (for the allocation pass).
pub async fn drive_count(path: &Path, concurrency: usize, calls: usize) {
    let per_task = calls / concurrency;
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_task {
                std::hint::black_box(path.call().await);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}
