//! The official `openai` Python package (PyPI, pinned in scripts/test-services.sh) against the
//! service's OpenAI-compatible route: non-streaming, streaming, structured output, a typed error.
//! A client nobody on this project wrote.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../../tests/support/services.rs"]
mod services;

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
#[ignore = "needs the openai Python package: run scripts/test-services.sh up"]
async fn official_openai_python_client_round_trips() {
    let python = services::service("LLMKIT_TEST_OPENAI_PYTHON");
    let key = "sk-python-client-test-key";
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_support-service"))
        .env("SUPPORT__SERVER__LISTEN", "127.0.0.1:0")
        .env("SUPPORT_API_KEYS", format!("{key}=python"))
        .env_remove("LLMKIT_PROVIDER")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if v["message"] == "listening" {
                return v["addr"].as_str().unwrap().to_owned();
            }
        }
        panic!("service exited before listening");
    })
    .await
    .unwrap();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/openai_client.py");
    let out = tokio::process::Command::new(python)
        .args([script, &format!("http://{addr}"), key])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python client failed:\n{stdout}\n{stderr}"
    );
    for check in [
        "non_streaming",
        "streaming",
        "structured_output",
        "auth_error",
    ] {
        assert!(
            stdout.contains(&format!("\"check\": \"{check}\"")),
            "{check} missing:\n{stdout}"
        );
    }
    assert!(stdout.contains("\"status\": 401"), "{stdout}");
}
