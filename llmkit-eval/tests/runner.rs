//! Runner: bounded concurrency, output cache, rate-limit retries, recorded errors, outputs files.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use llmkit_core::{Error, ErrorKind};
use llmkit_eval::runner::{OutputCache, OutputsFile, TargetId, target_fn};
use llmkit_eval::{Case, Dataset, Runner, TargetOutput, assertions};
use serde_json::json;

fn dataset(n: usize) -> Dataset {
    Dataset::from_cases(
        "numbers",
        (0..n)
            .map(|i| {
                Case::new(format!("c{i}"), json!({"n": i}))
                    .with_tag(if i % 2 == 0 { "even" } else { "odd" })
                    .with_expected_ids([format!("doc{i}")])
            })
            .collect(),
    )
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn concurrency_is_bounded_and_results_keep_dataset_order() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let (f, m) = (in_flight.clone(), max_seen.clone());
    let target = target_fn(TargetId::new("p@1", "m"), move |case| {
        let (f, m) = (f.clone(), m.clone());
        async move {
            let now = f.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(now, Ordering::SeqCst);
            // Later cases finish first, so ordering must be restored by the runner.
            let n = case.inputs["n"].as_u64().unwrap();
            tokio::time::sleep(Duration::from_millis(100 - n * 3)).await;
            f.fetch_sub(1, Ordering::SeqCst);
            Ok(TargetOutput::text(format!("answer {n}"))
                .with_retrieved_ids([format!("doc{n}"), "x".into()]))
        }
    });
    let ds = dataset(20);
    let run = Runner::new()
        .concurrency(3)
        .evaluator(assertions::contains("answer"))
        .run("bounded", &ds, &*target)
        .await
        .unwrap();
    assert_eq!(
        max_seen.load(Ordering::SeqCst),
        3,
        "limit reached and never exceeded"
    );
    let ids: Vec<_> = run.cases.iter().map(|c| c.id.clone()).collect();
    let want: Vec<_> = (0..20).map(|i| format!("c{i}")).collect();
    assert_eq!(ids, want);
    assert_eq!(run.summary.passed, 20);
    assert_eq!(run.summary.tags["even"].cases, 10);
    let r = run.summary.retrieval.unwrap();
    assert_eq!((r.cases, r.k), (20, 5));
    assert!((r.recall - 1.0).abs() < 1e-12 && (r.precision - 0.2).abs() < 1e-12);
}

#[tokio::test]
async fn second_run_is_served_from_the_cache_with_zero_target_calls() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let make_target = move |prompt: &str| {
        let c = c.clone();
        target_fn(TargetId::new(prompt, "m"), move |case| {
            c.fetch_add(1, Ordering::SeqCst);
            async move { Ok(TargetOutput::text(format!("out {}", case.id))) }
        })
    };
    let ds = dataset(6);
    let runner = Runner::new()
        .cache(OutputCache::open(dir.path()).unwrap())
        .evaluator(assertions::contains("out"));
    let first = runner
        .run("first", &ds, &*make_target("p@1"))
        .await
        .unwrap();
    assert_eq!((first.stats.target_calls, first.stats.cache_hits), (6, 0));
    assert_eq!(calls.load(Ordering::SeqCst), 6);

    // A new runner with a different evaluator re-scores cached outputs without calling the target.
    let rescoring = Runner::new()
        .cache(OutputCache::open(dir.path()).unwrap())
        .evaluator(assertions::contains("c3"));
    let second = rescoring
        .run("second", &ds, &*make_target("p@1"))
        .await
        .unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        6,
        "zero target calls on the second run"
    );
    assert_eq!((second.stats.target_calls, second.stats.cache_hits), (0, 6));
    assert!(second.cases.iter().all(|c| c.cached));
    assert_eq!(second.summary.passed, 1);

    // Another prompt version is another cache key.
    let v2 = runner.run("v2", &ds, &*make_target("p@2")).await.unwrap();
    assert_eq!(v2.stats.target_calls, 6);
    // An edited case is never served a stale output.
    let mut cases = ds.cases().to_vec();
    cases[0].reference = Some("new".into());
    let edited = Dataset::from_cases("numbers", cases).unwrap();
    let third = runner
        .run("third", &edited, &*make_target("p@1"))
        .await
        .unwrap();
    assert_eq!((third.stats.target_calls, third.stats.cache_hits), (1, 5));
    assert_eq!(OutputCache::open(dir.path()).unwrap().len(), 13);
}

#[tokio::test(start_paused = true)]
async fn rate_limits_wait_for_retry_after_then_retry() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let target = target_fn(TargetId::new("p", "m"), move |_| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                Err(Error::new(ErrorKind::RateLimited, "slow down")
                    .with_retry_after(Duration::from_secs(7)))
            } else {
                Ok(TargetOutput::text("ok"))
            }
        }
    });
    let started = tokio::time::Instant::now();
    let run = Runner::new()
        .run("rl", &dataset(1), &*target)
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(7));
    assert_eq!(run.stats.target_calls, 2);
    assert!(run.cases[0].passed);
}

