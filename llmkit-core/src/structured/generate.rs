//! The re-ask loop: ask, extract, validate against the schema, parse, run semantic validators,
//! and on failure ask again with the precise errors.

use std::any::TypeId;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock, RwLock};

use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::Instrument;

use super::schema::{SchemaDialect, schema_for, to_dialect};
use crate::error::{Error, ErrorKind, Result};
use crate::message::{ContentPart, Message, Role};
use crate::model::{ChatModel, StreamAccumulator};
use crate::request::{ChatRequest, PromptRef, ResponseFormat};
use crate::response::{ChatResponse, Cost, FinishReason, StreamEvent, Trail, Usage};

use super::extract::{json_candidates, looks_truncated};
use super::partial::partial_json;
use super::violations::{MAX_ERROR_CHARS, clip};

/// Most validation errors reported per attempt; more would only bloat the re-ask prompt.
const MAX_ERRORS_PER_ATTEMPT: usize = 12;

/// A schema compiled once per Rust type and shared by every call.
pub(crate) struct CompiledSchema {
    pub(crate) name: String,
    pub(crate) schema: Value,
    /// Whether OpenAI-style strict mode can express the schema; when not, the request asks
    /// for `strict: false` and the client-side check does the enforcing.
    pub(crate) strict: bool,
    validator: jsonschema::Validator,
}

impl fmt::Debug for CompiledSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledSchema")
            .field("name", &self.name)
            .field("strict", &self.strict)
            .finish_non_exhaustive()
    }
}

impl CompiledSchema {
    fn compile(name: String, schema: Value) -> Result<Self> {
        let validator = jsonschema::validator_for(&schema).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("json schema for `{name}` does not compile: {e}"),
            )
        })?;
        let strict = to_dialect(&schema, SchemaDialect::OpenAiStrict).is_ok();
        Ok(CompiledSchema {
            name,
            schema,
            strict,
            validator,
        })
    }

    /// Every schema violation of `instance`, as `path: message` lines.
    fn violations(&self, instance: &Value) -> Vec<String> {
        super::violations::violations(&self.validator, instance, MAX_ERRORS_PER_ATTEMPT)
    }
}

type Cache = RwLock<HashMap<TypeId, Arc<CompiledSchema>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Cache::default)
}

/// The compiled schema of `T`, compiled on first use and cached for the process.
pub(crate) fn compiled_for<T: schemars::JsonSchema + 'static>() -> Result<Arc<CompiledSchema>> {
    let id = TypeId::of::<T>();
    if let Some(hit) = crate::sync::read(cache()).get(&id) {
        return Ok(hit.clone());
    }
    let name = super::schema::wire_name(&T::schema_name(), "output");
    let compiled = Arc::new(CompiledSchema::compile(name, schema_for::<T>())?);
    let mut map = crate::sync::write(cache());
    Ok(map.entry(id).or_insert(compiled).clone())
}

/// How many schemas have been compiled so far in this process (one per Rust type).
pub fn compiled_schema_count() -> usize {
    crate::sync::read(cache()).len()
}

type Validator<T> = Arc<dyn Fn(&T) -> std::result::Result<(), String> + Send + Sync>;

/// Asks a model for a value of type `T` and does not give up on the first bad reply.
///
/// Defaults: 3 attempts, no dollar bound, no semantic validators. The schema of `T` is
/// compiled once per type and cached for the process.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use llmkit_core::structured::Structured;
/// use llmkit_core::{ChatRequest, Message, ScriptedModel};
///
/// #[derive(serde::Deserialize, schemars::JsonSchema)]
/// struct Verdict { decision: String, confidence: f64 }
///
/// let model = ScriptedModel::builder()
///     .reply(r#"{"decision": "approve", "confidence": 1.7}"#)
///     .reply(r#"{"decision": "approve", "confidence": 0.9}"#)
///     .build();
/// let out = Structured::<Verdict>::new()
///     .max_attempts(3)
///     .validator(|v: &Verdict| {
///         if (0.0..=1.0).contains(&v.confidence) { Ok(()) } else { Err("confidence must be within 0..=1".into()) }
///     })
///     .generate(&model, ChatRequest::user("Refund after 10 days?"))
///     .await?;
/// assert_eq!(out.attempts, 2);
/// assert_eq!(out.value.decision, "approve");
/// # Ok::<(), llmkit_core::Error>(()) }).unwrap();
/// ```
#[must_use]
pub struct Structured<T> {
    max_attempts: u32,
    max_cost_usd: Option<Decimal>,
    allow_unpriced: bool,
    validators: Vec<Validator<T>>,
    _marker: PhantomData<fn() -> T>,
}

