//! Proposal review: a checkpointed graph that extracts, scores, auto-decides and pauses for a human.
//!
//! First run (offline, scripted model):
//!   cargo run --example proposal_review --features graph
//! Then finish the paused run from disk, in a new process:
//!   cargo run --example proposal_review --features graph -- --resume proposal-3 --decision approve
//! Add `--dir PATH` to both to choose where checkpoints live (default: a folder in the temp dir).
//!
//! Crash and resume: `--model-delay-ms 3000` makes every model call take three seconds; kill the
//! process (Ctrl-C) while it waits and run the same command again. Each thread continues from its
//! last checkpoint: finished ones are reported without re-running anything, an interrupted one
//! stays paused, and one the crash reached before its first checkpoint starts. `--resume THREAD`
//! does the same for one thread. Nothing is ever deleted: to start over, pass a new `--dir`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use llmkit::core::{ChatModel, ChatRequest, Error, ErrorKind, Message, Reply, ScriptedModel};
use llmkit::graph::review::{HitlGate, MemoryReviewQueue, ReviewQueue, Thresholds, Verdict};
use llmkit::graph::{Checkpointer, END, FileCheckpointer, Graph, NodeOutput, RunOutcome};
use serde::{Deserialize, Serialize};

/// Fields the model extracts from a proposal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Fields {
    budget_usd: f64,
    months: u32,
    has_references: bool,
}

/// The graph's state, checkpointed after every node.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct Review {
    proposal: String,
    fields: Option<Fields>,
    score: f64,
    verdict: Option<Verdict>,
    decision: Option<String>,
    decided_by: Option<String>,
}

/// The proposals, one graph thread each.
const PROPOSALS: [(&str, &str); 3] = [
    (
        "proposal-1",
        "Acme Corp: 6 month pilot, 40k USD, three references attached.",
    ),
    (
        "proposal-2",
        "Shady LLC: 900k USD in one month, no references.",
    ),
    (
        "proposal-3",
        "Globex: 10 month rollout, 120k USD, references on request.",
    ),
];

/// The state a thread starts from, for this example's thread ids.
fn initial_state(thread: &str) -> Option<Review> {
    PROPOSALS
        .iter()
        .find(|(id, _)| *id == thread)
        .map(|(_, text)| Review {
            proposal: (*text).into(),
            ..Default::default()
        })
}

fn scripted_model(delay: Duration) -> ScriptedModel {
    // Offline stand-in for an extraction model: answers JSON computed from the proposal text,
    // after `delay` (so a crash mid-call can be shown).
    ScriptedModel::builder()
        .model("scripted-extractor")
        .fallback(Reply::dynamic(move |req: &ChatRequest| {
            let text = req.text();
            let fields = if text.contains("Acme") {
                r#"{"budget_usd": 40000, "months": 6, "has_references": true}"#
            } else if text.contains("Shady") {
                r#"{"budget_usd": 900000, "months": 1, "has_references": false}"#
            } else {
                r#"{"budget_usd": 120000, "months": 10, "has_references": true}"#
            };
            Reply::text(fields).after(delay)
        }))
        .build()
}

fn build_graph(
    model: Arc<dyn ChatModel>,
    gate: Arc<HitlGate>,
    executed: Arc<Mutex<Vec<String>>>,
) -> Result<Graph<Review>, Error> {
    let log = move |name: &str| {
        executed
            .lock()
            .map(|mut l| l.push(name.to_owned()))
            .unwrap_or(())
    };
    let log = Arc::new(log);
    let (l1, l2, l3, l4) = (log.clone(), log.clone(), log.clone(), log);
    Graph::<Review>::builder("proposal_review")
        .node("extract", move |mut s: Review, _| {
            let model = model.clone();
            let log = l1.clone();
            async move {
                log("extract");
                let request = ChatRequest::new(vec![
                    Message::system("Extract budget_usd, months and has_references as JSON."),
                    Message::user(s.proposal.clone()),
                ])
                .with_temperature(0.0);
                let reply = model.chat(request).await?;
                let fields: Fields = serde_json::from_str(&reply.text()).map_err(|e| {
                    Error::new(ErrorKind::OutputInvalid, format!("extraction is not the expected json: {e}"))
                })?;
                s.fields = Some(fields);
                Ok(NodeOutput::Update(s))
            }
        })
        .node("score", move |mut s: Review, ctx| {
            let log = l2.clone();
            let gate = gate.clone();
            async move {
                log("score");
                let f = s.fields.clone().ok_or_else(|| Error::new(ErrorKind::InvalidRequest, "score needs extracted fields"))?;
                // A deterministic rubric: cheap, explainable, testable.
                let mut score = 0.5;
                score += if f.has_references { 0.2 } else { -0.2 };
                score += if f.budget_usd / f64::from(f.months.max(1)) <= 10_000.0 { 0.2 } else { -0.3 };
                s.score = (f64::clamp(score, 0.0, 1.0) * 100.0).round() / 100.0;
                // Explicit bands: >= 0.8 auto-approve, < 0.3 auto-reject, otherwise a human.
                let decision = gate.decide(&ctx.thread_id, s.score, serde_json::json!({ "fields": f })).await?;
                s.verdict = Some(decision.verdict);
                Ok(NodeOutput::Update(s))
            }
        })
        .node("human_review", move |s: Review, _| {
            let log = l3.clone();
            async move {
                log("human_review");
                let payload = serde_json::json!({ "proposal": s.proposal, "fields": s.fields, "score": s.score });
                Ok(NodeOutput::interrupt(s, payload))
            }
        })
        .on_resume("human_review", |mut s: Review, decision| {
            let d = decision.as_str().ok_or_else(|| Error::new(ErrorKind::InvalidRequest, "decision must be a string"))?;
            if !matches!(d, "approve" | "reject") {
                return Err(Error::new(ErrorKind::InvalidRequest, format!("decision `{d}` must be approve or reject")));
            }
            s.decision = Some(d.to_owned());
            s.decided_by = Some("human".into());
            Ok(s)
        })
        .node("finalize", move |mut s: Review, _| {
            let log = l4.clone();
            async move {
                log("finalize");
                if s.decision.is_none() {
                    let auto = if s.verdict == Some(Verdict::Approve) { "approve" } else { "reject" };
                    s.decision = Some(auto.into());
                    s.decided_by = Some("auto".into());
                }
                Ok(NodeOutput::Update(s))
            }
        })
        .entry("extract")
        .edge("extract", "score")
        .conditional_edge(
            "score",
            |s: &Review| match s.verdict {
                Some(Verdict::Escalate) => "human_review".into(),
                _ => "finalize".into(),
            },
            &["human_review", "finalize"],
        )
        .edge("human_review", "finalize")
        .edge("finalize", END)
        .build()
}

