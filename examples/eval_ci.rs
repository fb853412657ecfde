//! Eval suite for CI: two prompt versions on 30 support cases, offline; compares them, writes JSON/Markdown/JUnit/HTML reports and exits 1 when the gate fails.
//!
//! ```text
//! cargo run --example eval_ci --features eval                      # candidate v2: gate passes, exit 0
//! cargo run --example eval_ci --features eval -- --candidate v1    # candidate v1: gate fails, exit 1
//! cargo run --example eval_ci --features eval -- --gate-fail-demo  # same as --candidate v1
//! cargo run --example eval_ci --features eval -- --out DIR         # where reports go (default target/eval-report)
//! cargo run --example eval_ci --features eval -- --write-baseline  # accept the candidate as the new baseline
//! ```
//!
//! Offline by default: the support model and the judge are `ScriptedModel`s. The support model
//! answers by prompt version (`Reply::dynamic` reads `meta.prompt.version`) from
//! `examples/data/eval/scripted_replies.jsonl`; the judge grades by token overlap with the
//! reference, a stand-in for a real judge model. With a real provider only the two model
//! constructors change: the dataset, prompts, evaluators, gate and reports stay as they are.
//!
//! The support model sits behind a traced pipeline (request ids, a price per token, a
//! JSON-lines trace file `traces.jsonl`), so the HTML report's per-case request ids, tokens,
//! cost and latency lead back to trace records. Each invocation keeps its candidate run in
//! `history/`, and the HTML report draws the trend over them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use llmkit::core::cost::{ModelPrice, PriceTable};
use llmkit::core::prompt::PromptRegistry;
use llmkit::core::telemetry::{ExportQueue, JsonLinesSink, TraceLayer};
use llmkit::core::{ChatModel, Decimal, Pipeline, Reply, Role, ScriptedModel};
use llmkit::eval::gate::{Baseline, GateConfig, evaluate_gate};
use llmkit::eval::reference::{self, token_f1_score};
use llmkit::eval::review::{SampleOptions, export_csv, import_labels_jsonl, review_items};
use llmkit::eval::runner::{OutputCache, Target, TargetId, TargetOutput, target_fn};
use llmkit::eval::{
    Calibration, CompareOptions, Comparison, Dataset, Evaluator, Judge, RunResult, Runner,
    assertions, report,
};
use serde_json::json;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/eval");

/// Any error of the suite.
pub type BoxError = Box<dyn std::error::Error>;

/// Command-line settings.
pub struct Args {
    /// The prompt version under test: `v1` or `v2`.
    pub candidate: String,
    /// Where the reports go.
    pub out: PathBuf,
    /// Accept the candidate as the new baseline.
    pub write_baseline: bool,
}

/// What one run of the suite produced.
pub struct Outcome {
    /// The gate's exit code (0 pass, 1 fail).
    pub exit_code: i32,
    /// The HTML report.
    pub html: PathBuf,
}

fn parse_args() -> Result<Args, BoxError> {
    let mut args = Args {
        candidate: "v2".into(),
        out: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/eval-report")),
        write_baseline: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--candidate" => args.candidate = it.next().ok_or("--candidate needs v1 or v2")?,
            "--gate-fail-demo" => args.candidate = "v1".into(),
            "--out" => args.out = it.next().ok_or("--out needs a directory")?.into(),
            "--write-baseline" => args.write_baseline = true,
            other => {
                return Err(format!(
                    "unknown argument `{other}`; see the header of examples/eval_ci.rs"
                )
                .into());
            }
        }
    }
    if args.candidate != "v1" && args.candidate != "v2" {
        return Err("--candidate must be v1 or v2".into());
    }
    Ok(args)
}

