//! The replay behind `examples/cost.rs`, shared with `tests/examples_output.rs` (included there
//! with `#[path]`) so the numbers the example prints are the numbers the test asserts.
//!
//! Every configuration runs the same 1,000 requests through llmkit layers in front of scripted
//! stand-ins named after real models (`gpt-4.1`, `gpt-4.1-mini`), priced with the bundled price
//! table, with provider prompt caching applied by `llmkit::core::cost::caching` (minimum
//! prefix, 128-token steps, lifetime) on a simulated clock, and every answer scored by
//! llmkit-eval, so a saving that costs quality shows up in the same row.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use llmkit::core::batch::{BatchItem, LocalBatchLane, PollPolicy, run_batch};
use llmkit::core::cache::CacheLayer;
use llmkit::core::cost::caching::{CacheEvent, PromptCacheSimulator, Retention, caching_rules};
use llmkit::core::cost::{PriceTable, PricingMode};
// Poison-tolerant: a panicked call cannot leave these counters half-written.
use llmkit::core::route::{FnClassifier, Router};
use llmkit::core::sync::lock;
use llmkit::core::{
    ChatModel, ChatRequest, ChatResponse, Decimal, Message, ModelInfo, Pipeline, Reply, Result,
    ScriptedModel, async_trait, estimate_tokens,
};
use llmkit::eval::runner::{TargetId, target_fn};
use llmkit::eval::{Case, Dataset, Runner, TargetOutput, assertions};

/// The strong and the cheap model: names the bundled price table knows.
pub const STRONG: &str = "gpt-4.1";
/// See [`STRONG`].
pub const CHEAP: &str = "gpt-4.1-mini";
const PROVIDER: &str = "openai";

/// Number of requests in the workload.
pub const REQUESTS: usize = 1_000;

/// One configuration's result.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Configuration name.
    pub name: &'static str,
    /// Total spend, priced with the bundled table.
    pub total_usd: Decimal,
    /// Share of answers that passed the quality evaluator.
    pub pass_rate: f64,
    /// Replies rejected by the escalation check and re-asked on the strong model.
    pub escalations: u64,
    /// Requests served by the response cache.
    pub cache_hits: u64,
    /// Prompt tokens the provider would serve from its prompt cache.
    pub prompt_cached_tokens: u64,
    /// Calls whose shared prefix was written to the provider cache (first use or expired).
    pub prompt_cache_writes: u64,
    /// Requests sent through the batch lane.
    pub batched: usize,
}

#[derive(Clone, Copy)]
struct Levers {
    routing: bool,
    escalation: bool,
    response_cache: bool,
    prompt_cache_and_batch: bool,
}

/// The configurations, from no levers to all of them.
const CONFIGS: [(&str, Levers); 5] = [
    (
        "strong model only",
        Levers {
            routing: false,
            escalation: false,
            response_cache: false,
            prompt_cache_and_batch: false,
        },
    ),
    (
        "routing, no answer check",
        Levers {
            routing: true,
            escalation: false,
            response_cache: false,
            prompt_cache_and_batch: false,
        },
    ),
    (
        "routing + escalation",
        Levers {
            routing: true,
            escalation: true,
            response_cache: false,
            prompt_cache_and_batch: false,
        },
    ),
    (
        "+ response cache",
        Levers {
            routing: true,
            escalation: true,
            response_cache: true,
            prompt_cache_and_batch: false,
        },
    ),
    (
        "+ prompt caching + batch lane",
        Levers {
            routing: true,
            escalation: true,
            response_cache: true,
            prompt_cache_and_batch: true,
        },
    ),
];

/// The shared system prompt: a stable prefix of about 1,300 tokens, above OpenAI's 1,024-token
/// caching minimum.
pub fn system_prompt() -> String {
    format!(
        "You are the support assistant of Acme. Answer as JSON {{\"answer\": ..., \"confidence\": 0..1}}. Policy: {}",
        "Refunds are accepted within 30 days of delivery. ".repeat(110)
    )
}

/// The workload as an eval dataset: 70% easy questions (every fifth repeats an earlier one word
/// for word), 20% hard disputes (half of them phrased so the cheap difficulty rule misses
/// them), 10% nightly bulk summaries. `must_mention` is what a correct answer contains.
pub fn dataset() -> Result<Dataset> {
    let cases = (0..REQUESTS)
        .map(|i| {
            let (kind, question, must) = match i % 10 {
                0..=6 => {
                    let n = if i % 5 == 0 { i % 50 } else { i };
                    ("easy", format!("Where is my order #{n}?"), "tracking")
                }
                7 => (
                    "hard",
                    format!("Customer {i} disputes three charges across two invoices; what now?"),
                    "resolution plan",
                ),
                8 => (
                    "hard",
                    format!("Customer {i} was billed twice and refunded once; the second invoice is wrong too. What now?"),
                    "resolution plan",
                ),
                _ => (
                    "bulk",
                    format!("Summarise ticket {i}: {}", "ticket text ".repeat(300)),
                    "summary",
                ),
            };
            let mut case = Case::new(
                format!("q{i:04}"),
                serde_json::json!({"kind": kind, "question": question}),
            );
            case.tags = vec![kind.to_owned()];
            case.metadata
                .insert("must_mention".into(), serde_json::json!([must]));
            case
        })
        .collect();
    Dataset::from_cases("support-traffic", cases).map_err(llmkit::core::Error::from)
}

