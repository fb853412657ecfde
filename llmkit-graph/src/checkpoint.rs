//! Checkpoints and where they are kept.
//!
//! After every node the runner saves a [`Checkpoint`]: the state, the node that just finished,
//! the node to run next and the run's status. A [`Checkpointer`] keeps them per thread (one run
//! of a graph). [`MemoryCheckpointer`] suits tests and single processes; [`FileCheckpointer`]
//! survives a crash on one machine, writing each checkpoint atomically (temp file, fsync, rename)
//! so a crash mid-write never corrupts the last good one.
//!
//! Retention is built in ([`Retention`]) because unbounded checkpoint tables are the most common
//! complaint about graph runtimes in production.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use llmkit_core::{Error, ErrorKind, Result};

/// Where a run stands after a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunStatus {
    /// More nodes to run (`Checkpoint::next` says which).
    Running,
    /// Paused for a human at `node`; resume with the interrupt id.
    Interrupted {
        /// Unique id of this interrupt.
        interrupt_id: String,
        /// The node that asked.
        node: String,
        /// The evidence a reviewer needs.
        payload: serde_json::Value,
        /// When the pending decision expires (unix milliseconds), if it does.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline_ms: Option<u64>,
        /// The decision applied when the deadline passes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default_decision: Option<serde_json::Value>,
    },
    /// Reached the end.
    Finished,
}

/// One saved step of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Unique id: `{thread}:{seq:06}`.
    pub id: String,
    /// The thread (run) it belongs to.
    pub thread_id: String,
    /// Position in the thread, from 0.
    pub seq: u64,
    /// The checkpoint this one follows (or was forked from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The node whose output this checkpoint records; `None` for the initial one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_node: Option<String>,
    /// The node to run next; `None` when finished or interrupted. A node that failed leaves no
    /// checkpoint: the last good one still names it as `next`, so a resume re-runs only it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// The state after `completed_node`, as JSON.
    pub state: serde_json::Value,
    /// Where the run stands.
    pub status: RunStatus,
    /// Steps run so far in this thread (for the step limit).
    pub steps: u64,
    /// When it was written, unix milliseconds.
    pub created_ms: u64,
}

impl Checkpoint {
    /// The id for a thread and position.
    pub fn make_id(thread_id: &str, seq: u64) -> String {
        format!("{thread_id}:{seq:06}")
    }

    /// Whether the run reached the end.
    pub fn is_finished(&self) -> bool {
        self.status == RunStatus::Finished
    }
}

/// Milliseconds since the unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// How many checkpoints to keep. Defaults: keep the last 50 per thread, no age limit, keep
/// finished threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Retention {
    /// Checkpoints kept per thread (the newest ones). Never below 1.
    pub keep_last: usize,
    /// Checkpoints older than this are dropped (the newest of a thread is always kept).
    pub max_age: Option<Duration>,
    /// Delete every checkpoint of threads that finished.
    pub prune_finished: bool,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            keep_last: 50,
            max_age: None,
            prune_finished: false,
        }
    }
}

/// Sizes for metrics and dashboards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CheckpointStats {
    /// Threads stored.
    pub threads: usize,
    /// Checkpoints stored.
    pub checkpoints: usize,
    /// Bytes of serialized checkpoints.
    pub bytes: u64,
}

/// Stores checkpoints per thread. Implement it for a shared engine (PostgreSQL, Redis) so runs
/// resume on another machine; the in-memory and file stores are the defaults.
///
/// Required: [`put`](Checkpointer::put), [`list`](Checkpointer::list),
/// [`delete`](Checkpointer::delete) and [`threads`](Checkpointer::threads); the rest have defaults
/// built on those.
#[async_trait]
pub trait Checkpointer: Send + Sync {
    /// Saves a checkpoint atomically: after a crash either the old or the new one is visible,
    /// never a torn write.
    async fn put(&self, checkpoint: &Checkpoint) -> Result<()>;

    /// Every checkpoint of a thread, oldest first.
    async fn list(&self, thread_id: &str) -> Result<Vec<Checkpoint>>;

    /// Deletes the checkpoints with these ids from a thread.
    async fn delete(&self, thread_id: &str, ids: &[String]) -> Result<()>;

