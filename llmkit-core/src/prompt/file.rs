//! One prompt file: TOML front matter between `+++` lines, then role sections.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::message::{Message, Role};
use crate::request::{ChatRequest, PromptRef};

use super::{PromptError, PromptProblem};

/// Model settings a prompt was written for. The application may override them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelHints {
    /// Model name the prompt was tuned on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Output token limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Inputs {
    List(Vec<String>),
    Described(BTreeMap<String, String>),
}

impl Default for Inputs {
    fn default() -> Self {
        Inputs::List(Vec::new())
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum VersionValue {
    Int(u64),
    Text(String),
}

impl VersionValue {
    fn into_string(self) -> String {
        match self {
            VersionValue::Int(n) => n.to_string(),
            VersionValue::Text(s) => s,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    id: String,
    version: VersionValue,
    #[serde(default)]
    description: String,
    #[serde(default)]
    model: ModelHints,
    #[serde(default)]
    inputs: Inputs,
}

/// One input variable a prompt declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputVar {
    /// The name used in the template.
    pub name: String,
    /// What to pass (empty when the header gave a plain list).
    pub description: String,
}

/// A loaded, validated prompt version.
pub struct Prompt {
    id: String,
    version: String,
    description: String,
    hints: ModelHints,
    inputs: Vec<InputVar>,
    source_name: String,
    source: String,
    hash: String,
    /// Role, template text, and the file line of the template's first line.
    sections: Vec<(Role, String, usize)>,
    env: minijinja::Environment<'static>,
}

impl fmt::Debug for Prompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prompt")
            .field("id", &self.id)
            .field("version", &self.version)
            .field("hash", &self.hash)
            .field("source", &self.source_name)
            .field("inputs", &self.inputs)
            .finish_non_exhaustive()
    }
}

/// A rendered prompt: messages ready to send, the reference that identifies them, and the
/// prompt's model hints.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedPrompt {
    /// One message per section, in file order.
    pub messages: Vec<Message>,
    /// `id@version@hash` of the prompt file.
    pub prompt_ref: PromptRef,
    /// The header's model hints.
    pub hints: ModelHints,
}

impl RenderedPrompt {
    /// A request with these messages, the hints applied (model, temperature, max tokens) and
    /// `meta.prompt` set, so the response, errors and spans name the prompt.
    pub fn into_request(self) -> ChatRequest {
        let mut req = ChatRequest::new(self.messages).with_prompt(self.prompt_ref);
        req.model = self.hints.model;
        req.temperature = self.hints.temperature;
        req.max_tokens = self.hints.max_tokens;
        req
    }
}

impl Prompt {
    /// The prompt id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The version, as written in the header.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The header description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The header's model hints.
    pub fn hints(&self) -> &ModelHints {
        &self.hints
    }

    /// Declared input variables, sorted by name.
    pub fn inputs(&self) -> &[InputVar] {
        &self.inputs
    }

    /// Hex sha256 of the file with line endings normalized to `\n`.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The file text (line endings normalized).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Where the prompt came from (a path, or the name given to an in-memory source).
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// `id@version@hash`.
    pub fn prompt_ref(&self) -> PromptRef {
        PromptRef {
            id: self.id.clone(),
            version: self.version.clone(),
            hash: self.hash.clone(),
        }
    }