/// The strong model answers everything well; the cheap one answers easy questions and
/// summaries well but gives a low-confidence non-answer to any dispute.
fn scripted(model: &str) -> ScriptedModel {
    let strong = model == STRONG;
    ScriptedModel::builder()
        .provider(PROVIDER)
        .model(model)
        .fallback(Reply::dynamic(move |req: &ChatRequest| {
            let q = req.messages.last().map(|m| m.text()).unwrap_or_default();
            let (answer, confidence) = if q.starts_with("Summarise") {
                ("summary: customer asks about a late parcel", 0.9)
            } else if q.starts_with("Where is my order") {
                ("Your tracking link is in the shipping e-mail.", 0.9)
            } else if strong {
                ("resolution plan: void invoice 2, refund the duplicate charge, confirm by e-mail", 0.85)
            } else {
                ("Please contact support.", 0.35)
            };
            Reply::text(serde_json::json!({"answer": answer, "confidence": confidence}).to_string())
        }))
        .build()
}

/// The escalation check: the reply must be JSON with a confidence of at least 0.7.
pub fn accept(resp: &ChatResponse) -> bool {
    serde_json::from_str::<serde_json::Value>(&resp.text())
        .ok()
        .and_then(|v| v.get("confidence")?.as_f64())
        .is_some_and(|c| c >= 0.7)
}

/// A stand-in for the provider: answers from the script, lets the provider's prompt cache act on
/// the shared system prompt (when on), and prices the reply with the bundled table.
struct StandIn {
    inner: ScriptedModel,
    prices: Arc<PriceTable>,
    mode: PricingMode,
    prompt_cache: Option<Arc<Mutex<PromptCacheSimulator>>>,
    clock: Arc<AtomicU64>,
    stats: Arc<Mutex<Stats>>,
}

#[derive(Default)]
struct Stats {
    cached_tokens: u64,
    writes: u64,
}

#[async_trait]
impl ChatModel for StandIn {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let prefix: u64 = request
            .messages
            .iter()
            .take_while(|m| m.role == llmkit::core::Role::System)
            .map(|m| estimate_tokens(&m.text()))
            .sum();
        let mut resp = self.inner.chat(request).await?;
        if let Some(sim) = &self.prompt_cache {
            let at = Duration::from_secs(self.clock.load(Ordering::Relaxed));
            let event = lock(sim).apply(
                &resp.provider,
                &resp.model,
                "support-system@1",
                prefix,
                at,
                &mut resp.usage,
            );
            let mut stats = lock(&self.stats);
            match event {
                CacheEvent::Hit { tokens } => stats.cached_tokens += tokens,
                CacheEvent::Written { .. } => stats.writes += 1,
                _ => {}
            }
        }
        resp.cost = self
            .prices
            .cost_with_mode(&resp.provider, &resp.model, &resp.usage, self.mode);
        Ok(resp)
    }
}

fn request(system: &str, question: &str) -> ChatRequest {
    ChatRequest::new(vec![
        Message::system(system).cacheable(),
        Message::user(question),
    ])
    .with_temperature(0.0)
    .with_max_tokens(400)
}

/// Seconds since the start of the replay at which request `i` arrives: one every 30 s, with a
/// 20-minute lull before every 100th, so cached prefixes expire now and then as in real traffic.
fn arrival(i: usize) -> u64 {
    (i as u64) * 30 + (i as u64 / 100) * 20 * 60
}

