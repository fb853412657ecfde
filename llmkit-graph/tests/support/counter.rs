//! The counting graph the durable-checkpointer tests share (SQLite here, PostgreSQL in
//! llmkit-postgres/tests/checkpointer.rs, which includes this file by path): one node that
//! counts, so a test knows exactly how many checkpoints a run writes.

use llmkit_graph::{END, Graph, NodeOutput};
use serde::{Deserialize, Serialize};

/// State of [`counter`]: how many times `inc` ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Count {
    pub n: u32,
}

/// A graph named `name` whose only node `inc` adds one to `n` until it reaches `until`.
pub fn counter(name: &str, until: u32) -> Graph<Count> {
    Graph::<Count>::builder(name)
        .node("inc", |mut s: Count, _| async move {
            s.n += 1;
            Ok(NodeOutput::Update(s))
        })
        .entry("inc")
        .conditional_edge(
            "inc",
            move |s: &Count| {
                if s.n < until {
                    "inc".into()
                } else {
                    END.into()
                }
            },
            &["inc", END],
        )
        .build()
        .unwrap()
}
