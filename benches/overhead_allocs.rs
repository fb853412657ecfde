//! Heap allocations per call of the overhead bench's paths, counted by `dhat` as the global
//! allocator (a separate binary, so the timing bench runs on the system allocator).
//!
//! The loopback server runs in a child process (this binary re-executed with
//! `LLMKIT_BENCH_SERVE=1`), so only the client's allocations are counted.
//! `cargo bench --bench overhead_allocs` prints a Markdown table.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::io::{BufRead as _, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;

use common::{InstantModel, Path};
use llmkit::core::cache::CacheLayer;
use llmkit::core::{ChatModel, ChatRequest, Pipeline};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const CALLS: usize = 640;

/// Allocation budgets per call: the run fails (exit status 1) when a path allocates more, so an
/// allocation regression breaks `cargo bench` instead of hiding in a table. Each is the count
/// measured when it was set plus a little room for hash-map growth and pool reuse that vary
/// by a fraction of an allocation per call; lower them when a change saves allocations.
/// Paths over HTTP are checked at every concurrency.
const BUDGETS: [(&str, f64); 6] = [
    ("raw reqwest", 104.0),
    ("provider alone", 80.0),
    ("full stack", 264.0),
    ("instant model called directly", 10.0),
    ("cache hit", 23.0),
    ("full stack over instant model (miss)", 182.0),
];

/// Checks `blocks` (allocations per call) of path `name` against [`BUDGETS`]; returns the
/// failure message when it is over.
fn over_budget(name: &str, conc: Option<usize>, blocks: f64) -> Option<String> {
    let (_, budget) = BUDGETS.iter().find(|(n, _)| *n == name)?;
    (blocks > *budget).then(|| {
        let at = conc
            .map(|c| format!(" at concurrency {c}"))
            .unwrap_or_default();
        format!("{name}{at}: {blocks:.1} allocations per call, budget {budget}")
    })
}

fn server_child() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut out = std::io::stdout();
        writeln!(out, "{}", listener.local_addr().unwrap()).unwrap();
        out.flush().unwrap();
        common::serve(listener).await;
    });
}

/// Blocks (heap allocations) and bytes per call of `calls` calls made by `run`.
fn per_call(calls: usize, run: impl FnOnce()) -> (f64, f64) {
    let before = dhat::HeapStats::get();
    run();
    let after = dhat::HeapStats::get();
    (
        (after.total_blocks - before.total_blocks) as f64 / calls as f64,
        (after.total_bytes - before.total_bytes) as f64 / calls as f64,
    )
}

fn main() {
    if std::env::var_os("LLMKIT_BENCH_SERVE").is_some() {
        server_child();
        return;
    }
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .env("LLMKIT_BENCH_SERVE", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: SocketAddr = line.trim().parse().unwrap();

    let _profiler = dhat::Profiler::builder().testing().build();
    let rt = common::client_runtime();
    let provider = common::provider(addr);
    let paths = [
        ("raw reqwest", common::raw(addr)),
        ("provider alone", Path::Model(provider.clone())),
        ("full stack", Path::Model(common::full_stack(provider))),
    ];
    println!("\n## allocations per call (dhat, client side only, {CALLS} calls each)");
    println!("\n| conc | path | allocations/call | bytes/call | added allocations vs raw |");
    println!("|---|---|---|---|---|");
    let mut failures = Vec::new();
    for conc in [1usize, 8, 64] {
        let mut raw_blocks = 0.0;
        for (i, (name, p)) in paths.iter().enumerate() {
            rt.block_on(common::drive_count(p, conc, conc * 4));
            let (blocks, bytes) = per_call(CALLS, || {
                rt.block_on(common::drive_count(p, conc, CALLS));
            });
            if i == 0 {
                raw_blocks = blocks;
            }
            failures.extend(over_budget(name, Some(conc), blocks));
            println!(
                "| {conc} | {name} | {blocks:.1} | {bytes:.0} | {:+.1} |",
                blocks - raw_blocks
            );
        }
    }

    // No HTTP: the cache hit and the full stack over an instant model.
    let direct = InstantModel::shared();
    let cached = Pipeline::builder()
        .layer(CacheLayer::new())
        .build(InstantModel::shared());
    let full = common::full_stack(InstantModel::shared());
    let req = ChatRequest::user("What is the refund window?").with_temperature(0.0);
    rt.block_on(cached.chat(req.clone())).unwrap();
    println!("\n| no HTTP | allocations/call | bytes/call |");
    println!("|---|---|---|");
    let cases: [(&str, Arc<dyn ChatModel>, bool); 3] = [
        ("instant model called directly", direct, false),
        ("cache hit", cached, true),
        ("full stack over instant model (miss)", full, false),
    ];
    for (name, model, same) in cases {
        let (blocks, bytes) = per_call(CALLS, || {
            rt.block_on(async {
                for _ in 0..CALLS {
                    let r = if same {
                        req.clone()
                    } else {
                        ChatRequest::user(common::next_prompt())
                    };
                    std::hint::black_box(model.chat(r).await.unwrap());
                }
            });
        });
        println!("| {name} | {blocks:.1} | {bytes:.0} |");
        failures.extend(over_budget(name, None, blocks));
    }
    // Each layer alone over the instant model (the per-layer table of `benches/overhead.rs`):
    // a layer's own allocations are its row minus "pipeline only".
    println!("\n| layer alone over the instant model | allocations/call | bytes/call |");
    println!("|---|---|---|");
    for (name, model) in common::each_layer(&InstantModel::shared()) {
        rt.block_on(model.chat(ChatRequest::user(common::next_prompt())))
            .unwrap();
        let (blocks, bytes) = per_call(CALLS, || {
            rt.block_on(async {
                for _ in 0..CALLS {
                    let r = ChatRequest::user(common::next_prompt());
                    std::hint::black_box(model.chat(r).await.unwrap());
                }
            });
        });
        println!("| {name} | {blocks:.1} | {bytes:.0} |");
    }
    child.kill().ok();
    child.wait().ok();
    if !failures.is_empty() {
        eprintln!("\nallocation budget exceeded (see BUDGETS in benches/overhead_allocs.rs):");
        for f in &failures {
            eprintln!("  {f}");
        }
        std::process::exit(1);
    }
    println!("\nevery path within its allocation budget (BUDGETS in benches/overhead_allocs.rs)");
}
