//! Every span name, attribute key, event name and trail convention llmkit records, in one place.
//!
//! Keys under `gen_ai.*`, `server.*` and `error.type` follow the OpenTelemetry GenAI semantic
//! conventions as released in [`SEMCONV_VERSION`] (semantic-conventions v1.41.0, the last release
//! that held the GenAI conventions before they moved to their own repository), so any OTLP
//! backend that understands them (Arize Phoenix, Jaeger, Tempo, Honeycomb, Langfuse, ...) shows
//! llmkit calls natively. Keys under `llmkit.*` are llmkit's own. `docs/observability.md` maps
//! each key to the question it answers.
//!
//! ```
//! use llmkit_core::telemetry::semconv;
//! assert_eq!(semconv::GEN_AI_USAGE_INPUT_TOKENS, "gen_ai.usage.input_tokens");
//! assert!(semconv::ALL_CALL_ATTRIBUTES.contains(&semconv::LLMKIT_PROMPT_VERSION));
//! ```

/// The OpenTelemetry semantic-conventions release the `gen_ai.*` names and the metric bucket
/// boundaries here follow.
pub const SEMCONV_VERSION: &str = "1.41.0";

// ----------------------------------------------------------------------------------- spans

/// The span for one model call, opened by [`TraceLayer`](super::TraceLayer). Its OpenTelemetry
/// display name (`otel.name`) is `"{operation} {model}"`, e.g. `chat gpt-4o`.
pub const SPAN_CALL: &str = "gen_ai.chat";
/// Child span per attempt, opened by the retry layer.
pub const SPAN_ATTEMPT: &str = "llmkit.attempt";
/// Child span per structured-output re-ask.
pub const SPAN_REASK: &str = "llmkit.reask";
/// Child span per fallback link tried.
pub const SPAN_FALLBACK: &str = "llmkit.fallback";
/// Field `tracing-opentelemetry` uses as the exported span name.
pub const OTEL_NAME: &str = "otel.name";
/// Field `tracing-opentelemetry` uses for the span kind (`client` for model calls).
pub const OTEL_KIND: &str = "otel.kind";
/// Field `tracing-opentelemetry` uses for the span status (`error` on failure).
pub const OTEL_STATUS_CODE: &str = "otel.status_code";
/// The `tracing` target of every span and event llmkit's telemetry emits.
pub const TARGET: &str = "llmkit::telemetry";

// ------------------------------------------------------------ OpenTelemetry GenAI attributes