fn arg(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = arg(&args, "--dir").map_or_else(
        || std::env::temp_dir().join("llmkit-proposal-review"),
        PathBuf::from,
    );
    let delay_ms: u64 = match arg(&args, "--model-delay-ms") {
        Some(v) => v
            .parse()
            .map_err(|e| format!("--model-delay-ms `{v}` is not a number of milliseconds: {e}"))?,
        None => 0,
    };
    let model = Arc::new(scripted_model(Duration::from_millis(delay_ms)));
    println!(
        "model: {} / {} (offline test double, {delay_ms} ms per call)",
        model.info().provider,
        model.info().model
    );
    let executed = Arc::new(Mutex::new(Vec::new()));
    let queue = Arc::new(MemoryReviewQueue::new());
    let gate = Arc::new(HitlGate::new(Thresholds::new(0.8, 0.3)?, queue.clone()).sample_rate(0.0)?);
    let graph = build_graph(model.clone(), gate.clone(), executed.clone())?;
    // Never cleared: other threads' checkpoints (and earlier runs) stay where they are.
    let store = FileCheckpointer::new(&dir)?;
    println!("checkpoints: {}", dir.display());
    let nodes_run = || executed.lock().map(|l| l.clone()).unwrap_or_default();

    if let Some(thread) = arg(&args, "--resume") {
        let initial = initial_state(&thread).ok_or_else(|| {
            format!("unknown thread `{thread}`: this example's threads are proposal-1, proposal-2 and proposal-3")
        })?;
        say_where(&store, &thread).await?;
        let mut outcome = graph.run_or_resume(&store, &thread, initial).await?;
        if let (RunOutcome::Interrupted { interrupt_id, .. }, Some(decision)) =
            (&outcome, arg(&args, "--decision"))
        {
            println!("resuming {thread} (interrupt {interrupt_id}) with decision `{decision}`");
            outcome = graph
                .resume_with(&store, &thread, interrupt_id, serde_json::json!(decision))
                .await?;
        }
        report(&thread, &outcome);
        println!("nodes executed in this process: {:?}", nodes_run());
        println!("model calls in this process: {}", model.call_count());
        let history = graph.history(&store, &thread).await?;
        let sequence: Vec<&str> = history
            .iter()
            .filter_map(|c| c.completed_node.as_deref())
            .collect();
        println!("node sequence across all processes: {sequence:?}");
        if matches!(outcome, RunOutcome::Interrupted { .. }) {
            println!("next: add --decision approve (or reject) to decide it");
        }
        return Ok(());
    }

    println!("{}", graph.to_mermaid());
    for (thread, _) in PROPOSALS {
        executed.lock().map(|mut l| l.clear()).unwrap_or(());
        say_where(&store, thread).await?;
        let initial = initial_state(thread).ok_or("every listed proposal has a state")?;
        let outcome = graph.run_or_resume(&store, thread, initial).await?;
        report(thread, &outcome);
        println!("  nodes: {:?}", nodes_run());
    }
    println!("model calls in this process: {}", model.call_count());
    println!(
        "gate counts: {:?}; waiting for a human: {}",
        gate.counts(),
        queue.pending().await?.len()
    );
    println!(
        "next: cargo run --example proposal_review --features graph -- --resume proposal-3 --decision approve{}",
        arg(&args, "--dir")
            .map(|d| format!(" --dir {d}"))
            .unwrap_or_default()
    );
    Ok(())
}

/// Says whether a thread starts fresh or continues from an earlier process's checkpoint.
async fn say_where(store: &FileCheckpointer, thread: &str) -> Result<(), Error> {
    match store.latest(thread).await? {
        None => println!("{thread}: starting"),
        Some(cp) => println!(
            "{thread}: continuing from checkpoint {} (next: {})",
            cp.id,
            cp.next.as_deref().unwrap_or("-")
        ),
    }
    Ok(())
}

fn report(thread: &str, outcome: &RunOutcome<Review>) {
    match outcome {
        RunOutcome::Finished(s) => println!(
            "{thread}: {} by {} (score {:.2})",
            s.decision.as_deref().unwrap_or("-"),
            s.decided_by.as_deref().unwrap_or("-"),
            s.score
        ),
        RunOutcome::Interrupted { payload, .. } => {
            println!("{thread}: PAUSED for a human, evidence {payload}")
        }
        _ => println!("{thread}: unexpected outcome"),
    }
}
