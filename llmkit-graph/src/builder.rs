//! The graph's vocabulary and its builder: nodes, edges, policies, validation and the Mermaid
//! rendering. Running a built graph lives in `run.rs`, checkpoints in `checkpoint.rs`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use llmkit_core::{Error, ErrorKind, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The name of the end of the graph, usable as an edge target.
pub const END: &str = "__end__";

/// What a state type needs.
pub trait GraphState: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}
impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> GraphState for T {}

/// What a node returns.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum NodeOutput<S> {
    /// The new state; the run follows the node's edge.
    Update(S),
    /// Pause for a human. The state is saved; [`Graph::resume_with`] continues by passing the
    /// decision to the node's resume handler (see [`GraphBuilder::on_resume`]).
    Interrupt {
        /// The state to save (including anything the node did before pausing).
        state: S,
        /// The evidence a reviewer needs.
        payload: serde_json::Value,
        /// How long the decision may wait before `default_decision` applies.
        deadline: Option<Duration>,
        /// The decision applied by [`Graph::expire_pending`] after the deadline.
        default_decision: Option<serde_json::Value>,
    },
}

impl<S> NodeOutput<S> {
    /// An interrupt with a payload and no deadline.
    pub fn interrupt(state: S, payload: serde_json::Value) -> Self {
        NodeOutput::Interrupt {
            state,
            payload,
            deadline: None,
            default_decision: None,
        }
    }
}

/// What a node knows about the run it is part of.
#[derive(Debug, Clone)]
pub struct NodeContext {
    /// The thread (run) id.
    pub thread_id: String,
    /// The node's name.
    pub node: String,
    /// The step number within the thread (0-based).
    pub step: u64,
    /// The attempt (1-based) under the node's retry policy.
    pub attempt: u32,
}

impl NodeContext {
    /// A key for side effects that is the same for every attempt of this step, across crashes and
    /// resumes: `{thread}/{step}/{node}`. Pass it as an idempotency key so a retried or resumed
    /// node cannot fire its side effect twice.
    pub fn idempotency_key(&self) -> String {
        format!("{}/{}/{}", self.thread_id, self.step, self.node)
    }

    /// A key unique to this attempt: `{thread}/{step}/{node}/{attempt}`.
    pub fn attempt_key(&self) -> String {
        format!("{}/{}", self.idempotency_key(), self.attempt)
    }
}

/// A step of the graph as a trait object. Closures work too (see [`GraphBuilder::node`]).
#[async_trait]
pub trait Node<S: GraphState>: Send + Sync {
    /// Reads the state and returns the next one (or an interrupt).
    async fn run(&self, state: S, ctx: NodeContext) -> Result<NodeOutput<S>>;
}

struct FnNode<F, Fut> {
    f: F,
    _fut: PhantomData<fn() -> Fut>,
}

#[async_trait]
impl<S, F, Fut> Node<S> for FnNode<F, Fut>
where
    S: GraphState,
    F: Fn(S, NodeContext) -> Fut + Send + Sync,
    Fut: Future<Output = Result<NodeOutput<S>>> + Send,
{
    async fn run(&self, state: S, ctx: NodeContext) -> Result<NodeOutput<S>> {
        (self.f)(state, ctx).await
    }
}

/// Per-node timeout, retries and fallback. Defaults: no timeout, one attempt, no fallback.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct NodePolicy {
    /// Bound on one attempt.
    pub timeout: Option<Duration>,
    /// Attempts in all (1 = no retry). Only retryable errors ([`Error::is_retryable`]) and
    /// timeouts are retried.
    pub max_attempts: u32,
    /// First backoff delay; doubles each retry, capped by `max_backoff`, with full jitter.
    pub backoff: Duration,
    /// Largest backoff delay.
    pub max_backoff: Duration,
    /// Node to run instead when this one fails after its retries.
    pub fallback: Option<String>,
}

impl Default for NodePolicy {
    fn default() -> Self {
        NodePolicy {
            timeout: None,
            max_attempts: 1,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            fallback: None,
        }
    }
}

impl NodePolicy {
    /// Sets the per-attempt timeout.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    /// Sets the number of attempts (minimum 1).
    pub fn retries(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts.max(1);
        self
    }

    /// Sets the first backoff delay.
    pub fn backoff(mut self, first: Duration) -> Self {
        self.backoff = first;
        self
    }

    /// Sets the fallback node.
    pub fn fallback(mut self, node: impl Into<String>) -> Self {
        self.fallback = Some(node.into());
        self
    }
}

pub(crate) type Router<S> = Arc<dyn Fn(&S) -> String + Send + Sync>;
pub(crate) type ResumeHandler<S> = Arc<dyn Fn(S, serde_json::Value) -> Result<S> + Send + Sync>;

pub(crate) enum Edge<S> {
    To(String),
    Conditional {
        route: Router<S>,
        targets: Vec<String>,
    },
}

