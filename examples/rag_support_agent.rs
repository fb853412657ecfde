//! RAG support agent: index a policy corpus, answer with checked citations, refuse what the
//! sources do not say, and grade retrieval on a labelled query set.
//!
//! Run with `cargo run --example rag_support_agent --features rag`. Offline: embeddings come from the scripted
//! model's deterministic hashed bag of words, and the answering "model" is a scripted stand-in
//! that cites the chunks it was given (set `LLMKIT_PROVIDER` to answer with a real model).

use std::sync::Arc;

use llmkit::core::{ChatModel, ScriptedModel};
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

#[path = "support/scripted_answerer.rs"]
mod scripted_answerer;
use scripted_answerer::scripted_answerer;

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
