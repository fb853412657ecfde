//! In-process metrics: counters and latency histograms by provider, model and prompt version.
//!
//! [`MetricsRegistry`] is fed one [`CallRecord`] per call by the [`TraceLayer`](super::TraceLayer)
//! and read with [`MetricsRegistry::snapshot`] (a plain struct for dashboards and tests) or
//! [`MetricsRegistry::render_prometheus`] (text for a `/metrics` endpoint). With the `metrics`
//! cargo feature every update is also sent through the `metrics` facade crate, so any exporter
//! installed there (Prometheus, StatsD, ...) sees it.
//!
//! Next to llmkit's own series (by prompt version, with cost), the registry keeps the two
//! OpenTelemetry GenAI client histograms, `gen_ai.client.operation.duration` and
//! `gen_ai.client.token.usage`, with the conventions' labels and explicit bucket boundaries
//! ([`GenAiKey`], [`GenAiSeries`]).
//!
//! Latency lives in a [`LogHistogram`]: log-bucketed, under 1.6 % relative error, a few hundred
//! bytes per series, with exact count, sum, min and max.
//!
//! ```
//! use llmkit_core::telemetry::LogHistogram;
//! let mut h = LogHistogram::new();
//! for v in 1..=1000 { h.record(v); }
//! let p95 = h.percentile(0.95).unwrap();
//! assert!((p95 as f64 - 950.0).abs() / 950.0 < 0.02);
//! ```

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use rust_decimal::Decimal;
use serde::Serialize;

use super::semconv as sc;
use super::sink::CallRecord;

/// Sub-buckets per power of two above the linear range; 32 gives ≤ 1/32 bucket width.
const SUB_BITS: u32 = 6;
const LINEAR: u64 = 1 << SUB_BITS;
const HALF: u64 = LINEAR / 2;

/// A log-bucketed histogram of `u64` values (llmkit records latency in microseconds).
///
/// Values below 64 are exact; above, each power of two is split into 32 buckets, so a reported
/// percentile is within 1.6 % of a true sample value. Count, sum, min and max are exact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogHistogram {
    buckets: BTreeMap<u32, u64>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

fn bucket_of(v: u64) -> u32 {
    if v < LINEAR {
        return v as u32;
    }
    let e = 63 - v.leading_zeros(); // floor(log2 v) >= SUB_BITS
    let shift = e + 1 - SUB_BITS;
    let m = v >> shift; // in [32, 64)
    (LINEAR + u64::from(e - SUB_BITS) * HALF + (m - HALF)) as u32
}

/// Lowest value and width of a bucket.
fn bucket_range(idx: u32) -> (u64, u64) {
    let idx = u64::from(idx);
    if idx < LINEAR {
        return (idx, 1);
    }
    let k = idx - LINEAR;
    let e = k / HALF + u64::from(SUB_BITS);
    let m = k % HALF + HALF;
    let shift = e + 1 - u64::from(SUB_BITS);
    (m << shift, 1 << shift)
}

impl LogHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one value.
    pub fn record(&mut self, v: u64) {
        *self.buckets.entry(bucket_of(v)).or_insert(0) += 1;
        if self.count == 0 || v < self.min {
            self.min = v;
        }
        self.max = self.max.max(v);
        self.count += 1;
        self.sum += u128::from(v);
    }

    /// Number of values.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Exact sum of values.
    pub fn sum(&self) -> u128 {
        self.sum
    }

    /// Smallest value, if any.
    pub fn min(&self) -> Option<u64> {
        (self.count > 0).then_some(self.min)
    }

    /// Largest value, if any.
    pub fn max(&self) -> Option<u64> {
        (self.count > 0).then_some(self.max)
    }

    /// The `q` quantile (`0.0..=1.0`, nearest-rank), or `None` when empty. The estimate is the
    /// middle of the bucket holding that rank, clamped to the exact min and max.
    pub fn percentile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0u64;
        for (&idx, &n) in &self.buckets {
            seen += n;
            if seen >= rank {
                let (lo, width) = bucket_range(idx);
                let mid = lo + (width - 1) / 2;
                return Some(mid.clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }

    /// Merges another histogram into this one.
    pub fn merge(&mut self, other: &LogHistogram) {
        if other.count == 0 {
            return;
        }
        for (&k, &n) in &other.buckets {
            *self.buckets.entry(k).or_insert(0) += n;
        }
        self.min = if self.count == 0 {
            other.min
        } else {
            self.min.min(other.min)
        };
        self.max = self.max.max(other.max);
        self.count += other.count;
        self.sum += other.sum;
    }
}

/// The labels every series carries. An empty `prompt_version` means no prompt reference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SeriesKey {
    /// Provider that answered (or was asked, for failures).
    pub provider: String,
    /// Model that answered (or was asked, for failures).
    pub model: String,
    /// `id@version` of the prompt, or empty.
    pub prompt_version: String,
}

