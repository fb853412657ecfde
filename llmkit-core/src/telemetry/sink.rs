//! One structured [`CallRecord`] per call, sinks that store it, and the bounded export queue.
//!
//! - [`RecordSink`] stores records: [`JsonLinesSink`] appends one JSON object per line to a file
//!   (no collector needed), [`MemorySink`] keeps them for tests and dashboards.
//! - [`ExportQueue`] sits between the call path and a sink: [`ExportQueue::try_export`] never
//!   waits; when the bounded queue is full the record is dropped and counted
//!   ([`ExportQueue::dropped`], and `llmkit_export_dropped_total` in the metrics). A background
//!   thread drains the queue into the sink.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use llmkit_core::telemetry::{CallRecord, ExportQueue, JsonLinesSink};
//!
//! let path = std::env::temp_dir().join(format!("llmkit-doc-{}.jsonl", std::process::id()));
//! let queue = ExportQueue::spawn(Arc::new(JsonLinesSink::create(&path)?), 1024);
//! assert!(queue.try_export(CallRecord::default()));
//! queue.flush().await;
//! let text = std::fs::read_to_string(&path)?;
//! assert_eq!(text.lines().count(), 1);
//! # std::fs::remove_file(&path)?;
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::Thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::error::ErrorKind;
use crate::model::ServerAddress;
use crate::request::PromptRef;
use crate::response::{Cost, Trail, Usage};

/// Version of the [`CallRecord`] schema; bumped when a field changes meaning.
/// Version 2: `input` and `output` hold the OpenTelemetry messages JSON (version 1 held
/// `role: text` lines); `conversation_id` and `server` added.
pub const RECORD_SCHEMA_VERSION: u32 = 2;

/// Request parameters worth keeping with a call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestParams {
    /// Temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Output token limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// Everything recorded about one model call: one line of the JSON-lines trace.
///
/// It carries enough to reconstruct the call without any other system: which prompt version,
/// which model answered, tokens, exact cost and the price table used, latency, the error class,
/// retries, cache hit, fallback and the layers' trail. `docs/observability.md` maps each field to
/// the question it answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// [`RECORD_SCHEMA_VERSION`].
    pub schema: u32,
    /// When the call finished, Unix milliseconds.
    pub ts_unix_ms: u64,
    /// llmkit's request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The idempotency key of the logical call (the caller's, or the one the pipeline
    /// generated), identical across its retries and fallback links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// The provider's response id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_request_id: Option<String>,
    /// `chat`.
    pub operation: String,
    /// Whether the reply was streamed.
    pub stream: bool,
    /// Provider (`gen_ai.provider.name`).
    pub provider: String,
    /// Model asked for.
    pub request_model: String,
    /// Model that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_model: Option<String>,
    /// Prompt id, version and hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<PromptRef>,
    /// Tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Conversation (session, thread) id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// Host and port of the provider endpoint, when the model knows them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerAddress>,
    /// Retrieved context ids that went into the prompt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context_ids: Vec<String>,
    /// Request parameters.
    #[serde(default)]
    pub params: RequestParams,
    /// Tokens, when the call succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Exact cost and the price table version, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
    /// The call succeeded but its model was not in the price table.
    #[serde(default)]
    pub cost_unknown: bool,
    /// Wall time in milliseconds.
    pub latency_ms: f64,
    /// Why the model stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// Error class when the call failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<ErrorKind>,
    /// Error message (one line, no secrets) when the call failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// Attempts it took (1 without retries).
    pub attempts: u32,
    /// A cache layer answered.
    #[serde(default)]
    pub cache_hit: bool,
    /// A fallback link other than the first answered.
    #[serde(default)]
    pub fallback: bool,
    /// Structured-output re-asks.
    #[serde(default)]
    pub reasks: u32,
    /// Notes from layers.
    #[serde(default, skip_serializing_if = "trail_is_empty")]
    pub trail: Trail,
    /// Captured, redacted system instructions as JSON parts, for providers that take them
    /// apart from the chat history (only with content capture on; see
    /// [`SystemInstructions`](crate::SystemInstructions)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_instructions: Option<String>,
    /// Captured, redacted input messages as JSON in the OpenTelemetry input-messages shape
    /// (only with content capture on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// Captured, redacted output messages as JSON in the OpenTelemetry output-messages shape
    /// (only with content capture on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

