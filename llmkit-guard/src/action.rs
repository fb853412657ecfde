//! The action gate: the only path from a model's proposed tool call to an action.
//!
//! A model that can be talked into anything must never be wired straight to a refund, an
//! e-mail or a delete. [`ActionGate`] validates each proposed [`ToolCall`] deterministically
//! before anything runs:
//!
//! 1. the tool is on the allow-list (a registered [`ToolPolicy`]), else **deny**;
//! 2. the arguments match the tool's JSON Schema, else **deny**;
//! 3. every business [`Rule`] passes (amount limits, recipient allow-lists, any closure), else
//!    **deny**;
//! 4. the risk score (the policy's base risk and its risk function) is below the threshold →
//!    **allow**; otherwise the [`Approver`] (a human, through whatever UI the application has)
//!    approves (**allow**), rejects (**deny**) or defers (**escalate**); with no approver the
//!    call is escalated.
//!
//! [`ActionGate::execute`] runs the tool's handler only when the verdict is allow, and returns
//! an [`ActionResult`] that can go back to the model as a tool message either way.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use llmkit_core::ToolCall;
//! use llmkit_guard::action::{ActionGate, GateVerdict, Rule, ToolPolicy};
//! use serde_json::json;
//!
//! let gate = ActionGate::new()
//!     .tool(ToolPolicy::new("refund")
//!         .schema(&json!({"type": "object", "required": ["order_id", "amount"],
//!             "properties": {"order_id": {"type": "string"}, "amount": {"type": "number", "exclusiveMinimum": 0}}}))?
//!         .rule(Rule::max_number("amount", 500.0))
//!         .risk(|args| (args["amount"].as_f64().unwrap_or(0.0) / 500.0) as f32))
//!     .risk_threshold(0.2);
//!
//! let call = |name: &str, args| ToolCall { id: "c1".into(), name: name.into(), arguments: args };
//! assert_eq!(gate.check(&call("refund", json!({"order_id": "A1", "amount": 20}))).await.verdict, GateVerdict::Allow);
//! assert_eq!(gate.check(&call("refund", json!({"order_id": "A1", "amount": 2500}))).await.verdict, GateVerdict::Deny);
//! assert_eq!(gate.check(&call("refund", json!({"order_id": "A1", "amount": 250}))).await.verdict, GateVerdict::Escalate);
//! assert_eq!(gate.check(&call("delete_account", json!({}))).await.verdict, GateVerdict::Deny);
//! # Ok::<(), llmkit_core::Error>(()) }).unwrap();
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use llmkit_core::{Error, Message, Result, ToolCall};
use serde::Serialize;
use serde_json::Value;

use crate::output::schema::{compile_schema, violations};

type RuleFn = Arc<dyn Fn(&Value) -> std::result::Result<(), String> + Send + Sync>;

/// A business rule over a tool's arguments: `Ok(())` passes, `Err(reason)` denies.
#[derive(Clone)]
pub struct Rule {
    name: String,
    check: RuleFn,
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Rule").field(&self.name).finish()
    }
}

/// Looks up a top-level or `/`-separated JSON pointer-ish field (`amount`, `to/email`).
fn field<'a>(args: &'a Value, path: &str) -> Option<&'a Value> {
    let pointer = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    args.pointer(&pointer)
}

impl Rule {
    /// A rule from a closure.
    pub fn new(
        name: impl Into<String>,
        check: impl Fn(&Value) -> std::result::Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        Rule {
            name: name.into(),
            check: Arc::new(check),
        }
    }

    /// `field` must be a number no greater than `limit` (a missing or non-numeric field fails).
    pub fn max_number(field_name: &str, limit: f64) -> Self {
        let f = field_name.to_owned();
        Rule::new(
            format!("{field_name} <= {limit}"),
            move |args| match field(args, &f).and_then(Value::as_f64) {
                Some(v) if v <= limit => Ok(()),
                Some(v) => Err(format!("{f} {v} exceeds the limit of {limit}")),
                None => Err(format!("{f} is missing or not a number")),
            },
        )
    }