impl<T> Clone for Structured<T> {
    fn clone(&self) -> Self {
        Structured {
            max_attempts: self.max_attempts,
            max_cost_usd: self.max_cost_usd,
            allow_unpriced: self.allow_unpriced,
            validators: self.validators.clone(),
            _marker: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Structured<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Structured")
            .field("type", &std::any::type_name::<T>())
            .field("max_attempts", &self.max_attempts)
            .field("max_cost_usd", &self.max_cost_usd)
            .field("allow_unpriced", &self.allow_unpriced)
            .field("validators", &self.validators.len())
            .finish()
    }
}

impl<T> Default for Structured<T> {
    fn default() -> Self {
        Structured {
            max_attempts: 3,
            max_cost_usd: None,
            allow_unpriced: false,
            validators: Vec::new(),
            _marker: PhantomData,
        }
    }
}

/// One attempt whose reply was rejected, kept on the result and on the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedAttempt {
    /// 1-based attempt number.
    pub attempt: u32,
    /// The reply text (or tool-call arguments) the model gave.
    pub raw_text: String,
    /// Why it was rejected: `instance path: message` lines, then semantic validator messages.
    pub errors: Vec<String>,
}

/// A validated value and how it was obtained.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Generated<T> {
    /// The value, validated against the schema and every semantic validator.
    pub value: T,
    /// The JSON the value was parsed from.
    pub json: Value,
    /// How many model calls it took (1 when the first reply was good).
    pub attempts: u32,
    /// The final reply's text (or tool-call arguments).
    pub raw_text: String,
    /// Usage summed over all attempts.
    pub usage: Usage,
    /// Cost summed over attempts whose cost was known; `None` when none was.
    pub cost: Option<Cost>,
    /// The prompt that produced the request, from its metadata.
    pub prompt: Option<PromptRef>,
    /// Earlier attempts that were rejected, oldest first.
    pub rejected: Vec<RejectedAttempt>,
    /// Every response, oldest first.
    pub responses: Vec<ChatResponse>,
    /// Notes of every response plus one `structured` note per attempt.
    pub trail: Trail,
}