fn trail_is_empty(t: &Trail) -> bool {
    t.entries().is_empty()
}

impl CallRecord {
    /// The model that answered, or the one asked when the call failed.
    pub fn model(&self) -> &str {
        self.response_model
            .as_deref()
            .unwrap_or(&self.request_model)
    }

    /// `id@version` of the prompt, or an empty string: the metrics label.
    pub fn prompt_label(&self) -> String {
        self.prompt
            .as_ref()
            .map(|p| format!("{}@{}", p.id, p.version))
            .unwrap_or_default()
    }

    /// Latency in whole microseconds.
    pub fn latency_us(&self) -> u64 {
        (self.latency_ms * 1000.0).round().max(0.0) as u64
    }

    /// Whether the call failed.
    pub fn is_error(&self) -> bool {
        self.error_type.is_some()
    }
}

/// Stores call records. Called from the export thread, never from the call path, so it may do
/// blocking I/O.
pub trait RecordSink: Send + Sync {
    /// Stores one record.
    fn write(&self, record: &CallRecord) -> io::Result<()>;

    /// Makes written records durable/visible. Default: nothing to do.
    fn flush(&self) -> io::Result<()> {
        Ok(())
    }
}

/// Appends one JSON object per line to a file.
#[derive(Debug)]
pub struct JsonLinesSink {
    out: Mutex<BufWriter<File>>,
}

impl JsonLinesSink {
    /// Creates (truncates) `path`.
    pub fn create(path: impl AsRef<Path>) -> io::Result<Self> {
        Ok(Self::from_file(File::create(path)?))
    }

    /// Appends to `path`, creating it if needed.
    pub fn append(path: impl AsRef<Path>) -> io::Result<Self> {
        Ok(Self::from_file(
            OpenOptions::new().create(true).append(true).open(path)?,
        ))
    }

    fn from_file(file: File) -> Self {
        JsonLinesSink {
            out: Mutex::new(BufWriter::new(file)),
        }
    }
}

impl RecordSink for JsonLinesSink {
    fn write(&self, record: &CallRecord) -> io::Result<()> {
        let mut out = crate::sync::lock(&self.out);
        serde_json::to_writer(&mut *out, record)?;
        out.write_all(b"\n")
    }

    fn flush(&self) -> io::Result<()> {
        crate::sync::lock(&self.out).flush()
    }
}

/// Keeps records in memory (tests, small dashboards). Clones share the records.
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    records: Arc<Mutex<Vec<CallRecord>>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records stored so far.
    pub fn records(&self) -> Vec<CallRecord> {
        crate::sync::lock(&self.records).clone()
    }
}

impl RecordSink for MemorySink {
    fn write(&self, record: &CallRecord) -> io::Result<()> {
        crate::sync::lock(&self.records).push(record.clone());
        Ok(())
    }
}

enum Msg {
    Record(Box<CallRecord>),
    Flush(oneshot::Sender<()>),
}

struct QueueStats {
    dropped: AtomicU64,
    written: AtomicU64,
    failed: AtomicU64,
    /// Set (and the export thread unparked) when the thread must stop lingering: the queue is
    /// half full or a flush waits.
    urgent: AtomicBool,
}

/// How long the export thread lets records gather after the first one of a batch arrives.
///
/// Why (issue 23): woken for every record, the export thread cost each call a futex wake-up
/// on the call path, and the woken thread preempted the caller's core (one involuntary context
/// switch of the client runtime per call in `LLMKIT_BENCH_COUNTS` of `benches/overhead.rs`;
/// 5–11 µs of export-thread CPU per call under HTTP load). Gathering for a few milliseconds
/// makes that one wake-up per batch. A record reaches the sink at most this much later;
/// [`ExportQueue::flush`] and a half-full queue cut the wait short.
const LINGER: Duration = Duration::from_millis(5);

/// A bounded queue feeding a [`RecordSink`] from a background thread. Cheap to clone.
///
/// [`try_export`](Self::try_export) never blocks: a full queue drops the record and counts it.
/// The thread exits when every clone is dropped, after writing what was queued.
#[derive(Clone)]
pub struct ExportQueue {
    tx: mpsc::Sender<Msg>,
    stats: Arc<QueueStats>,
    /// The export thread, unparked to end its linger early (`None` if it could not start).
    thread: Option<Thread>,
}

