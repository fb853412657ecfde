//! Loading files and folders: formats, ids, glob selection and typed errors.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;

use llmkit_core::ErrorKind;
use llmkit_rag::load::{Format, load_dir, load_file};

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    fs::create_dir_all(p.join("policies/eu")).unwrap();
    fs::write(
        p.join("policies/refunds.md"),
        "# Refunds\n\nRefunds within 30 days.\n",
    )
    .unwrap();
    fs::write(
        p.join("policies/eu/withdrawal.HTML"),
        "<html><head><title>t</title><script>var x=1;</script></head><body><h2>Withdrawal</h2><p>You have 14 days.</p></body></html>",
    )
    .unwrap();
    fs::write(p.join("readme.txt"), "Plain\u{0007} text.\n").unwrap();
    fs::write(p.join("image.png"), [0x89u8, b'P', b'N', b'G']).unwrap();
    dir
}

#[test]
fn folder_with_glob_loads_supported_files_in_path_order() {
    let dir = tree();
    let all = load_dir(dir.path(), "**/*").unwrap();
    let ids: Vec<&str> = all.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "policies/eu/withdrawal.HTML",
            "policies/refunds.md",
            "readme.txt"
        ],
        "the png is skipped, ids are relative with / separators"
    );
    let html = &all[0];
    assert!(html.text.contains("Withdrawal") && html.text.contains("You have 14 days."));
    assert!(!html.text.contains("var x"), "scripts are not visible text");
    assert_eq!(html.metadata["format"], "html");
    assert_eq!(html.metadata["path"], "policies/eu/withdrawal.HTML");
    assert!(html.source.ends_with("withdrawal.HTML"));
    assert!(!all[2].text.contains('\u{0007}'), "cleaned");

    let md_only = load_dir(dir.path(), "policies/**/*.md").unwrap();
    assert_eq!(md_only.len(), 1);
    assert_eq!(md_only[0].id, "policies/refunds.md");
    assert_eq!(md_only[0].metadata["format"], "markdown");
    assert!(load_dir(dir.path(), "*.rst").unwrap().is_empty());
}

#[test]
fn bad_input_is_a_typed_error_naming_the_path() {
    let dir = tree();
    fs::write(
        dir.path().join("policies/latin1.txt"),
        [b'c', b'a', 0xe9, b'!'],
    )
    .unwrap();
    let err = load_dir(dir.path(), "**/*.txt").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(
        err.to_string().contains("latin1.txt") && err.to_string().contains("not UTF-8"),
        "{err}"
    );
    let err = load_file(&dir.path().join("image.png")).unwrap_err();
    assert!(err.to_string().contains("unsupported extension"), "{err}");
    let err = load_file(&dir.path().join("missing.md")).unwrap_err();
    assert!(err.to_string().contains("missing.md"), "{err}");
    let err = load_dir(dir.path(), "policies/[").unwrap_err();
    assert!(err.to_string().contains("bad glob pattern"), "{err}");
    assert!(load_dir(&dir.path().join("nope"), "**/*").is_err());
}

#[test]
fn single_file_and_format_detection() {
    let dir = tree();
    let doc = load_file(&dir.path().join("policies/refunds.md")).unwrap();
    assert!(doc.id.ends_with("policies/refunds.md"));
    assert!(doc.text.starts_with("# Refunds"));
    assert_eq!(Format::of("a/b.Markdown".as_ref()), Some(Format::Markdown));
    assert_eq!(Format::of("a/b.htm".as_ref()), Some(Format::Html));
    assert_eq!(Format::of("a/b".as_ref()), None);
}