impl<T> Structured<T>
where
    T: DeserializeOwned + schemars::JsonSchema + Send + 'static,
{
    /// A generator with the defaults: 3 attempts, no cost bound, no validators.
    pub fn new() -> Self {
        Self::default()
    }

    /// Most model calls, including the first (default 3; at least 1).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Stops re-asking once the summed cost of the attempts reaches this many US dollars
    /// (default: no bound). Money fails closed: when a rejected reply carried no cost (the
    /// model is not priced), the bound cannot be checked, so no re-ask is sent and the call
    /// fails with [`ErrorKind::Config`] naming the unpriced `provider/model`, unless
    /// [`allow_unpriced`](Self::allow_unpriced) says to count such attempts as $0.
    pub fn max_cost_usd(mut self, usd: Decimal) -> Self {
        self.max_cost_usd = Some(usd);
        self
    }

    /// Counts attempts without a known cost as $0 against [`max_cost_usd`](Self::max_cost_usd)
    /// instead of failing (default `false`: closed). The explicit opt-out for models no price
    /// table knows, as `BudgetLayer::allow_unpriced` is for budgets.
    pub fn allow_unpriced(mut self, allow: bool) -> Self {
        self.allow_unpriced = allow;
        self
    }

    /// Adds a semantic check that runs after the schema and serde; its `Err` message is fed
    /// back to the model like a schema error.
    pub fn validator(
        mut self,
        check: impl Fn(&T) -> std::result::Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.validators.push(Arc::new(check));
        self
    }

    /// The request as sent on the first attempt: the schema as a native response format when
    /// the model supports one, otherwise as instructions appended to the system message.
    pub fn prepare(
        &self,
        model_supports_schema: bool,
        mut request: ChatRequest,
    ) -> Result<ChatRequest> {
        let compiled = compiled_for::<T>()?;
        if model_supports_schema {
            request.response_format = ResponseFormat::JsonSchema {
                name: compiled.name.clone(),
                schema: compiled.schema.clone(),
                strict: compiled.strict,
            };
        } else {
            let schema = serde_json::to_string_pretty(&compiled.schema)
                .unwrap_or_else(|_| compiled.schema.to_string());
            let instructions = format!(
                "Reply with one JSON value that conforms to this JSON Schema, and nothing else: no prose, no code fence.\n\n{schema}"
            );
            append_to_system(&mut request.messages, &instructions);
        }
        Ok(request)
    }

    /// Runs the loop against `model`.
    ///
    /// Fails with [`ErrorKind::OutputInvalid`] when no attempt produced a valid value (every
    /// attempt's errors are in the message and in [`Error::attempts`]), with
    /// [`ErrorKind::Truncated`] when a reply hit the token limit (never re-asked: the same
    /// limit would cut it again), or with the model's own error.
    pub async fn generate<M: ChatModel + ?Sized>(
        &self,
        model: &M,
        request: ChatRequest,
    ) -> Result<Generated<T>> {
        self.run(model, request, None).await
    }

    /// Like [`generate`](Structured::generate), but streams each attempt and calls
    /// `on_partial` with the partial object ([`partial_json`]) every time it grows, so a UI can
    /// show fields as they arrive. Partial values are unvalidated previews; the returned value
    /// went through every check. A stream that ends early fails as
    /// [`ErrorKind::Truncated`].
    pub async fn generate_streaming<M: ChatModel + ?Sized>(
        &self,
        model: &M,
        request: ChatRequest,
        mut on_partial: impl FnMut(&Value) + Send,
    ) -> Result<Generated<T>> {
        self.run(model, request, Some(&mut on_partial)).await
    }

    async fn run<M: ChatModel + ?Sized>(
        &self,
        model: &M,
        request: ChatRequest,
        mut on_partial: Option<&mut (dyn FnMut(&Value) + Send)>,
    ) -> Result<Generated<T>> {
        let compiled = compiled_for::<T>()?;
        let info = model.info();
        let (provider, model_name) = (info.provider.clone(), info.model.clone());
        let prompt = request.meta.prompt.clone();
        let mut request = self.prepare(info.capabilities.json_schema, request)?;
        let with_context = |e: Error| {
            let e = e.or_context(&provider, &model_name);
            match &prompt {
                Some(p) if e.prompt().is_none() => e.with_prompt(p.clone()),
                _ => e,
            }
        };

        let mut usage = Usage::default();
        let mut cost: Option<Cost> = None;
        // The first `provider/model` whose reply carried no cost: the cost bound cannot be
        // checked past it.
        let mut unpriced: Option<String> = None;
        let mut rejected: Vec<RejectedAttempt> = Vec::new();
        let mut responses = Vec::new();
        let mut trail = Trail::default();
        let mut budget_stop = false;

        for attempt in 1..=self.max_attempts {
            let span = tracing::info_span!(
                "llmkit.reask",
                attempt,
                prompt = tracing::field::Empty,
                schema = %compiled.name
            );
            if let Some(p) = &prompt {
                span.record("prompt", tracing::field::display(p));
            }
            let call = async {
                match on_partial.as_mut() {
                    None => model.chat(request.clone()).await,
                    Some(callback) => stream_with_partials(model, request.clone(), *callback).await,
                }
            };
            let response = call
                .instrument(span)
                .await
                .map_err(|e| with_context(e.with_attempts(attempt_errors(&rejected))))?;
            usage.add(&response.usage);
            match &response.cost {
                Some(c) => cost.get_or_insert_with(Cost::default).add(c),
                None => {
                    unpriced
                        .get_or_insert_with(|| format!("{}/{}", response.provider, response.model));
                }
            }
            trail.0.extend(response.trail.0.iter().cloned());
            let raw_text = reply_text(&response);

            match &response.finish_reason {
                FinishReason::Length => {
                    return Err(with_context(
                        Error::new(
                            ErrorKind::Truncated,
                            format!(
                                "structured reply hit the token limit on attempt {attempt} after {} output tokens: raise max_tokens or shrink the output",
                                response.usage.output_tokens
                            ),
                        )
                        .with_body_excerpt(&raw_text)
                        .with_attempts(attempt_errors(&rejected)),
                    ));
                }
                FinishReason::ContentFilter => {
                    return Err(with_context(
                        Error::new(
                            ErrorKind::ContentFiltered,
                            format!("structured reply was filtered on attempt {attempt}"),
                        )
                        .with_attempts(attempt_errors(&rejected)),
                    ));
                }
                _ => {}
            }

            match self.check(&compiled, &response, &raw_text) {
                Ok((value, json)) => {
                    trail.push("structured", "valid", format!("attempt {attempt}"));
                    responses.push(response);
                    return Ok(Generated {
                        value,
                        json,
                        attempts: attempt,
                        raw_text,
                        usage,
                        cost,
                        prompt,
                        rejected,
                        responses,
                        trail,
                    });
                }
                Err(errors) => {
                    tracing::debug!(attempt, errors = errors.len(), "structured reply rejected");
                    trail.push(
                        "structured",
                        "invalid",
                        format!("attempt {attempt}: {} errors", errors.len()),
                    );
                    request.messages.push(Message::assistant(raw_text.clone()));
                    request.messages.push(Message::user(reask_message(&errors)));
                    rejected.push(RejectedAttempt {
                        attempt,
                        raw_text,
                        errors,
                    });
                    responses.push(response);
                }
            }
            if let Some(limit) = self.max_cost_usd
                && attempt < self.max_attempts
            {
                if let Some(unpriced) = unpriced.as_ref().filter(|_| !self.allow_unpriced) {
                    return Err(with_context(
                        Error::config(format!(
                            "structured output cost bound ${limit} cannot be checked: {unpriced} returned no cost, so no re-ask was sent (price the model, or set allow_unpriced(true) to count it as $0)"
                        ))
                        .with_attempts(attempt_errors(&rejected)),
                    ));
                }
                if cost.as_ref().is_some_and(|spent| spent.total_usd >= limit) {
                    budget_stop = true;
                    break;
                }
            }
        }

        let n = rejected.len();
        let summary = rejected
            .iter()
            .map(|r| format!("attempt {}: {}", r.attempt, r.errors.join("; ")))
            .collect::<Vec<_>>()
            .join(" | ");
        let why = if budget_stop {
            format!(
                "cost bound ${} reached",
                self.max_cost_usd.unwrap_or_default()
            )
        } else {
            "attempts exhausted".to_owned()
        };
        let last_raw = rejected
            .last()
            .map(|r| r.raw_text.clone())
            .unwrap_or_default();
        Err(with_context(
            Error::new(
                ErrorKind::OutputInvalid,
                format!(
                    "no valid `{}` after {n} attempts ({why}): {summary}",
                    compiled.name
                ),
            )
            .with_body_excerpt(&last_raw)
            .with_attempts(attempt_errors(&rejected)),
        ))
    }

    /// Extracts candidates, validates them and parses the first that passes everything.
    fn check(
        &self,
        compiled: &CompiledSchema,
        response: &ChatResponse,
        raw_text: &str,
    ) -> std::result::Result<(T, Value), Vec<String>> {
        let candidates = match response.message.tool_calls().next() {
            Some(call) => match &call.arguments {
                Value::String(s) => json_candidates(s),
                other => vec![other.clone()],
            },
            None => json_candidates(raw_text),
        };
        if candidates.is_empty() {
            let why = if looks_truncated(raw_text) {
                "the reply ends inside an unclosed json object"
            } else {
                "no json value found in the reply"
            };
            return Err(vec![why.to_owned()]);
        }
        let mut first_errors: Option<Vec<String>> = None;
        for candidate in candidates {
            match self.check_one(compiled, &candidate) {
                Ok(value) => return Ok((value, candidate)),
                Err(errors) => {
                    // Strict mode makes optional fields nullable, so a provider may send
                    // `"tags": null` for a `#[serde(default)]` field the original schema
                    // types as an array. Absent is what such a null means.
                    let mut stripped = candidate.clone();
                    if strip_null_members(&mut stripped)
                        && let Ok(value) = self.check_one(compiled, &stripped)
                    {
                        return Ok((value, stripped));
                    }
                    first_errors.get_or_insert(errors);
                }
            }
        }
        Err(first_errors.unwrap_or_default())
    }

    fn check_one(
        &self,
        compiled: &CompiledSchema,
        candidate: &Value,
    ) -> std::result::Result<T, Vec<String>> {
        let violations = compiled.violations(candidate);
        if !violations.is_empty() {
            return Err(violations);
        }
        let value: T = serde_json::from_value(candidate.clone())
            .map_err(|e| vec![format!("/: {}", clip(&e.to_string(), MAX_ERROR_CHARS))])?;
        let semantic: Vec<String> = self
            .validators
            .iter()
            .filter_map(|v| v(&value).err())
            .map(|m| clip(&m, MAX_ERROR_CHARS))
            .collect();
        if semantic.is_empty() {
            Ok(value)
        } else {
            Err(semantic)
        }
    }
}

