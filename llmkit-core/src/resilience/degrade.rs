//! [`Degrade`] and [`Outcome`]: a degraded answer the application decided in advance, returned
//! as a value instead of an error.
//!
//! Fallbacks try to get *a model's* answer; degradation is what the application does when none
//! came: route to a human, show the last known state, say "we'll email you". The decision is
//! typed (the caller's own `T`) and explicit in the return type, so it cannot be mistaken for a
//! real answer and no error reaches the user.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};

/// A call's result: the real answer, or the degraded one with the reason and the error behind it.
#[derive(Debug, Clone)]
#[must_use]
pub enum Outcome<T> {
    /// The call succeeded.
    Answered(T),
    /// The call failed and the planned degraded value stands in.
    Degraded(Degraded<T>),
}

/// A degraded value and why it was used.
#[derive(Debug, Clone)]
pub struct Degraded<T> {
    /// The value the application decided in advance.
    pub value: T,
    /// A human-readable reason (e.g. "model unavailable — routed to a human").
    pub reason: String,
    /// The error that caused it (with every attempt's error in [`Error::attempts`]).
    pub error: Error,
}

impl<T> Outcome<T> {
    /// Whether the value is a degraded stand-in.
    pub fn is_degraded(&self) -> bool {
        matches!(self, Outcome::Degraded(_))
    }

    /// The value, real or degraded.
    pub fn value(&self) -> &T {
        match self {
            Outcome::Answered(v) => v,
            Outcome::Degraded(d) => &d.value,
        }
    }

    /// The value, real or degraded.
    pub fn into_value(self) -> T {
        match self {
            Outcome::Answered(v) => v,
            Outcome::Degraded(d) => d.value,
        }
    }

    /// The reason, when degraded.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Answered(_) => None,
            Outcome::Degraded(d) => Some(&d.reason),
        }
    }

    /// The underlying error, when degraded.
    pub fn error(&self) -> Option<&Error> {
        match self {
            Outcome::Answered(_) => None,
            Outcome::Degraded(d) => Some(&d.error),
        }
    }

    /// Maps the value, real or degraded.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Outcome::Answered(v) => Outcome::Answered(f(v)),
            Outcome::Degraded(d) => Outcome::Degraded(Degraded {
                value: f(d.value),
                reason: d.reason,
                error: d.error,
            }),
        }
    }
}

type Plan<T> = Arc<dyn Fn(&Error) -> Option<(T, String)> + Send + Sync>;

/// The degradation plan: which value stands in for a failed call, and for which errors.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use llmkit_core::resilience::Degrade;
/// use llmkit_core::{ChatModel, ChatRequest, Reply, ScriptedModel};
///
/// #[derive(Debug, Clone, PartialEq)]
/// enum Verdict { Approve, Reject, Escalate { confidence: f32 } }
///
/// let plan = Degrade::new(Verdict::Escalate { confidence: 0.0 }, "model unavailable — routed to a human");
/// let model = ScriptedModel::builder().reply(Reply::server_error(503)).build();
/// let outcome = plan
///     .run(async {
///         let resp = model.chat(ChatRequest::user("refund 60 days after purchase?")).await?;
///         Ok(if resp.text().contains("yes") { Verdict::Approve } else { Verdict::Reject })
///     })
///     .await?;
/// assert!(outcome.is_degraded());
/// assert_eq!(outcome.value(), &Verdict::Escalate { confidence: 0.0 });
/// assert_eq!(outcome.reason(), Some("model unavailable — routed to a human"));
/// # Ok::<(), llmkit_core::Error>(()) }).unwrap();
/// ```
#[must_use]
pub struct Degrade<T> {
    plan: Plan<T>,
    passthrough: Vec<ErrorKind>,
}

impl<T> Clone for Degrade<T> {
    fn clone(&self) -> Self {
        Degrade {
            plan: self.plan.clone(),
            passthrough: self.passthrough.clone(),
        }
    }
}

impl<T> fmt::Debug for Degrade<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Degrade")
            .field("passthrough", &self.passthrough)
            .finish_non_exhaustive()
    }
}

impl<T: Clone + Send + Sync + 'static> Degrade<T> {
    /// Every failure degrades to a clone of `value` with this `reason` (default: no error kind
    /// passes through; see [`pass_through`](Self::pass_through)).
    pub fn new(value: T, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Degrade {
            plan: Arc::new(move |_| Some((value.clone(), reason.clone()))),
            passthrough: Vec::new(),
        }
    }
}

impl<T> Degrade<T> {
    /// A plan computed from the error: return `Some((value, reason))` to degrade, `None` to let
    /// the error through.
    pub fn with(plan: impl Fn(&Error) -> Option<(T, String)> + Send + Sync + 'static) -> Self {
        Degrade {
            plan: Arc::new(plan),
            passthrough: Vec::new(),
        }
    }

    /// Lets errors of `kind` through as errors instead of degrading (for example `Config` or
    /// `InvalidRequest`, which are bugs to fix rather than outages to ride out).
    pub fn pass_through(mut self, kind: ErrorKind) -> Self {
        self.passthrough.push(kind);
        self
    }

    /// Applies the plan to a result.
    pub fn apply(&self, result: Result<T>) -> Result<Outcome<T>> {
        let error = match result {
            Ok(v) => return Ok(Outcome::Answered(v)),
            Err(e) => e,
        };
        if self.passthrough.contains(&error.kind()) {
            return Err(error);
        }
        match (self.plan)(&error) {
            Some((value, reason)) => {
                tracing::warn!(
                    error.type = error.kind().as_str(),
                    reason = %reason,
                    "llmkit degraded: answering with the planned value"
                );
                Ok(Outcome::Degraded(Degraded {
                    value,
                    reason,
                    error,
                }))
            }
            None => Err(error),
        }
    }

    /// Awaits `call` (any model call, or any code around one) and applies the plan.
    pub async fn run(&self, call: impl Future<Output = Result<T>>) -> Result<Outcome<T>> {
        self.apply(call.await)
    }
}
