//! `/metrics`: Prometheus text exposition (format 0.0.4).
//!
//! One page holds three groups:
//! - the model-call series of llmkit's [`MetricsRegistry`] (requests, errors, tokens, cost,
//!   latency by provider, model and prompt version), rendered by the registry itself;
//! - the OpenTelemetry GenAI client metrics under their Prometheus names
//!   (`gen_ai.client.operation.duration` → `gen_ai_client_operation_duration_seconds`,
//!   `gen_ai.client.token.usage` → `gen_ai_client_token_usage`), derived from the same
//!   registry snapshot, unless the registry's own rendering already carries them;
//! - the server's own: HTTP requests by route and status, requests in flight, circuit states.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use llmkit_core::resilience::{BreakerSnapshot, CircuitState};
use llmkit_core::telemetry::{MetricsRegistry, MetricsSnapshot};

/// Prometheus name of `gen_ai.client.operation.duration` (seconds).
pub const GEN_AI_OPERATION_DURATION: &str = "gen_ai_client_operation_duration_seconds";
/// Prometheus name of `gen_ai.client.token.usage` (tokens).
pub const GEN_AI_TOKEN_USAGE: &str = "gen_ai_client_token_usage";
/// Counter of HTTP requests served, by `route` and `status`.
pub const HTTP_REQUESTS: &str = "llmkit_http_requests_total";
/// Gauge of HTTP requests being served.
pub const HTTP_IN_FLIGHT: &str = "llmkit_http_requests_in_flight";
/// Gauge per circuit and state: 1 for the current state, 0 for the others.
pub const CIRCUIT_STATE: &str = "llmkit_circuit_state";

/// The `Content-Type` of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Counters the server keeps about its own HTTP traffic. Cheap to clone (shared inside).
#[derive(Clone, Default, Debug)]
pub struct HttpMetrics {
    requests: Arc<Mutex<BTreeMap<(&'static str, u16), u64>>>,
    in_flight: Arc<AtomicI64>,
}

/// Decrements the in-flight gauge when a request ends, however it ends (a dropped SSE body
/// included).
#[derive(Debug)]
pub struct InFlight {
    gauge: Arc<AtomicI64>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.gauge.fetch_sub(1, Ordering::Relaxed);
    }
}

impl HttpMetrics {
    /// Counts one finished request.
    pub fn record(&self, route: &'static str, status: u16) {
        let mut map = llmkit_core::sync::lock(&self.requests);
        *map.entry((route, status)).or_insert(0) += 1;
    }

    /// Marks a request in flight until the guard drops.
    pub fn start(&self) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight {
            gauge: self.in_flight.clone(),
        }
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Requests counted for `route` and `status`.
    pub fn count(&self, route: &str, status: u16) -> u64 {
        let map = llmkit_core::sync::lock(&self.requests);
        map.iter()
            .filter(|((r, s), _)| *r == route && *s == status)
            .map(|(_, n)| n)
            .sum()
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The GenAI client metrics from a registry snapshot, as Prometheus summaries (the registry
/// keeps log-bucketed latency, so quantiles are exact to 1.6 %, and token sums and counts).
pub fn render_gen_ai(snap: &MetricsSnapshot) -> String {
    let mut out = String::new();
    header(
        &mut out,
        GEN_AI_OPERATION_DURATION,
        "summary",
        "GenAI operation duration (OpenTelemetry gen_ai.client.operation.duration).",
    );
    for (k, s) in &snap.series {
        let l = format!(
            "gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"{}\",gen_ai_response_model=\"{}\",llmkit_prompt_version=\"{}\"",
            escape(&k.provider),
            escape(&k.model),
            escape(&k.prompt_version)
        );
        for (q, v) in [
            ("0.5", s.latency_p50_ms),
            ("0.95", s.latency_p95_ms),
            ("0.99", s.latency_p99_ms),
        ] {
            let _ = writeln!(
                out,
                "{GEN_AI_OPERATION_DURATION}{{{l},quantile=\"{q}\"}} {}",
                v / 1000.0
            );
        }
        let _ = writeln!(
            out,
            "{GEN_AI_OPERATION_DURATION}_sum{{{l}}} {}",
            s.latency_sum_ms / 1000.0
        );
        let _ = writeln!(
            out,
            "{GEN_AI_OPERATION_DURATION}_count{{{l}}} {}",
            s.requests
        );
    }
    header(
        &mut out,
        GEN_AI_TOKEN_USAGE,
        "summary",
        "Tokens per GenAI operation by type (OpenTelemetry gen_ai.client.token.usage).",
    );
    for (k, s) in &snap.series {
        let answered = s.requests.saturating_sub(s.error_count());
        for (ty, n) in [("input", s.input_tokens), ("output", s.output_tokens)] {
            let l = format!(
                "gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"{}\",gen_ai_response_model=\"{}\",llmkit_prompt_version=\"{}\",gen_ai_token_type=\"{ty}\"",
                escape(&k.provider),
                escape(&k.model),
                escape(&k.prompt_version)
            );
            let _ = writeln!(out, "{GEN_AI_TOKEN_USAGE}_sum{{{l}}} {n}");
            let _ = writeln!(out, "{GEN_AI_TOKEN_USAGE}_count{{{l}}} {answered}");
        }
    }
    out
}

/// The whole `/metrics` page.
pub fn render(
    registry: Option<&MetricsRegistry>,
    http: &HttpMetrics,
    breakers: &[BreakerSnapshot],
) -> String {
    let mut out = String::new();
    if let Some(registry) = registry {
        let own = registry.render_prometheus();
        // A newer registry may render the GenAI families itself; never emit a family twice
        // (a duplicate `# TYPE` makes the whole page unparsable).
        let has_gen_ai = own.contains(GEN_AI_OPERATION_DURATION);
        out.push_str(&own);
        if !has_gen_ai {
            out.push_str(&render_gen_ai(&registry.snapshot()));
        }
    }
    header(
        &mut out,
        HTTP_REQUESTS,
        "counter",
        "HTTP requests served by route and status.",
    );
    {
        let map = llmkit_core::sync::lock(&http.requests);
        for ((route, status), n) in map.iter() {
            let _ = writeln!(
                out,
                "{HTTP_REQUESTS}{{route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
    }
    header(
        &mut out,
        HTTP_IN_FLIGHT,
        "gauge",
        "HTTP requests being served.",
    );
    let _ = writeln!(out, "{HTTP_IN_FLIGHT} {}", http.in_flight());
    header(
        &mut out,
        CIRCUIT_STATE,
        "gauge",
        "Circuit breaker state per provider and model (1 = current state).",
    );
    for b in breakers {
        for state in [
            CircuitState::Closed,
            CircuitState::Open,
            CircuitState::HalfOpen,
        ] {
            let _ = writeln!(
                out,
                "{CIRCUIT_STATE}{{provider=\"{}\",model=\"{}\",state=\"{}\"}} {}",
                escape(&b.provider),
                escape(&b.model),
                state.as_str(),
                u8::from(b.state == state)
            );
        }
    }
    out
}
