//! Spend limits: per request, per tenant and per period, enforced before the call.
//!
//! [`BudgetLayer`] estimates a call's cost before sending it (input tokens counted for the model
//! by [`tokens`](crate::tokens), exact for OpenAI models with the `tiktoken` feature; output tokens from `max_tokens` or a default, priced by a [`Pricer`]), reserves that
//! amount against every limit that applies, and settles the reservation with the real cost
//! afterwards (or releases it when the call fails). A call that would cross a limit either fails
//! fast with [`ErrorKind::BudgetExceeded`] or is downgraded to a cheaper model, by policy.
//! Reserving before the call keeps concurrent calls from overspending together.
//!
//! The spend lives in a [`BudgetLedger`]: [`MemoryBudgetLedger`] (the default) for one process,
//! or a shared one (`llmkit_redis::RedisBudgetLedger`) so N replicas hold one budget. A ledger
//! reserves against every limit in one atomic step, and a reservation carries a lease so a
//! replica that dies mid-call cannot block a tenant forever. A ledger that cannot answer fails
//! the call (money fails closed).
//!
//! **Money fails closed.** The layer prices what will actually be called: the
//! [`candidates`](crate::ChatModel::candidates) of the model it wraps (a router's routes and
//! escalation paths, a fallback's links), reserving for the most expensive one. A candidate the
//! pricer does not know is refused with [`ErrorKind::Config`] naming it, unless
//! [`BudgetLayer::allow_unpriced`] says otherwise; it is never reserved at $0 silently.
//!
//! Embedding models get the same layer ([`Layer::layer_embedding`]): the input tokens of every
//! input are priced for the embedding model, reserved against the same limits and settled with
//! the response's real usage; an embedding model the pricer does not know is refused the same
//! way. [`OverBudget::Downgrade`] names a chat model, so an embedding call over a limit fails.
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
use crate::model::{Candidate, ChatModel, ChatStream, EmbeddingModel, ModelInfo};
use crate::request::ChatRequest;
use crate::response::{ChatResponse, Cost, EmbeddingRequest, EmbeddingResponse, Trail, Usage};
use crate::tokens::TokenCounter;

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

/// One limit a reservation must fit: at most `limit` USD per `period` in `scope`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetLimit {
    /// What the limit counts: `"global"` or `"tenant:<name>"` for [`BudgetLayer`]'s limits.
    pub scope: String,
    /// Most the scope may spend per period.
    pub limit: Decimal,
    /// How long a window lasts; a window starts with the first reservation after the previous
    /// one ended.
    pub period: Duration,
}

/// Money held for one call until it is settled. Made by a [`BudgetLedger`]; the fields a
/// ledger needs to settle it travel with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// Unique per reservation (a shared ledger stores its lease under this id).
    pub id: String,
    /// The amount held.
    pub amount: Decimal,
    /// The scopes it was held in, each with the start of the window it was held in (ledger
    /// specific: milliseconds of the ledger's clock; the memory ledger leaves it 0).
    pub windows: Vec<(String, i64)>,
}

/// Why a ledger refused a reservation: the first limit it would cross.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Index of that limit in the slice passed to [`BudgetLedger::reserve`].
    pub index: usize,
    /// Spent (settled plus reserved) in its current window.
    pub spent: Decimal,
    /// Its limit.
    pub limit: Decimal,
}

/// Where spend is counted. The default is [`MemoryBudgetLedger`] (one process); a shared ledger
/// (Redis) makes N replicas hold one budget.
///
/// Semantics every implementation keeps (the invariants of `shared/DESIGN.md`):
/// - `reserve` is **atomic** over all `limits`: roll each window whose period has passed, then
///   either add `amount` to every scope (each fits: `spent + amount <= limit`) or to none.
/// - a reservation holds for `lease` at most: a holder that dies never settles, and a shared
///   ledger releases its amount when the lease expires (an in-process ledger dies with its
///   holder, so it may ignore the lease).
/// - `settle` replaces the held amount with `actual` (0 releases it) in the window it was held
///   in; a reservation whose lease already expired is charged `actual` afresh.
///
/// Required: all three methods.
#[async_trait]
pub trait BudgetLedger: Send + Sync {
    /// Reserves `amount` in every limit's scope, or returns the first limit it would cross.
    async fn reserve(
        &self,
        limits: &[BudgetLimit],
        amount: Decimal,
        lease: Duration,
    ) -> Result<std::result::Result<Reservation, Refusal>>;
    /// Replaces a reservation by the real cost.
    async fn settle(&self, reservation: &Reservation, actual: Decimal) -> Result<()>;
    /// Spent (settled plus reserved) in `scope`'s current window.
    async fn spent(&self, scope: &str) -> Result<Decimal>;
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: tokio::time::Instant,
    spent: Decimal,
}