    /// `field` must be a string from `allowed` (a recipient allow-list).
    pub fn one_of<I, S>(field_name: &str, allowed: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let f = field_name.to_owned();
        let allowed: Vec<String> = allowed.into_iter().map(Into::into).collect();
        Rule::new(
            format!("{field_name} in allow-list"),
            move |args| match field(args, &f).and_then(Value::as_str) {
                Some(v) if allowed.iter().any(|a| a == v) => Ok(()),
                Some(_) => Err(format!("{f} is not on the allow-list")),
                None => Err(format!("{f} is missing or not a string")),
            },
        )
    }

    /// The rule's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Evaluates the rule.
    pub fn evaluate(&self, args: &Value) -> std::result::Result<(), String> {
        (self.check)(args)
    }
}

/// Runs an allowed tool call.
#[async_trait]
pub trait ToolHandler: Send + Sync {
    /// Performs the action with validated arguments.
    async fn call(&self, arguments: Value) -> Result<Value>;
}

struct FnHandler<F>(F);

#[async_trait]
impl<F, Fut> ToolHandler for FnHandler<F>
where
    F: Fn(Value) -> Fut + Send + Sync,
    Fut: Future<Output = Result<Value>> + Send,
{
    async fn call(&self, arguments: Value) -> Result<Value> {
        (self.0)(arguments).await
    }
}

/// A [`ToolHandler`] from an async closure.
pub fn handler_fn<F, Fut>(f: F) -> Arc<dyn ToolHandler>
where
    F: Fn(Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value>> + Send + 'static,
{
    Arc::new(FnHandler(f))
}

type RiskFn = Arc<dyn Fn(&Value) -> f32 + Send + Sync>;

/// What the gate knows about one allowed tool. Defaults: no schema (any JSON object), no
/// rules, base risk 0, no risk function, no handler ([`ActionGate::execute`] then reports an
/// error for allowed calls).
#[derive(Clone)]
#[must_use]
pub struct ToolPolicy {
    name: String,
    validator: Option<Arc<jsonschema::Validator>>,
    rules: Vec<Rule>,
    base_risk: f32,
    risk: Option<RiskFn>,
    handler: Option<Arc<dyn ToolHandler>>,
}

impl fmt::Debug for ToolPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolPolicy")
            .field("name", &self.name)
            .field("schema", &self.validator.is_some())
            .field("rules", &self.rules)
            .field("base_risk", &self.base_risk)
            .finish()
    }
}

impl ToolPolicy {
    /// A policy allowing the tool `name`.
    pub fn new(name: impl Into<String>) -> Self {
        ToolPolicy {
            name: name.into(),
            validator: None,
            rules: Vec::new(),
            base_risk: 0.0,
            risk: None,
            handler: None,
        }
    }

    /// Validates arguments against `schema`.
    ///
    /// # Errors
    /// [`llmkit_core::ErrorKind::Config`] when the schema is invalid.
    pub fn schema(mut self, schema: &Value) -> Result<Self> {
        self.validator = Some(Arc::new(compile_schema(schema)?));
        Ok(self)
    }

    /// Adds a business rule.
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Sets a fixed minimum risk (irreversible tools: 1.0 always asks a human).
    pub fn base_risk(mut self, risk: f32) -> Self {
        self.base_risk = risk.clamp(0.0, 1.0);
        self
    }

    /// Sets a risk function over the arguments, in `0.0..=1.0`.
    pub fn risk(mut self, f: impl Fn(&Value) -> f32 + Send + Sync + 'static) -> Self {
        self.risk = Some(Arc::new(f));
        self
    }

    /// Sets the handler that performs the action.
    pub fn handler(mut self, handler: Arc<dyn ToolHandler>) -> Self {
        self.handler = Some(handler);
        self
    }
}

/// What a human approver sees.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalRequest {
    /// The tool.
    pub tool: String,
    /// The validated arguments.
    pub arguments: Value,
    /// The risk score.
    pub risk: f32,
    /// Why it needs approval.
    pub reasons: Vec<String>,
}

