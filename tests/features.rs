//! The feature convention of the facade (issue 19 item 5), checked against the manifest and the
//! READMEs so they cannot drift apart: every example declares `required-features`; an example
//! needing a feature outside `default` says so in its examples/README.md command; `full` holds
//! every feature; the README's feature table says which features are default.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

fn manifest() -> toml::Table {
    read("Cargo.toml").parse().unwrap()
}

fn features(m: &toml::Table) -> BTreeMap<String, BTreeSet<String>> {
    m["features"]
        .as_table()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let deps = v
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap().to_owned())
                .collect();
            (k.clone(), deps)
        })
        .collect()
}

/// `name` and the facade features it enables, transitively (only facade features, not
/// `dep:` or `crate/feature` entries).
fn closure(all: &BTreeMap<String, BTreeSet<String>>, names: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo: Vec<String> = names.iter().cloned().collect();
    while let Some(f) = todo.pop() {
        if all.contains_key(&f) && out.insert(f.clone()) {
            todo.extend(all[&f].iter().cloned());
        }
    }
    out
}

/// Example name → required features, from the `[[example]]` tables.
fn examples(m: &toml::Table) -> BTreeMap<String, BTreeSet<String>> {
    m["example"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let name = e["name"].as_str().unwrap().to_owned();
            let required = e
                .get("required-features")
                .unwrap_or_else(|| panic!("[[example]] {name} declares no required-features"))
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap().to_owned())
                .collect();
            (name, required)
        })
        .collect()
}

#[test]
fn every_example_file_declares_required_features() {
    let declared = examples(&manifest());
    let files: BTreeSet<String> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".rs").map(str::to_owned))
        .collect();
    let missing: Vec<&String> = files
        .iter()
        .filter(|f| !declared.contains_key(*f))
        .collect();
    assert!(
        missing.is_empty(),
        "add [[example]] with required-features for {missing:?}"
    );
    let stale: Vec<&String> = declared.keys().filter(|d| !files.contains(*d)).collect();
    assert!(stale.is_empty(), "[[example]] without a file: {stale:?}");
}

#[test]
fn example_commands_name_the_features_default_lacks() {
    let m = manifest();
    let all = features(&m);
    let default = closure(&all, &all["default"]);
    let readme = read("examples/README.md");
    for (name, required) in examples(&m) {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| {name} |")))
            .unwrap_or_else(|| panic!("examples/README.md has no row for {name}"));
        let command = row
            .split('`')
            .find(|c| c.starts_with(&format!("cargo run --example {name}")))
            .unwrap_or_else(|| panic!("no `cargo run --example {name}` command in: {row}"));
        let given: BTreeSet<String> = command
            .split_once("--features ")
            .map(|(_, rest)| {
                rest.split([' ', ','])
                    .take_while(|w| !w.starts_with('-'))
                    .filter(|w| !w.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let enabled = closure(&all, &default.union(&given).cloned().collect());
        let lacking: Vec<&String> = required.iter().filter(|f| !enabled.contains(*f)).collect();
        assert!(
            lacking.is_empty(),
            "`{command}` fails: example {name} requires {lacking:?}, add `--features ...`"
        );
    }
    // The README's first command, verbatim.
    assert!(read("README.md").contains("cargo run --example quickstart "));
    let quickstart = &examples(&m)["quickstart"];
    assert!(
        quickstart.is_subset(&default),
        "quickstart must run with the default features"
    );
}

#[test]
fn full_enables_every_feature_and_the_readme_table_matches() {
    let m = manifest();
    let all = features(&m);
    let full = closure(&all, &all["full"]);
    let default = closure(&all, &all["default"]);
    let missing: Vec<&String> = all
        .keys()
        .filter(|f| *f != "default" && *f != "full" && !full.contains(*f))
        .collect();
    assert!(missing.is_empty(), "append {missing:?} to `full`");
    let readme = read("README.md");
    for f in all.keys().filter(|f| *f != "default") {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{f}` |")))
            .unwrap_or_else(|| panic!("README.md's feature table has no row for `{f}`"));
        let says_default = row.split('|').nth(2).unwrap().trim() == "yes";
        assert_eq!(
            says_default,
            default.contains(f),
            "README.md says `{f}` is {}default: {row}",
            if says_default { "" } else { "not " }
        );
    }
}

/// The README's `[dependencies]` block is what tests/facade-user (the crate that runs the
/// README's snippet against the default features) depends on, `path` aside.
#[test]
fn readme_dependency_lines_are_the_ones_the_facade_user_crate_builds_with() {
    let readme = read("README.md");
    let block = readme
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README.md has a ```toml block");
    let readme_deps: toml::Table = block.parse::<toml::Table>().unwrap()["dependencies"]
        .as_table()
        .unwrap()
        .clone();
    let user: toml::Table = read("tests/facade-user/Cargo.toml").parse().unwrap();
    let user_deps = user["dependencies"].as_table().unwrap();
    let names = |t: &toml::Table| t.keys().cloned().collect::<BTreeSet<_>>();
    assert_eq!(names(&readme_deps), names(user_deps));
    assert!(
        !readme_deps.contains_key("schemars"),
        "llmkit::schemars is the point"
    );
    let version = manifest()["workspace"]["package"]["version"]
        .as_str()
        .unwrap()
        .to_owned();
    let wanted = readme_deps["llmkit"].as_str().expect("llmkit = \"x.y\"");
    assert!(
        version.starts_with(&format!("{wanted}.")),
        "{wanted} vs {version}"
    );
    assert_eq!(user_deps["llmkit"]["path"].as_str(), Some("../.."));
    assert!(user_deps["llmkit"].get("default-features").is_none());
    for (name, spec) in user_deps.iter().filter(|(n, _)| *n != "llmkit") {
        assert_eq!(&readme_deps[name], spec, "{name}");
    }
}
