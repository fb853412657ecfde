//! Graph orchestration: validation, routing, limits, retries, checkpoints, resume, interrupts,
//! history and fork; HITL gate thresholds and sampling.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use llmkit_core::{ChatModel, ChatRequest, Error, ErrorKind, Reply, ScriptedModel};
use llmkit_graph::review::*;
use llmkit_graph::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
struct St {
    trail: Vec<String>,
    n: u32,
    approved: Option<bool>,
}

/// A one-node graph named `loop` whose node `inc` adds one to `n` until it reaches `until`.
fn counter_loop(until: u32) -> Graph<St> {
    Graph::<St>::builder("loop")
        .node("inc", |mut s: St, _| async move {
            s.n += 1;
            Ok(NodeOutput::Update(s))
        })
        .entry("inc")
        .conditional_edge(
            "inc",
            move |s: &St| {
                if s.n < until {
                    "inc".into()
                } else {
                    END.into()
                }
            },
            &["inc", END],
        )
        .build()
        .unwrap()
}

fn push(mut s: St, what: &str) -> St {
    s.trail.push(what.to_owned());
    s
}

fn linear() -> GraphBuilder<St> {
    Graph::<St>::builder("g")
        .node(
            "a",
            |s, _| async move { Ok(NodeOutput::Update(push(s, "a"))) },
        )
        .node(
            "b",
            |s, _| async move { Ok(NodeOutput::Update(push(s, "b"))) },
        )
        .entry("a")
        .edge("a", "b")
        .edge("b", END)
}

fn config_err(b: GraphBuilder<St>) -> String {
    let e = b.build().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    e.message().to_owned()
}

#[test]
fn validation_errors_are_clear() {
    assert!(linear().build().is_ok());
    assert!(config_err(linear().edge("b", "nowhere")).contains("unknown node `nowhere`"));
    assert!(config_err(linear().entry("zz")).contains("entry node `zz` does not exist"));
    let orphan = linear()
        .node("c", |s, _| async move { Ok(NodeOutput::Update(s)) })
        .edge("c", END);
    assert!(config_err(orphan).contains("`c` is unreachable"));
    let no_edge = linear()
        .node("c", |s, _| async move { Ok(NodeOutput::Update(s)) })
        .edge("b", "c");
    assert!(config_err(no_edge).contains("`c` has no outgoing edge"));
    let stuck = Graph::<St>::builder("g")
        .node("a", |s, _| async move { Ok(NodeOutput::Update(s)) })
        .node("loop", |s, _| async move { Ok(NodeOutput::Update(s)) })
        .entry("a")
        .conditional_edge("a", |_| END.into(), &["loop", END])
        .edge("loop", "loop");
    assert!(config_err(stuck).contains("`loop` has no path to the end"));
    let dup = linear().node("a", |s, _| async move { Ok(NodeOutput::Update(s)) });
    assert!(config_err(dup).contains("defined twice"));
    let no_entry = Graph::<St>::builder("g")
        .node("a", |s, _| async move { Ok(NodeOutput::Update(s)) })
        .edge("a", END);
    assert!(config_err(no_entry).contains("no entry node"));
}

#[tokio::test]
async fn runs_and_checkpoints_every_node() {
    let g = linear().build().unwrap();
    let store = MemoryCheckpointer::new();
    let out = g.run(&store, "t1", St::default()).await.unwrap();
    let RunOutcome::Finished(s) = out else {
        panic!("not finished")
    };
    assert_eq!(s.trail, ["a", "b"]);
    let hist = g.history(&store, "t1").await.unwrap();
    let completed: Vec<Option<&str>> = hist.iter().map(|c| c.completed_node.as_deref()).collect();
    assert_eq!(completed, [None, Some("a"), Some("b"), None]);
    assert!(hist.last().unwrap().is_finished());
    // A finished thread cannot be started again.
    assert_eq!(
        g.run(&store, "t1", St::default()).await.unwrap_err().kind(),
        ErrorKind::InvalidRequest
    );
    let mermaid = g.to_mermaid();
    assert!(
        mermaid.contains("a --> b") && mermaid.contains("b --> END"),
        "{mermaid}"
    );
}

