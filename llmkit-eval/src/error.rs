//! [`EvalError`]: what can go wrong outside a model call (datasets, files, configuration, gates).

use llmkit_core::{Error, ErrorKind};

/// Failures of the eval harness itself. Model-call failures stay [`llmkit_core::Error`]s; this
/// enum converts into one (`Config`, `InvalidRequest`, `NotFound` or `Other`) so `?` works in
/// code that mixes both.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A dataset file could not be read or parsed; see [`crate::dataset::DatasetError`].
    #[error(transparent)]
    Dataset(#[from] crate::dataset::DatasetError),
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
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

impl EvalError {
    pub(crate) fn io(path: impl AsRef<std::path::Path>, e: impl std::fmt::Display) -> Self {
        EvalError::Io {
            path: path.as_ref().display().to_string(),
            message: e.to_string().to_lowercase(),
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
        Error::new(kind, e.to_string())
    }
}

/// Lower-case hex of bytes (sha256 digests).
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Hex sha256 of `data`.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(data))
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
