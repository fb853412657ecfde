//! Drift alerts: rules over sliding windows of recent calls.
//!
//! A [`DriftRule`] watches one [`Signal`] (p95 latency, error rate, cost per request, fallback
//! rate, validation-failure rate, or a quality score the application samples and feeds in) over
//! the last `window` observations, and compares it with a fixed bound or a baseline window. When
//! a rule starts breaching, the [`DriftMonitor`] sends one [`DriftAlert`] (rule, observed and
//! expected values) to the [`AlertSink`]; it stays quiet until the rule has recovered and
//! breaches again, so a sustained problem is one alert, not one per call.
//!
//! Windows count observations rather than seconds: deterministic, testable, and meaningful at
//! any traffic level. Alerts are delivered synchronously from the call that completed the
//! window, so a sink should only enqueue or log.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use llmkit_core::telemetry::{DriftAlert, DriftMonitor, DriftRule, Signal};
//!
//! let alerts = Arc::new(Mutex::new(Vec::<DriftAlert>::new()));
//! let seen = alerts.clone();
//! let monitor = DriftMonitor::builder()
//!     .rule(DriftRule::new("quality", Signal::QualityScore, 4).at_least(0.8))
//!     .sink(move |a: &DriftAlert| seen.lock().unwrap().push(a.clone()))
//!     .build();
//! for score in [0.9, 0.95, 0.9, 0.85] { monitor.record_quality(score); }
//! assert!(alerts.lock().unwrap().is_empty(), "healthy scores stay quiet");
//! for score in [0.5, 0.4, 0.5, 0.6] { monitor.record_quality(score); }
//! assert_eq!(alerts.lock().unwrap().len(), 1, "one alert for a sustained drop");
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

use super::semconv;
use super::sink::CallRecord;
use crate::error::ErrorKind;

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Signal {
    /// 95th percentile latency in milliseconds.
    LatencyP95,
    /// Share of calls that failed (0..1).
    ErrorRate,
    /// Mean cost per priced call, USD.
    CostPerRequest,
    /// Share of calls a fallback link answered (0..1).
    FallbackRate,
    /// Share of calls whose output failed validation or needed a re-ask (0..1).
    ValidationFailureRate,
    /// Mean of quality scores fed with [`DriftMonitor::record_quality`].
    QualityScore,
}

impl Signal {
    /// Whether a larger value is worse (true for all but quality).
    pub fn higher_is_worse(self) -> bool {
        !matches!(self, Signal::QualityScore)
    }

    /// The sample a call contributes, if any.
    fn sample(self, r: &CallRecord) -> Option<f64> {
        let flag = |b: bool| Some(if b { 1.0 } else { 0.0 });
        match self {
            Signal::LatencyP95 => Some(r.latency_ms),
            Signal::ErrorRate => flag(r.is_error()),
            Signal::CostPerRequest => r.cost.as_ref().and_then(|c| c.total_usd.to_f64()),
            Signal::FallbackRate => flag(r.fallback),
            Signal::ValidationFailureRate => {
                flag(r.error_type == Some(ErrorKind::OutputInvalid) || r.reasks > 0)
            }
            Signal::QualityScore => None,
        }
    }

    fn aggregate(self, samples: impl Iterator<Item = f64>) -> Option<f64> {
        let mut v: Vec<f64> = samples.collect();
        if v.is_empty() {
            return None;
        }
        if self == Signal::LatencyP95 {
            v.sort_by(f64::total_cmp);
            let rank = ((0.95 * v.len() as f64).ceil() as usize).clamp(1, v.len());
            v.get(rank - 1).copied()
        } else {
            Some(v.iter().sum::<f64>() / v.len() as f64)
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::LatencyP95 => "latency_p95_ms",
            Signal::ErrorRate => "error_rate",
            Signal::CostPerRequest => "cost_per_request_usd",
            Signal::FallbackRate => "fallback_rate",
            Signal::ValidationFailureRate => "validation_failure_rate",
            Signal::QualityScore => "quality_score",
        })
    }
}