/// A job re-submitted after a crash, whenever it came, continues correctly with one call:
/// before the first checkpoint it starts, mid-run it continues without re-running completed
/// nodes, after the end it returns the final state and writes nothing.
#[tokio::test]
async fn run_or_resume_starts_continues_or_returns_the_end() {
    let a_runs = Arc::new(AtomicUsize::new(0));
    let b_down = Arc::new(AtomicBool::new(true));
    let (runs, down) = (a_runs.clone(), b_down.clone());
    let g = Graph::<St>::builder("g")
        .node("a", move |s, _| {
            let runs = runs.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok(NodeOutput::Update(push(s, "a")))
            }
        })
        .node("b", move |s, _| {
            let down = down.clone();
            async move {
                if down.load(Ordering::SeqCst) {
                    return Err(Error::new(ErrorKind::Server, "b is down"));
                }
                Ok(NodeOutput::Update(push(s, "b")))
            }
        })
        .entry("a")
        .edge("a", "b")
        .edge("b", END)
        .build()
        .unwrap();
    let store = MemoryCheckpointer::new();
    assert!(
        g.resume(&store, "t").await.is_err(),
        "resume alone cannot start"
    );
    // No checkpoint yet: it starts (and b fails after a completed).
    let err = g
        .run_or_resume(&store, "t", St::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(a_runs.load(Ordering::SeqCst), 1);
    // Mid-run: continues at b; a is not run again and the initial state passed is not used.
    b_down.store(false, Ordering::SeqCst);
    let other_initial = St {
        n: 99,
        ..St::default()
    };
    let RunOutcome::Finished(done) = g
        .run_or_resume(&store, "t", other_initial.clone())
        .await
        .unwrap()
    else {
        panic!("not finished")
    };
    assert_eq!(done.trail, ["a", "b"]);
    assert_eq!(done.n, 0);
    assert_eq!(a_runs.load(Ordering::SeqCst), 1);
    // Finished: the final state again, no node run, no checkpoint written.
    let before = store.list("t").await.unwrap();
    let RunOutcome::Finished(again) = g.run_or_resume(&store, "t", other_initial).await.unwrap()
    else {
        panic!("not finished")
    };
    assert_eq!(again, done);
    assert_eq!(store.list("t").await.unwrap(), before);
    assert_eq!(a_runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn conditional_routing_and_step_limit() {
    let g = counter_loop(5);
    let store = MemoryCheckpointer::new();
    let RunOutcome::Finished(s) = g.run(&store, "t", St::default()).await.unwrap() else {
        panic!()
    };
    assert_eq!(s.n, 5);

    let forever = Graph::<St>::builder("forever")
        .node("inc", |mut s: St, _| async move {
            s.n += 1;
            Ok(NodeOutput::Update(s))
        })
        .entry("inc")
        .conditional_edge("inc", |_| "inc".into(), &["inc", END])
        .max_steps(7)
        .build()
        .unwrap();
    let err = forever.run(&store, "f", St::default()).await.unwrap_err();
    assert!(err.message().contains("step limit of 7"), "{err}");

    let liar = Graph::<St>::builder("liar")
        .node("a", |s, _| async move { Ok(NodeOutput::Update(s)) })
        .entry("a")
        .conditional_edge("a", |_| "elsewhere".into(), &[END])
        .build()
        .unwrap();
    let err = liar.run(&store, "l", St::default()).await.unwrap_err();
    assert!(
        err.message().contains("not among its declared targets"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn node_retry_timeout_and_fallback() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let g = Graph::<St>::builder("r")
        .node("flaky", move |s, ctx| {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                if ctx.attempt < 3 {
                    return Err(Error::new(ErrorKind::Server, "503"));
                }
                Ok(NodeOutput::Update(push(
                    s,
                    &format!("flaky@{}", ctx.attempt),
                )))
            }
        })
        .policy(
            "flaky",
            NodePolicy::default()
                .retries(3)
                .backoff(Duration::from_millis(10)),
        )
        .entry("flaky")
        .edge("flaky", END)
        .build()
        .unwrap();
    let store = MemoryCheckpointer::new();
    let RunOutcome::Finished(s) = g.run(&store, "t", St::default()).await.unwrap() else {
        panic!()
    };
    assert_eq!(s.trail, ["flaky@3"]);
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    // Timeout counts as retryable; then the fallback node takes over.
    let g = Graph::<St>::builder("fb")
        .node("slow", |s, _| async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(NodeOutput::Update(s))
        })
        .node("safe", |s, _| async move {
            Ok(NodeOutput::Update(push(s, "safe")))
        })
        .policy(
            "slow",
            NodePolicy::default()
                .timeout(Duration::from_secs(1))
                .retries(2)
                .fallback("safe"),
        )
        .entry("slow")
        .edge("slow", END)
        .edge("safe", END)
        .build()
        .unwrap();
    let RunOutcome::Finished(s) = g.run(&store, "t2", St::default()).await.unwrap() else {
        panic!()
    };
    assert_eq!(s.trail, ["safe"]);

    // Non-retryable errors are not retried.
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let g = Graph::<St>::builder("nr")
        .node("bad", move |_s, _| {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                Err::<NodeOutput<St>, _>(Error::new(ErrorKind::InvalidRequest, "bad input"))
            }
        })
        .policy("bad", NodePolicy::default().retries(5))
        .entry("bad")
        .edge("bad", END)
        .build()
        .unwrap();
    let err = g.run(&store, "t3", St::default()).await.unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(
        err.message().contains("node `bad` failed") && err.message().contains("t3:000000"),
        "{err}"
    );
}

/// A two-step pipeline where each step calls a (scripted) model, so re-running a step would
/// show as an extra model call.
fn model_graph(model: Arc<ScriptedModel>, crash_at_summarize: Arc<AtomicUsize>) -> Graph<St> {
    let m1 = model.clone();
    let m2 = model;
    Graph::<St>::builder("billing")
        .node("extract", move |s, _| {
            let m = m1.clone();
            async move {
                let r = m.chat(ChatRequest::user("extract")).await?;
                Ok(NodeOutput::Update(push(s, &r.text())))
            }
        })
        .node("summarize", move |s, _| {
            let m = m2.clone();
            let crash = crash_at_summarize.clone();
            async move {
                if crash.load(Ordering::SeqCst) > 0 {
                    crash.fetch_sub(1, Ordering::SeqCst);
                    return Err(Error::new(ErrorKind::Cancelled, "process killed"));
                }
                let r = m.chat(ChatRequest::user("summarize")).await?;
                Ok(NodeOutput::Update(push(s, &r.text())))
            }
        })
        .entry("extract")
        .edge("extract", "summarize")
        .edge("summarize", END)
        .build()
        .unwrap()
}

#[tokio::test]
async fn resume_after_crash_never_reruns_completed_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let model = Arc::new(
        ScriptedModel::builder()
            .when_contains("extract", "fields")
            .when_contains("summarize", "summary")
            .build(),
    );
    let crash = Arc::new(AtomicUsize::new(1));
    {
        let store = FileCheckpointer::new(dir.path()).unwrap();
        let g = model_graph(model.clone(), crash.clone());
        let err = g.run(&store, "job-1", St::default()).await.unwrap_err();
        assert!(err.message().contains("`summarize` failed"), "{err}");
    }
    assert_eq!(model.call_count(), 1, "extract ran once before the crash");
    // Simulate a crash in the middle of writing the next checkpoint: a torn temp file.
    std::fs::write(
        dir.path().join("job-1").join(".000002.json.tmp"),
        b"{\"torn",
    )
    .unwrap();
    // "Restart": a new graph and store over the same folder.
    let store = FileCheckpointer::new(dir.path()).unwrap();
    let g = model_graph(model.clone(), crash);
    let RunOutcome::Finished(s) = g.resume(&store, "job-1").await.unwrap() else {
        panic!()
    };
    assert_eq!(s.trail, ["fields", "summary"]);
    assert_eq!(
        model.call_count(),
        2,
        "extract was not called again; summarize once"
    );
    let calls: Vec<String> = model.requests().iter().map(ChatRequest::text).collect();
    assert_eq!(calls, ["extract", "summarize"]);
}