fn field(v: &serde_json::Value, key: &str) -> String {
    v.get(key)
        .and_then(|x| x.as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Help-center articles: `(id, text)`.
fn load_kb() -> Result<Vec<(String, String)>, BoxError> {
    let text = std::fs::read_to_string(format!("{DATA}/kb.jsonl"))?;
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line)?;
            Ok((field(&v, "id"), field(&v, "text")))
        })
        .collect()
}

/// A toy retriever: articles ranked by how many question words they contain.
fn retrieve(kb: &[(String, String)], question: &str, k: usize) -> Vec<(String, String)> {
    let words: Vec<String> = reference::tokens(question)
        .into_iter()
        .filter(|w| w.len() > 3)
        .collect();
    let mut ranked: Vec<(usize, &(String, String))> = kb
        .iter()
        .map(|doc| {
            let text = doc.1.to_lowercase();
            (
                words.iter().filter(|w| text.contains(w.as_str())).count(),
                doc,
            )
        })
        .filter(|(hits, _)| *hits > 0)
        .collect();
    ranked.sort_by_key(|(hits, _)| std::cmp::Reverse(*hits));
    ranked
        .into_iter()
        .take(k)
        .map(|(_, doc)| doc.clone())
        .collect()
}

/// The support model: replies by prompt version from the scripted replies file, behind a
/// pipeline whose trace layer prices each call and writes one record per call to `traces`.
fn support_model(traces: ExportQueue) -> Result<Arc<dyn ChatModel>, BoxError> {
    let text = std::fs::read_to_string(format!("{DATA}/scripted_replies.jsonl"))?;
    let mut script: HashMap<String, (String, String)> = HashMap::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let get = |k: &str| field(&v, k);
        script.insert(get("question"), (get("v1"), get("v2")));
    }
    let model = ScriptedModel::builder()
        .model("support-model")
        .fallback(Reply::dynamic(move |req| {
            let question = req
                .messages
                .iter()
                .rev()
                .find(|m| m.role == Role::User)
                .map(|m| m.text())
                .unwrap_or_default();
            let version = req.meta.prompt.as_ref().map_or("1", |p| p.version.as_str());
            match script.get(question.trim()) {
                // A little latency so the report's percentiles mean something.
                Some((v1, v2)) => Reply::text(if version == "2" {
                    v2.clone()
                } else {
                    v1.clone()
                })
                .after(Duration::from_millis(20 + (question.len() % 40) as u64)),
                None => Reply::text("I don't know."),
            }
        }))
        .build();
    // A made-up price ($ per million tokens) so the reports show what a real model would cost.
    let mut prices = PriceTable::empty("eval_ci example");
    prices.set(
        "scripted",
        "support-model",
        ModelPrice::new(Decimal::new(15, 2), Decimal::new(60, 2)),
    );
    let trace = TraceLayer::builder()
        .price_table(Arc::new(prices))
        .export(traces)
        .build();
    Ok(Pipeline::builder().layer(trace).build(Arc::new(model)))
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
    text.split_once(open)
        .and_then(|(_, rest)| rest.split_once(close))
        .map_or("", |(inner, _)| inner.trim())
}

/// The judge model: grades by token overlap with the reference (a stand-in for a real judge).
fn judge_model() -> Arc<dyn ChatModel> {
    Arc::new(
        ScriptedModel::builder()
            .model("judge-model")
            .fallback(Reply::dynamic(|req| {
                let user = req.messages.last().map(|m| m.text()).unwrap_or_default();
                let (answer, gold) = (
                    between(&user, "<answer>", "</answer>"),
                    between(&user, "<reference>", "</reference>"),
                );
                let f1 = token_f1_score(answer, gold);
                let (score, why) = if answer.to_lowercase().contains("as an ai") {
                    (1, "refuses and claims to be an AI".to_owned())
                } else {
                    let score = if f1 >= 0.6 {
                        5
                    } else if f1 >= 0.4 {
                        4
                    } else if f1 >= 0.25 {
                        3
                    } else {
                        2
                    };
                    (score, format!("overlap with the reference {f1:.2}"))
                };
                Reply::json(&json!({"score": score, "rationale": why}))
            }))
            .build(),
    )
}

