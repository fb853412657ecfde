//! Spend limits: per request, per tenant and per period, enforced before the call.
//!
//! [`BudgetLayer`] estimates a call's cost before sending it (input tokens estimated from the
//! text, output tokens from `max_tokens` or a default, priced by a [`Pricer`]), reserves that
//! amount against every limit that applies, and settles the reservation with the real cost
//! afterwards (or releases it when the call fails). A call that would cross a limit either fails
//! fast with [`ErrorKind::BudgetExceeded`] or is downgraded to a cheaper model, by policy.
//! Reserving before the call keeps concurrent calls from overspending together.
//!
//! **Money fails closed.** The layer prices what will actually be called: the
//! [`candidates`](crate::ChatModel::candidates) of the model it wraps (a router's routes and
//! escalation paths, a fallback's links), reserving for the most expensive one. A candidate the
//! pricer does not know is refused with [`ErrorKind::Config`] naming it, unless
//! [`BudgetLayer::allow_unpriced`] says otherwise; it is never reserved at $0 silently.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use llmkit_core::budget::{BudgetLayer, FlatPricer};
//! use llmkit_core::{ChatModel, ChatRequest, Decimal, ErrorKind, Pipeline, ScriptedModel};
//!
//! // $10 per million input and output tokens, for the example.
//! let pricer = Arc::new(FlatPricer::per_million(Decimal::from(10), Decimal::from(10)));
//! let budget = BudgetLayer::new(pricer)
//!     .per_request_usd(Decimal::new(1, 2)) // one cent
//!     .per_tenant_usd(Decimal::new(2, 2), Duration::from_secs(86_400));
//! let model = Pipeline::builder().layer(budget).build(Arc::new(ScriptedModel::always("ok")));
//! let small = ChatRequest::user("hi").with_max_tokens(100).with_tenant("acme");
//! assert!(model.chat(small).await.is_ok());
//! let huge = ChatRequest::user("x".repeat(40_000)).with_max_tokens(4_000).with_tenant("acme");
//! assert_eq!(model.chat(huge).await.unwrap_err().kind(), ErrorKind::BudgetExceeded);
//! # Ok::<(), llmkit_core::Error>(()) }).unwrap();
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rust_decimal::Decimal;

use crate::error::{Error, ErrorKind, Result};
use crate::layer::Layer;
use crate::model::{Candidate, ChatModel, ChatStream, ModelInfo};
use crate::request::ChatRequest;
use crate::response::{ChatResponse, Cost, Usage};
use crate::scripted::estimate_tokens;

/// Prices token usage for a provider and model. The price table implements it; tests use
/// [`FlatPricer`].
pub trait Pricer: Send + Sync {
    /// The cost of `usage` on `provider`/`model`, or `None` when the model is unknown.
    fn price(&self, provider: &str, model: &str, usage: &Usage) -> Option<Cost>;
}

impl<F> Pricer for F
where
    F: Fn(&str, &str, &Usage) -> Option<Cost> + Send + Sync,
{
    fn price(&self, provider: &str, model: &str, usage: &Usage) -> Option<Cost> {
        self(provider, model, usage)
    }
}

/// One input and one output price for every model: for tests, examples and rough budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlatPricer {
    input_per_million: Decimal,
    output_per_million: Decimal,
}

impl FlatPricer {
    /// Prices in USD per million tokens.
    pub fn per_million(input: Decimal, output: Decimal) -> Self {
        FlatPricer {
            input_per_million: input,
            output_per_million: output,
        }
    }
}

impl Pricer for FlatPricer {
    fn price(&self, _provider: &str, _model: &str, usage: &Usage) -> Option<Cost> {
        let million = Decimal::from(1_000_000u32);
        let input_usd = Decimal::from(usage.input_tokens) * self.input_per_million / million;
        let output_usd = Decimal::from(usage.output_tokens) * self.output_per_million / million;
        Some(Cost {
            total_usd: input_usd + output_usd,
            input_usd,
            output_usd,
            price_table: "flat".into(),
            ..Default::default()
        })
    }
}