/// Counters and latency of one series.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SeriesSnapshot {
    /// Calls finished (successes and failures).
    pub requests: u64,
    /// Failures by error type ([`ErrorKind::as_str`](crate::ErrorKind::as_str)).
    pub errors: BTreeMap<String, u64>,
    /// Input tokens (cached included).
    pub input_tokens: u64,
    /// Of input, cache reads.
    pub cached_input_tokens: u64,
    /// Of input, cache writes.
    pub cache_write_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Sum of known costs, exact.
    pub cost_usd: Decimal,
    /// Successful calls whose cost was unknown (model not in the price table).
    pub cost_unknown: u64,
    /// Latency p50 in milliseconds.
    pub latency_p50_ms: f64,
    /// Latency p95 in milliseconds.
    pub latency_p95_ms: f64,
    /// Latency p99 in milliseconds.
    pub latency_p99_ms: f64,
    /// Sum of latencies in milliseconds.
    pub latency_sum_ms: f64,
    #[serde(skip)]
    latency: LogHistogram,
}

impl SeriesSnapshot {
    /// Errors of all types.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Mean known cost per request (`cost_usd / (requests − cost_unknown)`), if any was priced.
    pub fn cost_per_request(&self) -> Option<Decimal> {
        let priced = self.requests.saturating_sub(self.cost_unknown);
        (priced > 0).then(|| self.cost_usd / Decimal::from(priced))
    }

    /// The latency histogram in microseconds.
    pub fn latency_us(&self) -> &LogHistogram {
        &self.latency
    }
}

/// A histogram over fixed bucket boundaries, as OpenTelemetry's explicit-bucket histograms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BucketHistogram {
    /// Upper bounds (inclusive) of the buckets; one more bucket holds larger values.
    pub bounds: Vec<f64>,
    /// Values per bucket (not cumulative): `counts[i]` holds values in
    /// `(bounds[i-1], bounds[i]]`, the last entry those above every bound.
    pub counts: Vec<u64>,
    /// Number of values.
    pub count: u64,
    /// Sum of values.
    pub sum: f64,
}

impl BucketHistogram {
    /// An empty histogram over `bounds` (ascending).
    pub fn new(bounds: &[f64]) -> Self {
        BucketHistogram {
            bounds: bounds.to_vec(),
            counts: vec![0; bounds.len() + 1],
            count: 0,
            sum: 0.0,
        }
    }

    /// Records one value.
    pub fn record(&mut self, v: f64) {
        let i = self.bounds.partition_point(|b| *b < v);
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
        self.count += 1;
        self.sum += v;
    }
}

/// Labels of the OpenTelemetry GenAI client metrics (`gen_ai.operation.name`,
/// `gen_ai.provider.name`, `gen_ai.request.model`, `gen_ai.response.model`, `server.address`,
/// `server.port`, `error.type`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct GenAiKey {
    /// `chat` or `embeddings`.
    pub operation: String,
    /// Provider that answered (or was asked, for failures).
    pub provider: String,
    /// Model asked for.
    pub request_model: String,
    /// Model that answered; `None` for failures.
    pub response_model: Option<String>,
    /// Endpoint host, when known.
    pub server_address: Option<String>,
    /// Endpoint port, when known.
    pub server_port: Option<u16>,
    /// Error class of failed calls.
    pub error_type: Option<String>,
}

