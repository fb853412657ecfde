//! Versioned prompt files and the registry that serves them.
//!
//! - A prompt file (`*.prompt`, one file per version, e.g. `prompts/refund_verdict/v2.prompt`)
//!   has a TOML header between `+++` lines (`id`, `version`, `description`, `[model]` hints,
//!   `inputs`) and a [minijinja](https://docs.rs/minijinja) body split into `--- system ---`,
//!   `--- user ---` and `--- assistant ---` sections (no marker: one user message).
//! - [`PromptRegistry::load_dir`] validates every file at load time (header, template syntax,
//!   duplicate `id@version`, used-but-undeclared and declared-but-unused variables, labels) and
//!   reports every problem with file and line ([`PromptError`]). It serves a [`Prompt`] by
//!   `id@version`, `id@latest` (or plain `id`), or `id@label` from `labels.toml`, so promotion
//!   and rollback are one-line diffs.
//! - [`Prompt::render`] yields a [`RenderedPrompt`]: messages, the [`PromptRef`](crate::PromptRef)
//!   (`id@version@hash`, sha256 of the file) and the model hints;
//!   [`RenderedPrompt::into_request`] makes a [`ChatRequest`](crate::ChatRequest) with
//!   `meta.prompt` set. Missing variables are errors, never empty strings.
//! - [`PromptRegistry::diff`] shows what changed between two versions ([`PromptDiff`]).
//!
//! ```
//! use llmkit_core::prompt::PromptRegistry;
//! use serde_json::json;
//!
//! let v1 = "+++\nid = \"greet\"\nversion = 1\ninputs = [\"name\"]\n+++\n--- system ---\nBe brief.\n--- user ---\nSay hello to {{ name }}.\n";
//! let v2 = v1.replace("version = 1", "version = 2").replace("Be brief.", "Be warm and brief.");
//! let labels = "[greet]\nproduction = 1\ncanary = 2\n";
//! let registry = PromptRegistry::from_sources([("greet/v1.prompt", v1), ("greet/v2.prompt", v2.as_str())], Some(labels))?;
//!
//! let rendered = registry.render("greet@production", json!({"name": "Ada"}))?;
//! assert_eq!(rendered.messages[1].text(), "Say hello to Ada.");
//! assert_eq!(rendered.prompt_ref.version, "1");
//! assert_eq!(registry.get("greet@latest")?.version(), "2");
//! assert!(registry.render("greet@2", json!({})).is_err(), "missing variable");
//! println!("{}", registry.diff("greet@1", "greet@2")?);
//! # Ok::<(), llmkit_core::prompt::PromptError>(())
//! ```

mod diff;
mod file;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use diff::{DiffLine, Edit, PromptDiff, diff_lines, lcs_diff};
pub use file::{InputVar, ModelHints, Prompt, RenderedPrompt};

use crate::error::{Error, ErrorKind};
use file::{line_of, parse_prompt};

/// The manifest file mapping labels to versions, at the root of a prompt folder.
pub const LABELS_FILE: &str = "labels.toml";
/// Extension of prompt files.
pub const PROMPT_EXTENSION: &str = "prompt";

/// One problem found while loading prompts: file, line when known, message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptProblem {
    /// The file (path or in-memory name).
    pub file: String,
    /// 1-based line, when the problem has one.
    pub line: Option<usize>,
    /// What is wrong, lower-case, one line.
    pub message: String,
}

impl fmt::Display for PromptProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// What can go wrong with prompts. Converts into [`Error`] (`Config`, `NotFound` or
/// `InvalidRequest`) so `?` works in model-calling code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PromptError {
    /// Loading found problems; every one is listed.
    #[error("{} prompt problem(s): {}", .0.len(), join_problems(.0))]
    Invalid(Vec<PromptProblem>),
    /// No prompt matches the reference.
    #[error("prompt `{0}` not found")]
    NotFound(String),
    /// Rendering failed (missing variable, undefined value, template error).
    #[error("rendering {reference} failed: {message}")]
    Render {
        /// `id@version`.
        reference: String,
        /// What went wrong.
        message: String,
    },
}