/// Operation: [`OPERATION_CHAT`] (streamed calls are `chat` too, with [`LLMKIT_STREAM`] set)
/// or [`OPERATION_EMBEDDINGS`].
pub const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
/// The `gen_ai.operation.name` of a chat call.
pub const OPERATION_CHAT: &str = "chat";
/// The `gen_ai.operation.name` of an embeddings call.
pub const OPERATION_EMBEDDINGS: &str = "embeddings";
/// Provider, e.g. `openai`, `anthropic`, `gcp.gemini`.
pub const GEN_AI_PROVIDER_NAME: &str = "gen_ai.provider.name";
/// The provider under its pre-1.37 name (`gen_ai.system`), recorded only when
/// [`TraceLayerBuilder::legacy_system_attribute`](super::TraceLayerBuilder::legacy_system_attribute)
/// is on, for backends pinned to the older conventions. Values come from [`legacy_system_name`].
pub const GEN_AI_SYSTEM: &str = "gen_ai.system";
/// Conversation (session, thread) id, from
/// [`RequestMeta::conversation_id`](crate::RequestMeta::conversation_id).
pub const GEN_AI_CONVERSATION_ID: &str = "gen_ai.conversation.id";
/// Output type the request asked for: `json` for a JSON or JSON-schema response format; absent
/// for plain text (the request named no output format).
pub const GEN_AI_OUTPUT_TYPE: &str = "gen_ai.output.type";
/// Stop sequences of the request (a string array).
pub const GEN_AI_REQUEST_STOP_SEQUENCES: &str = "gen_ai.request.stop_sequences";
/// Of the output tokens, those spent on hidden reasoning (recorded when the provider reports
/// any).
pub const GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: &str = "gen_ai.usage.reasoning.output_tokens";
/// Embedding calls: the number of dimensions of the returned vectors, when the model knows it.
pub const GEN_AI_EMBEDDINGS_DIMENSION_COUNT: &str = "gen_ai.embeddings.dimension.count";
/// Host of the provider endpoint (from [`ModelInfo::server`](crate::ModelInfo::server)).
pub const SERVER_ADDRESS: &str = "server.address";
/// Port of the provider endpoint.
pub const SERVER_PORT: &str = "server.port";
/// Opt-in (content capture): the redacted input messages as JSON in the conventions' input
/// messages shape (`[{"role","parts":[{"type":"text","content"}...]}]`).
pub const GEN_AI_INPUT_MESSAGES: &str = "gen_ai.input.messages";
/// Opt-in (content capture): the redacted system messages as JSON parts
/// (`[{"type":"text","content"}...]`), recorded apart from the input messages only for
/// providers that take system instructions apart from the chat history
/// ([`SystemInstructions::Separate`](crate::SystemInstructions::Separate)).
pub const GEN_AI_SYSTEM_INSTRUCTIONS: &str = "gen_ai.system_instructions";
/// Opt-in (content capture): the redacted output as JSON in the conventions' output messages
/// shape (`[{"role":"assistant","parts":[...],"finish_reason"}]`).
pub const GEN_AI_OUTPUT_MESSAGES: &str = "gen_ai.output.messages";
/// Model asked for.
pub const GEN_AI_REQUEST_MODEL: &str = "gen_ai.request.model";
/// Model that answered (a dated snapshot, a fallback target).
pub const GEN_AI_RESPONSE_MODEL: &str = "gen_ai.response.model";
/// All prompt tokens, cached ones included.
pub const GEN_AI_USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
/// Generated tokens.
pub const GEN_AI_USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
/// Of the input tokens, those read from the provider's prompt cache.
pub const GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: &str = "gen_ai.usage.cache_read.input_tokens";
/// Of the input tokens, those written to the provider's prompt cache.
pub const GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: &str =
    "gen_ai.usage.cache_creation.input_tokens";
/// Why the model stopped: a string array (`["stop"]`) on OpenTelemetry spans; subscribers
/// without the OpenTelemetry layer see the same list as JSON text.
pub const GEN_AI_RESPONSE_FINISH_REASONS: &str = "gen_ai.response.finish_reasons";
/// The provider's response id.
pub const GEN_AI_RESPONSE_ID: &str = "gen_ai.response.id";
/// Requested temperature.
pub const GEN_AI_REQUEST_TEMPERATURE: &str = "gen_ai.request.temperature";
/// Requested output token limit.
pub const GEN_AI_REQUEST_MAX_TOKENS: &str = "gen_ai.request.max_tokens";
/// Requested nucleus-sampling bound.
pub const GEN_AI_REQUEST_TOP_P: &str = "gen_ai.request.top_p";
/// Requested seed.
pub const GEN_AI_REQUEST_SEED: &str = "gen_ai.request.seed";
/// Error class ([`ErrorKind::as_str`](crate::ErrorKind::as_str)); absent on success.
pub const ERROR_TYPE: &str = "error.type";

// ----------------------------------------------------------------------- llmkit attributes

