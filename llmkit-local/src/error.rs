//! [`LocalError`]: why a local model could not be loaded or run.

use std::path::PathBuf;

/// Why a local model could not be loaded or could not embed.
///
/// Every load error names the file it is about, so a missing or damaged download is found at
/// once. Converts into [`llmkit_core::Error`]: load errors become
/// [`ErrorKind::Config`](llmkit_core::ErrorKind::Config), inference errors
/// [`ErrorKind::Other`](llmkit_core::ErrorKind::Other).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    /// A file the model needs is not there.
    #[error("local model file missing: {}", path.display())]
    MissingFile {
        /// The path that was looked for.
        path: PathBuf,
    },
    /// A file is there but cannot be read or parsed (truncated download, wrong format, a
    /// tensor missing or of the wrong shape).
    #[error("local model file unreadable: {}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The configuration describes a model this loader does not implement.
    #[error("local model unsupported: {}: {reason}", path.display())]
    Unsupported {
        /// The configuration file.
        path: PathBuf,
        /// What is not supported.
        reason: String,
    },
    /// Tokenizing or the forward pass failed.
    #[error("local model inference failed: {0}")]
    Inference(String),
}

impl From<LocalError> for llmkit_core::Error {
    fn from(e: LocalError) -> Self {
        let kind = match e {
            LocalError::Inference(_) => llmkit_core::ErrorKind::Other,
            _ => llmkit_core::ErrorKind::Config,
        };
        llmkit_core::Error::new(kind, e.to_string()).with_provider(crate::PROVIDER)
    }
}

impl From<candle_core::Error> for LocalError {
    fn from(e: candle_core::Error) -> Self {
        LocalError::Inference(e.to_string())
    }
}
