//! Cost levers on a 1,000-request workload: no levers, routing, routing + caching, all levers.
//!
//! Run with `cargo run --example cost`. Offline: scripted models stand in for a strong and a
//! cheap model, priced at list prices per million tokens (see `PRICES`). The workload is 70% easy
//! questions, 20% hard ones, 10% a nightly bulk summarisation job, all behind one long shared
//! system prompt, with some exact duplicates. "Prompt caching" is simulated the way providers do
//! it: after the first call, the shared system-prompt prefix is reported as cached input.

use std::sync::Arc;

use llmkit::core::batch::{BatchItem, LocalBatchLane, PollPolicy, run_batch};
use llmkit::core::budget::Pricer;
use llmkit::core::cache::CacheLayer;
use llmkit::core::route::{FnClassifier, Router};
use llmkit::core::{
    ChatModel, ChatRequest, ChatResponse, Cost, Decimal, Message, ModelInfo, Pipeline, Result,
    ScriptedModel, Usage, async_trait, estimate_tokens,
};

/// USD per million tokens: (input, cached input, output). Batch lanes cost half.
const PRICES: [(&str, &str, &str, &str); 2] = [
    ("strong-model", "2.50", "1.25", "10.00"),
    ("cheap-model", "0.15", "0.075", "0.60"),
];

struct ListPrices;

impl Pricer for ListPrices {
    fn price(&self, _provider: &str, model: &str, usage: &Usage) -> Option<Cost> {
        let (_, input, cached, output) = PRICES.iter().find(|p| model.starts_with(p.0))?;
        let d = |s: &str| s.parse::<Decimal>().unwrap_or_default();
        let m = Decimal::from(1_000_000u32);
        let uncached = usage.input_tokens - usage.cached_input_tokens;
        let input_usd = Decimal::from(uncached) * d(input) / m;
        let cached_input_usd = Decimal::from(usage.cached_input_tokens) * d(cached) / m;
        let output_usd = Decimal::from(usage.output_tokens) * d(output) / m;
        let mut total = input_usd + cached_input_usd + output_usd;
        if model.ends_with("@batch") {
            total /= Decimal::from(2);
        }
        Some(Cost {
            total_usd: total,
            input_usd,
            cached_input_usd,
            output_usd,
            price_table: "example-list-prices".into(),
            ..Default::default()
        })
    }
}

/// A priced stand-in for a provider: answers from a script, reports the shared system prompt as
/// cached input when prompt caching is on, and prices every reply.
struct PricedProvider {
    inner: ScriptedModel,
    prompt_caching: bool,
    batch: bool,
}

#[async_trait]
impl ChatModel for PricedProvider {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let system_tokens = request
            .messages
            .iter()
            .filter(|m| m.role == llmkit::core::Role::System)
            .map(|m| estimate_tokens(&m.text()))
            .sum::<u64>();
        let warm = self.inner.call_count() > 0;
        let mut resp = self.inner.chat(request).await?;
        if self.prompt_caching && warm {
            resp.usage.cached_input_tokens = system_tokens.min(resp.usage.input_tokens);
        }
        let priced_as = if self.batch {
            format!("{}@batch", resp.model)
        } else {
            resp.model.clone()
        };
        resp.cost = ListPrices.price(&resp.provider, &priced_as, &resp.usage);
        Ok(resp)
    }
}