/// A human's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// Go ahead.
    Approve {
        /// Who approved.
        by: String,
    },
    /// Do not run it.
    Deny {
        /// Who denied.
        by: String,
        /// Why.
        reason: String,
    },
    /// Not decided here; hand it to someone else (a queue, a supervisor).
    Escalate {
        /// Why.
        reason: String,
    },
}

/// A human approval callback. Implementors provide [`review`](Approver::review).
#[async_trait]
pub trait Approver: Send + Sync {
    /// Reviews one risky call.
    async fn review(&self, request: &ApprovalRequest) -> Approval;
}

struct FnApprover<F>(F);

#[async_trait]
impl<F> Approver for FnApprover<F>
where
    F: Fn(&ApprovalRequest) -> Approval + Send + Sync,
{
    async fn review(&self, request: &ApprovalRequest) -> Approval {
        (self.0)(request)
    }
}

/// An [`Approver`] from a synchronous closure (tests, CLIs, rule-based auto-approval).
pub fn approver_fn<F>(f: F) -> Arc<dyn Approver>
where
    F: Fn(&ApprovalRequest) -> Approval + Send + Sync + 'static,
{
    Arc::new(FnApprover(f))
}

/// The gate's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GateVerdict {
    /// Run it.
    Allow,
    /// Do not run it.
    Deny,
    /// Not run; waiting for a human decision elsewhere.
    Escalate,
}

impl GateVerdict {
    /// `allow`, `deny` or `escalate`.
    pub fn as_str(self) -> &'static str {
        match self {
            GateVerdict::Allow => "allow",
            GateVerdict::Deny => "deny",
            GateVerdict::Escalate => "escalate",
        }
    }
}

/// The gate's decision about one call, with its reasons.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateOutcome {
    /// The tool asked for.
    pub tool: String,
    /// The call id.
    pub call_id: String,
    /// Allow, deny or escalate.
    pub verdict: GateVerdict,
    /// The risk score (0 when denied before scoring).
    pub risk: f32,
    /// Why.
    pub reasons: Vec<String>,
    /// Who approved, when a human did.
    pub approved_by: Option<String>,
}

impl fmt::Display for GateOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} risk={:.2}",
            self.tool,
            self.verdict.as_str(),
            self.risk
        )?;
        if let Some(by) = &self.approved_by {
            write!(f, " approved_by={by}")?;
        }
        if !self.reasons.is_empty() {
            write!(f, " ({})", self.reasons.join("; "))?;
        }
        Ok(())
    }
}

/// The outcome of [`ActionGate::execute`].
#[derive(Debug, Clone, PartialEq)]
pub struct ActionResult {
    /// The gate's decision.
    pub outcome: GateOutcome,
    /// The handler's output, when the call ran and succeeded.
    pub output: Option<Value>,
    /// The handler's error, when the call ran and failed.
    pub error: Option<String>,
}

impl ActionResult {
    /// A tool message for the model: the output, or why the action did not run.
    pub fn to_tool_message(&self) -> Message {
        let content = match (&self.output, &self.error) {
            (Some(v), _) => v.to_string(),
            (None, Some(e)) => format!("error: {e}"),
            (None, None) => format!(
                "not executed: {} ({})",
                self.outcome.verdict.as_str(),
                self.outcome.reasons.join("; ")
            ),
        };
        Message::tool_result(self.outcome.call_id.clone(), content)
    }
}

/// The action gate. Defaults: no tools allowed, risk threshold 0.5, no approver (risky calls
/// escalate).
#[derive(Clone, Default)]
#[must_use]
pub struct ActionGate {
    tools: BTreeMap<String, ToolPolicy>,
    approver: Option<Arc<dyn Approver>>,
    risk_threshold: f32,
}

impl fmt::Debug for ActionGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActionGate")
            .field("tools", &self.tools.keys().collect::<Vec<_>>())
            .field("approver", &self.approver.is_some())
            .field("risk_threshold", &self.risk_threshold)
            .finish()
    }
}

impl ActionGate {
    /// An empty gate.
    pub fn new() -> Self {
        ActionGate {
            tools: BTreeMap::new(),
            approver: None,
            risk_threshold: 0.5,
        }
    }