/// Renders `support_answer@version` with retrieved articles and calls the model.
fn support_target(
    prompts: &PromptRegistry,
    version: &str,
    kb: Arc<Vec<(String, String)>>,
    model: Arc<dyn ChatModel>,
) -> Result<Arc<dyn Target>, BoxError> {
    let prompt = prompts.get(&format!("support_answer@{version}"))?;
    // The full `id@version@hash` keys the output cache, so an edited prompt file is re-run.
    let id = TargetId::new(prompt.prompt_ref().to_string(), model.info().model.clone());
    Ok(target_fn(id, move |case| {
        let (prompt, kb, model) = (prompt.clone(), kb.clone(), model.clone());
        async move {
            let question = case.input_text("question").unwrap_or_default();
            let docs = retrieve(&kb, &question, 3);
            let context: Vec<String> = docs
                .iter()
                .map(|(id, text)| format!("[{id}] {text}"))
                .collect();
            let request = prompt
                .render(json!({"question": question, "context": context.join("\n")}))?
                .into_request();
            let response = model.chat(request).await?;
            Ok(TargetOutput::from_response(&response)
                .with_retrieved_ids(docs.into_iter().map(|(id, _)| id)))
        }
    }))
}

/// Earlier candidate runs kept in `dir` (oldest first), for the trend chart.
fn load_history(dir: &std::path::Path) -> Result<Vec<RunResult>, BoxError> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    // The last 20 runs are plenty for a trend.
    let skip = paths.len().saturating_sub(20);
    Ok(paths
        .iter()
        .skip(skip)
        .map(RunResult::load)
        .collect::<Result<_, _>>()?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<ExitCode, BoxError> {
    let outcome = run_suite(&parse_args()?).await?;
    println!("HTML report: {}", outcome.html.display());
    Ok(ExitCode::from(u8::try_from(outcome.exit_code).unwrap_or(1)))
}

/// Runs the whole suite and writes every report into `args.out`.
pub async fn run_suite(args: &Args) -> Result<Outcome, BoxError> {
    let dataset = Dataset::load(format!("{DATA}/support.jsonl"))?;
    let prompts = PromptRegistry::load_dir(format!("{DATA}/prompts"))?;
    let kb = Arc::new(load_kb()?);
    std::fs::create_dir_all(&args.out)?;
    let traces = ExportQueue::spawn(
        Arc::new(JsonLinesSink::append(args.out.join("traces.jsonl"))?),
        1024,
    );
    let model = support_model(traces.clone())?;
    let cache = OutputCache::open(args.out.join("cache"))?;
    let v1 = support_target(&prompts, "1", kb.clone(), model.clone())?;
    let v2 = support_target(&prompts, "2", kb, model)?;
    println!(
        "dataset {} ({} cases); reports in {}",
        dataset.reference().version(),
        dataset.len(),
        args.out.display()
    );

    // 1. Calibrate the judge: reviewers labelled a sample of production (v1) outputs.
    let rubric = prompts.get("support_judge@1")?;
    let judge = || {
        Judge::new(judge_model(), rubric.clone())
            .criteria("States every fact of the reference; no refusals.")
    };
    let labels = import_labels_jsonl(&std::fs::read_to_string(format!(
        "{DATA}/human_labels.jsonl"
    ))?)?;
    let labelled = Dataset::from_cases(
        "support-labelled",
        dataset
            .cases()
            .iter()
            .filter(|c| labels.iter().any(|l| l.case_id == c.id))
            .cloned()
            .collect(),
    )?;
    let calibration_run = Runner::new()
        .cache(cache.clone())
        .progress(false)
        .evaluator(Arc::new(judge()))
        .run("calibration", &labelled, &*v1)
        .await?;
    let calibration = Calibration::from_run(&calibration_run, "judge", &labels)?;
    println!(
        "judge {}: agreement {:.3}, Cohen's kappa {:.3} on {} human labels",
        rubric.prompt_ref(),
        calibration.agreement,
        calibration.kappa,
        calibration.n
    );

    // 2. Run both prompt versions with the same evaluators. v1's labelled cases come from the cache.
    let evaluators: Vec<Arc<dyn Evaluator>> = vec![
        assertions::contains_metadata("must_mention"),
        assertions::not_contains("as an AI"),
        reference::rouge_l(0.3),
        assertions::latency_below(Duration::from_secs(2)),
        Arc::new(judge().with_calibration(calibration)),
    ];
    let runner = Runner::new()
        .concurrency(8)
        .cache(cache)
        .retrieval_k(3)
        .evaluators(evaluators);
    let mut run_v1 = runner.run("support_answer@1", &dataset, &*v1).await?;
    let mut run_v2 = runner.run("support_answer@2", &dataset, &*v2).await?;
    // The prompt files' text, so the HTML report shows what changed between the versions.
    run_v1.prompt_source = Some(prompts.get("support_answer@1")?.source().to_owned());
    run_v2.prompt_source = Some(prompts.get("support_answer@2")?.source().to_owned());
    println!(
        "target calls: v1 {} ({} cached), v2 {} ({} cached)",
        run_v1.stats.target_calls,
        run_v1.stats.cache_hits,
        run_v2.stats.target_calls,
        run_v2.stats.cache_hits
    );
    let (other, candidate) = if args.candidate == "v1" {
        (run_v2, run_v1)
    } else {
        (run_v1, run_v2)
    };
    println!("\n{}", report::terminal(&candidate));

    // 3. Compare the candidate with the other version, case by case.
    let comparison = Comparison::new(&other, &candidate, CompareOptions::default());
    println!("{}", comparison.summary());

    // 4. Gate against the stored baseline (the accepted state of main).
    let baseline_path = PathBuf::from(format!("{DATA}/baseline.json"));
    if args.write_baseline {
        Baseline::from_run(&candidate).save(&baseline_path)?;
        println!("wrote {}", baseline_path.display());
    }
    let baseline = Baseline::load(&baseline_path)?;
    let config = GateConfig::new()
        .min_pass_rate(0.85)
        .max_pass_rate_drop(0.05)
        .max_regressed_cases(0)
        .max_errors(0)
        .min_retrieval_recall(0.6)
        .judge_agreement_floor(0.8);
    let outcome = evaluate_gate(&candidate, Some(&baseline), &config);
    print!("{}", outcome.report());

    // 5. Reports for CI (JUnit for the test tab, Markdown for the job summary, one HTML page
    // for people) and a review sample.
    for path in report::write_all(&args.out, &candidate, Some(&comparison), Some(&outcome))? {
        println!("wrote {}", path.display());
    }
    let history_dir = args.out.join("history");
    let history = if history_dir.is_dir() {
        load_history(&history_dir)?
    } else {
        Vec::new()
    };
    let html = args.out.join("report.html");
    report::html::write(&html, &candidate, Some(&other), Some(&outcome), &history)?;
    println!("wrote {}", html.display());
    std::fs::create_dir_all(&history_dir)?;
    candidate.save(history_dir.join(format!(
        "{}-{:03}-{}.json",
        candidate.finished_at,
        history.len() % 1000,
        args.candidate
    )))?;
    let review = review_items(
        &candidate,
        &dataset,
        &SampleOptions {
            size: 8,
            ..SampleOptions::default()
        },
    );
    let review_path = args.out.join("review.csv");
    export_csv(&review, std::fs::File::create(&review_path)?)?;
    println!(
        "wrote {} ({} cases for human review)",
        review_path.display(),
        review.len()
    );
    traces.flush().await;
    Ok(Outcome {
        exit_code: outcome.exit_code(),
        html,
    })
}
