#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Prompt registry: loading, validation errors with file and line, labels, rendering, hashes.

use std::path::PathBuf;

use llmkit_core::prompt::{PromptError, PromptRegistry};
use llmkit_core::{ErrorKind, Role};
use proptest::prelude::*;
use serde_json::json;

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/prompts")
}

const V1: &str = "+++\nid = \"greet\"\nversion = 1\ndescription = \"hello\"\ninputs = [\"name\"]\n\n[model]\nmodel = \"small\"\ntemperature = 0.2\nmax_tokens = 50\n+++\n--- system ---\nBe brief.\n--- user ---\nSay hello to {{ name }}.\n";

fn problems(err: PromptError) -> Vec<String> {
    match err {
        PromptError::Invalid(p) => p.iter().map(ToString::to_string).collect(),
        other => panic!("expected load problems, got {other}"),
    }
}

#[test]
fn loads_the_example_folder_with_labels() {
    let reg = PromptRegistry::load_dir(examples_dir()).unwrap();
    // refund_verdict (examples/structured_output.rs), refund_question (examples/quickstart.rs).
    assert_eq!(
        reg.ids().collect::<Vec<_>>(),
        vec!["refund_question", "refund_verdict"]
    );
    assert_eq!(reg.len(), 3);
    assert_eq!(
        reg.get("refund_question@production").unwrap().version(),
        "1"
    );
    assert_eq!(reg.get("refund_verdict@production").unwrap().version(), "1");
    assert_eq!(reg.get("refund_verdict@canary").unwrap().version(), "2");
    assert_eq!(reg.get("refund_verdict@latest").unwrap().version(), "2");
    assert_eq!(reg.get("refund_verdict").unwrap().version(), "2");
    assert_eq!(reg.get("refund_verdict@1").unwrap().version(), "1");
    assert_eq!(reg.labels("refund_verdict")["production"], "1");
    let err = reg.get("refund_verdict@staging").unwrap_err();
    assert_eq!(err, PromptError::NotFound("refund_verdict@staging".into()));
    assert_eq!(llmkit_core::Error::from(err).kind(), ErrorKind::NotFound);

    let d = reg
        .diff("refund_verdict@production", "refund_verdict@canary")
        .unwrap();
    assert!(d.has_changes());
    let text = d.to_string();
    assert!(text.contains("+ Quote the policy clause"), "{text}");
    assert!(text.contains("- version = 1"), "{text}");
    assert!(text.starts_with("--- refund_verdict@1@"));
}

#[test]
fn renders_sections_into_messages_and_a_request() {
    let reg: PromptRegistry = V1.parse().unwrap();
    let r = reg.render("greet@1", json!({"name": "Ada"})).unwrap();
    assert_eq!(r.messages.len(), 2);
    assert_eq!(r.messages[0].role, Role::System);
    assert_eq!(r.messages[0].text(), "Be brief.");
    assert_eq!(r.messages[1].role, Role::User);
    assert_eq!(r.messages[1].text(), "Say hello to Ada.");
    assert_eq!(r.prompt_ref.id, "greet");
    assert_eq!(r.prompt_ref.hash.len(), 64);
    let req = r.clone().into_request();
    assert_eq!(req.meta.prompt, Some(r.prompt_ref.clone()));
    assert_eq!(req.model.as_deref(), Some("small"));
    assert_eq!(req.temperature, Some(0.2));
    assert_eq!(req.max_tokens, Some(50));
}

#[test]
fn missing_variables_are_errors_not_empty_strings() {
    let reg: PromptRegistry = V1.parse().unwrap();
    let err = reg.render("greet", json!({})).unwrap_err();
    assert!(err.to_string().contains("missing variables: name"), "{err}");
    assert_eq!(
        llmkit_core::Error::from(err).kind(),
        ErrorKind::InvalidRequest
    );
    // An undefined attribute of a provided variable is also an error (strict undefined).
    let src = V1.replace("{{ name }}", "{{ name.first }}");
    let reg: PromptRegistry = src.parse().unwrap();
    let err = reg.render("greet", json!({"name": "Ada"})).unwrap_err();
    assert!(matches!(err, PromptError::Render { .. }), "{err}");
    assert!(err.to_string().contains("at <memory>:15"), "{err}");
}

#[test]
fn hash_is_stable_and_tracks_content() {
    let a: PromptRegistry = V1.parse().unwrap();
    let b: PromptRegistry = V1.replace('\n', "\r\n").parse().unwrap();
    let c: PromptRegistry = V1.replace("Be brief.", "Be brief!").parse().unwrap();
    let ha = a.get("greet").unwrap().hash().to_owned();
    assert_eq!(
        ha,
        b.get("greet").unwrap().hash(),
        "line endings do not matter"
    );
    assert_ne!(ha, c.get("greet").unwrap().hash());
    // The hash is the plain sha256 of the file, so anyone can recompute it with `sha256sum`.
    use sha2::Digest;
    assert_eq!(ha, format!("{:x}", sha2::Sha256::digest(V1.as_bytes())));
}