    /// Renders every section with `vars` (any `Serialize` map, e.g. `serde_json::json!({..})`).
    ///
    /// A declared variable missing from `vars`, or any undefined value the template touches,
    /// is an error, never an empty string.
    pub fn render(&self, vars: impl Serialize) -> Result<RenderedPrompt, PromptError> {
        let reference = format!("{}@{}", self.id, self.version);
        let render_err = |message: String| PromptError::Render {
            reference: reference.clone(),
            message,
        };
        let vars = serde_json::to_value(&vars)
            .map_err(|e| render_err(format!("variables do not serialize: {e}")))?;
        let map = match &vars {
            serde_json::Value::Object(map) => map,
            serde_json::Value::Null if self.inputs.is_empty() => &serde_json::Map::new(),
            _ => {
                return Err(render_err(
                    "variables must be a map of name to value".into(),
                ));
            }
        };
        let missing: Vec<&str> = self
            .inputs
            .iter()
            .map(|i| i.name.as_str())
            .filter(|n| !map.contains_key(*n))
            .collect();
        if !missing.is_empty() {
            return Err(render_err(format!(
                "missing variables: {}",
                missing.join(", ")
            )));
        }
        let ctx = minijinja::Value::from(minijinja::value::Serde(map));
        let mut messages = Vec::with_capacity(self.sections.len());
        for (i, (role, _, first_line)) in self.sections.iter().enumerate() {
            let text = self
                .env
                .get_template(&section_name(i))
                .and_then(|t| t.render(&ctx))
                .map_err(|e| {
                    let at = e
                        .line()
                        .map(|l| format!(" at {}:{}", self.source_name, first_line + l - 1))
                        .unwrap_or_default();
                    render_err(format!("{}{at}", one_line(&e)))
                })?;
            messages.push(Message::new(*role, text));
        }
        Ok(RenderedPrompt {
            messages,
            prompt_ref: self.prompt_ref(),
            hints: self.hints.clone(),
        })
    }
}

fn section_name(i: usize) -> String {
    format!("section{i}")
}

/// `kind: detail` without minijinja's internal template name, on one line.
fn one_line(e: &minijinja::Error) -> String {
    let s = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    s.replace('\n', " ")
}

/// Byte offset → 1-based line number.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len()))
        .map_or(1, |head| head.matches('\n').count() + 1)
}

fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
}