/// What to do when a call would cross a limit.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum OverBudget {
    /// Fail fast with [`ErrorKind::BudgetExceeded`] (the default).
    #[default]
    Fail,
    /// Send the call to this cheaper model instead (its estimate must fit, or the call fails).
    Downgrade(Arc<dyn ChatModel>),
}

impl std::fmt::Debug for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OverBudget::Fail => f.write_str("Fail"),
            OverBudget::Downgrade(m) => write!(f, "Downgrade({})", m.info().model),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: tokio::time::Instant,
    spent: Decimal,
}

#[derive(Debug, Default)]
struct Ledger {
    tenants: HashMap<String, Window>,
    global: Option<Window>,
}

/// Builds a budget layer. Defaults: no limits (so a bare layer only accounts), output estimated
/// as `max_tokens` or 1,024 tokens, fail fast when over.
#[must_use]
#[derive(Clone)]
pub struct BudgetLayer {
    pricer: Arc<dyn Pricer>,
    per_request: Option<Decimal>,
    per_tenant: Option<(Decimal, Duration)>,
    global: Option<(Decimal, Duration)>,
    default_output_tokens: u64,
    on_exceed: OverBudget,
    allow_unpriced: bool,
    ledger: Arc<Mutex<Ledger>>,
}

impl std::fmt::Debug for BudgetLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BudgetLayer")
            .field("per_request", &self.per_request)
            .field("per_tenant", &self.per_tenant)
            .field("global", &self.global)
            .field("on_exceed", &self.on_exceed)
            .field("allow_unpriced", &self.allow_unpriced)
            .finish_non_exhaustive()
    }
}

impl BudgetLayer {
    /// A budget priced by `pricer`.
    pub fn new(pricer: Arc<dyn Pricer>) -> Self {
        BudgetLayer {
            pricer,
            per_request: None,
            per_tenant: None,
            global: None,
            default_output_tokens: 1024,
            on_exceed: OverBudget::Fail,
            allow_unpriced: false,
            ledger: Arc::new(Mutex::new(Ledger::default())),
        }
    }

    /// Most a single call may cost (estimated before the call).
    pub fn per_request_usd(mut self, limit: Decimal) -> Self {
        self.per_request = Some(limit);
        self
    }

    /// Most each tenant (`RequestMeta.tenant`; untagged calls share the tenant `""`) may spend
    /// per `period`.
    pub fn per_tenant_usd(mut self, limit: Decimal, period: Duration) -> Self {
        self.per_tenant = Some((limit, period));
        self
    }

    /// Most everything together may spend per `period`.
    pub fn global_usd(mut self, limit: Decimal, period: Duration) -> Self {
        self.global = Some((limit, period));
        self
    }

    /// Output tokens assumed when a request sets no `max_tokens`.
    pub fn default_output_tokens(mut self, n: u64) -> Self {
        self.default_output_tokens = n;
        self
    }

    /// What happens when a call would cross a limit.
    pub fn on_exceed(mut self, action: OverBudget) -> Self {
        self.on_exceed = action;
        self
    }

    /// Admit calls that may reach a model the pricer does not know, counting that model at $0
    /// before the call (default: refuse them with [`ErrorKind::Config`] naming the model).
    ///
    /// Off by default because a $0 estimate reserves nothing, so concurrent calls to an unpriced
    /// model can overspend every limit together. A call that answers with a priced model or a
    /// response carrying its own cost still settles at its real cost.
    pub fn allow_unpriced(mut self, allow: bool) -> Self {
        self.allow_unpriced = allow;
        self
    }

