//! [`EvalError`] and [`DatasetError`]: what can go wrong outside a model call (datasets, files,
//! configuration, gates), and the file helpers that produce them.
//!
//! I/O failures keep the [`std::io::Error`] as their [`source`](std::error::Error::source); the
//! message names the file and the error's kind in lower case.

use llmkit_core::{Error, ErrorKind};

/// Failures of the eval harness itself. Model-call failures stay [`llmkit_core::Error`]s; this
/// enum converts into one (`Config`, `InvalidRequest`, `NotFound` or `Other`) so `?` works in
/// code that mixes both.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A dataset file could not be read or parsed; see [`DatasetError`].
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// A file could not be read or written.
    #[error("{path}: {}", source.kind())]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file had the wrong shape (run results, baseline, outputs, labels).
    #[error("{path}:{line}: {message}")]
    Format {
        /// The file.
        path: String,
        /// 1-based line (1 for whole-file JSON documents).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// An evaluator or gate was configured with bad values (invalid regex, schema, threshold).
    #[error("bad eval configuration: {0}")]
    Config(String),
    /// The judge's agreement with human labels is below the configured floor, or it was never
    /// calibrated.
    #[error("judge `{judge}` is not trusted: {reason}")]
    UntrustedJudge {
        /// Evaluator name of the judge.
        judge: String,
        /// Agreement found and floor required, or "not calibrated".
        reason: String,
    },
    /// The regression gate failed; the message lists every failing check.
    #[error("eval gate failed: {0}")]
    GateFailed(String),
}

// As for `DatasetError`: I/O variants compare by path and `io::ErrorKind`.
impl PartialEq for EvalError {
    fn eq(&self, other: &Self) -> bool {
        use EvalError::*;
        match (self, other) {
            (Dataset(a), Dataset(b)) => a == b,
            (Io { path, source }, Io { path: p, source: s }) => {
                path == p && source.kind() == s.kind()
            }
            (
                Format {
                    path,
                    line,
                    message,
                },
                Format {
                    path: p,
                    line: l,
                    message: m,
                },
            ) => path == p && line == l && message == m,
            (Config(a), Config(b)) | (GateFailed(a), GateFailed(b)) => a == b,
            (
                UntrustedJudge { judge, reason },
                UntrustedJudge {
                    judge: j,
                    reason: r,
                },
            ) => judge == j && reason == r,
            _ => false,
        }
    }
}

impl EvalError {
    /// An I/O failure on `path`, keeping the OS error as the source.
    pub fn io(path: impl AsRef<std::path::Path>, e: std::io::Error) -> Self {
        EvalError::Io {
            path: path.as_ref().display().to_string(),
            source: e,
        }
    }

    pub(crate) fn format(path: impl Into<String>, line: usize, e: impl std::fmt::Display) -> Self {
        EvalError::Format {
            path: path.into(),
            line,
            message: e.to_string().replace('\n', " "),
        }
    }
}

impl From<EvalError> for Error {
    fn from(e: EvalError) -> Self {
        let kind = match &e {
            EvalError::Dataset(_) | EvalError::Format { .. } => ErrorKind::InvalidRequest,
            EvalError::Io { .. } => ErrorKind::NotFound,
            EvalError::Config(_) | EvalError::UntrustedJudge { .. } => ErrorKind::Config,
            EvalError::GateFailed(_) => ErrorKind::Other,
        };
        let message = e.to_string();
        Error::new(kind, message).with_source(e)
    }
}

impl From<DatasetError> for Error {
    fn from(e: DatasetError) -> Self {
        EvalError::from(e).into()
    }
}

/// A bad dataset file: which line and why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    /// The file could not be read.
    #[error("cannot read dataset {path}: {}", source.kind())]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a valid case (bad JSON, missing `id` or `inputs`, unknown field, wrong type).
    #[error("line {line}: {message}")]
    BadRow {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A case id was already used on an earlier line.
    #[error("line {line}: duplicate case id `{id}` (first used on line {first_line})")]
    DuplicateId {
        /// 1-based line of the duplicate.
        line: usize,
        /// The id.
        id: String,
        /// Line where the id first appeared.
        first_line: usize,
    },
    /// The file holds no case.
    #[error("dataset has no cases: add one JSON object per line")]
    Empty,
}

// OS errors have no equality of their own: I/O variants compare by path and `io::ErrorKind`.
impl PartialEq for DatasetError {
    fn eq(&self, other: &Self) -> bool {
        use DatasetError::*;
        match (self, other) {
            (Io { path, source }, Io { path: p, source: s }) => {
                path == p && source.kind() == s.kind()
            }
            (
                BadRow { line, message },
                BadRow {
                    line: l,
                    message: m,
                },
            ) => line == l && message == m,
            (
                DuplicateId {
                    line,
                    id,
                    first_line,
                },
                DuplicateId {
                    line: l,
                    id: i,
                    first_line: f,
                },
            ) => line == l && id == i && first_line == f,
            (Empty, Empty) => true,
            _ => false,
        }
    }
}

impl Eq for DatasetError {}

impl DatasetError {
    /// The 1-based line the error is about, when it has one.
    pub fn line(&self) -> Option<usize> {
        match self {
            DatasetError::BadRow { line, .. } | DatasetError::DuplicateId { line, .. } => {
                Some(*line)
            }
            _ => None,
        }
    }
}

/// Hex sha256 of `data`.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    llmkit_core::hex::encode(sha2::Sha256::digest(data))
}

/// Writes `value` as pretty JSON plus a newline, creating parent directories.
pub(crate) fn write_json_file(
    path: &std::path::Path,
    value: &impl serde::Serialize,
) -> Result<(), EvalError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| EvalError::io(parent, e))?;
    }
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| EvalError::format(path.display().to_string(), 1, e))?;
    std::fs::write(path, text + "\n").map_err(|e| EvalError::io(path, e))
}

/// Reads a JSON document, naming the file and line on errors.
pub(crate) fn read_json_file<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
) -> Result<T, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| EvalError::format(path.display().to_string(), e.line(), e))
}