    /// Every thread id.
    async fn threads(&self) -> Result<Vec<String>>;

    /// The newest checkpoint of a thread.
    async fn latest(&self, thread_id: &str) -> Result<Option<Checkpoint>> {
        Ok(self.list(thread_id).await?.into_iter().last())
    }

    /// One checkpoint by id.
    async fn get(&self, thread_id: &str, id: &str) -> Result<Option<Checkpoint>> {
        Ok(self.list(thread_id).await?.into_iter().find(|c| c.id == id))
    }

    /// Applies a retention policy to every thread; returns how many checkpoints were removed.
    async fn prune(&self, retention: &Retention) -> Result<usize> {
        let now = now_ms();
        let mut removed = 0;
        for thread in self.threads().await? {
            let all = self.list(&thread).await?;
            let finished = all.last().is_some_and(|c| c.status == RunStatus::Finished);
            let keep_last = retention.keep_last.max(1);
            let doomed: Vec<String> = all
                .iter()
                .enumerate()
                .filter(|(i, c)| {
                    let newest = *i + 1 == all.len();
                    if retention.prune_finished && finished {
                        return true;
                    }
                    if newest {
                        return false;
                    }
                    let too_many = all.len() - i > keep_last;
                    let too_old = retention.max_age.is_some_and(|age| {
                        now.saturating_sub(c.created_ms)
                            > u64::try_from(age.as_millis()).unwrap_or(u64::MAX)
                    });
                    too_many || too_old
                })
                .map(|(_, c)| c.id.clone())
                .collect();
            if !doomed.is_empty() {
                removed += doomed.len();
                self.delete(&thread, &doomed).await?;
            }
        }
        Ok(removed)
    }

    /// Counts for metrics.
    async fn stats(&self) -> Result<CheckpointStats> {
        let mut stats = CheckpointStats::default();
        for thread in self.threads().await? {
            stats.threads += 1;
            for c in self.list(&thread).await? {
                stats.checkpoints += 1;
                stats.bytes += serde_json::to_vec(&c).map(|v| v.len() as u64).unwrap_or(0);
            }
        }
        Ok(stats)
    }
}

/// Checkpoints in process memory. Lost when the process exits; for tests and short jobs.
#[derive(Debug, Default)]
pub struct MemoryCheckpointer {
    threads: Mutex<BTreeMap<String, Vec<Checkpoint>>>,
}

impl MemoryCheckpointer {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<Checkpoint>>> {
        llmkit_core::sync::lock(&self.threads)
    }
}

#[async_trait]
impl Checkpointer for MemoryCheckpointer {
    async fn put(&self, checkpoint: &Checkpoint) -> Result<()> {
        let mut threads = self.lock();
        let list = threads.entry(checkpoint.thread_id.clone()).or_default();
        list.retain(|c| c.id != checkpoint.id);
        list.push(checkpoint.clone());
        list.sort_by_key(|c| c.seq);
        Ok(())
    }

    async fn list(&self, thread_id: &str) -> Result<Vec<Checkpoint>> {
        Ok(self.lock().get(thread_id).cloned().unwrap_or_default())
    }

    async fn delete(&self, thread_id: &str, ids: &[String]) -> Result<()> {
        let mut threads = self.lock();
        if let Some(list) = threads.get_mut(thread_id) {
            list.retain(|c| !ids.contains(&c.id));
            if list.is_empty() {
                threads.remove(thread_id);
            }
        }
        Ok(())
    }

    async fn threads(&self) -> Result<Vec<String>> {
        Ok(self.lock().keys().cloned().collect())
    }
}

/// Checkpoints as JSON files, one folder per thread: `{root}/{thread}/{seq:06}.json`.
///
/// Each write goes to a temporary file in the same folder, is flushed to disk, then renamed over
/// the final name: rename is atomic on POSIX file systems, so a crash leaves either the previous
/// checkpoint set or the new one, never a half-written file. Stray temporary files from a crash
/// are ignored when reading.
#[derive(Debug, Clone)]
pub struct FileCheckpointer {
    root: PathBuf,
}

fn io_err(what: &str, path: &Path, e: &std::io::Error) -> Error {
    Error::new(
        ErrorKind::Other,
        format!("checkpoint {what} failed for {}: {e}", path.display()),
    )
}

