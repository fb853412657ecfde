//! The runner: executes nodes, saves checkpoints, resumes, forks.

use std::time::Duration;

use tracing::Instrument;

use crate::builder::{END, Graph, GraphState, NodeContext, NodeOutput, NodePolicy, invalid_state};
use crate::checkpoint::{Checkpoint, Checkpointer, RunStatus, now_ms};
use llmkit_core::{Error, ErrorKind, Result};

/// How a call to [`Graph::run`], [`Graph::run_or_resume`], [`Graph::resume`] or
/// [`Graph::resume_with`] ended.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RunOutcome<S> {
    /// The run reached the end with this state.
    Finished(S),
    /// The run is paused for a human; resume it with [`Graph::resume_with`] and `interrupt_id`.
    Interrupted {
        /// The thread.
        thread_id: String,
        /// Pass this back to resume.
        interrupt_id: String,
        /// The node that paused.
        node: String,
        /// The evidence a reviewer needs.
        payload: serde_json::Value,
        /// The state at the pause.
        state: S,
    },
}

impl<S: GraphState> Graph<S> {
    /// Starts a new run in `thread_id` from `initial`. Fails if the thread already has
    /// checkpoints (use [`resume`](Self::resume) or a new thread id).
    pub async fn run(
        &self,
        store: &dyn Checkpointer,
        thread_id: &str,
        initial: S,
    ) -> Result<RunOutcome<S>> {
        if store.latest(thread_id).await?.is_some() {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "thread `{thread_id}` already has checkpoints: call resume() to continue it or pick a new thread id"
                ),
            ));
        }
        self.start(store, thread_id, initial).await
    }

    /// Starts `thread_id` from `initial` when it has no checkpoint yet, and otherwise continues
    /// it from its last checkpoint like [`resume`](Self::resume) (`initial` is then unused).
    ///
    /// This is the call for work that is submitted again after a crash, whenever the crash came:
    /// a thread the process never reached, or reached but died before its first checkpoint was
    /// written, starts; one killed mid-run continues without re-running completed nodes; a
    /// finished one returns its final state and writes nothing; a paused one stays paused.
    pub async fn run_or_resume(
        &self,
        store: &dyn Checkpointer,
        thread_id: &str,
        initial: S,
    ) -> Result<RunOutcome<S>> {
        match store.latest(thread_id).await? {
            Some(latest) => self.drive(store, latest).await,
            None => self.start(store, thread_id, initial).await,
        }
    }

    /// Writes a thread's first checkpoint and runs from the entry node.
    async fn start(
        &self,
        store: &dyn Checkpointer,
        thread_id: &str,
        initial: S,
    ) -> Result<RunOutcome<S>> {
        let first = Checkpoint {
            id: Checkpoint::make_id(thread_id, 0),
            thread_id: thread_id.to_owned(),
            seq: 0,
            parent: None,
            completed_node: None,
            next: Some(self.inner.entry.clone()),
            state: serde_json::to_value(&initial)?,
            status: RunStatus::Running,
            steps: 0,
            created_ms: now_ms(),
        };
        store.put(&first).await?;
        self.drive(store, first).await
    }

    /// Continues a thread from its last checkpoint: after a crash, nodes that completed are not
    /// run again; a node that failed is retried alone. A thread waiting for a human stays
    /// waiting (the same [`RunOutcome::Interrupted`] is returned).
    pub async fn resume(&self, store: &dyn Checkpointer, thread_id: &str) -> Result<RunOutcome<S>> {
        let latest = self.latest(store, thread_id).await?;
        self.drive(store, latest).await
    }

    /// Continues a thread paused by an interrupt, merging `decision` into the state with the
    /// interrupted node's resume handler. The node's own code does not run again.
    pub async fn resume_with(
        &self,
        store: &dyn Checkpointer,
        thread_id: &str,
        interrupt_id: &str,
        decision: serde_json::Value,
    ) -> Result<RunOutcome<S>> {
        let latest = self.latest(store, thread_id).await?;
        let RunStatus::Interrupted {
            interrupt_id: pending,
            node,
            ..
        } = &latest.status
        else {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                format!("thread `{thread_id}` is not waiting for a decision"),
            ));
        };
        if pending != interrupt_id {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "thread `{thread_id}` is waiting on interrupt `{pending}`, not `{interrupt_id}`"
                ),
            ));
        }
        let node = node.clone();
        let handler = self
            .inner
            .nodes
            .get(&node)
            .and_then(|s| s.on_resume.clone())
            .ok_or_else(|| {
                Error::config(format!(
                    "graph `{}`: node `{node}` interrupted but has no resume handler: add .on_resume(\"{node}\", ...)",
                    self.inner.name
                ))
            })?;
        let state: S =
            serde_json::from_value(latest.state.clone()).map_err(|e| invalid_state(&e))?;
        let state = handler(state, decision)?;
        let next = self.next_after(&node, &state)?;
        let cp = Checkpoint {
            id: Checkpoint::make_id(thread_id, latest.seq + 1),
            thread_id: thread_id.to_owned(),
            seq: latest.seq + 1,
            parent: Some(latest.id.clone()),
            completed_node: Some(node.clone()),
            next: Some(next),
            state: serde_json::to_value(&state)?,
            status: RunStatus::Running,
            steps: latest.steps + 1,
            created_ms: now_ms(),
        };
        store.put(&cp).await?;
        tracing::info!(graph = %self.inner.name, thread = thread_id, interrupt = interrupt_id, node = %node, "llmkit.graph.resumed");
        self.drive(store, cp).await
    }

    /// Applies the default decision to a pending interrupt whose deadline has passed. Returns
    /// `None` when nothing was due.
    pub async fn expire_pending(
        &self,
        store: &dyn Checkpointer,
        thread_id: &str,
        now_unix_ms: u64,
    ) -> Result<Option<RunOutcome<S>>> {
        let latest = self.latest(store, thread_id).await?;
        if let RunStatus::Interrupted {
            interrupt_id,
            deadline_ms: Some(deadline),
            default_decision: Some(decision),
            ..
        } = latest.status
            && now_unix_ms >= deadline
        {
            return self
                .resume_with(store, thread_id, &interrupt_id, decision)
                .await
                .map(Some);
        }
        Ok(None)
    }

    /// Every checkpoint of a thread, oldest first.
    pub async fn history(
        &self,
        store: &dyn Checkpointer,
        thread_id: &str,
    ) -> Result<Vec<Checkpoint>> {
        store.list(thread_id).await
    }

    /// Starts `new_thread` from an earlier checkpoint of `thread_id` (for "what if" reruns or to
    /// repair a run). Continue it with [`resume`](Self::resume) or [`resume_with`](Self::resume_with).
    pub async fn fork(
        &self,
        store: &dyn Checkpointer,
        thread_id: &str,
        checkpoint_id: &str,
        new_thread: &str,
    ) -> Result<Checkpoint> {
        if store.latest(new_thread).await?.is_some() {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                format!("thread `{new_thread}` already exists"),
            ));
        }
        let from = store.get(thread_id, checkpoint_id).await?.ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("checkpoint `{checkpoint_id}` not found in thread `{thread_id}`"),
            )
        })?;
        let status = match from.status {
            RunStatus::Interrupted {
                node,
                payload,
                deadline_ms,
                default_decision,
                ..
            } => RunStatus::Interrupted {
                interrupt_id: format!("{new_thread}:0:{node}"),
                node,
                payload,
                deadline_ms,
                default_decision,
            },
            other => other,
        };
        let cp = Checkpoint {
            id: Checkpoint::make_id(new_thread, 0),
            thread_id: new_thread.to_owned(),
            seq: 0,
            parent: Some(from.id.clone()),
            status,
            created_ms: now_ms(),
            ..from
        };
        store.put(&cp).await?;
        Ok(cp)
    }

    async fn latest(&self, store: &dyn Checkpointer, thread_id: &str) -> Result<Checkpoint> {
        store.latest(thread_id).await?.ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("thread `{thread_id}` has no checkpoints: start it with run()"),
            )
        })
    }

    async fn drive(&self, store: &dyn Checkpointer, mut cp: Checkpoint) -> Result<RunOutcome<S>> {
        let span = tracing::info_span!("llmkit.graph.run", graph = %self.inner.name, thread = %cp.thread_id);
        async move {
            loop {
                let state: S =
                    serde_json::from_value(cp.state.clone()).map_err(|e| invalid_state(&e))?;
                match &cp.status {
                    RunStatus::Finished => return Ok(RunOutcome::Finished(state)),
                    RunStatus::Interrupted {
                        interrupt_id,
                        node,
                        payload,
                        ..
                    } => {
                        return Ok(RunOutcome::Interrupted {
                            thread_id: cp.thread_id.clone(),
                            interrupt_id: interrupt_id.clone(),
                            node: node.clone(),
                            payload: payload.clone(),
                            state,
                        });
                    }
                    RunStatus::Running => {}
                }
                let node = cp.next.clone().unwrap_or_else(|| END.to_owned());
                if node == END {
                    let done = Checkpoint {
                        id: Checkpoint::make_id(&cp.thread_id, cp.seq + 1),
                        seq: cp.seq + 1,
                        parent: Some(cp.id.clone()),
                        completed_node: None,
                        next: None,
                        status: RunStatus::Finished,
                        created_ms: now_ms(),
                        ..cp
                    };
                    store.put(&done).await?;
                    return Ok(RunOutcome::Finished(state));
                }
                if cp.steps >= self.inner.max_steps {
                    return Err(Error::new(
                        ErrorKind::Other,
                        format!(
                            "graph `{}` hit its step limit of {} in thread `{}` before reaching the end (last checkpoint `{}`)",
                            self.inner.name, self.inner.max_steps, cp.thread_id, cp.id
                        ),
                    ));
                }
                let (ran, output) = self.run_with_fallback(&node, state, &cp).await?;
                let seq = cp.seq + 1;
                let next_cp = match output {
                    NodeOutput::Update(new_state) => {
                        let next = self.next_after(&ran, &new_state)?;
                        Checkpoint {
                            id: Checkpoint::make_id(&cp.thread_id, seq),
                            thread_id: cp.thread_id.clone(),
                            seq,
                            parent: Some(cp.id.clone()),
                            completed_node: Some(ran.clone()),
                            next: Some(next),
                            state: serde_json::to_value(&new_state)?,
                            status: RunStatus::Running,
                            steps: cp.steps + 1,
                            created_ms: now_ms(),
                        }
                    }
                    NodeOutput::Interrupt {
                        state,
                        payload,
                        deadline,
                        default_decision,
                    } => Checkpoint {
                        id: Checkpoint::make_id(&cp.thread_id, seq),
                        thread_id: cp.thread_id.clone(),
                        seq,
                        parent: Some(cp.id.clone()),
                        completed_node: None,
                        next: None,
                        state: serde_json::to_value(&state)?,
                        status: RunStatus::Interrupted {
                            interrupt_id: format!("{}:{seq}:{ran}", cp.thread_id),
                            node: ran.clone(),
                            payload,
                            deadline_ms: deadline.map(|d| {
                                now_ms().saturating_add(
                                    u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
                                )
                            }),
                            default_decision,
                        },
                        steps: cp.steps + 1,
                        created_ms: now_ms(),
                    },
                };
                store.put(&next_cp).await?;
                tracing::debug!(node = %ran, checkpoint = %next_cp.id, "llmkit.graph.checkpoint");
                cp = next_cp;
            }
        }
        .instrument(span)
        .await
    }

    /// Runs `node` under its policy; on failure runs its fallback node once (under the
    /// fallback's own policy). Returns the node that produced the output.
    async fn run_with_fallback(
        &self,
        node: &str,
        state: S,
        cp: &Checkpoint,
    ) -> Result<(String, NodeOutput<S>)> {
        match self.run_node(node, state.clone(), cp).await {
            Ok(out) => Ok((node.to_owned(), out)),
            Err(err) => {
                let fallback = self
                    .inner
                    .nodes
                    .get(node)
                    .and_then(|s| s.policy.fallback.clone());
                match fallback {
                    Some(fb) => {
                        tracing::warn!(node, fallback = %fb, error = %err, "llmkit.graph.fallback");
                        match self.run_node(&fb, state, cp).await {
                            Ok(out) => Ok((fb, out)),
                            Err(e2) => Err(self.node_failed(&fb, cp, e2.with_attempts(vec![err]))),
                        }
                    }
                    None => Err(self.node_failed(node, cp, err)),
                }
            }
        }
    }

    fn node_failed(&self, node: &str, cp: &Checkpoint, err: Error) -> Error {
        let kind = err.kind();
        Error::new(
            kind,
            format!(
                "graph `{}` node `{node}` failed in thread `{}`; last good checkpoint `{}` (resume re-runs only this node): {}",
                self.inner.name,
                cp.thread_id,
                cp.id,
                err.message()
            ),
        )
        .with_attempts(vec![err])
    }

    async fn run_node(&self, node: &str, state: S, cp: &Checkpoint) -> Result<NodeOutput<S>> {
        let spec = self.inner.nodes.get(node).ok_or_else(|| {
            Error::config(format!(
                "graph `{}`: unknown node `{node}`",
                self.inner.name
            ))
        })?;
        let policy: &NodePolicy = &spec.policy;
        let mut failures = Vec::new();
        for attempt in 1..=policy.max_attempts {
            let ctx = NodeContext {
                thread_id: cp.thread_id.clone(),
                node: node.to_owned(),
                step: cp.steps,
                attempt,
            };
            let span = tracing::info_span!("llmkit.graph.node", node, step = cp.steps, attempt, parent_checkpoint = %cp.id);
            let fut = spec.node.run(state.clone(), ctx.clone()).instrument(span);
            let result = match policy.timeout {
                Some(t) => tokio::time::timeout(t, fut).await.unwrap_or_else(|_| {
                    Err(Error::new(
                        ErrorKind::Timeout,
                        format!("node `{node}` timed out after {t:?}"),
                    ))
                }),
                None => fut.await,
            };
            match result {
                Ok(out) => return Ok(out),
                Err(e) if e.is_retryable() && attempt < policy.max_attempts => {
                    let delay = backoff_delay(policy, attempt, &ctx.attempt_key());
                    tracing::warn!(node, attempt, error = %e, ?delay, "llmkit.graph.retry");
                    failures.push(e);
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e.with_attempts(failures)),
            }
        }
        Err(
            Error::new(ErrorKind::Other, format!("node `{node}` made no attempt"))
                .with_attempts(failures),
        )
    }
}

/// Exponential backoff with full jitter; the jitter is derived from the attempt key, so it is
/// spread across runs but reproducible in tests.
fn backoff_delay(policy: &NodePolicy, attempt: u32, key: &str) -> Duration {
    let exp = policy
        .backoff
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
        .min(policy.max_backoff);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let frac = (h % 1000) as f64 / 1000.0;
    exp.mul_f64(0.5 + frac / 2.0)
}
