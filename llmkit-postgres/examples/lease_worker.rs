//! A graph worker that resumes a paused thread under a PostgreSQL lease, so when several
//! workers (processes, machines) pick up the same thread exactly one advances it.
//!
//! `cargo run -p llmkit-postgres --example lease_worker -- URL SCHEMA THREAD WORKER [START_AT_MS]`
//!
//! With `init` as WORKER it migrates the schema and starts THREAD, which pauses for approval.
//! Otherwise it waits until START_AT_MS (unix milliseconds, so several workers start together),
//! takes the thread's lease and resumes it with an approval; the `publish` node takes a second.
//! It prints one line: `advanced <worker> token=<n>`, or `refused <worker>: <reason>`.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use llmkit_graph::{END, Graph, NodeOutput, RunOutcome, now_ms};
use llmkit_postgres::{PgError, Postgres, PostgresCheckpointer, pg_error};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Post {
    approved: bool,
    published_by: Option<String>,
}

fn graph(worker: String) -> llmkit_core::Result<Graph<Post>> {
    Graph::<Post>::builder("publish")
        .node("approve", |s: Post, _| async move {
            Ok(NodeOutput::interrupt(
                s,
                serde_json::json!({"ask": "publish?"}),
            ))
        })
        .on_resume("approve", |mut s: Post, decision: serde_json::Value| {
            s.approved = decision.get("approve").and_then(serde_json::Value::as_bool) == Some(true);
            Ok(s)
        })
        .node("publish", move |mut s: Post, _| {
            let worker = worker.clone();
            async move {
                // The side effect a second worker must never repeat.
                println!("ran publish {worker}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                s.published_by = Some(worker);
                Ok(NodeOutput::Update(s))
            }
        })
        .entry("approve")
        .edge("approve", "publish")
        .edge("publish", END)
        .build()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> llmkit_core::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, schema, thread, worker, rest @ ..] = args.as_slice() else {
        eprintln!("usage: lease_worker URL SCHEMA THREAD WORKER [START_AT_MS]");
        std::process::exit(2);
    };
    let pg = Postgres::builder(url.as_str())
        .schema(schema.as_str())
        .build()?;
    let store = PostgresCheckpointer::new(pg.clone());
    let g = graph(worker.clone())?;
    if worker == "init" {
        pg.migrate().await?;
        let outcome = g.run(&store, thread, Post::default()).await?;
        if let RunOutcome::Interrupted { interrupt_id, .. } = outcome {
            println!("paused {interrupt_id}");
        }
        return Ok(());
    }
    if let Some(at) = rest.first().and_then(|s| s.parse::<u64>().ok()) {
        tokio::time::sleep(Duration::from_millis(at.saturating_sub(now_ms()))).await;
    }
    let lease = match store.lease(thread, worker, Duration::from_secs(30)).await {
        Ok(lease) => lease,
        Err(e) => {
            match pg_error(&e) {
                Some(PgError::LeaseHeld { holder, .. }) => {
                    println!("refused {worker}: lease held by {holder}")
                }
                _ => println!("refused {worker}: {e}"),
            }
            return Ok(());
        }
    };
    let token = lease.token();
    let Some(pending) = lease_pending(&store, thread).await? else {
        println!("refused {worker}: thread is not waiting for a decision");
        lease.release().await?;
        return Ok(());
    };
    let outcome = g
        .resume_with(
            &lease,
            thread,
            &pending,
            serde_json::json!({"approve": true}),
        )
        .await;
    lease.release().await?;
    match outcome {
        Ok(RunOutcome::Finished(_)) => println!("advanced {worker} token={token}"),
        Ok(_) => println!("refused {worker}: not finished"),
        Err(e) => println!("refused {worker}: {e}"),
    }
    Ok(())
}

/// The interrupt the thread waits on, if it still waits.
async fn lease_pending(
    store: &PostgresCheckpointer,
    thread: &str,
) -> llmkit_core::Result<Option<String>> {
    use llmkit_graph::{Checkpointer, RunStatus};
    Ok(store.latest(thread).await?.and_then(|c| match c.status {
        RunStatus::Interrupted { interrupt_id, .. } => Some(interrupt_id),
        _ => None,
    }))
}
