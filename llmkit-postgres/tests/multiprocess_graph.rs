//! Issue 20, multi-process test (e): two worker OS processes resume one paused graph thread
//! at the same moment; exactly one advances it (runs the `publish` node once and writes the
//! checkpoints), the other is refused without running anything. The workers are the
//! `lease_worker` example binary, which `cargo test` builds next to the tests. Needs
//! `LLMKIT_TEST_PG_URL`; `#[ignore]`d without provisioning.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use llmkit_graph::{Checkpointer, now_ms};
use llmkit_postgres::{Postgres, PostgresCheckpointer};

use common::with_schema;

fn worker_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let debug_dir = exe.parent().unwrap().parent().unwrap();
    let path = debug_dir
        .join("examples")
        .join(format!("lease_worker{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "example binary lease_worker was not built; run through `cargo test`, which builds examples"
    );
    path
}

fn run(args: &[&str]) -> String {
    let out = Command::new(worker_binary()).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "lease_worker {args:?} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run scripts/test-services.sh up"]
async fn two_processes_resume_one_thread_exactly_one_advances() {
    with_schema(
        "LLMKIT_TEST_PG_URL",
        "llmkit_t_mp",
        |url, schema| async move {
            for round in 0..3 {
                let thread = format!("post-{round}");
                let init = run(&[&url, &schema, &thread, "init"]);
                assert!(init.starts_with("paused "), "{init}");
                // Both start at the same wall-clock moment, as two replicas picking up one job.
                let start_at = (now_ms() + 1500).to_string();
                let spawn = |name: &str| {
                    Command::new(worker_binary())
                        .args([
                            url.as_str(),
                            schema.as_str(),
                            thread.as_str(),
                            name,
                            start_at.as_str(),
                        ])
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap()
                };
                let (a, b) = (spawn("worker-a"), spawn("worker-b"));
                let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
                assert!(a.status.success() && b.status.success());
                let outs = [
                    String::from_utf8_lossy(&a.stdout).into_owned(),
                    String::from_utf8_lossy(&b.stdout).into_owned(),
                ];
                let all = outs.join("");
                let advanced = all.lines().filter(|l| l.starts_with("advanced ")).count();
                let refused = all.lines().filter(|l| l.starts_with("refused ")).count();
                let ran = all.lines().filter(|l| l.starts_with("ran publish")).count();
                assert_eq!((advanced, refused, ran), (1, 1, 1), "round {round}:\n{all}");
                let winner = if outs[0].contains("advanced") {
                    "worker-a"
                } else {
                    "worker-b"
                };
                // The thread's history: start, pause, approval, publish, end; written by one worker.
                let pg = Postgres::builder(&url).schema(&schema).build().unwrap();
                let store = PostgresCheckpointer::new(pg);
                let hist = store.list(&thread).await.unwrap();
                assert_eq!(hist.len(), 5, "round {round}: {hist:?}");
                let last = hist.last().unwrap();
                assert!(last.is_finished());
                assert_eq!(last.state["published_by"], winner);
            }
        },
    )
    .await;
}