pub(crate) struct NodeSpec<S> {
    pub(crate) node: Arc<dyn Node<S>>,
    pub(crate) policy: NodePolicy,
    pub(crate) on_resume: Option<ResumeHandler<S>>,
}

/// Builds a [`Graph`]. See the [crate docs](crate).
#[must_use]
pub struct GraphBuilder<S: GraphState> {
    name: String,
    nodes: BTreeMap<String, NodeSpec<S>>,
    edges: BTreeMap<String, Edge<S>>,
    entry: Option<String>,
    max_steps: u64,
    duplicate: Vec<String>,
}

impl<S: GraphState> GraphBuilder<S> {
    /// Adds a node from an async closure `(state, ctx) -> Result<NodeOutput<S>>`.
    pub fn node<F, Fut>(self, name: impl Into<String>, f: F) -> Self
    where
        F: Fn(S, NodeContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<NodeOutput<S>>> + Send + 'static,
    {
        self.node_obj(
            name,
            Arc::new(FnNode {
                f,
                _fut: PhantomData,
            }),
        )
    }

    /// Adds a node from a [`Node`] trait object.
    pub fn node_obj(mut self, name: impl Into<String>, node: Arc<dyn Node<S>>) -> Self {
        let name = name.into();
        let spec = NodeSpec {
            node,
            policy: NodePolicy::default(),
            on_resume: None,
        };
        if self.nodes.insert(name.clone(), spec).is_some() {
            self.duplicate.push(name);
        }
        self
    }

    /// Sets a node's policy (timeout, retries, fallback).
    pub fn policy(mut self, node: &str, policy: NodePolicy) -> Self {
        if let Some(spec) = self.nodes.get_mut(node) {
            spec.policy = policy;
        }
        self
    }

    /// Sets how a human's decision is merged into the state when a run interrupted at `node` is
    /// resumed. The node itself is not run again.
    pub fn on_resume(
        mut self,
        node: &str,
        f: impl Fn(S, serde_json::Value) -> Result<S> + Send + Sync + 'static,
    ) -> Self {
        if let Some(spec) = self.nodes.get_mut(node) {
            spec.on_resume = Some(Arc::new(f));
        }
        self
    }

    /// Sets the entry node.
    pub fn entry(mut self, node: impl Into<String>) -> Self {
        self.entry = Some(node.into());
        self
    }

    /// A fixed edge.
    pub fn edge(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.edges.insert(from.into(), Edge::To(to.into()));
        self
    }

    /// A conditional edge: `route` picks the next node from the state; `targets` lists every
    /// node it may pick (checked at build time and drawn in the Mermaid chart).
    pub fn conditional_edge(
        mut self,
        from: impl Into<String>,
        route: impl Fn(&S) -> String + Send + Sync + 'static,
        targets: &[&str],
    ) -> Self {
        self.edges.insert(
            from.into(),
            Edge::Conditional {
                route: Arc::new(route),
                targets: targets.iter().map(|t| (*t).to_owned()).collect(),
            },
        );
        self
    }

    /// Bounds the number of node executions in one thread (default 100), so a loop cannot run
    /// forever.
    pub fn max_steps(mut self, n: u64) -> Self {
        self.max_steps = n.max(1);
        self
    }

    /// Validates and builds. Errors ([`ErrorKind::Config`]) name the offending node.
    pub fn build(self) -> Result<Graph<S>> {
        let bad = |msg: String| Err(Error::config(format!("graph `{}`: {msg}", self.name)));
        if let Some(d) = self.duplicate.first() {
            return bad(format!("node `{d}` is defined twice"));
        }
        if self.nodes.contains_key(END) {
            return bad(format!("`{END}` is reserved for the end of the graph"));
        }
        let Some(entry) = self.entry.clone() else {
            return bad("no entry node: call .entry(name)".into());
        };
        if !self.nodes.contains_key(&entry) {
            return bad(format!("entry node `{entry}` does not exist"));
        }
        for (from, edge) in &self.edges {
            if !self.nodes.contains_key(from) {
                return bad(format!("edge from unknown node `{from}`"));
            }
            for to in edge_targets(edge) {
                if to != END && !self.nodes.contains_key(to) {
                    return bad(format!("edge from `{from}` to unknown node `{to}`"));
                }
            }
        }
        for (name, spec) in &self.nodes {
            if !self.edges.contains_key(name) {
                return bad(format!(
                    "node `{name}` has no outgoing edge: add .edge(\"{name}\", END) or another target"
                ));
            }
            if let Some(fb) = &spec.policy.fallback
                && !self.nodes.contains_key(fb)
            {
                return bad(format!("fallback `{fb}` of node `{name}` does not exist"));
            }
        }
        let successors = |n: &str| -> Vec<String> {
            let mut out: Vec<String> = self
                .edges
                .get(n)
                .map(|e| edge_targets(e).map(str::to_owned).collect())
                .unwrap_or_default();
            if let Some(fb) = self.nodes.get(n).and_then(|s| s.policy.fallback.clone()) {
                out.push(fb);
            }
            out
        };
        // Reachability from the entry.
        let mut reachable = BTreeSet::new();
        let mut queue = VecDeque::from([entry.clone()]);
        while let Some(n) = queue.pop_front() {
            if n == END || !reachable.insert(n.clone()) {
                continue;
            }
            queue.extend(successors(&n));
        }
        if let Some(orphan) = self.nodes.keys().find(|n| !reachable.contains(*n)) {
            return bad(format!(
                "node `{orphan}` is unreachable from entry `{entry}`"
            ));
        }
        // Every reachable node must have some path to END.
        let mut reaches_end: BTreeSet<String> = BTreeSet::new();
        loop {
            let before = reaches_end.len();
            for n in self.nodes.keys() {
                if successors(n)
                    .iter()
                    .any(|s| s == END || reaches_end.contains(s))
                {
                    reaches_end.insert(n.clone());
                }
            }
            if reaches_end.len() == before {
                break;
            }
        }
        if let Some(stuck) = self.nodes.keys().find(|n| !reaches_end.contains(*n)) {
            return bad(format!("node `{stuck}` has no path to the end"));
        }
        Ok(Graph {
            inner: Arc::new(GraphInner {
                name: self.name,
                nodes: self.nodes,
                edges: self.edges,
                entry,
                max_steps: self.max_steps,
            }),
        })
    }
}

fn edge_targets<S>(edge: &Edge<S>) -> Box<dyn Iterator<Item = &str> + '_> {
    match edge {
        Edge::To(t) => Box::new(std::iter::once(t.as_str())),
        Edge::Conditional { targets, .. } => Box::new(targets.iter().map(String::as_str)),
    }
}

