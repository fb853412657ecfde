//! RAG support agent: index a policy corpus, answer with checked citations, refuse what the
//! sources do not say, and grade retrieval on a labelled query set.
//!
//! Run with `cargo run --example rag_support_agent --features rag`. Offline: embeddings come from the scripted
//! model's deterministic hashed bag of words, and the answering "model" is a scripted stand-in
//! that cites the chunks it was given (set `LLMKIT_PROVIDER` to answer with a real model).

use std::sync::Arc;

use llmkit::core::{ChatModel, ChatRequest, Reply, ScriptedModel};
use llmkit::rag::eval::{RetrievalCase, mrr, recall_at_k, retrieve_ids};
use llmkit::rag::{
    Chunker, Document, GroundedAnswerer, Index, SearchMode, UnsupportedPolicy, load_dir,
};

fn load_corpus() -> Result<Vec<Document>, Box<dyn std::error::Error>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/policies");
    // Markdown and HTML alike; the labelled queries name documents by file stem.
    let mut docs = load_dir(&dir, "*.{md,html}")?;
    for doc in &mut docs {
        if let Some(stem) = std::path::Path::new(&doc.id).file_stem() {
            doc.id = stem.to_string_lossy().into_owned();
        }
    }
    Ok(docs)
}

/// Offline stand-in for an answering model: answers from the first source block it was given
/// and cites it; says it cannot answer when the sources do not mention the question's topic.
fn scripted_answerer() -> ScriptedModel {
    ScriptedModel::builder()
        .model("scripted-answerer")
        .fallback(Reply::dynamic(|req: &ChatRequest| {
            let prompt = req.messages.last().map(|m| m.text()).unwrap_or_default();
            let question = prompt.rsplit("Question:").next().unwrap_or("").to_lowercase();
            let (id, body) = first_source(&prompt);
            let topical = body
                .to_lowercase()
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| w.len() > 4)
                .any(|w| question.contains(w));
            if !topical {
                return Reply::json(&serde_json::json!({
                    "answer": "The policies do not say.", "claims": [], "refused": true
                }));
            }
            // The sentence sharing the most words (and numbers) with the question.
            let overlap = |s: &str| {
                s.to_lowercase()
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|w| (w.len() > 3 || w.chars().all(|c| c.is_ascii_digit())) && !w.is_empty())
                    .filter(|w| question.contains(*w))
                    .count()
            };
            let sentence = body
                .split_inclusive('.')
                .filter(|s| !s.trim_start().starts_with('#'))
                .max_by_key(|s| overlap(s))
                .unwrap_or(&body)
                .trim()
                .to_owned();
            Reply::json(&serde_json::json!({
                "answer": sentence, "claims": [{"text": sentence, "chunk_ids": [id]}], "refused": false
            }))
        }))
        .build()
}

/// The id and text of the first source block in the prompt (guard spotlighting format).
fn first_source(prompt: &str) -> (String, String) {
    let after = prompt.split("id=").nth(1).unwrap_or("");
    let id: String = after
        .trim_start_matches('"')
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"')
        .collect();
    let body = after.split_once('\n').map(|(_, b)| b).unwrap_or("");
    let body = body.split("<<</").next().unwrap_or(body).trim().to_owned();
    (id, body)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let embedder = Arc::new(ScriptedModel::builder().embedding_dimensions(512).build());
    println!(
        "embeddings: offline hashed bag-of-words (scripted model); no embedding provider configured"
    );
    // Paragraph-sized chunks, so a citation points at the paragraph that says it.
    let index = Arc::new(Index::new(embedder).with_chunker(Chunker::new().max_size(40).overlap(0)));
    let docs = load_corpus()?;
    let report = index.sync(docs.clone()).await?;
    println!(
        "indexed {} documents into {} chunks ({:?})",
        docs.len(),
        index.chunk_count(),
        report
    );

    let model: Arc<dyn ChatModel> = match std::env::var("LLMKIT_PROVIDER") {
        Ok(p) => {
            println!("answering with provider `{p}` from the environment");
            llmkit::providers::from_env()?
        }
        Err(_) => {
            println!("answering with the offline scripted stand-in");
            Arc::new(scripted_answerer())
        }
    };
    let answerer = GroundedAnswerer::new(index.clone(), model)
        .top_k(3)
        .policy(UnsupportedPolicy::Refuse);

    for question in [
        "Can I get a refund after 60 days?",
        "Do you sell gift cards for cryptocurrency?",
    ] {
        let report = answerer.answer(question).await?;
        println!("\nQ: {question}");
        println!(
            "A: {}{}",
            report.answer,
            if report.refused { "  [refused]" } else { "" }
        );
        for checked in &report.claims {
            for id in &checked.claim.chunk_ids {
                if let Some(chunk) = index.chunk(id) {
                    println!(
                        "   cites {id} ({} bytes {}..{}, support {:.2}, {}): {:?}",
                        chunk.doc_id,
                        chunk.start,
                        chunk.end,
                        checked.support,
                        if checked.supported {
                            "supported"
                        } else {
                            "UNSUPPORTED"
                        },
                        chunk.text
                    );
                }
            }
        }
        println!("   context ids: {:?}", report.context_ids);
    }

    let cases: Vec<RetrievalCase> = include_str!("data/rag_queries.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    for mode in [SearchMode::Lexical, SearchMode::Vector, SearchMode::Hybrid] {
        let results = retrieve_ids(&index, &cases, 3, mode).await?;
        println!(
            "\nretrieval ({mode:?}, {} labelled queries): recall@1 {:.2}, recall@3 {:.2}, MRR {:.2}",
            cases.len(),
            recall_at_k(&results, 1),
            recall_at_k(&results, 3),
            mrr(&results)
        );
    }
    Ok(())
}
