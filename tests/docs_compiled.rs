//! Every guide in `docs/` is compiled as doctests by the facade (`src/lib.rs`, module `guides`),
//! so a Rust snippet in a new guide cannot silently escape compilation (issue 17).

use std::path::Path;

#[test]
fn every_markdown_guide_is_included_as_doctests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).expect("read src/lib.rs");
    let mut guides: Vec<String> = std::fs::read_dir(root.join("docs"))
        .expect("read docs/")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    guides.extend(["README.md".to_owned(), "examples/README.md".to_owned()]);
    assert!(guides.len() > 3, "no guides found under {}", root.display());
    let missing: Vec<&String> = guides
        .iter()
        .filter(|g| !lib.contains(&format!("include_str!(\"../{g}\")")))
        .collect();
    assert!(
        missing.is_empty(),
        "add these to `mod guides` in src/lib.rs so their Rust snippets are compiled: {missing:?}"
    );
}
