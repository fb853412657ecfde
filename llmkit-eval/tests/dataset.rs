//! Datasets: parsing, line-numbered errors, duplicate ids, content hash.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use llmkit_eval::dataset::{Case, Dataset, DatasetError};
use proptest::prelude::*;

const GOOD: &str = r#"{"id": "a", "inputs": {"q": "one"}, "reference": "1", "tags": ["math"]}
// comment lines and blank lines are skipped

{"id": "b", "inputs": {"q": "two"}, "expected_ids": ["d2"], "metadata": {"difficulty": "easy"}}
"#;

#[test]
fn loads_cases_in_order_with_all_fields() {
    let ds = Dataset::from_jsonl("good", GOOD).unwrap();
    assert_eq!(ds.len(), 2);
    assert_eq!(ds.cases()[0].id, "a");
    assert_eq!(ds.cases()[0].reference.as_deref(), Some("1"));
    assert_eq!(ds.cases()[0].tags, vec!["math"]);
    assert_eq!(
        ds.cases()[1].expected_ids.as_deref(),
        Some(&["d2".to_owned()][..])
    );
    assert_eq!(ds.cases()[1].metadata["difficulty"], "easy");
    assert_eq!(ds.get("b").unwrap().input_text("q").as_deref(), Some("two"));
    assert_eq!(ds.reference().cases, 2);
    assert!(ds.reference().version().starts_with("good@"));
}

#[test]
fn bad_json_names_its_line() {
    let text = "{\"id\": \"a\", \"inputs\": {}}\n\n{\"id\": \"b\", \"inputs\": {\n";
    let err = Dataset::from_jsonl("x", text).unwrap_err();
    assert_eq!(err.line(), Some(3));
    assert!(err.to_string().starts_with("line 3:"), "{err}");
}

#[test]
fn missing_inputs_unknown_fields_and_wrong_types_are_row_errors() {
    for (row, needle) in [
        (r#"{"id": "a"}"#, "inputs"),
        (
            r#"{"id": "a", "inputs": {}, "refrence": "typo"}"#,
            "refrence",
        ),
        (r#"{"id": "a", "inputs": "not an object"}"#, "invalid type"),
        (r#"{"id": 7, "inputs": {}}"#, "invalid type"),
        (r#"{"id": "  ", "inputs": {}}"#, "case id is empty"),
    ] {
        let text = format!("{{\"id\": \"ok\", \"inputs\": {{}}}}\n{row}\n");
        let err = Dataset::from_jsonl("x", &text).unwrap_err();
        assert!(
            matches!(err, DatasetError::BadRow { line: 2, .. }),
            "{row}: {err:?}"
        );
        assert!(err.to_string().contains(needle), "{row}: {err}");
    }
}

#[test]
fn duplicate_ids_name_both_lines() {
    let text = "{\"id\": \"a\", \"inputs\": {}}\n{\"id\": \"b\", \"inputs\": {}}\n{\"id\": \"a\", \"inputs\": {}}\n";
    let err = Dataset::from_jsonl("x", text).unwrap_err();
    assert_eq!(
        err,
        DatasetError::DuplicateId {
            line: 3,
            id: "a".into(),
            first_line: 1
        }
    );
    assert_eq!(
        err.to_string(),
        "line 3: duplicate case id `a` (first used on line 1)"
    );
}

#[test]
fn empty_file_and_missing_file_are_errors() {
    assert_eq!(
        Dataset::from_jsonl("x", "\n\n// nothing\n").unwrap_err(),
        DatasetError::Empty
    );
    let err = Dataset::load("/nonexistent/cases.jsonl").unwrap_err();
    assert!(matches!(err, DatasetError::Io { .. }));
    assert_eq!(err.line(), None);
}

#[test]
fn io_errors_keep_the_os_error_as_source() {
    let err = Dataset::load("/nonexistent/cases.jsonl").unwrap_err();
    let source = std::error::Error::source(&err).expect("an io source");
    let io = source
        .downcast_ref::<std::io::Error>()
        .expect("an io::Error");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    assert_eq!(
        err.to_string(),
        "cannot read dataset /nonexistent/cases.jsonl: entity not found"
    );
    // Converted into the crate's and core's errors, the chain still reaches the io::Error.
    let core: llmkit_core::Error = err.into();
    let mut chain = std::error::Error::source(&core);
    let mut found = false;
    while let Some(e) = chain {
        found |= e.downcast_ref::<std::io::Error>().is_some();
        chain = e.source();
    }
    assert!(found, "{core:?}");
}

#[test]
fn hash_names_the_exact_content() {
    let a = Dataset::from_jsonl("x", GOOD).unwrap();
    let crlf = Dataset::from_jsonl("x", &GOOD.replace('\n', "\r\n")).unwrap();
    assert_eq!(
        a.hash(),
        crlf.hash(),
        "line endings do not change the version"
    );
    let edited = Dataset::from_jsonl("x", &GOOD.replace("\"one\"", "\"uno\"")).unwrap();
    assert_ne!(a.hash(), edited.hash());
    assert_eq!(a.hash().len(), 64);
}

#[test]
fn load_uses_the_file_stem_as_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("support.jsonl");
    std::fs::write(&path, GOOD).unwrap();
    let ds = Dataset::load(&path).unwrap();
    assert_eq!(ds.name(), "support");
}

#[test]
fn case_content_hash_changes_with_the_case() {
    let c = Case::new("a", serde_json::json!({"q": 1}));
    let d = c.clone().with_reference("x");
    assert_ne!(c.content_hash(), d.content_hash());
    assert_eq!(c.content_hash(), c.clone().content_hash());
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        match Dataset::from_jsonl("p", &text) {
            Ok(ds) => prop_assert!(!ds.is_empty()),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn generated_cases_round_trip(
        ids in proptest::collection::btree_set("[a-z0-9_-]{1,12}", 1..20),
        reference in proptest::option::of("\\PC{0,40}"),
        tag in "[a-z]{1,8}",
    ) {
        let cases: Vec<Case> = ids
            .iter()
            .map(|id| {
                let mut c = Case::new(id.clone(), serde_json::json!({"q": id})).with_tag(tag.clone());
                c.reference = reference.clone();
                c
            })
            .collect();
        let ds = Dataset::from_cases("p", cases.clone()).unwrap();
        prop_assert_eq!(ds.cases(), &cases[..]);
    }

    #[test]
    fn a_bad_row_is_reported_on_its_own_line(good_before in 0usize..10, junk in "[a-z{]{1,10}") {
        let mut text = String::new();
        for i in 0..good_before {
            text += &format!("{{\"id\": \"c{i}\", \"inputs\": {{}}}}\n");
        }
        text += &junk;
        text.push('\n');
        let err = Dataset::from_jsonl("p", &text).unwrap_err();
        prop_assert_eq!(err.line(), Some(good_before + 1));
    }
}