/// What the window is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Expected {
    /// Breach when the value exceeds this bound.
    AtMost(f64),
    /// Breach when the value falls below this bound.
    AtLeast(f64),
    /// Breach when the value is worse than `ratio` × the baseline: the first full window seen
    /// (frozen until [`DriftMonitor::reset_baselines`]).
    BaselineRatio(f64),
    /// Like `BaselineRatio`, but the baseline is the window just before the current one, so it
    /// catches sudden shifts and forgives slow ones.
    PrecedingRatio(f64),
}

/// One rule: a signal, a window length and what to compare with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[must_use]
pub struct DriftRule {
    /// Name carried by alerts.
    pub name: String,
    /// What it watches.
    pub signal: Signal,
    /// Observations per window (minimum 1).
    pub window: usize,
    /// The comparison; default: 1.5 × the first window.
    pub expected: Expected,
}

impl DriftRule {
    /// A rule over the last `window` observations of `signal`, compared with 1.5 × its first
    /// full window until one of the comparison methods changes it.
    pub fn new(name: impl Into<String>, signal: Signal, window: usize) -> Self {
        DriftRule {
            name: name.into(),
            signal,
            window: window.max(1),
            expected: Expected::BaselineRatio(1.5),
        }
    }

    /// Breach above a fixed bound.
    pub fn at_most(mut self, bound: f64) -> Self {
        self.expected = Expected::AtMost(bound);
        self
    }

    /// Breach below a fixed bound.
    pub fn at_least(mut self, bound: f64) -> Self {
        self.expected = Expected::AtLeast(bound);
        self
    }

    /// Breach when worse than `ratio` × the first full window.
    pub fn vs_baseline(mut self, ratio: f64) -> Self {
        self.expected = Expected::BaselineRatio(ratio);
        self
    }

    /// Breach when worse than `ratio` × the preceding window.
    pub fn vs_preceding(mut self, ratio: f64) -> Self {
        self.expected = Expected::PrecedingRatio(ratio);
        self
    }
}

/// A rule started breaching.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftAlert {
    /// The rule's name.
    pub rule: String,
    /// Its signal.
    pub signal: Signal,
    /// The value over the current window.
    pub observed: f64,
    /// The threshold it crossed (the bound, or ratio × baseline).
    pub expected: f64,
    /// The baseline value, for baseline comparisons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    /// Observations in the window.
    pub window: usize,
}

impl fmt::Display for DriftAlert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "drift alert `{}`: {} is {:.4}, expected {} {:.4} over the last {} calls",
            self.rule,
            self.signal,
            self.observed,
            if self.signal.higher_is_worse() {
                "at most"
            } else {
                "at least"
            },
            self.expected,
            self.window
        )
    }
}

/// Receives alerts. Any `Fn(&DriftAlert)` is a sink.
pub trait AlertSink: Send + Sync {
    /// Handles one alert; keep it quick (enqueue, log, page).
    fn alert(&self, alert: &DriftAlert);
}

impl<F: Fn(&DriftAlert) + Send + Sync> AlertSink for F {
    fn alert(&self, alert: &DriftAlert) {
        self(alert)
    }
}

struct RuleState {
    rule: DriftRule,
    samples: VecDeque<f64>,
    baseline: Option<f64>,
    breaching: bool,
}