impl GenAiKey {
    /// The labels as OpenTelemetry attribute `(key, value)` pairs, absent ones left out.
    pub fn attributes(&self) -> Vec<(&'static str, String)> {
        let mut a = vec![
            (sc::GEN_AI_OPERATION_NAME, self.operation.clone()),
            (sc::GEN_AI_PROVIDER_NAME, self.provider.clone()),
            (sc::GEN_AI_REQUEST_MODEL, self.request_model.clone()),
        ];
        if let Some(m) = &self.response_model {
            a.push((sc::GEN_AI_RESPONSE_MODEL, m.clone()));
        }
        if let Some(h) = &self.server_address {
            a.push((sc::SERVER_ADDRESS, h.clone()));
        }
        if let Some(p) = self.server_port {
            a.push((sc::SERVER_PORT, p.to_string()));
        }
        if let Some(e) = &self.error_type {
            a.push((sc::ERROR_TYPE, e.clone()));
        }
        a
    }

    /// The labels of a finished call.
    pub fn of_record(record: &CallRecord) -> Self {
        GenAiKey {
            operation: record.operation.clone(),
            provider: record.provider.clone(),
            request_model: record.request_model.clone(),
            response_model: record.response_model.clone(),
            server_address: record.server.as_ref().map(|s| s.host.clone()),
            server_port: record.server.as_ref().map(|s| s.port),
            error_type: record.error_type.map(|k| k.as_str().to_owned()),
        }
    }
}

/// The GenAI client histograms of one [`GenAiKey`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GenAiSeries {
    /// `gen_ai.client.operation.duration` in seconds, buckets
    /// [`OPERATION_DURATION_BUCKETS`](sc::OPERATION_DURATION_BUCKETS).
    pub duration_s: BucketHistogram,
    /// `gen_ai.client.token.usage` with `gen_ai.token.type=input`, buckets
    /// [`TOKEN_USAGE_BUCKETS`](sc::TOKEN_USAGE_BUCKETS).
    pub input_tokens: BucketHistogram,
    /// `gen_ai.client.token.usage` with `gen_ai.token.type=output`.
    pub output_tokens: BucketHistogram,
}

impl Default for GenAiSeries {
    fn default() -> Self {
        GenAiSeries {
            duration_s: BucketHistogram::new(&sc::OPERATION_DURATION_BUCKETS),
            input_tokens: BucketHistogram::new(&sc::TOKEN_USAGE_BUCKETS),
            output_tokens: BucketHistogram::new(&sc::TOKEN_USAGE_BUCKETS),
        }
    }
}

/// A point-in-time copy of the registry.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MetricsSnapshot {
    /// Series, sorted by labels.
    pub series: Vec<(SeriesKey, SeriesSnapshot)>,
    /// The OpenTelemetry GenAI client histograms, sorted by labels.
    pub genai: Vec<(GenAiKey, GenAiSeries)>,
    /// Records the export queue dropped because it was full.
    pub export_dropped: u64,
}

impl MetricsSnapshot {
    /// All series merged (totals across providers, models and prompt versions).
    pub fn total(&self) -> SeriesSnapshot {
        let mut t = SeriesSnapshot::default();
        for (_, s) in &self.series {
            t.requests += s.requests;
            for (k, n) in &s.errors {
                *t.errors.entry(k.clone()).or_insert(0) += n;
            }
            t.input_tokens += s.input_tokens;
            t.cached_input_tokens += s.cached_input_tokens;
            t.cache_write_tokens += s.cache_write_tokens;
            t.output_tokens += s.output_tokens;
            t.cost_usd += s.cost_usd;
            t.cost_unknown += s.cost_unknown;
            t.latency.merge(&s.latency);
        }
        t.cost_usd = t.cost_usd.normalize();
        t.fill_percentiles();
        t
    }

    /// The series with these labels.
    pub fn get(
        &self,
        provider: &str,
        model: &str,
        prompt_version: &str,
    ) -> Option<&SeriesSnapshot> {
        self.series
            .iter()
            .find(|(k, _)| {
                k.provider == provider && k.model == model && k.prompt_version == prompt_version
            })
            .map(|(_, s)| s)
    }
}