fn provider(
    model: &str,
    answer_tokens: usize,
    prompt_caching: bool,
    batch: bool,
) -> Arc<dyn ChatModel> {
    let answer = "word ".repeat(answer_tokens);
    Arc::new(PricedProvider {
        inner: ScriptedModel::builder()
            .model(model)
            .fallback(answer.trim_end().to_owned())
            .build(),
        prompt_caching,
        batch,
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Easy,
    Hard,
    Bulk,
}

/// The workload: deterministic, so every scenario sees the same 1,000 requests.
fn workload(system: &str) -> Vec<(Kind, ChatRequest)> {
    (0..1000u32)
        .map(|i| {
            let kind = match i % 10 {
                0..=6 => Kind::Easy,
                7 | 8 => Kind::Hard,
                _ => Kind::Bulk,
            };
            // Every fifth easy question repeats an earlier one word for word.
            let n = if kind == Kind::Easy && i % 5 == 0 { i % 50 } else { i };
            let user = match kind {
                Kind::Easy => format!("Where is my order #{n}?"),
                Kind::Hard => format!("Customer {n} disputes three charges across two invoices; draft a resolution plan. {}", "context ".repeat(200)),
                Kind::Bulk => format!("Summarise ticket {n}: {}", "ticket text ".repeat(300)),
            };
            let req = ChatRequest::new(vec![Message::system(system).cacheable(), Message::user(user)])
                .with_temperature(0.0)
                .with_max_tokens(400);
            (kind, req)
        })
        .collect()
}

#[derive(Default)]
struct Tally {
    total: Decimal,
    calls: u64,
}

impl Tally {
    fn add(&mut self, resp: &ChatResponse) {
        self.total += resp.cost.as_ref().map_or(Decimal::ZERO, |c| c.total_usd);
        self.calls += 1;
    }
}

async fn scenario(name: &str, routing: bool, caching: bool, all: bool) -> Result<(String, Tally)> {
    let system = format!(
        "You are the support assistant of Acme. Policy: {}",
        "Refunds within 30 days. ".repeat(120)
    );
    let strong = provider("strong-model", 120, all, false);
    let cheap = provider("cheap-model", 60, all, false);
    let answering: Arc<dyn ChatModel> = if routing {
        Arc::new(
            Router::builder("support")
                .route("strong", strong.clone())
                .route("cheap", cheap)
                .classifier(Arc::new(FnClassifier(|r: &ChatRequest| {
                    // A cheap difficulty rule: long or multi-issue questions go to the strong model.
                    if r.text().len() > 4_000 || r.text().contains("disputes") {
                        "strong".into()
                    } else {
                        "cheap".into()
                    }
                })))
                .default_route("cheap")
                .build()?,
        )
    } else {
        strong.clone()
    };
    let model = if caching {
        Pipeline::builder()
            .layer(CacheLayer::new())
            .build(answering)
    } else {
        Pipeline::builder().build(answering)
    };
    let mut tally = Tally::default();
    let mut bulk = Vec::new();
    for (i, (kind, req)) in workload(&system).into_iter().enumerate() {
        if all && kind == Kind::Bulk {
            bulk.push(BatchItem::new(format!("ticket-{i}"), req));
            continue;
        }
        let resp = model.chat(req).await?;
        tally.add(&resp);
    }
    if !bulk.is_empty() {
        // The nightly job goes to the batch lane: same requests, half price, results by id.
        let lane = LocalBatchLane::new(provider("strong-model", 120, true, true), 8);
        let report = run_batch(
            &lane,
            bulk,
            PollPolicy {
                initial: std::time::Duration::from_millis(5),
                ..Default::default()
            },
        )
        .await?;
        for (_, resp) in report.succeeded() {
            tally.add(resp);
        }
    }
    Ok((name.to_owned(), tally))
}

#[tokio::main]
async fn main() -> Result<()> {
    println!(
        "workload: 1,000 requests (70% easy, 20% hard, 10% nightly bulk), one shared ~750-token system prompt"
    );
    println!(
        "models: scripted stand-ins priced at list prices (strong $2.50/$10, cheap $0.15/$0.60 per M tokens)\n"
    );
    let runs = [
        scenario("no levers", false, false, false).await?,
        scenario("routing only", true, false, false).await?,
        scenario("routing + caching", true, true, false).await?,
        scenario("all levers (+ prompt cache, batch)", true, true, true).await?,
    ];
    let baseline = runs[0].1.total;
    println!(
        "{:<38} {:>12} {:>14} {:>10}",
        "scenario", "total USD", "USD/request", "vs none"
    );
    for (name, t) in &runs {
        let per = t.total / Decimal::from(1000u32);
        let saving = if baseline.is_zero() {
            Decimal::ZERO
        } else {
            (Decimal::ONE - t.total / baseline) * Decimal::from(100u32)
        };
        let vs = if *name == runs[0].0 {
            "baseline".to_owned()
        } else {
            format!("-{}%", saving.round_dp(1))
        };
        println!(
            "{name:<38} {:>12} {:>14} {vs:>10}",
            t.total.round_dp(4),
            per.round_dp(6)
        );
    }
    Ok(())
}
