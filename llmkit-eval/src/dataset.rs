//! Datasets: JSON-lines files of [`Case`]s, loaded into a [`Dataset`] with a content hash.
//!
//! One case per line:
//! `{"id": "refund-1", "inputs": {"question": "..."}, "reference": "...", "expected_ids": ["doc-3"], "tags": ["billing"], "metadata": {}}`.
//! Only `id` and `inputs` (an object) are required. Blank lines and lines starting with `//` are
//! skipped. Unknown fields, duplicate ids and malformed rows are [`DatasetError`]s naming the line.
//!
//! ```
//! use llmkit_eval::dataset::Dataset;
//! let text = "{\"id\": \"a\", \"inputs\": {\"q\": \"2+2?\"}, \"reference\": \"4\", \"tags\": [\"math\"]}\n";
//! let ds = Dataset::from_jsonl("arith", text)?;
//! assert_eq!(ds.len(), 1);
//! assert_eq!(ds.hash().len(), 64);
//! assert!(Dataset::from_jsonl("bad", "{\"id\": \"a\"}").unwrap_err().to_string().starts_with("line 1:"));
//! # Ok::<(), llmkit_eval::dataset::DatasetError>(())
//! ```

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::sha256_hex;

// The error type sits with the crate's other errors, so `error` imports nothing from here.
pub use crate::error::DatasetError;

/// One eval case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Unique id within the dataset; results, caches and reviews refer to it.
    pub id: String,
    /// Inputs for the target (prompt variables, a question, a conversation).
    pub inputs: Map<String, Value>,
    /// The reference output, for reference-based evaluators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Ids a retriever should return, for retrieval metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_ids: Option<Vec<String>>,
    /// Tags for per-tag breakdowns and stratified review samples.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Anything else (difficulty, source, expected keywords).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
}

impl Case {
    /// A case with these inputs and nothing else.
    pub fn new(id: impl Into<String>, inputs: Value) -> Self {
        Case {
            id: id.into(),
            inputs: match inputs {
                Value::Object(m) => m,
                other => {
                    let mut m = Map::new();
                    m.insert("input".into(), other);
                    m
                }
            },
            reference: None,
            expected_ids: None,
            tags: Vec::new(),
            metadata: Map::new(),
        }
    }

    /// Sets the reference output.
    #[must_use]
    pub fn with_reference(mut self, reference: impl Into<String>) -> Self {
        self.reference = Some(reference.into());
        self
    }

    /// Sets the expected retrieved ids.
    #[must_use]
    pub fn with_expected_ids<I: IntoIterator<Item = S>, S: Into<String>>(mut self, ids: I) -> Self {
        self.expected_ids = Some(ids.into_iter().map(Into::into).collect());
        self
    }

    /// Adds a tag.
    #[must_use]
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// An input as text: strings as they are, other values as JSON; `None` when absent.
    pub fn input_text(&self, name: &str) -> Option<String> {
        self.inputs.get(name).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    /// Hex sha256 of the case's canonical JSON; output caches include it so an edited case
    /// is never served a stale output.
    pub fn content_hash(&self) -> String {
        sha256_hex(serde_json::to_string(self).unwrap_or_default().as_bytes())
    }
}

/// A loaded dataset: its cases in file order, a name and the sha256 of its content.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    name: String,
    hash: String,
    cases: Vec<Case>,
}

/// Which dataset a run used: name, content hash and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetRef {
    /// Dataset name (file stem by default).
    pub name: String,
    /// Hex sha256 of the file content with line endings normalized.
    pub hash: String,
    /// Number of cases.
    pub cases: usize,
}

impl DatasetRef {
    /// `name@hash12`.
    pub fn version(&self) -> String {
        format!(
            "{}@{}",
            self.name,
            self.hash.get(..12).unwrap_or(&self.hash)
        )
    }
}

impl Dataset {
    /// Loads a JSON-lines file; the name is the file stem.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, DatasetError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| DatasetError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("dataset");
        Self::from_jsonl(name, &text)
    }

    /// Parses JSON-lines text. Stops at the first bad row.
    pub fn from_jsonl(name: impl Into<String>, text: &str) -> Result<Self, DatasetError> {
        let normalized = text.replace("\r\n", "\n");
        let mut cases = Vec::new();
        let mut first_line: HashMap<String, usize> = HashMap::new();
        for (i, raw) in normalized.lines().enumerate() {
            let line = i + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with("//") {
                continue;
            }
            let case: Case = serde_json::from_str(trimmed).map_err(|e| DatasetError::BadRow {
                line,
                message: strip_serde_position(&e.to_string()),
            })?;
            if case.id.trim().is_empty() {
                return Err(DatasetError::BadRow {
                    line,
                    message: "case id is empty".into(),
                });
            }
            if let Some(first) = first_line.get(&case.id) {
                return Err(DatasetError::DuplicateId {
                    line,
                    id: case.id,
                    first_line: *first,
                });
            }
            first_line.insert(case.id.clone(), line);
            cases.push(case);
        }
        if cases.is_empty() {
            return Err(DatasetError::Empty);
        }
        Ok(Dataset {
            name: name.into(),
            hash: sha256_hex(normalized.as_bytes()),
            cases,
        })
    }

    /// A dataset built in code; the hash covers the cases' canonical JSON.
    pub fn from_cases(name: impl Into<String>, cases: Vec<Case>) -> Result<Self, DatasetError> {
        let text: String = cases
            .iter()
            .map(|c| serde_json::to_string(c).unwrap_or_default() + "\n")
            .collect();
        Self::from_jsonl(name, &text)
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Hex sha256 of the content.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The cases, in file order.
    pub fn cases(&self) -> &[Case] {
        &self.cases
    }

    /// Number of cases.
    pub fn len(&self) -> usize {
        self.cases.len()
    }

    /// Whether there is no case (never true for a loaded dataset).
    pub fn is_empty(&self) -> bool {
        self.cases.is_empty()
    }

    /// The case with this id.
    pub fn get(&self, id: &str) -> Option<&Case> {
        self.cases.iter().find(|c| c.id == id)
    }

    /// Name, hash and size, as recorded in results.
    pub fn reference(&self) -> DatasetRef {
        DatasetRef {
            name: self.name.clone(),
            hash: self.hash.clone(),
            cases: self.cases.len(),
        }
    }
}

/// serde_json appends "at line 1 column N"; every row is one line, so only the column helps.
fn strip_serde_position(msg: &str) -> String {
    match msg.rfind(" at line 1 column ") {
        Some(i) => {
            let col = msg.get(i + " at line 1 column ".len()..).unwrap_or("");
            format!("{} (column {col})", msg.get(..i).unwrap_or(msg))
        }
        None => msg.to_owned(),
    }
}