impl SeriesSnapshot {
    fn fill_percentiles(&mut self) {
        let ms = |v: Option<u64>| v.map_or(0.0, |us| us as f64 / 1000.0);
        self.latency_p50_ms = ms(self.latency.percentile(0.50));
        self.latency_p95_ms = ms(self.latency.percentile(0.95));
        self.latency_p99_ms = ms(self.latency.percentile(0.99));
        self.latency_sum_ms = self.latency.sum() as f64 / 1000.0;
    }
}

/// The labels of a [`SeriesKey`], from a key or borrowed from a record, so the registry finds
/// a series without building its key (`BTreeMap::get` through [`Borrow`]). Ordered exactly as
/// `SeriesKey`'s derived order: provider, model, then the prompt label as text.
trait SeriesLabels {
    /// Provider, model, and the prompt label in up to three pieces (`id`, `@`, `version`)
    /// whose concatenation is the label.
    fn series_parts(&self) -> (&str, &str, [&str; 3]);
}

impl SeriesLabels for SeriesKey {
    fn series_parts(&self) -> (&str, &str, [&str; 3]) {
        (&self.provider, &self.model, [&self.prompt_version, "", ""])
    }
}

impl<'a> Borrow<dyn SeriesLabels + 'a> for SeriesKey {
    fn borrow(&self) -> &(dyn SeriesLabels + 'a) {
        self
    }
}

impl Ord for dyn SeriesLabels + '_ {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let (p, m, label) = self.series_parts();
        let (op, om, olabel) = other.series_parts();
        // `str` orders by bytes, so comparing the pieces' bytes orders the joined label.
        (p, m).cmp(&(op, om)).then_with(|| match (label, olabel) {
            // Both labels in one piece (a stored key, or a call without a prompt): as text.
            ([a, "", ""], [b, "", ""]) => a.cmp(b),
            _ => label_bytes(label).cmp(label_bytes(olabel)),
        })
    }
}

/// The bytes of a label given in pieces.
fn label_bytes<'a>(label: [&'a str; 3]) -> impl Iterator<Item = u8> + 'a {
    label.into_iter().flat_map(str::bytes)
}

impl PartialOrd for dyn SeriesLabels + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for dyn SeriesLabels + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for dyn SeriesLabels + '_ {}

/// The labels of a [`GenAiKey`], from a key or borrowed from a record, in its field order (the
/// derived order compares fields in turn, as this tuple does).
trait GenAiLabels {
    #[allow(clippy::type_complexity)]
    fn genai_parts(
        &self,
    ) -> (
        &str,
        &str,
        &str,
        Option<&str>,
        Option<&str>,
        Option<u16>,
        Option<&str>,
    );
}

impl GenAiLabels for GenAiKey {
    fn genai_parts(
        &self,
    ) -> (
        &str,
        &str,
        &str,
        Option<&str>,
        Option<&str>,
        Option<u16>,
        Option<&str>,
    ) {
        (
            &self.operation,
            &self.provider,
            &self.request_model,
            self.response_model.as_deref(),
            self.server_address.as_deref(),
            self.server_port,
            self.error_type.as_deref(),
        )
    }
}

impl<'a> Borrow<dyn GenAiLabels + 'a> for GenAiKey {
    fn borrow(&self) -> &(dyn GenAiLabels + 'a) {
        self
    }
}

impl Ord for dyn GenAiLabels + '_ {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.genai_parts().cmp(&other.genai_parts())
    }
}

impl PartialOrd for dyn GenAiLabels + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for dyn GenAiLabels + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for dyn GenAiLabels + '_ {}

/// A record's labels, borrowed.
struct RecordLabels<'a>(&'a CallRecord);

impl RecordLabels<'_> {
    /// The owned key, for a series' first call.
    fn to_key(&self) -> SeriesKey {
        SeriesKey {
            provider: self.0.provider.clone(),
            model: self.0.model().to_owned(),
            prompt_version: self.0.prompt_label(),
        }
    }
}

