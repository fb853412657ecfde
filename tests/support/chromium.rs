//! Headless Chromium (Debian's `chromium`, installed by `scripts/test-services.sh up`) for the
//! tests that look at a page in a real browser: the HTML eval report and Phoenix's trace view.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const NEEDS: &str = "needs chromium: scripts/test-services.sh up";

/// The browser binary; fails the test when it is missing.
pub fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{NEEDS}"))
}

/// What one headless Chromium run printed.
pub struct Browser {
    /// Standard output (the DOM with `--dump-dom`).
    pub stdout: String,
    /// Standard error (console messages with `--enable-logging=stderr`).
    pub stderr: String,
}

/// Runs headless Chromium on `url` with `extra` flags, in a fresh profile, killed after 90 s.
pub fn browse(url: &str, extra: &[&str]) -> Browser {
    let profile = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(90) {
            child.kill().ok();
            child.wait().ok();
            panic!("chromium did not finish within 90 s on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let browser = Browser {
        stdout: std::fs::read_to_string(&out_path).unwrap(),
        stderr: std::fs::read_to_string(&err_path).unwrap(),
    };
    assert!(status.success(), "chromium failed: {}", browser.stderr);
    browser
}