/// In-process [`BudgetLedger`]: one window per scope, started by its first reservation, on
/// tokio's clock (so paused-clock tests can roll it). Reservation leases are not needed: the
/// ledger dies with the process holding them.
#[derive(Debug, Default)]
pub struct MemoryBudgetLedger {
    windows: Mutex<HashMap<String, Window>>,
}

impl MemoryBudgetLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl BudgetLedger for MemoryBudgetLedger {
    async fn reserve(
        &self,
        limits: &[BudgetLimit],
        amount: Decimal,
        _lease: Duration,
    ) -> Result<std::result::Result<Reservation, Refusal>> {
        let now = tokio::time::Instant::now();
        let mut windows = crate::sync::lock(&self.windows);
        for (index, l) in limits.iter().enumerate() {
            // Look up before inserting: `entry` takes an owned key, and copying the scope on
            // every call only pays off on its first call (issue 23).
            if !windows.contains_key(&l.scope) {
                windows.insert(
                    l.scope.clone(),
                    Window {
                        started: now,
                        spent: Decimal::ZERO,
                    },
                );
            }
            // Just inserted; were it missing, refuse (money fails closed).
            let Some(w) = windows.get_mut(&l.scope) else {
                return Ok(Err(Refusal {
                    index,
                    spent: Decimal::ZERO,
                    limit: l.limit,
                }));
            };
            if now.duration_since(w.started) >= l.period {
                *w = Window {
                    started: now,
                    spent: Decimal::ZERO,
                };
            }
            if w.spent + amount > l.limit {
                return Ok(Err(Refusal {
                    index,
                    spent: w.spent,
                    limit: l.limit,
                }));
            }
        }
        // Commit only after every check passed, so a refused call reserves nothing.
        for l in limits {
            if let Some(w) = windows.get_mut(&l.scope) {
                w.spent += amount;
            }
        }
        Ok(Ok(Reservation {
            id: String::new(),
            amount,
            windows: limits.iter().map(|l| (l.scope.clone(), 0)).collect(),
        }))
    }

    async fn settle(&self, reservation: &Reservation, actual: Decimal) -> Result<()> {
        let mut windows = crate::sync::lock(&self.windows);
        for (scope, _) in &reservation.windows {
            if let Some(w) = windows.get_mut(scope) {
                w.spent = (w.spent + actual - reservation.amount).max(Decimal::ZERO);
            }
        }
        Ok(())
    }

    async fn spent(&self, scope: &str) -> Result<Decimal> {
        match crate::sync::lock(&self.windows).get(scope) {
            Some(window) => Ok(window.spent),
            // No window: nothing was ever reserved in this scope, so nothing is spent. This is
            // a fact, not a stand-in for an unknown price (admission refuses unpriced models
            // before any ledger is asked).
            None => Ok(Decimal::ZERO),
        }
    }
}

/// The ledger scope of a tenant's limit.
pub fn tenant_scope(tenant: &str) -> String {
    format!("tenant:{tenant}")
}

/// The ledger scope of the global limit.
pub const GLOBAL_SCOPE: &str = "global";

/// Builds a budget layer. Defaults: no limits (so a bare layer only accounts), output estimated
/// as `max_tokens` or 1,024 tokens, fail fast when over, a [`MemoryBudgetLedger`], reservations
/// leased for 10 minutes.
#[must_use]
#[derive(Clone)]
pub struct BudgetLayer {
    pricer: Arc<dyn Pricer>,
    per_request: Option<Decimal>,
    per_tenant: Option<(Decimal, Duration)>,
    /// The global limit as the ledger takes it, built once: every call reserves against it.
    global: Option<BudgetLimit>,
    default_output_tokens: u64,
    on_exceed: OverBudget,
    allow_unpriced: bool,
    ledger: Arc<dyn BudgetLedger>,
    lease: Duration,
}