impl SeriesLabels for RecordLabels<'_> {
    fn series_parts(&self) -> (&str, &str, [&str; 3]) {
        let r = self.0;
        // The pieces of `CallRecord::prompt_label`.
        let label = match &r.prompt {
            Some(p) => [p.id.as_str(), "@", p.version.as_str()],
            None => ["", "", ""],
        };
        (&r.provider, r.model(), label)
    }
}

impl GenAiLabels for RecordLabels<'_> {
    fn genai_parts(
        &self,
    ) -> (
        &str,
        &str,
        &str,
        Option<&str>,
        Option<&str>,
        Option<u16>,
        Option<&str>,
    ) {
        // The fields of `GenAiKey::of_record`.
        let r = self.0;
        (
            &r.operation,
            &r.provider,
            &r.request_model,
            r.response_model.as_deref(),
            r.server.as_ref().map(|s| s.host.as_str()),
            r.server.as_ref().map(|s| s.port),
            r.error_type.map(|k| k.as_str()),
        )
    }
}

/// A function told about every record the registry counts.
type Listener = Arc<dyn Fn(&CallRecord) + Send + Sync>;

/// The in-process metrics registry. Cheap to clone (an `Arc`); all clones share the data.
#[derive(Clone, Default)]
pub struct MetricsRegistry {
    series: Arc<Mutex<BTreeMap<SeriesKey, SeriesSnapshot>>>,
    genai: Arc<Mutex<BTreeMap<GenAiKey, GenAiSeries>>>,
    listeners: Arc<RwLock<Vec<Listener>>>,
    dropped: Arc<AtomicU64>,
    #[cfg(feature = "metrics")]
    facade: Arc<facade::HandleCache>,
}

impl std::fmt::Debug for MetricsRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsRegistry").finish_non_exhaustive()
    }
}

