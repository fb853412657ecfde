//! Failure policy when PostgreSQL goes away mid-run and comes back: checkpoints and review
//! decisions fail closed with a typed, retryable `Transport` error (nothing is half-written,
//! nothing is silently skipped), and the pool recovers by itself once the server answers again.
//!
//! The outage is a TCP proxy in front of the real server that this test cuts (every open
//! connection dropped, new ones refused) and restores, so the shared server keeps running for
//! the other tests. Needs `LLMKIT_TEST_PG_URL`; `#[ignore]`d without provisioning.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use llmkit_core::ErrorKind;
use llmkit_graph::review::{ReviewItem, ReviewQueue, ReviewReason, Verdict};
use llmkit_graph::*;
use llmkit_postgres::{PgError, Postgres, PostgresCheckpointer, PostgresReviewQueue, pg_error};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use common::with_schema;

/// A TCP proxy that can be cut: while down it refuses (closes) new connections and every live
/// one is torn down.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let (generation, _) = watch::channel(0u64);
        let gen_tx = generation.clone();
        let up2 = up.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let _ = client.set_nodelay(true);
                let mut cut = gen_tx.subscribe();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = server.set_nodelay(true);
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    tokio::select! {
                        _ = tokio::io::copy(&mut cr, &mut sw) => {}
                        _ = tokio::io::copy(&mut sr, &mut cw) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy {
            addr,
            up,
            generation,
        }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
struct St {
    n: u32,
}

fn proxied_url(url: &str, proxy: SocketAddr) -> String {
    let config: tokio_postgres::Config = url.parse().unwrap();
    let user = config.get_user().unwrap();
    let password = String::from_utf8(config.get_password().unwrap().to_vec()).unwrap();
    let db = config.get_dbname().unwrap();
    format!(
        "postgres://{user}:{password}@127.0.0.1:{}/{db}",
        proxy.port()
    )
}

fn target_of(url: &str) -> SocketAddr {
    let config: tokio_postgres::Config = url.parse().unwrap();
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        #[allow(unreachable_patterns)]
        _ => panic!("tcp host expected"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}").parse().unwrap()
}

fn unavailable(err: &llmkit_core::Error) {
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
    assert!(err.is_retryable());
    assert!(
        matches!(pg_error(err), Some(PgError::Unavailable { .. })),
        "{err}"
    );
    assert!(
        !err.to_string().contains("llmkit-test-only"),
        "no password in errors: {err}"
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run scripts/test-services.sh up"]
async fn outage_fails_closed_with_typed_errors_and_the_pool_recovers() {
    with_schema(
        "LLMKIT_TEST_PG_URL",
        "llmkit_t_down",
        |url, schema| async move {
            let proxy = Proxy::start(target_of(&url)).await;
            let pg = Postgres::builder(proxied_url(&url, proxy.addr))
                .schema(&schema)
                .connect_timeout(Duration::from_secs(2))
                .wait_timeout(Duration::from_secs(2))
                .build()
                .unwrap();
            pg.migrate().await.unwrap();
            let store = PostgresCheckpointer::new(pg.clone());
            let queue = PostgresReviewQueue::new(pg.clone());
            // A graph whose second node finds the database gone.
            let proxy = Arc::new(proxy);
            let p2 = proxy.clone();
            let cut_once = Arc::new(AtomicBool::new(false));
            let g = Graph::<St>::builder("outage")
                .node("first", |mut s: St, _| async move {
                    s.n += 1;
                    Ok(NodeOutput::Update(s))
                })
                .node("second", move |mut s: St, _| {
                    let p = p2.clone();
                    let first_time = !cut_once.swap(true, Ordering::SeqCst);
                    async move {
                        if first_time {
                            p.down();
                        }
                        s.n += 10;
                        Ok(NodeOutput::Update(s))
                    }
                })
                .entry("first")
                .edge("first", "second")
                .edge("second", END)
                .build()
                .unwrap();
            let lease = store
                .lease("t", "w", Duration::from_secs(30))
                .await
                .unwrap();
            let err = g
                .run_or_resume(&lease, "t", St::default())
                .await
                .unwrap_err();
            unavailable(&err);
            // Nothing else fails open while it is down: reads, leases and review decisions all
            // return the same typed error.
            unavailable(&store.latest("t").await.unwrap_err());
            unavailable(
                &store
                    .lease("t", "w2", Duration::from_secs(1))
                    .await
                    .unwrap_err(),
            );
            unavailable(
                &queue
                    .push(ReviewItem {
                        id: "case".into(),
                        score: 0.5,
                        verdict: Verdict::Escalate,
                        reason: ReviewReason::Escalated,
                        payload: serde_json::json!({}),
                        label: None,
                    })
                    .await
                    .unwrap_err(),
            );
            // The server is back: the pool drops its dead connections and opens new ones.
            proxy.up();
            let latest = store.latest("t").await.unwrap().unwrap();
            assert_eq!(
                latest.seq, 1,
                "only the checkpoint written before the outage exists"
            );
            assert_eq!(latest.next.as_deref(), Some("second"));
            // The same worker resumes: the failed node runs again (at-least-once for a node that
            // was cut off mid-write), then the run finishes.
            let RunOutcome::Finished(s) =
                g.run_or_resume(&lease, "t", St::default()).await.unwrap()
            else {
                panic!()
            };
            assert_eq!(s.n, 11);
            lease.release().await.unwrap();
            queue
                .push(ReviewItem {
                    id: "case".into(),
                    score: 0.5,
                    verdict: Verdict::Escalate,
                    reason: ReviewReason::Escalated,
                    payload: serde_json::json!({}),
                    label: None,
                })
                .await
                .unwrap();
            assert_eq!(queue.pending().await.unwrap().len(), 1);
        },
    )
    .await;
}