#[tokio::test]
async fn corrupt_checkpoint_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileCheckpointer::new(dir.path()).unwrap();
    std::fs::create_dir_all(dir.path().join("t")).unwrap();
    std::fs::write(dir.path().join("t").join("000000.json"), b"not json").unwrap();
    let err = store.list("t").await.unwrap_err();
    assert!(err.message().contains("is not valid"), "{err}");
    let err = store.list("../etc").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
}

fn approval_graph(side_effects: Arc<AtomicUsize>) -> Graph<St> {
    Graph::<St>::builder("approval")
        .node("prepare", move |s, _| {
            let fx = side_effects.clone();
            async move {
                // Work before the pause: must happen exactly once.
                fx.fetch_add(1, Ordering::SeqCst);
                let s = push(s, "prepared");
                Ok(NodeOutput::Interrupt {
                    state: s,
                    payload: serde_json::json!({"amount": 120}),
                    deadline: Some(Duration::from_secs(3600)),
                    default_decision: Some(serde_json::json!({"approve": false})),
                })
            }
        })
        .on_resume("prepare", |mut s: St, decision| {
            s.approved = decision.get("approve").and_then(serde_json::Value::as_bool);
            Ok(s)
        })
        .node("act", |s, _| async move {
            Ok(NodeOutput::Update(push(s, "acted")))
        })
        .entry("prepare")
        .edge("prepare", "act")
        .edge("act", END)
        .build()
        .unwrap()
}