impl std::fmt::Debug for ExportQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportQueue")
            .field("dropped", &self.dropped())
            .field("written", &self.written())
            .finish_non_exhaustive()
    }
}

impl ExportQueue {
    /// Starts the export thread for `sink` with room for `capacity` records (minimum 1).
    /// Needs no async runtime.
    pub fn spawn(sink: Arc<dyn RecordSink>, capacity: usize) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let stats = Arc::new(QueueStats {
            dropped: AtomicU64::new(0),
            written: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            urgent: AtomicBool::new(false),
        });
        let thread_stats = stats.clone();
        let spawned = std::thread::Builder::new()
            .name("llmkit-export".to_owned())
            .spawn(move || drain(rx, sink, thread_stats));
        let thread = match spawned {
            Ok(handle) => Some(handle.thread().clone()),
            Err(e) => {
                // Without a thread nothing drains: the queue fills and every record is counted
                // as dropped, which the metrics show. Calls are never affected.
                tracing::error!(error = %e, "cannot start the llmkit export thread");
                None
            }
        };
        ExportQueue { tx, stats, thread }
    }

    /// Ends the export thread's linger now.
    fn hurry(&self) {
        self.stats.urgent.store(true, Ordering::Release);
        if let Some(t) = &self.thread {
            t.unpark();
        }
    }

    /// Queues a record without waiting. Returns `false` (and counts a drop) when the queue is
    /// full or the export thread is gone.
    pub fn try_export(&self, record: CallRecord) -> bool {
        self.try_export_boxed(Box::new(record))
    }

    /// [`try_export`](Self::try_export) of a record already boxed (the trace layer builds it
    /// boxed, so it is not copied again).
    pub(crate) fn try_export_boxed(&self, record: Box<CallRecord>) -> bool {
        match self.tx.try_send(Msg::Record(record)) {
            Ok(()) => {
                // Half full: write now rather than risk dropping records of a burst.
                if self.tx.capacity().saturating_mul(2) < self.tx.max_capacity() {
                    self.hurry();
                }
                true
            }
            Err(_) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Waits until every record queued before this call is written and the sink flushed. For
    /// shutdown and tests; never needed on the call path.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).await.is_ok() {
            self.hurry();
            let _ = wait.await;
        }
    }

    /// Records dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.stats.dropped.load(Ordering::Relaxed)
    }

    /// Records written to the sink.
    pub fn written(&self) -> u64 {
        self.stats.written.load(Ordering::Relaxed)
    }

    /// Records the sink failed to write.
    pub fn failed(&self) -> u64 {
        self.stats.failed.load(Ordering::Relaxed)
    }
}

fn drain(mut rx: mpsc::Receiver<Msg>, sink: Arc<dyn RecordSink>, stats: Arc<QueueStats>) {
    let mut warned = false;
    while let Some(first) = rx.blocking_recv() {
        let lingers = matches!(first, Msg::Record(_));
        handle(first, &*sink, &stats, &mut warned);
        if lingers {
            linger(&stats);
        }
        // While this thread lingers or writes, senders find no waiting receiver and wake
        // nobody: the whole batch costs the call path one wake-up.
        while let Ok(msg) = rx.try_recv() {
            handle(msg, &*sink, &stats, &mut warned);
        }
    }
    let _ = sink.flush();
}

/// Sleeps [`LINGER`], or less when [`ExportQueue::hurry`] says so.
fn linger(stats: &QueueStats) {
    let until = Instant::now() + LINGER;
    loop {
        if stats.urgent.swap(false, Ordering::AcqRel) {
            return;
        }
        let now = Instant::now();
        if now >= until {
            return;
        }
        std::thread::park_timeout(until - now);
    }
}

fn handle(msg: Msg, sink: &dyn RecordSink, stats: &QueueStats, warned: &mut bool) {
    match msg {
        Msg::Record(r) => match sink.write(&r) {
            Ok(()) => {
                stats.written.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                if !*warned {
                    *warned = true;
                    tracing::warn!(error = %e, "llmkit trace sink failed to write a record");
                }
            }
        },
        Msg::Flush(done) => {
            let _ = sink.flush();
            let _ = done.send(());
        }
    }
}