    /// Allows a tool under `policy`.
    pub fn tool(mut self, policy: ToolPolicy) -> Self {
        self.tools.insert(policy.name.clone(), policy);
        self
    }

    /// Sets the human approval callback.
    pub fn approver(mut self, approver: Arc<dyn Approver>) -> Self {
        self.approver = Some(approver);
        self
    }

    /// Calls at or above this risk need approval (default 0.5).
    pub fn risk_threshold(mut self, t: f32) -> Self {
        self.risk_threshold = t;
        self
    }

    /// Decides about `call` without running anything.
    pub async fn check(&self, call: &ToolCall) -> GateOutcome {
        let mut out = GateOutcome {
            tool: call.name.clone(),
            call_id: call.id.clone(),
            verdict: GateVerdict::Deny,
            risk: 0.0,
            reasons: Vec::new(),
            approved_by: None,
        };
        let Some(policy) = self.tools.get(&call.name) else {
            out.reasons
                .push(format!("tool {} is not on the allow-list", call.name));
            return out;
        };
        if let Some(v) = &policy.validator {
            let errs = violations(v, &call.arguments, 3);
            if !errs.is_empty() {
                out.reasons
                    .extend(errs.into_iter().map(|e| format!("arguments: {e}")));
                return out;
            }
        }
        for rule in &policy.rules {
            if let Err(reason) = rule.evaluate(&call.arguments) {
                out.reasons.push(format!("rule {}: {reason}", rule.name));
            }
        }
        if !out.reasons.is_empty() {
            return out;
        }
        let risk = policy
            .risk
            .as_ref()
            .map(|f| f(&call.arguments))
            .unwrap_or(0.0)
            .max(policy.base_risk);
        out.risk = if risk.is_nan() {
            1.0
        } else {
            risk.clamp(0.0, 1.0)
        };
        if out.risk < self.risk_threshold {
            out.verdict = GateVerdict::Allow;
            return out;
        }
        out.reasons.push(format!(
            "risk {:.2} >= {:.2} needs approval",
            out.risk, self.risk_threshold
        ));
        let Some(approver) = &self.approver else {
            out.verdict = GateVerdict::Escalate;
            out.reasons.push("no approver configured".into());
            return out;
        };
        let request = ApprovalRequest {
            tool: call.name.clone(),
            arguments: call.arguments.clone(),
            risk: out.risk,
            reasons: out.reasons.clone(),
        };
        match approver.review(&request).await {
            Approval::Approve { by } => {
                out.verdict = GateVerdict::Allow;
                out.approved_by = Some(by);
            }
            Approval::Deny { by, reason } => {
                out.verdict = GateVerdict::Deny;
                out.reasons.push(format!("denied by {by}: {reason}"));
            }
            Approval::Escalate { reason } => {
                out.verdict = GateVerdict::Escalate;
                out.reasons.push(format!("escalated: {reason}"));
            }
        }
        out
    }