#[tokio::test]
async fn interrupt_and_resume_with_decision() {
    let fx = Arc::new(AtomicUsize::new(0));
    let g = approval_graph(fx.clone());
    let store = MemoryCheckpointer::new();
    let RunOutcome::Interrupted {
        interrupt_id,
        payload,
        node,
        ..
    } = g.run(&store, "p1", St::default()).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(node, "prepare");
    assert_eq!(payload["amount"], 120);
    // Resuming without a decision keeps waiting and runs nothing.
    assert!(matches!(
        g.resume(&store, "p1").await.unwrap(),
        RunOutcome::Interrupted { .. }
    ));
    assert!(
        g.resume_with(&store, "p1", "wrong-id", serde_json::json!({}))
            .await
            .is_err()
    );
    let RunOutcome::Finished(s) = g
        .resume_with(
            &store,
            "p1",
            &interrupt_id,
            serde_json::json!({"approve": true}),
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(s.approved, Some(true));
    assert_eq!(s.trail, ["prepared", "acted"]);
    assert_eq!(
        fx.load(Ordering::SeqCst),
        1,
        "code before the pause ran once"
    );
    // The same interrupt cannot be answered twice.
    assert!(
        g.resume_with(
            &store,
            "p1",
            &interrupt_id,
            serde_json::json!({"approve": true})
        )
        .await
        .is_err()
    );
}

#[tokio::test]
async fn pending_decision_expires_to_default() {
    let g = approval_graph(Arc::new(AtomicUsize::new(0)));
    let store = MemoryCheckpointer::new();
    g.run(&store, "p2", St::default()).await.unwrap();
    assert!(
        g.expire_pending(&store, "p2", now_ms())
            .await
            .unwrap()
            .is_none(),
        "not due yet"
    );
    let later = now_ms() + 2 * 3600 * 1000;
    let Some(RunOutcome::Finished(s)) = g.expire_pending(&store, "p2", later).await.unwrap() else {
        panic!()
    };
    assert_eq!(s.approved, Some(false));
}

#[tokio::test]
async fn history_and_fork() {
    let g = linear().build().unwrap();
    let store = MemoryCheckpointer::new();
    g.run(
        &store,
        "orig",
        St {
            n: 1,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let hist = g.history(&store, "orig").await.unwrap();
    let after_a = hist
        .iter()
        .find(|c| c.completed_node.as_deref() == Some("a"))
        .unwrap();
    let forked = g.fork(&store, "orig", &after_a.id, "copy").await.unwrap();
    assert_eq!(forked.parent.as_deref(), Some(after_a.id.as_str()));
    let RunOutcome::Finished(s) = g.resume(&store, "copy").await.unwrap() else {
        panic!()
    };
    assert_eq!(s.trail, ["a", "b"], "the fork re-ran only b");
    assert!(g.fork(&store, "orig", "nope", "x").await.is_err());
}

#[tokio::test]
async fn retention_prunes() {
    let g = counter_loop(10);
    let dir = tempfile::tempdir().unwrap();
    let store = FileCheckpointer::new(dir.path()).unwrap();
    g.run(&store, "a", St::default()).await.unwrap();
    g.run(&store, "b", St::default()).await.unwrap();
    let before = store.stats().await.unwrap();
    assert_eq!(before.checkpoints, 24);
    assert!(before.bytes > 0);
    let removed = store
        .prune(&Retention {
            keep_last: 3,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(removed, 18);
    assert_eq!(store.list("a").await.unwrap().len(), 3);
    let removed = store
        .prune(&Retention {
            prune_finished: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(removed, 6);
    assert_eq!(store.stats().await.unwrap().threads, 0);
}

#[tokio::test]
async fn node_context_keys_are_stable() {
    let keys = Arc::new(std::sync::Mutex::new(Vec::new()));
    let k = keys.clone();
    let g = Graph::<St>::builder("k")
        .node("pay", move |s, ctx| {
            let k = k.clone();
            async move {
                k.lock()
                    .unwrap()
                    .push((ctx.idempotency_key(), ctx.attempt_key()));
                if ctx.attempt == 1 {
                    return Err(Error::new(ErrorKind::Transport, "reset"));
                }
                Ok(NodeOutput::Update(s))
            }
        })
        .policy(
            "pay",
            NodePolicy::default().retries(2).backoff(Duration::ZERO),
        )
        .entry("pay")
        .edge("pay", END)
        .build()
        .unwrap();
    g.run(&MemoryCheckpointer::new(), "run-7", St::default())
        .await
        .unwrap();
    let keys = keys.lock().unwrap();
    assert_eq!(
        keys[0].0, keys[1].0,
        "idempotency key is stable across attempts"
    );
    assert_ne!(keys[0].1, keys[1].1);
    assert_eq!(keys[0].0, "run-7/0/pay");
}

#[tokio::test]
async fn model_errors_propagate_with_kind() {
    let model = Arc::new(
        ScriptedModel::builder()
            .reply(Reply::rate_limited(Duration::from_secs(1)))
            .build(),
    );
    let m = model.clone();
    let g = Graph::<St>::builder("m")
        .node("call", move |s, _| {
            let m = m.clone();
            async move {
                m.chat(ChatRequest::user("x")).await?;
                Ok(NodeOutput::Update(s))
            }
        })
        .entry("call")
        .edge("call", END)
        .build()
        .unwrap();
    let err = g
        .run(&MemoryCheckpointer::new(), "x", St::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.attempts().len(), 1);
}

#[tokio::test]
async fn hitl_thresholds_and_counts() {
    assert!(Thresholds::new(0.3, 0.9).is_err());
    assert!(Thresholds::new(1.2, 0.1).is_err());
    let t = Thresholds::new(0.8, 0.4).unwrap();
    assert_eq!(t.verdict(0.8), Verdict::Approve);
    assert_eq!(t.verdict(0.79), Verdict::Escalate);
    assert_eq!(t.verdict(0.4), Verdict::Escalate);
    assert_eq!(t.verdict(0.39), Verdict::Reject);
    assert_eq!(t.verdict(f64::NAN), Verdict::Escalate);
    let q = Arc::new(MemoryReviewQueue::new());
    let gate = HitlGate::new(t, q.clone()).sample_rate(0.0).unwrap();
    for (i, s) in [0.9, 0.5, 0.1, 0.95].iter().enumerate() {
        gate.decide(&format!("c{i}"), *s, serde_json::json!({}))
            .await
            .unwrap();
    }
    assert_eq!(
        gate.counts(),
        GateCounts {
            auto_approved: 2,
            auto_rejected: 1,
            escalated: 1,
            sampled: 0
        }
    );
    assert!(HitlGate::new(t, q).sample_rate(1.5).is_err());
}

#[tokio::test]
async fn hitl_sampling_rate_is_respected() {
    let q = Arc::new(MemoryReviewQueue::new());
    let gate = HitlGate::new(Thresholds::new(0.5, 0.5).unwrap(), q.clone())
        .sample_rate(0.1)
        .unwrap()
        .seed(42);
    let n = 5000;
    for i in 0..n {
        gate.decide(
            &format!("c{i}"),
            if i % 2 == 0 { 0.9 } else { 0.1 },
            serde_json::Value::Null,
        )
        .await
        .unwrap();
    }
    let c = gate.counts();
    assert_eq!(c.auto_approved + c.auto_rejected, n);
    let rate = c.sampled as f64 / n as f64;
    // Binomial(5000, 0.1): sd ≈ 0.0042, so ±0.02 is more than 4 sd.
    assert!((0.08..=0.12).contains(&rate), "sampled rate {rate}");
    assert_eq!(q.all().await.unwrap().len() as u64, c.sampled);
    assert!(
        q.all()
            .await
            .unwrap()
            .iter()
            .all(|i| i.reason == ReviewReason::Sampled)
    );
}

#[tokio::test]
async fn file_review_queue_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let q = FileReviewQueue::new(dir.path().join("review.jsonl"));
    let gate = HitlGate::new(
        Thresholds::new(0.9, 0.1).unwrap(),
        Arc::new(FileReviewQueue::new(dir.path().join("review.jsonl"))),
    )
    .sample_rate(0.0)
    .unwrap();
    gate.decide("case-9", 0.5, serde_json::json!({"why": "borderline"}))
        .await
        .unwrap();
    let pending = q.pending().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].payload["why"], "borderline");
    q.label("case-9", "approve").await.unwrap();
    assert!(q.pending().await.unwrap().is_empty());
    assert_eq!(q.all().await.unwrap()[0].label.as_deref(), Some("approve"));
    assert_eq!(
        q.label("nope", "x").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}
