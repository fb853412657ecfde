//! [`OutputCache`]: target outputs on disk, keyed by (case id, case content hash, prompt
//! version, model), so re-running only the evaluators makes no target call.

use std::path::PathBuf;

use crate::dataset::Case;
use crate::error::{EvalError, sha256_hex};
use crate::target::{TargetId, TargetOutput};

/// A directory of cached target outputs, one small JSON file per (case id, case content hash,
/// prompt version, model). Safe to share between runs; delete the directory to invalidate.
#[derive(Debug, Clone)]
pub struct OutputCache {
    dir: PathBuf,
}

impl OutputCache {
    /// Opens (and creates) the cache directory.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, EvalError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| EvalError::io(&dir, e))?;
        Ok(OutputCache { dir })
    }

    fn path(&self, case: &Case, target: &TargetId) -> PathBuf {
        let key = serde_json::json!([case.id, case.content_hash(), target.prompt, target.model]);
        self.dir
            .join(format!("{}.json", sha256_hex(key.to_string().as_bytes())))
    }

    /// The cached output, if any (an unreadable entry counts as a miss).
    pub fn get(&self, case: &Case, target: &TargetId) -> Option<TargetOutput> {
        let text = std::fs::read_to_string(self.path(case, target)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Stores an output; written to a temporary file and renamed so readers never see half.
    pub fn put(
        &self,
        case: &Case,
        target: &TargetId,
        output: &TargetOutput,
    ) -> Result<(), EvalError> {
        let path = self.path(case, target);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let text = serde_json::to_string(output)
            .map_err(|e| EvalError::format(path.display().to_string(), 1, e))?;
        std::fs::write(&tmp, text).map_err(|e| EvalError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| EvalError::io(&path, e))
    }

    /// Number of cached outputs.
    pub fn len(&self) -> usize {
        std::fs::read_dir(&self.dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                    .count()
            })
            .unwrap_or(0)
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
