//! Interrupt in one process, resume in another: runs the `proposal_review` example binary twice
//! over the same checkpoint folder and checks that completed nodes were not called again.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::process::Command;

/// `cargo test` builds examples next to the test binaries: `target/debug/examples/NAME`.
fn example_binary(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let debug_dir = exe.parent()?.parent()?;
    let path = debug_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    path.exists().then_some(path)
}

#[test]
fn pause_in_one_process_and_resume_in_another() {
    let Some(bin) = example_binary("proposal_review") else {
        panic!(
            "example binary proposal_review was not built; run through `cargo test`, which builds examples"
        );
    };
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap();

    let first = Command::new(&bin)
        .args(["--dir", dir_arg])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "first run failed: {out}\n{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(out.contains("proposal-3: PAUSED"), "{out}");
    assert!(out.contains("model calls in this process: 3"), "{out}");

    let second = Command::new(&bin)
        .args([
            "--dir",
            dir_arg,
            "--resume",
            "proposal-3",
            "--decision",
            "reject",
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&second.stdout);
    assert!(
        second.status.success(),
        "resume failed: {out}\n{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(out.contains("proposal-3: reject by human"), "{out}");
    assert!(
        out.contains("nodes executed in this process: [\"finalize\"]"),
        "{out}"
    );
    assert!(out.contains("model calls in this process: 0"), "{out}");
}