    /// Spend recorded for a tenant in its current period.
    pub fn tenant_spend(&self, tenant: &str) -> Decimal {
        self.lock()
            .tenants
            .get(tenant)
            .map_or(Decimal::ZERO, |w| w.spent)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger> {
        crate::sync::lock(&self.ledger)
    }

    /// The estimated cost of `request` on `info`'s model, or `None` when the pricer does not know
    /// that model.
    pub fn estimate(&self, info: &ModelInfo, request: &ChatRequest) -> Option<Cost> {
        let model = request.model.as_deref().unwrap_or(&info.model);
        self.pricer
            .price(&info.provider, model, &self.estimated_usage(request))
    }

    fn estimated_usage(&self, request: &ChatRequest) -> Usage {
        Usage {
            input_tokens: estimate_tokens(&request.text()),
            output_tokens: request
                .max_tokens
                .map_or(self.default_output_tokens, u64::from),
            ..Default::default()
        }
    }

    /// What `request` may cost on `model` at worst: the most expensive of its
    /// [`candidates`](ChatModel::candidates), each path summed over the models it may bill.
    ///
    /// Fails with [`ErrorKind::Config`] naming the first model the pricer does not know, unless
    /// [`allow_unpriced`](Self::allow_unpriced) is on (then that model counts as $0).
    pub fn worst_case(&self, model: &dyn ChatModel, request: &ChatRequest) -> Result<Decimal> {
        let mut worst = Decimal::ZERO;
        for candidate in model.candidates() {
            let mut path = Decimal::ZERO;
            for info in &candidate.models {
                match self.estimate(info, request) {
                    Some(cost) => path += cost.total_usd,
                    None if self.allow_unpriced => {}
                    None => {
                        let name = request.model.as_deref().unwrap_or(&info.model);
                        return Err(Error::config(format!(
                            "budget cannot price model `{}/{name}`: add it to the price table, \
                             or opt in with BudgetLayer::allow_unpriced(true)",
                            info.provider
                        ))
                        .or_context(&info.provider, name));
                    }
                }
            }
            worst = worst.max(path);
        }
        Ok(worst)
    }

    /// The real cost of a finished call: its own cost, or its usage priced for the model that
    /// answered; `None` when neither is known.
    fn actual(&self, resp: &ChatResponse) -> Option<Decimal> {
        resp.cost.as_ref().map(|c| c.total_usd).or_else(|| {
            self.pricer
                .price(&resp.provider, &resp.model, &resp.usage)
                .map(|c| c.total_usd)
        })
    }

    /// Reserves `amount` for `tenant` against every limit, or says which limit it would cross.
    fn reserve(&self, tenant: &str, amount: Decimal) -> std::result::Result<(), String> {
        if let Some(limit) = self.per_request {
            if amount > limit {
                return Err(format!(
                    "estimated ${} exceeds the per-request limit of ${limit}",
                    amount.round_dp(6)
                ));
            }
        }
        let now = tokio::time::Instant::now();
        let mut ledger = self.lock();
        let fresh = |w: &mut Window, period: Duration| {
            if now.duration_since(w.started) >= period {
                *w = Window {
                    started: now,
                    spent: Decimal::ZERO,
                };
            }
        };
        if let Some((limit, period)) = self.per_tenant {
            let w = ledger.tenants.entry(tenant.to_owned()).or_insert(Window {
                started: now,
                spent: Decimal::ZERO,
            });
            fresh(w, period);
            if w.spent + amount > limit {
                return Err(format!(
                    "tenant `{tenant}` has spent ${} of ${limit} this period; this call needs about ${}",
                    w.spent.round_dp(6),
                    amount.round_dp(6)
                ));
            }
        }
        if let Some((limit, period)) = self.global {
            let w = ledger.global.get_or_insert(Window {
                started: now,
                spent: Decimal::ZERO,
            });
            fresh(w, period);
            if w.spent + amount > limit {
                return Err(format!(
                    "the global budget has ${} of ${limit} spent this period; this call needs about ${}",
                    w.spent.round_dp(6),
                    amount.round_dp(6)
                ));
            }
        }
        // Commit only after every check passed, so a refused call reserves nothing.
        if self.per_tenant.is_some() {
            if let Some(w) = ledger.tenants.get_mut(tenant) {
                w.spent += amount;
            }
        }
        if let Some(w) = ledger.global.as_mut() {
            w.spent += amount;
        }
        Ok(())
    }

    /// Replaces a reservation with the real amount (negative deltas release).
    fn settle(&self, tenant: &str, delta: Decimal) {
        let mut ledger = self.lock();
        if let Some(w) = ledger.tenants.get_mut(tenant) {
            w.spent = (w.spent + delta).max(Decimal::ZERO);
        }
        if let Some(w) = ledger.global.as_mut() {
            w.spent = (w.spent + delta).max(Decimal::ZERO);
        }
    }
}

impl Layer for BudgetLayer {
    fn layer(&self, inner: Arc<dyn ChatModel>) -> Arc<dyn ChatModel> {
        Arc::new(Budgeted {
            inner,
            budget: self.clone(),
        })
    }
}

struct Budgeted {
    inner: Arc<dyn ChatModel>,
    budget: BudgetLayer,
}

impl Budgeted {
    /// Picks the model that fits the budget and reserves its worst-case estimate.
    fn admit(&self, request: &ChatRequest) -> Result<(Arc<dyn ChatModel>, Decimal, bool)> {
        let tenant = request.meta.tenant.as_deref().unwrap_or("");
        let primary = self.budget.worst_case(self.inner.as_ref(), request)?;
        let refusal = match self.budget.reserve(tenant, primary) {
            Ok(()) => return Ok((self.inner.clone(), primary, false)),
            Err(why) => why,
        };
        if let OverBudget::Downgrade(cheaper) = &self.budget.on_exceed {
            let amount = self.budget.worst_case(cheaper.as_ref(), request)?;
            if self.budget.reserve(tenant, amount).is_ok() {
                tracing::info!(reason = %refusal, to = %cheaper.info().model, "llmkit.budget.downgraded");
                return Ok((cheaper.clone(), amount, true));
            }
        }
        let info = self.inner.info();
        Err(Error::new(ErrorKind::BudgetExceeded, refusal).or_context(&info.provider, &info.model))
    }
}

#[async_trait]
impl ChatModel for Budgeted {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    /// The wrapped model's candidates, plus the downgrade target's when one is configured.
    fn candidates(&self) -> Vec<Candidate> {
        let mut all = self.inner.candidates();
        if let OverBudget::Downgrade(cheaper) = &self.budget.on_exceed {
            all.extend(cheaper.candidates());
        }
        all
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let tenant = request.meta.tenant.clone().unwrap_or_default();
        let (model, reserved, downgraded) = self.admit(&request)?;
        match model.chat(request).await {
            Ok(mut resp) => {
                // Unknown real cost: the reservation stands (fail closed).
                let actual = self.budget.actual(&resp).unwrap_or(reserved);
                self.budget.settle(&tenant, actual - reserved);
                if downgraded {
                    resp.trail
                        .push("budget", "downgraded", format!("to {}", resp.model));
                }
                resp.trail.push(
                    "budget",
                    "settled",
                    format!("estimated_usd={} actual_usd={actual}", reserved.round_dp(6)),
                );
                Ok(resp)
            }
            Err(e) => {
                self.budget.settle(&tenant, -reserved);
                Err(e)
            }
        }
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream> {
        let tenant = request.meta.tenant.clone().unwrap_or_default();
        let (model, reserved, _) = self.admit(&request)?;
        let stream = match model.stream(request).await {
            Ok(stream) => stream,
            Err(e) => {
                self.budget.settle(&tenant, -reserved);
                return Err(e);
            }
        };
        // Settle when the stream completes, priced for the model that answered (named by its
        // `Start` event). A stream that failed or was dropped may have been billed for what it
        // produced, so its reservation stands.
        let budget = self.budget.clone();
        let candidates = model.candidates();
        Ok(crate::resilience::observe(stream, move |end| {
            if let crate::resilience::StreamEnd::Completed(usage, Some(answered)) = end {
                let actual = candidates
                    .iter()
                    .flat_map(|c| c.models.iter())
                    .find(|m| m.model == answered)
                    .and_then(|m| budget.pricer.price(&m.provider, &answered, &usage))
                    .map(|c| c.total_usd);
                if let Some(actual) = actual {
                    budget.settle(&tenant, actual - reserved);
                }
            }
        }))
    }
}

impl Pricer for crate::cost::PriceTable {
    fn price(&self, provider: &str, model: &str, usage: &Usage) -> Option<Cost> {
        self.cost(provider, model, usage)
    }
}