pub(crate) struct GraphInner<S: GraphState> {
    pub(crate) name: String,
    pub(crate) nodes: BTreeMap<String, NodeSpec<S>>,
    pub(crate) edges: BTreeMap<String, Edge<S>>,
    pub(crate) entry: String,
    pub(crate) max_steps: u64,
}

/// A validated graph; cheap to clone (an `Arc`). Run it with [`Graph::run`].
pub struct Graph<S: GraphState> {
    pub(crate) inner: Arc<GraphInner<S>>,
}

impl<S: GraphState> Clone for Graph<S> {
    fn clone(&self) -> Self {
        Graph {
            inner: self.inner.clone(),
        }
    }
}

impl<S: GraphState> fmt::Debug for Graph<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Graph")
            .field("name", &self.inner.name)
            .field("nodes", &self.inner.nodes.keys().collect::<Vec<_>>())
            .field("entry", &self.inner.entry)
            .finish()
    }
}

impl<S: GraphState> Graph<S> {
    /// Starts a graph named `name` (used in spans and errors).
    pub fn builder(name: impl Into<String>) -> GraphBuilder<S> {
        GraphBuilder {
            name: name.into(),
            nodes: BTreeMap::new(),
            edges: BTreeMap::new(),
            entry: None,
            max_steps: 100,
            duplicate: Vec::new(),
        }
    }

    /// The graph's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The graph as a Mermaid flowchart, for docs.
    pub fn to_mermaid(&self) -> String {
        let id = |n: &str| {
            if n == END {
                "END".to_owned()
            } else {
                n.replace(['-', ' ', '.'], "_")
            }
        };
        let mut out = String::from("flowchart TD\n");
        out.push_str(&format!(
            "    START([start]) --> {}\n",
            id(&self.inner.entry)
        ));
        for name in self.inner.nodes.keys() {
            out.push_str(&format!("    {}[{}]\n", id(name), name));
        }
        out.push_str("    END([end])\n");
        for (from, edge) in &self.inner.edges {
            match edge {
                Edge::To(to) => out.push_str(&format!("    {} --> {}\n", id(from), id(to))),
                Edge::Conditional { targets, .. } => {
                    for to in targets {
                        out.push_str(&format!("    {} -.-> {}\n", id(from), id(to)));
                    }
                }
            }
        }
        for (name, spec) in &self.inner.nodes {
            if let Some(fb) = &spec.policy.fallback {
                out.push_str(&format!("    {} -. fallback .-> {}\n", id(name), id(fb)));
            }
        }
        out
    }

    pub(crate) fn next_after(&self, node: &str, state: &S) -> Result<String> {
        match self.inner.edges.get(node) {
            Some(Edge::To(t)) => Ok(t.clone()),
            Some(Edge::Conditional { route, targets }) => {
                let t = route(state);
                if targets.contains(&t) {
                    Ok(t)
                } else {
                    Err(Error::config(format!(
                        "graph `{}`: router of `{node}` chose `{t}`, which is not among its declared targets {targets:?}",
                        self.inner.name
                    )))
                }
            }
            None => Err(Error::config(format!(
                "graph `{}`: node `{node}` has no outgoing edge",
                self.inner.name
            ))),
        }
    }
}

pub(crate) fn invalid_state(e: &serde_json::Error) -> Error {
    Error::new(
        ErrorKind::InvalidRequest,
        format!("checkpointed state does not match the graph's state type: {e}"),
    )
}