async fn run_config(name: &'static str, levers: Levers, dataset: &Dataset) -> Result<Outcome> {
    let prices = PriceTable::bundled();
    let clock = Arc::new(AtomicU64::new(0));
    let stats = Arc::new(Mutex::new(Stats::default()));
    let sim = levers
        .prompt_cache_and_batch
        .then(|| Arc::new(Mutex::new(PromptCacheSimulator::new(Retention::Default))));
    let stand_in = |model: &str, mode: PricingMode| -> Arc<dyn ChatModel> {
        Arc::new(StandIn {
            inner: scripted(model),
            prices: prices.clone(),
            mode,
            prompt_cache: sim.clone(),
            clock: clock.clone(),
            stats: stats.clone(),
        })
    };
    let strong = stand_in(STRONG, PricingMode::Interactive);
    let answering: Arc<dyn ChatModel> = if levers.routing {
        let mut router = Router::builder("support")
            .route("strong", strong.clone())
            .route("cheap", stand_in(CHEAP, PricingMode::Interactive))
            // A cheap difficulty rule: long texts and the word "disputes" need the strong model.
            // It misses disputes phrased otherwise; the escalation check catches those.
            .classifier(Arc::new(FnClassifier(|r: &ChatRequest| {
                let q = r.messages.last().map(|m| m.text()).unwrap_or_default();
                if q.contains("disputes") {
                    "strong"
                } else {
                    "cheap"
                }
                .into()
            })))
            .default_route("cheap");
        if levers.escalation {
            router = router.escalate("cheap", "strong", accept);
        }
        Arc::new(router.build()?)
    } else {
        strong
    };
    let model = if levers.response_cache {
        Pipeline::builder()
            .layer(CacheLayer::new())
            .build(answering)
    } else {
        Pipeline::builder().build(answering)
    };

    let system = system_prompt();
    // The nightly bulk job goes through a batch lane, priced at the table's batch rates as
    // `llmkit::providers::batch::OpenAiBatchLane` prices its results.
    let mut batched: HashMap<String, ChatResponse> = HashMap::new();
    if levers.prompt_cache_and_batch {
        let items: Vec<BatchItem> = dataset
            .cases()
            .iter()
            .filter(|c| c.tags.iter().any(|t| t == "bulk"))
            .map(|c| BatchItem::new(c.id.clone(), request(&system, question(c))))
            .collect();
        let lane = LocalBatchLane::new(stand_in(CHEAP, PricingMode::Batch), 8);
        let poll = PollPolicy {
            initial: Duration::from_millis(2),
            ..Default::default()
        };
        let report = run_batch(&lane, items, poll).await?;
        batched = report
            .succeeded()
            .map(|(id, r)| (id.clone(), r.clone()))
            .collect();
    }
    let batched = Arc::new(batched);
    let index: HashMap<String, usize> = dataset
        .cases()
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.clone(), i))
        .collect();
    let index = Arc::new(index);
    let escalations = Arc::new(AtomicU64::new(0));
    let cache_hits = Arc::new(AtomicU64::new(0));
    let target = {
        let (model, clock, batched) = (model.clone(), clock.clone(), batched.clone());
        let (escalations, cache_hits) = (escalations.clone(), cache_hits.clone());
        target_fn(TargetId::new("support@1", name), move |case: Case| {
            let (model, clock, batched, index) =
                (model.clone(), clock.clone(), batched.clone(), index.clone());
            let (escalations, cache_hits) = (escalations.clone(), cache_hits.clone());
            let id = case.id.clone();
            let req = request(&system_prompt(), question(&case));
            async move {
                if let Some(resp) = batched.get(&id) {
                    return Ok(TargetOutput::from_response(resp));
                }
                clock.store(
                    arrival(index.get(&id).copied().unwrap_or(0)),
                    Ordering::Relaxed,
                );
                let resp = model.chat(req).await?;
                if resp.trail.has("router", "escalated") {
                    escalations.fetch_add(1, Ordering::Relaxed);
                }
                if resp.trail.has("cache", "hit") {
                    cache_hits.fetch_add(1, Ordering::Relaxed);
                }
                Ok(TargetOutput::from_response(&resp))
            }
        })
    };
    // One case at a time, in arrival order, so caches see the traffic as it would arrive.
    let run = Runner::new()
        .concurrency(1)
        .evaluator(assertions::contains_metadata("must_mention"))
        .run(name, dataset, &*target)
        .await?;
    let stats = lock(&stats);
    Ok(Outcome {
        name,
        total_usd: run.summary.cost_usd,
        pass_rate: run.summary.pass_rate,
        escalations: escalations.load(Ordering::Relaxed),
        cache_hits: cache_hits.load(Ordering::Relaxed),
        prompt_cached_tokens: stats.cached_tokens,
        prompt_cache_writes: stats.writes,
        batched: batched.len(),
    })
}

fn question(case: &Case) -> &str {
    case.inputs
        .get("question")
        .and_then(|q| q.as_str())
        .unwrap_or_default()
}

/// Runs every configuration and returns their outcomes, cheapest lever last.
pub async fn replay() -> Result<Vec<Outcome>> {
    let dataset = dataset()?;
    let mut out = Vec::new();
    for (name, levers) in CONFIGS {
        out.push(run_config(name, levers, &dataset).await?);
    }
    Ok(out)
}