#[test]
fn validation_reports_every_problem_with_file_and_line() {
    let undeclared = V1
        .replace("inputs = [\"name\"]", "inputs = [\"name\", \"unused\"]")
        .replace("Be brief.", "Be {{ tone }}.");
    let bad_syntax = V1
        .replace("version = 1", "version = 2")
        .replace("Say hello to {{ name }}.", "Say hello\nto {{ name }.");
    let bad_header = "+++\nid = \"x\"\nversion = 1\ncolour = \"red\"\n+++\nhi\n";
    let err = PromptRegistry::from_sources(
        [
            ("a.prompt", undeclared.as_str()),
            ("b.prompt", bad_syntax.as_str()),
            ("c.prompt", bad_header),
            ("d.prompt", V1),
            ("e.prompt", V1),
            ("f.prompt", "no header"),
        ],
        None,
    )
    .unwrap_err();
    let p = problems(err);
    let all = p.join("\n");
    assert!(
        all.contains("a.prompt: variables used but not declared in `inputs`: tone"),
        "{all}"
    );
    assert!(
        all.contains("a.prompt: variables declared but never used: unused"),
        "{all}"
    );
    assert!(all.contains("b.prompt:16: template syntax"), "{all}");
    assert!(all.contains("c.prompt:4: bad header"), "{all}");
    assert!(
        all.contains("e.prompt: duplicate prompt greet@1 (also in d.prompt)"),
        "{all}"
    );
    assert!(
        all.contains("f.prompt:1: a prompt file starts with a `+++` line"),
        "{all}"
    );
    assert_eq!(p.len(), 6, "{all}");
}

#[test]
fn labels_must_point_to_existing_versions() {
    let err = PromptRegistry::from_sources(
        [("v1.prompt", V1)],
        Some("[greet]\nproduction = 1\ncanary = 7\n"),
    )
    .unwrap_err();
    let p = problems(err);
    assert_eq!(p.len(), 1);
    assert!(
        p[0].starts_with("labels.toml:3: label greet@canary points to greet@7"),
        "{p:?}"
    );
}

#[test]
fn load_dir_names_files_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("greet")).unwrap();
    std::fs::write(dir.path().join("greet/v1.prompt"), V1).unwrap();
    std::fs::write(
        dir.path().join("greet/v2.prompt"),
        V1.replace("version = 1", "version = 2")
            .replace("{{ name }}", "{{ nam }}"),
    )
    .unwrap();
    std::fs::write(dir.path().join("README.md"), "not a prompt").unwrap();
    let p = problems(PromptRegistry::load_dir(dir.path()).unwrap_err());
    assert!(p.iter().all(|m| m.contains("greet/v2.prompt")), "{p:?}");

    std::fs::remove_file(dir.path().join("greet/v2.prompt")).unwrap();
    let reg = PromptRegistry::load_dir(dir.path()).unwrap();
    assert!(
        reg.get("greet@1")
            .unwrap()
            .source_name()
            .ends_with("v1.prompt")
    );

    let missing = PromptRegistry::load_dir(dir.path().join("nope")).unwrap_err();
    assert!(missing.to_string().contains("cannot read prompt folder"));
}

proptest! {
    #[test]
    fn parsing_and_rendering_never_panic(
        header in r#"[a-z_ ="\[\]{}0-9.\n+]{0,80}"#,
        body in r#"[a-z{}%# \n\-|.()"']{0,120}"#,
        name in "[a-z]{0,5}",
    ) {
        let src = format!("+++\nid = \"p\"\nversion = 1\n{header}\n+++\n{body}");
        if let Ok(reg) = src.parse::<PromptRegistry>() {
            let _ = reg.render("p", json!({"name": name, "x": [1, 2]}));
        }
        let _ = header.parse::<PromptRegistry>();
        let _ = format!("+++\n{header}").parse::<PromptRegistry>();
    }

    #[test]
    fn any_template_with_declared_vars_renders_or_errors(body in r#"[a-z{}%# \n\-.]{0,80}"#) {
        let src = format!("+++\nid = \"p\"\nversion = 1\n+++\n--- user ---\nhi {body}");
        if let Ok(reg) = src.parse::<PromptRegistry>() {
            let _ = reg.render("p@1", json!({}));
        }
    }
}