    /// Checks `call` and, if allowed, runs its handler. Denied and escalated calls do not run.
    /// Records the outcome on the current tracing span.
    ///
    /// # Errors
    /// [`llmkit_core::ErrorKind::Config`] when an allowed tool has no handler.
    pub async fn execute(&self, call: &ToolCall) -> Result<ActionResult> {
        let outcome = self.check(call).await;
        tracing::info!(
            tool = %outcome.tool,
            verdict = outcome.verdict.as_str(),
            risk = outcome.risk,
            reasons = %outcome.reasons.join("; "),
            "action gate"
        );
        if outcome.verdict != GateVerdict::Allow {
            return Ok(ActionResult {
                outcome,
                output: None,
                error: None,
            });
        }
        let handler = self
            .tools
            .get(&call.name)
            .and_then(|p| p.handler.clone())
            .ok_or_else(|| {
                Error::config(format!(
                    "tool {} is allowed but has no handler: set ToolPolicy::handler",
                    call.name
                ))
            })?;
        Ok(match handler.call(call.arguments.clone()).await {
            Ok(v) => ActionResult {
                outcome,
                output: Some(v),
                error: None,
            },
            Err(e) => ActionResult {
                outcome,
                output: None,
                error: Some(e.to_string()),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn call(name: &str, args: Value) -> ToolCall {
        ToolCall {
            id: "c".into(),
            name: name.into(),
            arguments: args,
        }
    }

    fn gate(ran: Arc<AtomicUsize>) -> ActionGate {
        ActionGate::new()
            .tool(
                ToolPolicy::new("send_money")
                    .schema(&json!({"type":"object","required":["to","amount"],"properties":{"to":{"type":"string"},"amount":{"type":"number"}}}))
                    .unwrap()
                    .rule(Rule::max_number("amount", 1000.0))
                    .rule(Rule::one_of("to", ["alice", "bob"]))
                    .risk(|a| (a["amount"].as_f64().unwrap_or(0.0) / 1000.0) as f32)
                    .handler(handler_fn(move |args| {
                        let ran = ran.clone();
                        async move {
                            ran.fetch_add(1, Ordering::SeqCst);
                            Ok(json!({"sent": args["amount"]}))
                        }
                    })),
            )
            .approver(approver_fn(|r| {
                if r.risk >= 0.9 {
                    Approval::Escalate { reason: "needs a supervisor".into() }
                } else if r.arguments["to"] == "bob" {
                    Approval::Deny { by: "ops".into(), reason: "bob is on hold".into() }
                } else {
                    Approval::Approve { by: "ops".into() }
                }
            }))
    }

    #[tokio::test]
    async fn allow_deny_escalate_paths() {
        let ran = Arc::new(AtomicUsize::new(0));
        let g = gate(ran.clone());
        let r = g
            .execute(&call("send_money", json!({"to":"alice","amount":10})))
            .await
            .unwrap();
        assert_eq!(r.outcome.verdict, GateVerdict::Allow);
        assert_eq!(r.output, Some(json!({"sent": 10})));
        let r = g
            .execute(&call("send_money", json!({"to":"alice","amount":600})))
            .await
            .unwrap();
        assert_eq!(r.outcome.verdict, GateVerdict::Allow);
        assert_eq!(r.outcome.approved_by.as_deref(), Some("ops"));
        assert_eq!(ran.load(Ordering::SeqCst), 2);

        for (args, verdict, why) in [
            (
                json!({"to":"mallory","amount":10}),
                GateVerdict::Deny,
                "allow-list",
            ),
            (
                json!({"to":"alice","amount":5000}),
                GateVerdict::Deny,
                "exceeds",
            ),
            (json!({"to":"alice"}), GateVerdict::Deny, "arguments"),
            (
                json!({"to":"bob","amount":600}),
                GateVerdict::Deny,
                "bob is on hold",
            ),
            (
                json!({"to":"alice","amount":950}),
                GateVerdict::Escalate,
                "supervisor",
            ),
        ] {
            let r = g.execute(&call("send_money", args.clone())).await.unwrap();
            assert_eq!(r.outcome.verdict, verdict, "{args}");
            assert!(r.outcome.reasons.join(" ").contains(why), "{}", r.outcome);
            assert!(r.output.is_none());
            let msg = r.to_tool_message();
            let llmkit_core::ContentPart::ToolResult(tr) = &msg.content[0] else {
                panic!("{msg:?}")
            };
            assert!(tr.content.starts_with("not executed"), "{}", tr.content);
        }
        let r = g.execute(&call("drop_tables", json!({}))).await.unwrap();
        assert_eq!(r.outcome.verdict, GateVerdict::Deny);
        assert_eq!(ran.load(Ordering::SeqCst), 2, "nothing else ran");

        let no_approver = ActionGate::new().tool(ToolPolicy::new("wipe").base_risk(1.0));
        let o = no_approver.check(&call("wipe", json!({}))).await;
        assert_eq!(o.verdict, GateVerdict::Escalate);
        let no_handler = ActionGate::new().tool(ToolPolicy::new("noop"));
        assert!(no_handler.execute(&call("noop", json!({}))).await.is_err());
    }
}