/// Streams one attempt, reporting the partial object whenever it changes.
async fn stream_with_partials<M: ChatModel + ?Sized>(
    model: &M,
    request: ChatRequest,
    on_partial: &mut (dyn FnMut(&Value) + Send),
) -> Result<ChatResponse> {
    use futures::StreamExt;
    let mut stream = model.stream(request).await?;
    let mut acc = StreamAccumulator::new();
    let mut last: Option<Value> = None;
    while let Some(event) = stream.next().await {
        let event = event?;
        acc.push(&event);
        if matches!(event, StreamEvent::TextDelta { .. })
            && let Some(v) = partial_json(acc.text())
            && last.as_ref() != Some(&v)
        {
            on_partial(&v);
            last = Some(v);
        }
    }
    acc.finish(model.info())
}

/// Removes object members whose value is `null`, at any depth; returns whether any was removed.
fn strip_null_members(value: &mut Value) -> bool {
    match value {
        Value::Object(map) => {
            let before = map.len();
            map.retain(|_, v| !v.is_null());
            let mut removed = map.len() != before;
            for v in map.values_mut() {
                removed |= strip_null_members(v);
            }
            removed
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |acc, v| strip_null_members(v) | acc),
        _ => false,
    }
}

fn attempt_errors(rejected: &[RejectedAttempt]) -> Vec<Error> {
    rejected
        .iter()
        .map(|r| {
            Error::new(
                ErrorKind::OutputInvalid,
                format!("attempt {}: {}", r.attempt, r.errors.join("; ")),
            )
            .with_body_excerpt(&r.raw_text)
        })
        .collect()
}