/// One row of the prompt-caching table the example prints.
#[derive(Debug, Clone)]
pub struct CachingRow {
    /// `provider/model`.
    pub model: String,
    /// The provider's minimum cacheable prefix for this model (0: no prompt caching).
    pub min_prefix: u64,
    /// Tokens cached of a 750-token prefix.
    pub cached_of_750: u64,
    /// Tokens cached of the replay's shared system prompt.
    pub cached_of_shared: u64,
    /// How long an unused prefix stays cached, in seconds.
    pub lifetime_secs: u64,
    /// Cache-write price as a multiple of the input price (`None`: no write premium).
    pub write_premium: Option<Decimal>,
}

/// The prompt-caching rules for the shared prefix and for a 750-token one, per provider and
/// model, as printed by the example.
pub fn caching_table() -> Vec<CachingRow> {
    let prefix = estimate_tokens(&system_prompt());
    [
        ("openai", "gpt-4.1"),
        ("anthropic", "claude-sonnet-4-5"),
        ("anthropic", "claude-haiku-4-5"),
        ("gcp.gemini", "gemini-2.5-flash"),
    ]
    .into_iter()
    .map(|(p, m)| {
        let rules = caching_rules(p, m, Retention::Default);
        let cached = |n: u64| rules.as_ref().map_or(0, |r| r.cacheable_prefix(n));
        CachingRow {
            model: format!("{p}/{m}"),
            min_prefix: rules.as_ref().map_or(0, |r| r.min_prefix_tokens),
            cached_of_750: cached(750),
            cached_of_shared: cached(prefix),
            lifetime_secs: rules.as_ref().map_or(0, |r| r.ttl.as_secs()),
            write_premium: rules.as_ref().and_then(|r| r.write_multiplier),
        }
    })
    .collect()
}

/// The example's report, as printed.
pub fn render(outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    let prefix = estimate_tokens(&system_prompt());
    s.push_str(&format!(
        "workload: {REQUESTS} requests (70% easy, 20% disputes, 10% nightly bulk), one shared {prefix}-token system prompt\n"
    ));
    s.push_str(&format!(
        "models: scripted stand-ins for openai/{STRONG} and openai/{CHEAP}, priced with the bundled price table {}\n\n",
        PriceTable::bundled().version()
    ));
    s.push_str("provider prompt caching (llmkit::core::cost::caching):\n");
    s.push_str(&format!(
        "{:<32} {:>10} {:>18} {:>18} {:>9} {:>13}\n",
        "provider/model",
        "min prefix",
        "750-token prefix",
        format!("{prefix}-token prefix"),
        "lifetime",
        "write premium"
    ));
    for r in caching_table() {
        let write = r
            .write_premium
            .map_or_else(|| "none".to_owned(), |m| format!("{m}x input"));
        s.push_str(&format!(
            "{:<32} {:>10} {:>18} {:>18} {:>8}s {write:>13}\n",
            r.model, r.min_prefix, r.cached_of_750, r.cached_of_shared, r.lifetime_secs
        ));
    }
    s.push('\n');
    s.push_str(&format!(
        "{:<32} {:>10} {:>12} {:>9} {:>8} {:>11} {:>10} {:>8}\n",
        "configuration",
        "total USD",
        "USD/request",
        "vs none",
        "quality",
        "escalated",
        "cache hits",
        "batched"
    ));
    // The first configuration is the baseline; with no (or a free) baseline there is no ratio.
    let baseline = outcomes
        .first()
        .map(|o| o.total_usd)
        .filter(|b| !b.is_zero());
    for (i, o) in outcomes.iter().enumerate() {
        let vs = match baseline {
            Some(base) if i > 0 => {
                let change = ((o.total_usd / base - Decimal::ONE) * Decimal::from(100)).round_dp(1);
                // A saving prints as -x%, a configuration that costs more as +x%.
                if change.is_sign_negative() {
                    format!("{change}%")
                } else {
                    format!("+{change}%")
                }
            }
            _ => "baseline".to_owned(),
        };
        s.push_str(&format!(
            "{:<32} {:>10} {:>12} {vs:>9} {:>7.1}% {:>11} {:>10} {:>8}\n",
            o.name,
            o.total_usd.round_dp(4),
            (o.total_usd / Decimal::from(REQUESTS as u64)).round_dp(6),
            o.pass_rate * 100.0,
            o.escalations,
            o.cache_hits,
            o.batched
        ));
    }
    if let Some(last) = outcomes.last() {
        s.push_str(&format!(
            "\nprompt cache in the last configuration: {} prompt tokens read from the cache, prefix written {} times (first use and after each lull longer than the 5-minute lifetime)\n",
            last.prompt_cached_tokens, last.prompt_cache_writes
        ));
    }
    s
}