/// llmkit's request id (joins traces, logs, errors and JSON-lines records).
pub const LLMKIT_REQUEST_ID: &str = "llmkit.request_id";
/// Prompt id.
pub const LLMKIT_PROMPT_ID: &str = "llmkit.prompt.id";
/// Prompt version.
pub const LLMKIT_PROMPT_VERSION: &str = "llmkit.prompt.version";
/// Prompt content hash.
pub const LLMKIT_PROMPT_HASH: &str = "llmkit.prompt.hash";
/// Ids of retrieved context that went into the prompt, comma-separated.
pub const LLMKIT_CONTEXT_IDS: &str = "llmkit.context_ids";
/// Whether a cache layer answered.
pub const LLMKIT_CACHE_HIT: &str = "llmkit.cache_hit";
/// Attempts the call took (1 without retries).
pub const LLMKIT_ATTEMPTS: &str = "llmkit.attempts";
/// Cost in USD as an exact decimal string; absent when the cost is unknown.
pub const LLMKIT_COST_USD: &str = "llmkit.cost_usd";
/// Whether the price table did not know the model.
pub const LLMKIT_COST_UNKNOWN: &str = "llmkit.cost_unknown";
/// Price table version that priced the call.
pub const LLMKIT_PRICE_TABLE: &str = "llmkit.price_table";
/// Tenant or customer.
pub const LLMKIT_TENANT: &str = "llmkit.tenant";
/// Whether the call was streamed.
pub const LLMKIT_STREAM: &str = "llmkit.stream";
/// Whether a fallback link other than the first answered.
pub const LLMKIT_FALLBACK: &str = "llmkit.fallback";

/// Every attribute a call span declares, in declaration order.
pub const ALL_CALL_ATTRIBUTES: &[&str] = &[
    GEN_AI_OPERATION_NAME,
    GEN_AI_PROVIDER_NAME,
    GEN_AI_SYSTEM,
    GEN_AI_CONVERSATION_ID,
    GEN_AI_EMBEDDINGS_DIMENSION_COUNT,
    GEN_AI_OUTPUT_TYPE,
    SERVER_ADDRESS,
    SERVER_PORT,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_RESPONSE_MODEL,
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
    GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    GEN_AI_RESPONSE_FINISH_REASONS,
    GEN_AI_RESPONSE_ID,
    GEN_AI_REQUEST_TEMPERATURE,
    GEN_AI_REQUEST_MAX_TOKENS,
    GEN_AI_REQUEST_TOP_P,
    GEN_AI_REQUEST_SEED,
    GEN_AI_REQUEST_STOP_SEQUENCES,
    GEN_AI_SYSTEM_INSTRUCTIONS,
    GEN_AI_INPUT_MESSAGES,
    GEN_AI_OUTPUT_MESSAGES,
    ERROR_TYPE,
    LLMKIT_REQUEST_ID,
    LLMKIT_PROMPT_ID,
    LLMKIT_PROMPT_VERSION,
    LLMKIT_PROMPT_HASH,
    LLMKIT_CONTEXT_IDS,
    LLMKIT_CACHE_HIT,
    LLMKIT_ATTEMPTS,
    LLMKIT_COST_USD,
    LLMKIT_COST_UNKNOWN,
    LLMKIT_PRICE_TABLE,
    LLMKIT_TENANT,
    LLMKIT_STREAM,
    LLMKIT_FALLBACK,
];

/// Maps a `gen_ai.provider.name` value to the `gen_ai.system` value of semantic conventions
/// v1.36 and earlier: the Azure names were `az.ai.*` and xAI was `xai`; every other well-known
/// value (and any custom one) is unchanged.
///
/// ```
/// use llmkit_core::telemetry::semconv::legacy_system_name;
/// assert_eq!(legacy_system_name("azure.ai.openai"), "az.ai.openai");
/// assert_eq!(legacy_system_name("openai"), "openai");
/// ```
pub fn legacy_system_name(provider: &str) -> &str {
    match provider {
        "azure.ai.openai" => "az.ai.openai",
        "azure.ai.inference" => "az.ai.inference",
        "x_ai" => "xai",
        other => other,
    }
}

// --------------------------------------------------------------------------------- metrics