impl RuleState {
    /// Adds a sample; returns an alert when the rule starts breaching.
    fn push(&mut self, v: f64) -> Option<DriftAlert> {
        let w = self.rule.window;
        let keep = if matches!(self.rule.expected, Expected::PrecedingRatio(_)) {
            2 * w
        } else {
            w
        };
        self.samples.push_back(v);
        while self.samples.len() > keep {
            self.samples.pop_front();
        }
        if self.samples.len() < w {
            return None;
        }
        let signal = self.rule.signal;
        let current = signal.aggregate(self.samples.iter().rev().take(w).copied())?;
        let worse = |observed: f64, threshold: f64| {
            if signal.higher_is_worse() {
                observed > threshold
            } else {
                observed < threshold
            }
        };
        let scaled = |base: f64, ratio: f64| {
            if signal.higher_is_worse() {
                base * ratio
            } else {
                base / ratio
            }
        };
        let (threshold, baseline) = match self.rule.expected {
            Expected::AtMost(b) | Expected::AtLeast(b) => (b, None),
            Expected::BaselineRatio(r) => match self.baseline {
                Some(b) => (scaled(b, r), Some(b)),
                None => {
                    self.baseline = Some(current);
                    return None;
                }
            },
            Expected::PrecedingRatio(r) => {
                if self.samples.len() < 2 * w {
                    return None;
                }
                let b = signal.aggregate(self.samples.iter().take(w).copied())?;
                (scaled(b, r), Some(b))
            }
        };
        let breach = match self.rule.expected {
            Expected::AtMost(b) => current > b,
            Expected::AtLeast(b) => current < b,
            _ => worse(current, threshold),
        };
        let starts = breach && !self.breaching;
        self.breaching = breach;
        starts.then(|| DriftAlert {
            rule: self.rule.name.clone(),
            signal,
            observed: current,
            expected: threshold,
            baseline,
            window: w,
        })
    }
}

/// Evaluates [`DriftRule`]s on every finished call. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct DriftMonitor {
    rules: Arc<Mutex<Vec<RuleState>>>,
    sink: Arc<dyn AlertSink>,
}

impl fmt::Debug for DriftMonitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DriftMonitor").finish_non_exhaustive()
    }
}

/// Builds a [`DriftMonitor`]. Default: no rules, alerts logged with `tracing::warn!`.
#[must_use]
pub struct DriftMonitorBuilder {
    rules: Vec<DriftRule>,
    sink: Option<Arc<dyn AlertSink>>,
}

impl fmt::Debug for DriftMonitorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DriftMonitorBuilder")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

impl DriftMonitorBuilder {
    /// Adds a rule.
    pub fn rule(mut self, rule: DriftRule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Sets where alerts go (default: a `tracing::warn!` event only).
    pub fn sink(mut self, sink: impl AlertSink + 'static) -> Self {
        self.sink = Some(Arc::new(sink));
        self
    }

    /// Builds the monitor.
    pub fn build(self) -> DriftMonitor {
        DriftMonitor {
            rules: Arc::new(Mutex::new(
                self.rules
                    .into_iter()
                    .map(|rule| RuleState {
                        rule,
                        samples: VecDeque::new(),
                        baseline: None,
                        breaching: false,
                    })
                    .collect(),
            )),
            sink: self.sink.unwrap_or_else(|| Arc::new(|_: &DriftAlert| {})),
        }
    }
}

impl DriftMonitor {
    /// Starts a monitor.
    pub fn builder() -> DriftMonitorBuilder {
        DriftMonitorBuilder {
            rules: Vec::new(),
            sink: None,
        }
    }

    /// Feeds one finished call to every call-based rule.
    pub fn observe(&self, record: &CallRecord) {
        self.feed(|signal| signal.sample(record));
    }

    /// Feeds one sampled quality score (from an evaluator, a judge or user feedback).
    pub fn record_quality(&self, score: f64) {
        self.feed(|signal| (signal == Signal::QualityScore).then_some(score));
    }

    /// Forgets frozen baselines; the next full window becomes the new baseline (after a
    /// deliberate model or prompt change).
    pub fn reset_baselines(&self) {
        for r in crate::sync::lock(&self.rules).iter_mut() {
            r.baseline = None;
            r.samples.clear();
            r.breaching = false;
        }
    }

    fn feed(&self, sample: impl Fn(Signal) -> Option<f64>) {
        let alerts: Vec<DriftAlert> = {
            let mut rules = crate::sync::lock(&self.rules);
            rules
                .iter_mut()
                .filter_map(|r| sample(r.rule.signal).and_then(|v| r.push(v)))
                .collect()
        };
        // Delivered outside the lock so a sink may call back into the monitor.
        for a in alerts {
            tracing::warn!(
                target: semconv::TARGET,
                rule = %a.rule,
                signal = %a.signal,
                observed = a.observed,
                expected = a.expected,
                "{a}"
            );
            self.sink.alert(&a);
        }
    }
}