impl MetricsRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one finished call.
    pub fn record(&self, record: &CallRecord) {
        // Series are found by labels borrowed from the record; their owned keys are built only
        // on a series' first call (issue 23: ten strings copied per call before).
        let key = RecordLabels(record);
        let latency_us = record.latency_us();
        {
            let mut map = crate::sync::lock(&self.series);
            if map.get(&key as &dyn SeriesLabels).is_none() {
                map.insert(key.to_key(), SeriesSnapshot::default());
            }
            let Some(s) = map.get_mut(&key as &dyn SeriesLabels) else {
                return;
            };
            s.requests += 1;
            if let Some(kind) = record.error_type {
                *s.errors.entry(kind.as_str().to_owned()).or_insert(0) += 1;
            }
            if let Some(u) = &record.usage {
                s.input_tokens += u.input_tokens;
                s.cached_input_tokens += u.cached_input_tokens;
                s.cache_write_tokens += u.cache_write_tokens;
                s.output_tokens += u.output_tokens;
            }
            if let Some(c) = &record.cost {
                s.cost_usd = s.cost_usd.checked_add(c.total_usd).unwrap_or(Decimal::MAX);
            }
            if record.cost_unknown {
                s.cost_unknown += 1;
            }
            s.latency.record(latency_us);
        }
        {
            let mut map = crate::sync::lock(&self.genai);
            if map.get(&key as &dyn GenAiLabels).is_none() {
                map.insert(GenAiKey::of_record(record), GenAiSeries::default());
            }
            let Some(g) = map.get_mut(&key as &dyn GenAiLabels) else {
                return;
            };
            g.duration_s.record(latency_us as f64 / 1e6);
            if let Some(u) = &record.usage {
                g.input_tokens.record(u.input_tokens as f64);
                // Embeddings produce vectors, not tokens: no output record for them.
                if record.operation != sc::OPERATION_EMBEDDINGS {
                    g.output_tokens.record(u.output_tokens as f64);
                }
            }
        }
        #[cfg(feature = "metrics")]
        self.facade.record(&key, record, latency_us);
        let listeners = match self.listeners.read() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        for l in listeners.iter() {
            l(record);
        }
    }

    /// Calls `listener` with every record after the registry counted it, on the call path (keep
    /// it short). The `otel` feature feeds its OpenTelemetry histograms this way.
    pub fn on_record(&self, listener: impl Fn(&CallRecord) + Send + Sync + 'static) {
        let mut listeners = match self.listeners.write() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        listeners.push(Arc::new(listener));
    }

    /// Counts records an export queue dropped.
    pub fn record_dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        ::metrics::counter!(names::EXPORT_DROPPED).increment(n);
    }

    /// A copy of every series, with percentiles filled in.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let map = crate::sync::lock(&self.series);
        let series = map
            .iter()
            .map(|(k, s)| {
                let mut s = s.clone();
                s.cost_usd = s.cost_usd.normalize();
                s.fill_percentiles();
                (k.clone(), s)
            })
            .collect();
        drop(map);
        let genai = crate::sync::lock(&self.genai)
            .iter()
            .map(|(k, g)| (k.clone(), g.clone()))
            .collect();
        MetricsSnapshot {
            series,
            genai,
            export_dropped: self.dropped.load(Ordering::Relaxed),
        }
    }

    /// Prometheus text exposition (version 0.0.4) of every series. Latency is a summary with
    /// the 0.5, 0.95 and 0.99 quantiles in seconds.
    pub fn render_prometheus(&self) -> String {
        let snap = self.snapshot();
        let mut out = String::new();
        let header = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        header(
            &mut out,
            names::REQUESTS,
            "counter",
            "Model calls finished.",
        );
        for (k, s) in &snap.series {
            let _ = writeln!(out, "{}{{{}}} {}", names::REQUESTS, labels(k), s.requests);
        }
        header(
            &mut out,
            names::ERRORS,
            "counter",
            "Failed model calls by error type.",
        );
        for (k, s) in &snap.series {
            for (ty, n) in &s.errors {
                let _ = writeln!(
                    out,
                    "{}{{{},error_type=\"{}\"}} {n}",
                    names::ERRORS,
                    labels(k),
                    escape(ty)
                );
            }
        }
        header(
            &mut out,
            names::TOKENS,
            "counter",
            "Tokens by kind (cached_input and cache_write are part of input).",
        );
        for (k, s) in &snap.series {
            for (kind, n) in [
                ("input", s.input_tokens),
                ("cached_input", s.cached_input_tokens),
                ("cache_write", s.cache_write_tokens),
                ("output", s.output_tokens),
            ] {
                let _ = writeln!(
                    out,
                    "{}{{{},kind=\"{kind}\"}} {n}",
                    names::TOKENS,
                    labels(k)
                );
            }
        }
        header(&mut out, names::COST, "counter", "Known cost in USD.");
        for (k, s) in &snap.series {
            let _ = writeln!(out, "{}{{{}}} {}", names::COST, labels(k), s.cost_usd);
        }
        header(
            &mut out,
            names::COST_UNKNOWN,
            "counter",
            "Calls whose model was not in the price table.",
        );
        for (k, s) in &snap.series {
            let _ = writeln!(
                out,
                "{}{{{}}} {}",
                names::COST_UNKNOWN,
                labels(k),
                s.cost_unknown
            );
        }
        header(
            &mut out,
            names::LATENCY,
            "summary",
            "Model call latency in seconds.",
        );
        for (k, s) in &snap.series {
            let l = labels(k);
            for (q, v) in [
                ("0.5", s.latency_p50_ms),
                ("0.95", s.latency_p95_ms),
                ("0.99", s.latency_p99_ms),
            ] {
                let _ = writeln!(
                    out,
                    "{}{{{l},quantile=\"{q}\"}} {}",
                    names::LATENCY,
                    v / 1000.0
                );
            }
            let _ = writeln!(
                out,
                "{}_sum{{{l}}} {}",
                names::LATENCY,
                s.latency_sum_ms / 1000.0
            );
            let _ = writeln!(out, "{}_count{{{l}}} {}", names::LATENCY, s.latency.count());
        }
        header(
            &mut out,
            names::EXPORT_DROPPED,
            "counter",
            "Trace records dropped because the export queue was full.",
        );
        let _ = writeln!(out, "{} {}", names::EXPORT_DROPPED, snap.export_dropped);
        header(
            &mut out,
            names::GENAI_DURATION,
            "histogram",
            "GenAI operation duration (OpenTelemetry gen_ai.client.operation.duration).",
        );
        for (k, g) in &snap.genai {
            render_histogram(
                &mut out,
                names::GENAI_DURATION,
                &genai_labels(k, None),
                &g.duration_s,
            );
        }
        header(
            &mut out,
            names::GENAI_TOKENS,
            "histogram",
            "Tokens per GenAI call (OpenTelemetry gen_ai.client.token.usage).",
        );
        for (k, g) in &snap.genai {
            for (ty, h) in [("input", &g.input_tokens), ("output", &g.output_tokens)] {
                if h.count > 0 {
                    render_histogram(&mut out, names::GENAI_TOKENS, &genai_labels(k, Some(ty)), h);
                }
            }
        }
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Prometheus labels of a GenAI series: the attribute keys with `.` as `_`.
fn genai_labels(k: &GenAiKey, token_type: Option<&str>) -> String {
    let mut attrs = k.attributes();
    if let Some(t) = token_type {
        attrs.push((sc::GEN_AI_TOKEN_TYPE, t.to_owned()));
    }
    attrs
        .iter()
        .map(|(k, v)| format!("{}=\"{}\"", k.replace('.', "_"), escape(v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Cumulative `_bucket{le=…}` lines, `_sum` and `_count`.
fn render_histogram(out: &mut String, name: &str, labels: &str, h: &BucketHistogram) {
    let mut cumulative = 0u64;
    for (i, n) in h.counts.iter().enumerate() {
        cumulative += n;
        let le = h
            .bounds
            .get(i)
            .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
}

fn labels(k: &SeriesKey) -> String {
    format!(
        "provider=\"{}\",model=\"{}\",prompt_version=\"{}\"",
        escape(&k.provider),
        escape(&k.model),
        escape(&k.prompt_version)
    )
}

/// Metric names, shared by the Prometheus rendering and the `metrics` facade export.
pub mod names {
    /// Counter of finished calls.
    pub const REQUESTS: &str = "llmkit_requests_total";
    /// Counter of failed calls, labelled `error_type`.
    pub const ERRORS: &str = "llmkit_errors_total";
    /// Counter of tokens, labelled `kind`.
    pub const TOKENS: &str = "llmkit_tokens_total";
    /// Counter of known cost in USD.
    pub const COST: &str = "llmkit_cost_usd_total";
    /// Facade histogram of USD per priced call (the facade has no decimal counter).
    pub const COST_PER_CALL: &str = "llmkit_cost_usd";
    /// Counter of calls with unknown cost.
    pub const COST_UNKNOWN: &str = "llmkit_cost_unknown_total";
    /// Latency (summary in Prometheus text, histogram in the facade), seconds.
    pub const LATENCY: &str = "llmkit_request_duration_seconds";
    /// Counter of dropped trace records.
    pub const EXPORT_DROPPED: &str = "llmkit_export_dropped_total";
    /// `gen_ai.client.operation.duration` in Prometheus text (seconds).
    pub const GENAI_DURATION: &str = "gen_ai_client_operation_duration_seconds";
    /// `gen_ai.client.token.usage` in Prometheus text.
    pub const GENAI_TOKENS: &str = "gen_ai_client_token_usage";
}

#[cfg(feature = "metrics")]
mod facade {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::{RecordLabels, SeriesKey, SeriesLabels, names};
    use crate::telemetry::sink::CallRecord;
    use rust_decimal::prelude::ToPrimitive;

    /// One series' metric handles, registered with the recorder that was current then.
    struct Handles {
        recorder: usize,
        labels: Vec<(&'static str, String)>,
        requests: ::metrics::Counter,
        tokens: [::metrics::Counter; 4],
        cost: ::metrics::Histogram,
        cost_unknown: ::metrics::Counter,
        latency: ::metrics::Histogram,
    }

    /// Registered handles per series. Registering builds a key with owned labels (dozens of
    /// allocations per call, even when no recorder is installed); a handle only increments.
    #[derive(Default)]
    pub(super) struct HandleCache {
        series: Mutex<BTreeMap<SeriesKey, Handles>>,
    }

    const TOKEN_KINDS: [&str; 4] = ["input", "cached_input", "cache_write", "output"];

    /// Identifies the recorder the macros would use now, so handles registered before
    /// `set_global_recorder` (with the no-op recorder) are replaced once it is installed.
    fn current_recorder() -> usize {
        ::metrics::with_recorder(|r| std::ptr::from_ref(r).cast::<()>() as usize)
    }

    impl Handles {
        fn register(key: &SeriesKey, recorder: usize) -> Self {
            let labels = vec![
                ("provider", key.provider.clone()),
                ("model", key.model.clone()),
                ("prompt_version", key.prompt_version.clone()),
            ];
            let tokens = TOKEN_KINDS.map(|kind| {
                let mut l = labels.clone();
                l.push(("kind", kind.to_owned()));
                ::metrics::counter!(names::TOKENS, &l)
            });
            Handles {
                recorder,
                requests: ::metrics::counter!(names::REQUESTS, &labels),
                tokens,
                cost: ::metrics::histogram!(names::COST_PER_CALL, &labels),
                cost_unknown: ::metrics::counter!(names::COST_UNKNOWN, &labels),
                latency: ::metrics::histogram!(names::LATENCY, &labels),
                labels,
            }
        }
    }

    impl HandleCache {
        pub(super) fn record(&self, key: &RecordLabels<'_>, record: &CallRecord, latency_us: u64) {
            let recorder = current_recorder();
            let mut series = crate::sync::lock(&self.series);
            let stale = series
                .get(key as &dyn SeriesLabels)
                .is_none_or(|h| h.recorder != recorder);
            if stale {
                let key = key.to_key();
                let handles = Handles::register(&key, recorder);
                series.insert(key, handles);
            }
            let Some(h) = series.get(key as &dyn SeriesLabels) else {
                return;
            };
            h.requests.increment(1);
            if let Some(kind) = record.error_type {
                // Rare, and one more label dimension: registered on the spot.
                let mut l = h.labels.clone();
                l.push(("error_type", kind.as_str().to_owned()));
                ::metrics::counter!(names::ERRORS, &l).increment(1);
            }
            if let Some(u) = &record.usage {
                let counts = [
                    u.input_tokens,
                    u.cached_input_tokens,
                    u.cache_write_tokens,
                    u.output_tokens,
                ];
                for (counter, n) in h.tokens.iter().zip(counts) {
                    counter.increment(n);
                }
            }
            if let Some(c) = &record.cost {
                // The facade has no decimal type; a float histogram is fine for dashboards,
                // the exact sum stays in the in-process registry and the JSON-lines records.
                h.cost.record(c.total_usd.to_f64().unwrap_or(0.0));
            }
            if record.cost_unknown {
                h.cost_unknown.increment(1);
            }
            h.latency.record(latency_us as f64 / 1e6);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_roundtrip_and_cover_their_values() {
        for v in [
            0u64,
            1,
            63,
            64,
            65,
            100,
            1000,
            123_456,
            9_999_999,
            u64::MAX / 3,
        ] {
            let (lo, w) = bucket_range(bucket_of(v));
            assert!(lo <= v && v - lo < w, "{v} not in [{lo}, {lo}+{w})");
        }
        assert!(bucket_of(1000) < bucket_of(1100));
    }

    #[test]
    fn bucket_histogram_puts_bounds_in_their_own_bucket() {
        let mut h = BucketHistogram::new(&[1.0, 4.0]);
        for v in [0.5, 1.0, 1.5, 4.0, 4.5] {
            h.record(v);
        }
        assert_eq!(h.counts, vec![2, 2, 1]);
        assert_eq!((h.count, h.sum), (5, 11.5));
    }

    #[test]
    fn empty_histogram_has_no_percentile() {
        assert_eq!(LogHistogram::new().percentile(0.5), None);
    }
}