impl std::fmt::Debug for BudgetLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BudgetLayer")
            .field("per_request", &self.per_request)
            .field("per_tenant", &self.per_tenant)
            .field("global", &self.global.as_ref().map(|g| (g.limit, g.period)))
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
            ledger: Arc::new(MemoryBudgetLedger::new()),
            lease: Duration::from_secs(600),
        }
    }

    /// Counts spend in `ledger` (default: a [`MemoryBudgetLedger`] of this layer and its clones).
    /// A shared ledger makes every replica hold one budget; when it cannot answer, calls fail
    /// (money fails closed).
    pub fn ledger(mut self, ledger: Arc<dyn BudgetLedger>) -> Self {
        self.ledger = ledger;
        self
    }

    /// How long a reservation holds if its call never settles (its process died): default 10
    /// minutes. Keep it above the longest call you allow; a shared ledger then releases it.
    pub fn reservation_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
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
        self.global = Some(BudgetLimit {
            scope: GLOBAL_SCOPE.to_owned(),
            limit,
            period,
        });
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

    /// Spend (settled plus reserved) recorded for a tenant in its current period.
    pub async fn tenant_spend(&self, tenant: &str) -> Result<Decimal> {
        self.ledger.spent(&tenant_scope(tenant)).await
    }

    /// The estimated cost of `request` on `info`'s model, or `None` when the pricer does not know
    /// that model.
    pub fn estimate(&self, info: &ModelInfo, request: &ChatRequest) -> Option<Cost> {
        let model = request.model.as_deref().unwrap_or(&info.model);
        self.pricer
            .price(&info.provider, model, &self.estimated_usage(model, request))
    }

    /// Input tokens counted for `model` ([`TokenCounter::count_chat`]: exact for OpenAI models
    /// with the `tiktoken` feature), output tokens from `max_tokens` or the default.
    fn estimated_usage(&self, model: &str, request: &ChatRequest) -> Usage {
        Usage {
            input_tokens: TokenCounter::for_model(model).count_chat(request),
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
                        return Err(Self::unpriced("model", &info.provider, name));
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
        self.actual_of(resp.cost.as_ref(), &resp.provider, &resp.model, &resp.usage)
    }

    /// A response's own cost, or its usage priced for the model that answered.
    fn actual_of(
        &self,
        cost: Option<&Cost>,
        provider: &str,
        model: &str,
        usage: &Usage,
    ) -> Option<Decimal> {
        cost.map(|c| c.total_usd).or_else(|| {
            self.pricer
                .price(provider, model, usage)
                .map(|c| c.total_usd)
        })
    }

    /// The refusal for a model the pricer does not know (fail closed, never $0).
    fn unpriced(what: &str, provider: &str, model: &str) -> Error {
        Error::config(format!(
            "budget cannot price {what} `{provider}/{model}`: add it to the price table, \
             or opt in with BudgetLayer::allow_unpriced(true)"
        ))
        .or_context(provider, model)
    }

    /// Reserves `amount` for `tenant` against every limit. `Ok(Err(why))` says which limit it
    /// would cross; `Err` is a ledger failure (the call fails: money fails closed).
    async fn reserve(
        &self,
        tenant: &str,
        amount: Decimal,
    ) -> Result<std::result::Result<Reservation, String>> {
        if let Some(limit) = self.per_request
            && amount > limit
        {
            return Ok(Err(format!(
                "estimated ${} exceeds the per-request limit of ${limit}",
                amount.round_dp(6)
            )));
        }
        // Tenant limit first, then the global one (a refusal's index says which). Without a
        // tenant limit the prebuilt global limit is passed as is: no per-call copy (issue 23).
        let with_tenant: Vec<BudgetLimit>;
        let limits: &[BudgetLimit] = match (self.per_tenant, &self.global) {
            (None, None) => &[],
            (None, Some(global)) => std::slice::from_ref(global),
            (Some((limit, period)), global) => {
                let tenant = BudgetLimit {
                    scope: tenant_scope(tenant),
                    limit,
                    period,
                };
                with_tenant = std::iter::once(tenant).chain(global.clone()).collect();
                &with_tenant
            }
        };
        Ok(
            match self.ledger.reserve(limits, amount, self.lease).await? {
                Ok(reservation) => Ok(reservation),
                Err(refusal) => {
                    let spent = refusal.spent.round_dp(6);
                    let limit = refusal.limit;
                    let needs = amount.round_dp(6);
                    let is_tenant = self.per_tenant.is_some() && refusal.index == 0;
                    Err(if is_tenant {
                        format!(
                            "tenant `{tenant}` has spent ${spent} of ${limit} this period; this call needs about ${needs}"
                        )
                    } else {
                        format!(
                            "the global budget has ${spent} of ${limit} spent this period; this call needs about ${needs}"
                        )
                    })
                }
            },
        )
    }

    /// Replaces a reservation with the real amount; a ledger failure is logged (the
    /// reservation then stands until its lease expires).
    async fn settle(&self, reservation: &Reservation, actual: Decimal) {
        if let Err(e) = self.ledger.settle(reservation, actual).await {
            tracing::warn!(error.type = e.kind().as_str(), "llmkit budget: could not settle a reservation: {e}");
        }
    }

    /// Settles an answered call's reservation with its real cost and notes both in `trail`. An
    /// unknown real cost leaves the reservation standing (fail closed): it settles at the
    /// reserved amount.
    async fn settle_answered(
        &self,
        reservation: &Reservation,
        actual: Option<Decimal>,
        trail: &mut Trail,
    ) {
        let reserved = reservation.amount;
        let actual = actual.unwrap_or(reserved);
        self.settle(reservation, actual).await;
        trail.push(
            "budget",
            "settled",
            format!("estimated_usd={} actual_usd={actual}", reserved.round_dp(6)),
        );
    }

    /// Settles from synchronous code (a stream's end).
    fn settle_detached(&self, reservation: Reservation, actual: Decimal) {
        let budget = self.clone();
        crate::resilience::run_detached(async move { budget.settle(&reservation, actual).await });
    }
}