fn is_valid_version(v: &str) -> bool {
    !v.is_empty()
        && v != "latest"
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn section_marker(line: &str) -> Option<Role> {
    let inner = line.trim().strip_prefix("---")?.strip_suffix("---")?.trim();
    match inner.to_ascii_lowercase().as_str() {
        "system" => Some(Role::System),
        "user" => Some(Role::User),
        "assistant" => Some(Role::Assistant),
        _ => None,
    }
}

/// Parses and validates one prompt file. Every problem found is returned, each with the file
/// name and, where it applies, the line.
pub(crate) fn parse_prompt(source_name: &str, raw: &str) -> Result<Prompt, Vec<PromptProblem>> {
    let text = raw.replace("\r\n", "\n");
    let problem = |line: Option<usize>, message: String| PromptProblem {
        file: source_name.to_owned(),
        line,
        message,
    };
    let hash = format!("{:x}", Sha256::digest(text.as_bytes()));

    // Front matter: `+++` on the first line, TOML, `+++` again.
    let mut lines = text.split_inclusive('\n');
    let first = lines.next().unwrap_or_default();
    if first.trim_end() != "+++" {
        return Err(vec![problem(
            Some(1),
            "a prompt file starts with a `+++` line opening its toml header".into(),
        )]);
    }
    let header_start = first.len();
    let mut offset = header_start;
    let mut header_end = None;
    for line in lines {
        if line.trim_end() == "+++" {
            header_end = Some((offset, offset + line.len()));
            break;
        }
        offset += line.len();
    }
    let Some((header_stop, body_start)) = header_end else {
        return Err(vec![problem(
            Some(1),
            "the toml header is not closed by a `+++` line".into(),
        )]);
    };
    let header_text = text.get(header_start..header_stop).unwrap_or_default();
    let header: Header = toml::from_str(header_text).map_err(|e| {
        let line = e
            .span()
            .map(|s| line_of(header_text, s.start) + 1)
            .unwrap_or(1);
        vec![problem(
            Some(line),
            format!("bad header: {}", e.message().replace('\n', " ")),
        )]
    })?;
    let id = header.id;
    let version = header.version.into_string();
    let mut problems = Vec::new();
    if !is_valid_id(&id) {
        problems.push(problem(
            Some(2),
            format!("bad id `{id}`: use letters, digits, `_`, `-`, `.` or `/`"),
        ));
    }
    if !is_valid_version(&version) {
        problems.push(problem(
            Some(2),
            format!("bad version `{version}`: use letters, digits, `_`, `-` or `.` (not `latest`)"),
        ));
    }
    let inputs: Vec<InputVar> = match header.inputs {
        Inputs::List(names) => {
            let set: BTreeSet<String> = names.into_iter().collect();
            set.into_iter()
                .map(|name| InputVar {
                    name,
                    description: String::new(),
                })
                .collect()
        }
        Inputs::Described(map) => map
            .into_iter()
            .map(|(name, description)| InputVar { name, description })
            .collect(),
    };

    // Sections.
    let body = text.get(body_start..).unwrap_or_default();
    let body_first_line = line_of(&text, body_start);
    let mut sections: Vec<(Role, usize, String)> = Vec::new();
    let mut preamble = String::new();
    for (i, line) in body.split_inclusive('\n').enumerate() {
        let line_no = body_first_line + i;
        if let Some(role) = section_marker(line) {
            sections.push((role, line_no + 1, String::new()));
        } else if let Some((_, _, current)) = sections.last_mut() {
            current.push_str(line);
        } else {
            preamble.push_str(line);
        }
    }
    if sections.is_empty() {
        sections.push((Role::User, body_first_line, preamble));
    } else if !preamble.trim().is_empty() {
        problems.push(problem(
            Some(body_first_line),
            "text before the first `--- system ---`/`--- user ---` marker".into(),
        ));
    }
    if sections.iter().all(|(_, _, t)| t.trim().is_empty()) {
        problems.push(problem(
            Some(body_first_line),
            "the prompt body is empty".into(),
        ));
    }

    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let globals: BTreeSet<String> = env.globals().map(|(name, _)| name.to_owned()).collect();
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut compiled_sections = Vec::new();
    let mut syntax_ok = true;
    for (i, (role, first_line, section)) in sections.into_iter().enumerate() {
        // Leading blank lines (after the marker) are dropped, so line numbers shift by them.
        let leading = section.len() - section.trim_start_matches(['\n', ' ', '\t']).len();
        let skipped_lines = section
            .get(..leading)
            .map_or(0, |s| s.matches('\n').count());
        let trimmed = section.trim().to_owned();
        match env.add_template_owned(section_name(i), trimmed.clone()) {
            Ok(()) => {
                if let Ok(t) = env.get_template(&section_name(i)) {
                    used.extend(
                        t.undeclared_variables(false)
                            .into_iter()
                            .filter(|v| !globals.contains(v)),
                    );
                }
            }
            Err(e) => {
                syntax_ok = false;
                let line = e.line().map(|l| first_line + skipped_lines + l - 1);
                problems.push(problem(line, format!("template syntax: {}", one_line(&e))));
            }
        }
        compiled_sections.push((role, trimmed, first_line + skipped_lines));
    }
    let declared: BTreeSet<String> = inputs.iter().map(|i| i.name.clone()).collect();
    let undeclared: Vec<&String> = used.difference(&declared).collect();
    // After a syntax error the used set is incomplete: variable checks would only add noise.
    if syntax_ok && !undeclared.is_empty() {
        problems.push(problem(
            None,
            format!(
                "variables used but not declared in `inputs`: {}",
                join(&undeclared)
            ),
        ));
    }
    let unused: Vec<&String> = declared.difference(&used).collect();
    if syntax_ok && !unused.is_empty() {
        problems.push(problem(
            None,
            format!("variables declared but never used: {}", join(&unused)),
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Prompt {
        id,
        version,
        description: header.description,
        hints: header.model,
        inputs,
        source_name: source_name.to_owned(),
        source: text,
        hash,
        sections: compiled_sections,
        env,
    })
}

fn join(names: &[&String]) -> String {
    names
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
