//! The SQLite checkpointer (feature `sqlite`): run, resume from a second handle (another
//! process on the machine), write-once positions, retention and stats in SQL.
#![cfg(feature = "sqlite")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use llmkit_core::ErrorKind;
use llmkit_graph::*;

#[path = "support/counter.rs"]
mod counting;
use counting::Count as St;

fn counter(until: u32) -> Graph<St> {
    counting::counter("sqlite", until)
}

#[tokio::test]
async fn runs_resumes_prunes_and_refuses_a_second_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoints.db");
    let store = SqliteCheckpointer::open(&path).unwrap();
    let RunOutcome::Finished(s) = counter(3).run(&store, "t", St::default()).await.unwrap() else {
        panic!()
    };
    assert_eq!(s.n, 3);
    // A second handle on the same file (another process on the machine) sees the thread.
    let other = SqliteCheckpointer::open(&path).unwrap();
    assert_eq!(other.list("t").await.unwrap().len(), 5);
    assert_eq!(other.latest("t").await.unwrap().unwrap().seq, 4);
    assert_eq!(other.get("t", "t:000002").await.unwrap().unwrap().seq, 2);
    assert_eq!(other.threads().await.unwrap(), vec!["t".to_owned()]);
    // Write once per position: the second writer of seq 4 is refused, the first state stands.
    let mut dup = other.latest("t").await.unwrap().unwrap();
    dup.state = serde_json::json!({"n": 99});
    let err = other.put(&dup).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert_eq!(store.latest("t").await.unwrap().unwrap().state["n"], 3);

    let stats = store.stats().await.unwrap();
    assert_eq!((stats.threads, stats.checkpoints), (1, 5));
    assert!(stats.bytes > 0);
    counter(2).run(&store, "u", St::default()).await.unwrap();
    let removed = store
        .prune(&Retention {
            keep_last: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(removed, 3 + 2);
    assert_eq!(store.latest("t").await.unwrap().unwrap().seq, 4);
    let removed = store
        .prune(&Retention {
            prune_finished: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(removed, 4);
    assert!(store.threads().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_crashed_run_resumes_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cp.db");
    let fails = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let f2 = fails.clone();
    let g = Graph::<St>::builder("crash")
        .node("a", |mut s: St, _| async move {
            s.n += 1;
            Ok(NodeOutput::Update(s))
        })
        .node("b", move |mut s: St, _| {
            let fail = f2.load(std::sync::atomic::Ordering::SeqCst);
            async move {
                if fail {
                    return Err(llmkit_core::Error::new(ErrorKind::Other, "boom"));
                }
                s.n += 10;
                Ok(NodeOutput::Update(s))
            }
        })
        .entry("a")
        .edge("a", "b")
        .edge("b", END)
        .build()
        .unwrap();
    let store = SqliteCheckpointer::open(&path).unwrap();
    assert!(g.run(&store, "t", St::default()).await.is_err());
    drop(store);
    fails.store(false, std::sync::atomic::Ordering::SeqCst);
    let reopened = SqliteCheckpointer::open(&path).unwrap();
    let RunOutcome::Finished(s) = g.resume(&reopened, "t").await.unwrap() else {
        panic!()
    };
    assert_eq!(s.n, 11, "a ran once, b resumed");
}