#[tokio::test(start_paused = true)]
async fn a_custom_retry_layer_owns_target_retries() {
    // Server errors are not retried by default; a RetryLayer with its own policy retries them.
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let target = target_fn(TargetId::new("p", "m"), move |_| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        async move {
            if n < 2 {
                Err(Error::new(ErrorKind::Server, "boom"))
            } else {
                Ok(TargetOutput::text("ok"))
            }
        }
    });
    let by_default = Runner::new().run("d", &dataset(1), &*target).await.unwrap();
    assert_eq!(by_default.stats.target_calls, 1);
    assert!(
        by_default.cases[0]
            .error
            .as_deref()
            .unwrap()
            .contains("boom")
    );

    let retry = llmkit_core::resilience::RetryLayer::new()
        .max_attempts(5)
        .no_budget();
    let run = Runner::new()
        .retry(retry)
        .run("r", &dataset(1), &*target)
        .await
        .unwrap();
    assert_eq!(run.stats.target_calls, 2);
    assert!(run.cases[0].passed);
}

#[tokio::test]
async fn target_and_evaluator_errors_are_recorded_not_fatal() {
    let target = target_fn(TargetId::new("p", "m"), |case| async move {
        if case.id == "c1" {
            Err(Error::new(
                ErrorKind::ContentFiltered,
                "blocked by provider",
            ))
        } else {
            Ok(TargetOutput::text("fine"))
        }
    });
    let failing_judge = Arc::new(
        llmkit_eval::Judge::with_default_rubric(Arc::new(
            llmkit_core::ScriptedModel::builder()
                .fallback(llmkit_core::Reply::server_error(500))
                .build(),
        ))
        .unwrap(),
    );
    let run = Runner::new()
        .rate_limit_retries(0)
        .evaluator(failing_judge)
        .run("errors", &dataset(3), &*target)
        .await
        .unwrap();
    let c1 = run.case("c1").unwrap();
    assert!(c1.error.as_deref().unwrap().contains("blocked by provider"));
    assert!(!c1.passed && c1.score == 0.0 && c1.output.is_none());
    assert_eq!(run.summary.target_errors, 1);
    assert_eq!(run.summary.evaluator_errors, 2);
    assert!(run.case("c0").unwrap().scores[0].error);
    assert_eq!(run.judges.len(), 1);
}

#[tokio::test]
async fn outputs_file_target_reads_recorded_outputs() {
    let text = r#"{"id": "c0", "output": "answer zero", "latency_ms": 812, "retrieved_ids": ["doc0"], "usage": {"input_tokens": 10, "output_tokens": 3}, "model": "gpt-x"}
{"id": "c1", "text": "answer one"}
"#;
    let outputs = OutputsFile::parse("outputs.jsonl", text).unwrap();
    assert_eq!(outputs.len(), 2);
    let run = Runner::new()
        .evaluator(assertions::contains("answer"))
        .run("file", &dataset(3), &outputs)
        .await
        .unwrap();
    assert_eq!(run.target.model, "gpt-x");
    let c0 = run.case("c0").unwrap();
    assert_eq!(
        c0.output.as_ref().unwrap().latency,
        Duration::from_millis(812)
    );
    assert_eq!(c0.retrieval.unwrap().recall, 1.0);
    assert!(
        run.case("c2")
            .unwrap()
            .error
            .as_deref()
            .unwrap()
            .contains("no row for case `c2`")
    );
    assert_eq!(run.summary.input_tokens, 10);

    let bad = OutputsFile::parse(
        "o.jsonl",
        "{\"id\": \"a\", \"output\": \"x\"}\n{\"output\": \"no id\"}\n",
    )
    .unwrap_err();
    assert!(bad.to_string().starts_with("o.jsonl:2:"), "{bad}");
    let dup = OutputsFile::parse(
        "o.jsonl",
        "{\"id\": \"a\", \"output\": \"x\"}\n{\"id\": \"a\", \"output\": \"y\"}\n",
    )
    .unwrap_err();
    assert!(dup.to_string().contains("duplicate"));
}

#[tokio::test]
async fn run_results_round_trip_through_json() {
    let target = target_fn(TargetId::new("p", "m"), |_| async {
        Ok(TargetOutput::text("x").with_latency(Duration::from_micros(1500)))
    });
    let run = Runner::new()
        .evaluator(assertions::contains("x"))
        .run("rt", &dataset(2), &*target)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/run.json");
    run.save(&path).unwrap();
    let back = llmkit_eval::RunResult::load(&path).unwrap();
    assert_eq!(back, run);
    assert!((run.summary.latency_p50_ms - 1.5).abs() < 1e-9);
}

#[tokio::test]
async fn a_failing_cache_write_does_not_fail_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("cache");
    let cache = OutputCache::open(&cache_dir).unwrap();
    std::fs::remove_dir_all(&cache_dir).unwrap();
    let target = target_fn(TargetId::new("p", "m"), |_| async {
        Ok(TargetOutput::text("ok"))
    });
    let run = Runner::new()
        .cache(cache)
        .run("no-cache", &dataset(2), &*target)
        .await
        .unwrap();
    assert_eq!(run.summary.passed, 2);
    assert_eq!(run.stats.target_calls, 2);
}