impl Layer for BudgetLayer {
    fn layer(&self, inner: Arc<dyn ChatModel>) -> Arc<dyn ChatModel> {
        Arc::new(Budgeted {
            inner,
            budget: self.clone(),
        })
    }

    fn layer_embedding(&self, inner: Arc<dyn EmbeddingModel>) -> Option<Arc<dyn EmbeddingModel>> {
        Some(Arc::new(Budgeted {
            inner,
            budget: self.clone(),
        }))
    }
}

/// The budget wrapper around a chat model or an embedding model.
struct Budgeted<M: ?Sized> {
    inner: Arc<M>,
    budget: BudgetLayer,
}

impl Budgeted<dyn ChatModel> {
    /// Picks the model that fits the budget and reserves its worst-case estimate.
    async fn admit(
        &self,
        request: &ChatRequest,
    ) -> Result<(Arc<dyn ChatModel>, Reservation, bool)> {
        let tenant = request.meta.tenant.as_deref().unwrap_or("");
        let primary = self.budget.worst_case(self.inner.as_ref(), request)?;
        let refusal = match self.budget.reserve(tenant, primary).await? {
            Ok(r) => return Ok((self.inner.clone(), r, false)),
            Err(why) => why,
        };
        if let OverBudget::Downgrade(cheaper) = &self.budget.on_exceed {
            let amount = self.budget.worst_case(cheaper.as_ref(), request)?;
            if let Ok(r) = self.budget.reserve(tenant, amount).await? {
                tracing::info!(reason = %refusal, to = %cheaper.info().model, "llmkit.budget.downgraded");
                return Ok((cheaper.clone(), r, true));
            }
        }
        let info = self.inner.info();
        Err(Error::new(ErrorKind::BudgetExceeded, refusal).or_context(&info.provider, &info.model))
    }
}