/// Histogram of tokens per call, one record per token type ([`GEN_AI_TOKEN_TYPE`]), unit
/// `{token}`, buckets [`TOKEN_USAGE_BUCKETS`].
pub const METRIC_CLIENT_TOKEN_USAGE: &str = "gen_ai.client.token.usage";
/// Histogram of call duration in seconds (failures included, with [`ERROR_TYPE`]), buckets
/// [`OPERATION_DURATION_BUCKETS`].
pub const METRIC_CLIENT_OPERATION_DURATION: &str = "gen_ai.client.operation.duration";
/// Token type of a [`METRIC_CLIENT_TOKEN_USAGE`] record: `input` or `output`.
pub const GEN_AI_TOKEN_TYPE: &str = "gen_ai.token.type";
/// The conventions' explicit bucket boundaries for [`METRIC_CLIENT_TOKEN_USAGE`].
pub const TOKEN_USAGE_BUCKETS: [f64; 14] = [
    1.0,
    4.0,
    16.0,
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
];
/// The conventions' explicit bucket boundaries (seconds) for
/// [`METRIC_CLIENT_OPERATION_DURATION`].
pub const OPERATION_DURATION_BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

// ----------------------------------------------------------------------- trail conventions

/// Trail layer name a cache writes; event [`TRAIL_EVENT_HIT`] marks a hit.
pub const TRAIL_LAYER_CACHE: &str = "cache";
/// Trail event a cache writes on a hit.
pub const TRAIL_EVENT_HIT: &str = "hit";
/// Trail layer name the retry layer writes.
pub const TRAIL_LAYER_RETRY: &str = "retry";
/// Trail event written once per request that was sent and failed, by the layer that swallowed
/// the failure (retry for its attempts, fallback for a skipped link's). The trace counts
/// `attempts` = these + router escalations + 1 for the answer, or 0 for a cache hit or a
/// replayed or joined duplicate: the requests actually sent.
pub const TRAIL_EVENT_ATTEMPT_FAILED: &str = "attempt_failed";
/// Trail event a fallback writes naming what answered: a link (`link 1 anthropic/claude-…`),
/// [`FALLBACK_CACHED_ANSWER`] or [`FALLBACK_STATIC_DEFAULT`] (the last two send no request).
pub const TRAIL_EVENT_ANSWERED: &str = "answered";
/// A fallback's `answered` detail when its cached-answer lookup answered.
pub const FALLBACK_CACHED_ANSWER: &str = "cached answer";
/// A fallback's `answered` detail when its static default answered.
pub const FALLBACK_STATIC_DEFAULT: &str = "static default";
/// Trail layer name the router writes.
pub const TRAIL_LAYER_ROUTER: &str = "router";
/// Trail event the router writes when a rejected cheap reply was escalated (one more request).
pub const TRAIL_EVENT_ESCALATED: &str = "escalated";
/// Trail layer name the idempotency layer writes.
pub const TRAIL_LAYER_IDEMPOTENCY: &str = "idempotency";
/// Trail event for a duplicate answered with a stored result.
pub const TRAIL_EVENT_REPLAYED: &str = "replayed";
/// Trail event for a duplicate that shared another call's in-flight result.
pub const TRAIL_EVENT_JOINED: &str = "joined";
/// Trail layer name a fallback writes.
pub const TRAIL_LAYER_FALLBACK: &str = "fallback";
/// Trail event a fallback writes for each link that failed before another answered; its
/// presence means the answer came from a fallback, not the primary.
pub const TRAIL_EVENT_SKIPPED: &str = "skipped";
/// Trail layer name the structured-output machinery writes.
pub const TRAIL_LAYER_STRUCTURED: &str = "structured";
/// Trail event the structured-output machinery writes for a rejected reply (a re-ask follows).
pub const TRAIL_EVENT_INVALID: &str = "invalid";
/// Trail event any layer may write for a re-ask after invalid output.
pub const TRAIL_EVENT_REASK: &str = "reask";