/// Thread ids become folder names, so only a safe character set is allowed.
fn check_thread_id(thread_id: &str) -> Result<()> {
    let ok = !thread_id.is_empty()
        && thread_id.len() <= 128
        && thread_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !thread_id.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidRequest,
            format!(
                "thread id `{thread_id}` must be 1-128 characters of a-z, A-Z, 0-9, '-', '_' or '.', not starting with '.'"
            ),
        ))
    }
}

impl FileCheckpointer {
    /// A store under `root` (created when missing).
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|e| io_err("create folder", &root, &e))?;
        Ok(FileCheckpointer { root })
    }

    fn thread_dir(&self, thread_id: &str) -> Result<PathBuf> {
        check_thread_id(thread_id)?;
        Ok(self.root.join(thread_id))
    }
}

#[async_trait]
impl Checkpointer for FileCheckpointer {
    async fn put(&self, checkpoint: &Checkpoint) -> Result<()> {
        let dir = self.thread_dir(&checkpoint.thread_id)?;
        let bytes = serde_json::to_vec_pretty(checkpoint)?;
        let seq = checkpoint.seq;
        tokio::task::spawn_blocking(move || -> Result<()> {
            use std::io::Write;
            std::fs::create_dir_all(&dir).map_err(|e| io_err("create folder", &dir, &e))?;
            let final_path = dir.join(format!("{seq:06}.json"));
            let tmp_path = dir.join(format!(".{seq:06}.json.tmp"));
            let mut f =
                std::fs::File::create(&tmp_path).map_err(|e| io_err("write", &tmp_path, &e))?;
            f.write_all(&bytes)
                .and_then(|()| f.sync_all())
                .map_err(|e| io_err("write", &tmp_path, &e))?;
            std::fs::rename(&tmp_path, &final_path)
                .map_err(|e| io_err("rename", &final_path, &e))?;
            Ok(())
        })
        .await
        .map_err(|e| {
            Error::new(
                ErrorKind::Other,
                format!("checkpoint writer task failed: {e}"),
            )
        })?
    }

    async fn list(&self, thread_id: &str) -> Result<Vec<Checkpoint>> {
        let dir = self.thread_dir(thread_id)?;
        tokio::task::spawn_blocking(move || -> Result<Vec<Checkpoint>> {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(io_err("read folder", &dir, &e)),
            };
            let mut out = Vec::new();
            for entry in entries {
                let path = entry.map_err(|e| io_err("read folder", &dir, &e))?.path();
                let is_checkpoint = path.extension().is_some_and(|x| x == "json")
                    && !path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with('.'));
                if !is_checkpoint {
                    continue;
                }
                let bytes = std::fs::read(&path).map_err(|e| io_err("read", &path, &e))?;
                let cp: Checkpoint = serde_json::from_slice(&bytes).map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidResponse,
                        format!("checkpoint file {} is not valid: {e}", path.display()),
                    )
                })?;
                out.push(cp);
            }
            out.sort_by_key(|c| c.seq);
            Ok(out)
        })
        .await
        .map_err(|e| {
            Error::new(
                ErrorKind::Other,
                format!("checkpoint reader task failed: {e}"),
            )
        })?
    }

    async fn delete(&self, thread_id: &str, ids: &[String]) -> Result<()> {
        let dir = self.thread_dir(thread_id)?;
        for cp in self.list(thread_id).await? {
            if ids.contains(&cp.id) {
                let path = dir.join(format!("{:06}.json", cp.seq));
                std::fs::remove_file(&path).map_err(|e| io_err("delete", &path, &e))?;
            }
        }
        if self.list(thread_id).await?.is_empty() {
            // Best effort: a leftover empty folder is harmless.
            let _ = std::fs::remove_dir_all(&dir);
        }
        Ok(())
    }

    async fn threads(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let entries =
            std::fs::read_dir(&self.root).map_err(|e| io_err("read folder", &self.root, &e))?;
        for entry in entries.flatten() {
            if entry.path().is_dir()
                && let Some(name) = entry.file_name().to_str()
            {
                out.push(name.to_owned());
            }
        }
        out.sort();
        Ok(out)
    }
}
