//! Crash and resume across real processes: runs the `proposal_review` example binary, kills it
//! (SIGKILL, no chance to clean up) at chosen points, and checks that a later process continues
//! every thread from its last checkpoint without re-running completed nodes, starts a thread the
//! crash reached before its first checkpoint, and never touches other threads' checkpoints.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// `cargo test` builds examples next to the test binaries: `target/debug/examples/NAME`.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let debug_dir = exe.parent().unwrap().parent().unwrap();
    let path = debug_dir
        .join("examples")
        .join(format!("proposal_review{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "example binary proposal_review was not built; run through `cargo test`, which builds examples"
    );
    path
}

/// Runs the example to completion and returns its stdout; fails the test on a non-zero exit.
fn run(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(example_binary())
        .arg("--dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "proposal_review {args:?} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Starts the example with slow model calls, waits until `checkpoint` (a path under `dir`)
/// exists, then kills the process while it waits on the model.
fn crash_after(dir: &Path, checkpoint: &str) {
    let mut child = Command::new(example_binary())
        .arg("--dir")
        .arg(dir)
        .args(["--model-delay-ms", "5000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.join(checkpoint).exists() {
        assert!(Instant::now() < deadline, "{checkpoint} never appeared");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the example exited before {checkpoint} appeared"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the process was killed, not finished");
}

/// Checkpoint files of a thread with their modification times.
fn files(dir: &Path, thread: &str) -> Vec<(String, SystemTime)> {
    let Ok(entries) = std::fs::read_dir(dir.join(thread)) else {
        return Vec::new();
    };
    let mut out: Vec<(String, SystemTime)> = entries
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().modified().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn names(files: &[(String, SystemTime)]) -> Vec<&str> {
    files.iter().map(|(n, _)| n.as_str()).collect()
}

#[test]
fn pause_in_one_process_and_resume_in_another() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &[]);
    assert!(out.contains("proposal-3: PAUSED"), "{out}");
    assert!(out.contains("model calls in this process: 3"), "{out}");

    let out = run(
        dir.path(),
        &["--resume", "proposal-3", "--decision", "reject"],
    );
    assert!(out.contains("proposal-3: reject by human"), "{out}");
    assert!(
        out.contains("nodes executed in this process: [\"finalize\"]"),
        "{out}"
    );
    assert!(out.contains("model calls in this process: 0"), "{out}");
}

#[test]
fn a_run_killed_mid_batch_continues_without_rerunning_or_deleting() {
    let dir = tempfile::tempdir().unwrap();
    // proposal-1 finishes, then the process dies while proposal-2 waits on the model.
    crash_after(dir.path(), "proposal-2/000000.json");
    let first = files(dir.path(), "proposal-1");
    assert_eq!(
        names(&first),
        [
            "000000.json",
            "000001.json",
            "000002.json",
            "000003.json",
            "000004.json"
        ]
    );
    assert_eq!(names(&files(dir.path(), "proposal-2")), ["000000.json"]);
    assert!(files(dir.path(), "proposal-3").is_empty());

    // The same command again: nothing is deleted, each thread continues where it stood.
    let out = run(dir.path(), &[]);
    assert!(
        out.contains("proposal-1: continuing from checkpoint proposal-1:000004"),
        "{out}"
    );
    assert!(out.contains("proposal-1: approve by auto"), "{out}");
    assert!(
        out.contains("proposal-2: continuing from checkpoint proposal-2:000000 (next: extract)"),
        "{out}"
    );
    assert!(out.contains("proposal-2: reject by auto"), "{out}");
    assert!(out.contains("proposal-3: starting"), "{out}");
    assert!(out.contains("proposal-3: PAUSED"), "{out}");
    // proposal-1 was not run again: only proposal-2 and proposal-3 called the model.
    assert!(out.contains("model calls in this process: 2"), "{out}");
    assert_eq!(
        files(dir.path(), "proposal-1"),
        first,
        "a finished thread's checkpoints are neither deleted nor rewritten"
    );
}

#[test]
fn a_thread_the_crash_reached_before_its_first_checkpoint_resumes() {
    let dir = tempfile::tempdir().unwrap();
    // The process dies inside proposal-1's first model call: proposal-3 has no checkpoint at all.
    crash_after(dir.path(), "proposal-1/000000.json");
    assert_eq!(names(&files(dir.path(), "proposal-1")), ["000000.json"]);
    assert!(files(dir.path(), "proposal-3").is_empty());

    let out = run(
        dir.path(),
        &["--resume", "proposal-3", "--decision", "reject"],
    );
    assert!(out.contains("proposal-3: starting"), "{out}");
    assert!(out.contains("proposal-3: reject by human"), "{out}");
    assert!(
        out.contains(
            "nodes executed in this process: [\"extract\", \"score\", \"human_review\", \"finalize\"]"
        ),
        "{out}"
    );

    // The thread killed mid-call resumes at the node that was running.
    let out = run(dir.path(), &["--resume", "proposal-1"]);
    assert!(
        out.contains("proposal-1: continuing from checkpoint proposal-1:000000 (next: extract)"),
        "{out}"
    );
    assert!(out.contains("proposal-1: approve by auto"), "{out}");
    assert!(out.contains("model calls in this process: 1"), "{out}");
    assert!(files(dir.path(), "proposal-2").is_empty(), "untouched");
}

#[test]
fn a_bad_delay_is_an_error_not_a_default() {
    let out = Command::new(example_binary())
        .args(["--model-delay-ms", "soon"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--model-delay-ms `soon`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