#[async_trait]
impl ChatModel for Budgeted<dyn ChatModel> {
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
        let (model, reservation, downgraded) = self.admit(&request).await?;
        match model.chat(request).await {
            Ok(mut resp) => {
                if downgraded {
                    resp.trail
                        .push("budget", "downgraded", format!("to {}", resp.model));
                }
                let actual = self.budget.actual(&resp);
                self.budget
                    .settle_answered(&reservation, actual, &mut resp.trail)
                    .await;
                Ok(resp)
            }
            Err(e) => {
                self.budget.settle(&reservation, Decimal::ZERO).await;
                Err(e)
            }
        }
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream> {
        let (model, reservation, _) = self.admit(&request).await?;
        let stream = match model.stream(request).await {
            Ok(stream) => stream,
            Err(e) => {
                self.budget.settle(&reservation, Decimal::ZERO).await;
                return Err(e);
            }
        };
        // Settle when the stream completes, priced for the model that answered (named by its
        // `Start` event). A stream that failed or was dropped may have been billed for what it
        // produced, so its reservation stands (settled at the reserved amount, so a shared
        // ledger does not release it when the lease expires).
        let budget = self.budget.clone();
        let candidates = model.candidates();
        Ok(crate::resilience::observe(stream, move |end| {
            let reserved = reservation.amount;
            let actual = match end {
                crate::resilience::StreamEnd::Completed(usage, Some(answered)) => candidates
                    .iter()
                    .flat_map(|c| c.models.iter())
                    .find(|m| m.model == answered)
                    .and_then(|m| budget.pricer.price(&m.provider, &answered, &usage))
                    .map_or(reserved, |c| c.total_usd),
                _ => reserved,
            };
            budget.settle_detached(reservation, actual);
        }))
    }
}

impl BudgetLayer {
    /// The estimated cost of embedding `request`'s inputs on `info`'s model (input tokens only),
    /// or `None` when the pricer does not know that model.
    pub fn estimate_embedding(&self, info: &ModelInfo, request: &EmbeddingRequest) -> Option<Cost> {
        let model = request.model.as_deref().unwrap_or(&info.model);
        let counter = TokenCounter::for_model(model);
        let usage = Usage {
            input_tokens: request.inputs.iter().map(|t| counter.count(t)).sum(),
            ..Default::default()
        };
        self.pricer.price(&info.provider, model, &usage)
    }
}

#[async_trait]
impl EmbeddingModel for Budgeted<dyn EmbeddingModel> {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    fn dimensions(&self) -> Option<usize> {
        self.inner.dimensions()
    }

    async fn embed(&self, request: EmbeddingRequest) -> Result<EmbeddingResponse> {
        let info = self.inner.info();
        let tenant = request.meta.tenant.as_deref().unwrap_or("");
        let estimate = match self.budget.estimate_embedding(info, &request) {
            Some(cost) => cost.total_usd,
            None if self.budget.allow_unpriced => Decimal::ZERO,
            None => {
                let name = request.model.as_deref().unwrap_or(&info.model);
                return Err(BudgetLayer::unpriced(
                    "embedding model",
                    &info.provider,
                    name,
                ));
            }
        };
        let reservation = match self.budget.reserve(tenant, estimate).await? {
            Ok(reservation) => reservation,
            Err(why) => {
                return Err(Error::new(ErrorKind::BudgetExceeded, why)
                    .or_context(&info.provider, &info.model));
            }
        };
        match self.inner.embed(request).await {
            Ok(mut resp) => {
                let actual = self.budget.actual_of(
                    resp.cost.as_ref(),
                    &resp.provider,
                    &resp.model,
                    &resp.usage,
                );
                self.budget
                    .settle_answered(&reservation, actual, &mut resp.trail)
                    .await;
                Ok(resp)
            }
            Err(e) => {
                self.budget.settle(&reservation, Decimal::ZERO).await;
                Err(e)
            }
        }
    }
}

impl Pricer for crate::cost::PriceTable {
    fn price(&self, provider: &str, model: &str, usage: &Usage) -> Option<Cost> {
        self.cost(provider, model, usage)
    }
}