fn join_problems(problems: &[PromptProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<PromptError> for Error {
    fn from(e: PromptError) -> Self {
        let kind = match &e {
            PromptError::Invalid(_) => ErrorKind::Config,
            PromptError::NotFound(_) => ErrorKind::NotFound,
            PromptError::Render { .. } => ErrorKind::InvalidRequest,
        };
        Error::new(kind, e.to_string())
    }
}

/// Numeric versions compare as numbers; others (ISO dates, `v3-beta`) as text, after numbers.
fn version_key(v: &str) -> (u8, u64, &str) {
    match v.parse::<u64>() {
        Ok(n) => (0, n, ""),
        Err(_) => (1, 0, v),
    }
}

/// Loaded prompts, indexed by id and version, plus the label manifest. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct PromptRegistry {
    /// Versions of each id, oldest first.
    prompts: BTreeMap<String, Vec<Arc<Prompt>>>,
    /// id → label → version.
    labels: BTreeMap<String, BTreeMap<String, String>>,
}

impl PromptRegistry {
    /// Loads every `*.prompt` file under `dir` (recursively) and `dir/labels.toml` if present.
    ///
    /// Fails with every problem found ([`PromptError::Invalid`]), each naming file and line.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<Self, PromptError> {
        let dir = dir.as_ref();
        let mut files = Vec::new();
        let mut problems = Vec::new();
        collect_files(dir, &mut files, &mut problems, 0);
        files.sort();
        let mut sources = Vec::new();
        for path in files {
            match std::fs::read_to_string(&path) {
                Ok(text) => sources.push((path.display().to_string(), text)),
                Err(e) => problems.push(PromptProblem {
                    file: path.display().to_string(),
                    line: None,
                    message: format!("cannot read: {e}"),
                }),
            }
        }
        let labels_path = dir.join(LABELS_FILE);
        let labels = match std::fs::read_to_string(&labels_path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                problems.push(PromptProblem {
                    file: labels_path.display().to_string(),
                    line: None,
                    message: format!("cannot read: {e}"),
                });
                None
            }
        };
        let built = Self::build(
            sources.iter().map(|(n, t)| (n.as_str(), t.as_str())),
            labels
                .as_deref()
                .map(|l| (labels_path.display().to_string(), l)),
        );
        match built {
            Ok(r) if problems.is_empty() => Ok(r),
            Ok(_) => Err(PromptError::Invalid(problems)),
            Err(PromptError::Invalid(more)) => {
                problems.extend(more);
                Err(PromptError::Invalid(problems))
            }
            Err(other) => Err(other),
        }
    }

    /// Builds a registry from in-memory `(name, text)` sources and an optional labels
    /// manifest (for tests and prompts embedded with `include_str!`).
    pub fn from_sources<'a>(
        sources: impl IntoIterator<Item = (&'a str, &'a str)>,
        labels: Option<&str>,
    ) -> Result<Self, PromptError> {
        Self::build(sources, labels.map(|l| (LABELS_FILE.to_owned(), l)))
    }

    fn build<'a>(
        sources: impl IntoIterator<Item = (&'a str, &'a str)>,
        labels: Option<(String, &str)>,
    ) -> Result<Self, PromptError> {
        let mut problems = Vec::new();
        let mut prompts: BTreeMap<String, Vec<Arc<Prompt>>> = BTreeMap::new();
        let mut seen: BTreeMap<(String, String), String> = BTreeMap::new();
        for (name, text) in sources {
            match parse_prompt(name, text) {
                Ok(p) => {
                    let key = (p.id().to_owned(), p.version().to_owned());
                    if let Some(first) = seen.get(&key) {
                        problems.push(PromptProblem {
                            file: name.to_owned(),
                            line: None,
                            message: format!(
                                "duplicate prompt {}@{} (also in {first})",
                                key.0, key.1
                            ),
                        });
                        continue;
                    }
                    seen.insert(key, name.to_owned());
                    prompts
                        .entry(p.id().to_owned())
                        .or_default()
                        .push(Arc::new(p));
                }
                Err(mut more) => problems.append(&mut more),
            }
        }
        for versions in prompts.values_mut() {
            versions.sort_by(|a, b| version_key(a.version()).cmp(&version_key(b.version())));
        }
        let mut registry = PromptRegistry {
            prompts,
            labels: BTreeMap::new(),
        };
        if let Some((file, text)) = labels {
            match registry.parse_labels(&file, text) {
                Ok(labels) => registry.labels = labels,
                Err(mut more) => problems.append(&mut more),
            }
        }
        if problems.is_empty() {
            Ok(registry)
        } else {
            Err(PromptError::Invalid(problems))
        }
    }

    fn parse_labels(
        &self,
        file: &str,
        text: &str,
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, Vec<PromptProblem>> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum V {
            Int(u64),
            Text(String),
        }
        type Manifest = BTreeMap<String, BTreeMap<String, toml::Spanned<V>>>;
        let problem = |line: Option<usize>, message: String| PromptProblem {
            file: file.to_owned(),
            line,
            message,
        };
        let manifest: Manifest = toml::from_str(text).map_err(|e| {
            vec![problem(
                e.span().map(|s| line_of(text, s.start)),
                format!("bad labels manifest: {}", e.message().replace('\n', " ")),
            )]
        })?;
        let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut problems = Vec::new();
        for (id, labels) in manifest {
            for (label, spanned) in labels {
                let line = Some(line_of(text, spanned.span().start));
                let version = match spanned.into_inner() {
                    V::Int(n) => n.to_string(),
                    V::Text(s) => s,
                };
                if label == "latest" || version_key(&label).0 == 0 {
                    problems.push(problem(
                        line,
                        format!("label `{label}` is reserved or looks like a version"),
                    ));
                    continue;
                }
                let exists = self
                    .prompts
                    .get(&id)
                    .is_some_and(|v| v.iter().any(|p| p.version() == version));
                if !exists {
                    problems.push(problem(
                        line,
                        format!(
                            "label {id}@{label} points to {id}@{version}, which does not exist"
                        ),
                    ));
                    continue;
                }
                out.entry(id.clone()).or_default().insert(label, version);
            }
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems)
        }
    }

    /// The prompt for `id@version`, `id@latest`, `id@label`, or `id` (= latest).
    ///
    /// An exact version wins over a label of the same name.
    pub fn get(&self, reference: &str) -> Result<Arc<Prompt>, PromptError> {
        let not_found = || PromptError::NotFound(reference.to_owned());
        let (id, selector) = reference.split_once('@').unwrap_or((reference, "latest"));
        let versions = self.prompts.get(id).ok_or_else(not_found)?;
        if selector == "latest" {
            return versions.last().cloned().ok_or_else(not_found);
        }
        if let Some(p) = versions.iter().find(|p| p.version() == selector) {
            return Ok(p.clone());
        }
        let version = self
            .labels
            .get(id)
            .and_then(|l| l.get(selector))
            .ok_or_else(not_found)?;
        versions
            .iter()
            .find(|p| p.version() == version)
            .cloned()
            .ok_or_else(not_found)
    }

    /// Renders the prompt `reference` resolves to; see [`Prompt::render`].
    pub fn render(
        &self,
        reference: &str,
        vars: impl Serialize,
    ) -> Result<RenderedPrompt, PromptError> {
        self.get(reference)?.render(vars)
    }

    /// Every prompt id, sorted.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.prompts.keys().map(String::as_str)
    }

    /// Versions of `id`, oldest first.
    pub fn versions(&self, id: &str) -> Vec<Arc<Prompt>> {
        self.prompts.get(id).cloned().unwrap_or_default()
    }

    /// Labels of `id` and the version each points to.
    pub fn labels(&self, id: &str) -> BTreeMap<String, String> {
        self.labels.get(id).cloned().unwrap_or_default()
    }

    /// Number of prompt versions loaded.
    pub fn len(&self) -> usize {
        self.prompts.values().map(Vec::len).sum()
    }

    /// Whether no prompt is loaded.
    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }

    /// Line diff of two prompt files, e.g. `diff("refund_verdict@production", "refund_verdict@canary")`.
    pub fn diff(&self, from: &str, to: &str) -> Result<PromptDiff, PromptError> {
        let (a, b) = (self.get(from)?, self.get(to)?);
        Ok(PromptDiff {
            from: a.prompt_ref(),
            to: b.prompt_ref(),
            lines: diff_lines(a.source(), b.source()),
        })
    }
}

impl std::str::FromStr for PromptRegistry {
    type Err = PromptError;

    /// A registry holding the one prompt in `source` (named `<memory>` in errors).
    fn from_str(source: &str) -> Result<Self, Self::Err> {
        Self::from_sources([("<memory>", source)], None)
    }
}

/// Symlink loops and absurd trees stop here.
const MAX_DIR_DEPTH: usize = 16;

fn collect_files(
    dir: &Path,
    out: &mut Vec<PathBuf>,
    problems: &mut Vec<PromptProblem>,
    depth: usize,
) {
    if depth > MAX_DIR_DEPTH {
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            problems.push(PromptProblem {
                file: dir.display().to_string(),
                line: None,
                message: format!("cannot read prompt folder: {e}"),
            });
            return;
        }
    };
    let mut seen = BTreeSet::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if !seen.insert(path.clone()) {
            continue;
        }
        if path.is_dir() {
            collect_files(&path, out, problems, depth + 1);
        } else if path.extension().and_then(|e| e.to_str()) == Some(PROMPT_EXTENSION) {
            out.push(path);
        }
    }
}