fn reask_message(errors: &[String]) -> String {
    let mut msg = String::from(
        "Your previous reply was rejected. Fix these problems and reply with the corrected JSON only:\n",
    );
    for e in errors {
        msg.push_str("- ");
        msg.push_str(e);
        msg.push('\n');
    }
    msg
}

/// The reply text, or the first tool call's arguments when the model answered with a call.
fn reply_text(response: &ChatResponse) -> String {
    match response.message.tool_calls().next() {
        Some(call) => match &call.arguments {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
        None => response.text(),
    }
}

/// Appends application instructions to the first system message, or adds one in front.
/// Only our own text goes there: user text never moves into the system position.
pub(crate) fn append_to_system(messages: &mut Vec<Message>, instructions: &str) {
    if let Some(system) = messages.iter_mut().find(|m| m.role == Role::System) {
        system
            .content
            .push(ContentPart::text(format!("\n\n{instructions}")));
    } else {
        messages.insert(0, Message::system(instructions));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, schemars::JsonSchema)]
    struct OnlyHere {
        #[allow(dead_code)]
        x: u8,
    }

    #[test]
    fn schema_is_compiled_once_per_type() {
        let a = compiled_for::<OnlyHere>().unwrap();
        let b = compiled_for::<OnlyHere>().unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.name, "OnlyHere");
        assert!(a.strict);
    }

    #[test]
    fn schema_names_fit_openai_rules() {
        let schema_name = |raw: &str| crate::structured::schema::wire_name(raw, "output");
        assert_eq!(schema_name("Page<Item>"), "Page_Item_");
        assert_eq!(schema_name(""), "output");
        assert_eq!(schema_name(&"x".repeat(100)).len(), 64);
    }

    #[test]
    fn violations_name_the_instance_path() {
        let c = compiled_for::<OnlyHere>().unwrap();
        let errs = c.violations(&serde_json::json!({"x": 300}));
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("/x: "), "{errs:?}");
        assert!(c.violations(&serde_json::json!({"x": 3})).is_empty());
    }
}
