//! No import cycles between the modules of a crate (issue 16.3): every `crate::`, `super::` and
//! `self::` path in a source file is an edge to the module file it names, and the graph of those
//! edges must have no cycle — in particular no two modules import each other.
//!
//! Paths resolve to the longest module prefix that has a file (`crate::injection::guard::X` →
//! `src/injection/guard.rs`), so `pub use` re-exports count as edges too. Inline `#[cfg(test)]`
//! modules are left out: test code does not shape the architecture. Run with `--nocapture` to
//! see the edges.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`["injection", "guard"]`) of each `.rs` file below `src`, except binaries.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "bin") {
                    stack.push(path);
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap();
            let mut parts: Vec<String> = rel
                .iter()
                .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
                .collect();
            if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
                parts.pop();
            }
            out.insert(parts, path);
        }
    }
    out
}

/// The source of a file without comments, string-free enough for path matching, and without
/// inline test modules.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") && lines.peek().is_some_and(|n| n.contains("mod ")) {
            // An inline test module runs to the end of the file by convention here.
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        out.push_str(line.split(" //").next().unwrap_or(""));
        out.push('\n');
    }
    out
}

/// Identifiers of a `::`-separated path starting at `s`.
fn path_segments(s: &str) -> Vec<String> {
    let mut segs = Vec::new();
    let mut rest = s;
    loop {
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        segs.push(rest[..end].to_owned());
        match rest[end..].strip_prefix("::") {
            Some(r) => rest = r,
            None => break,
        }
    }
    segs
}

/// The edges `from → to` between module files of the crate whose sources are in `src`.
fn edges(src: &Path) -> BTreeSet<(String, String)> {
    let mods = modules(src);
    let name = |m: &[String]| {
        if m.is_empty() {
            "lib".to_owned()
        } else {
            m.join("::")
        }
    };
    let mut out = BTreeSet::new();
    for (module, path) in &mods {
        let body = code(path);
        // `super` of a file module is its parent; of a `mod.rs` too (its module is the folder).
        let parent: Vec<String> = module[..module.len().saturating_sub(1)].to_vec();
        // Relative paths into the file's own child modules (`mod junit;` … `junit::render`).
        let children: Vec<(String, Vec<String>)> = mods
            .keys()
            .filter(|m| m.len() == module.len() + 1 && m.starts_with(module))
            .filter_map(|m| m.last().map(|l| (format!("{l}::"), module.clone())))
            .collect();
        let anchors = [
            ("crate::".to_owned(), Vec::new()),
            ("super::".to_owned(), parent.clone()),
            ("self::".to_owned(), module.clone()),
        ];
        for (anchor, base) in anchors.into_iter().chain(children) {
            let child = !["crate::", "super::", "self::"].contains(&anchor.as_str());
            let mut at = 0;
            while let Some(i) = body[at..].find(anchor.as_str()) {
                let start = at + i;
                at = start + anchor.len();
                let prev = body[..start].chars().next_back();
                if prev.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue; // part of a longer path, e.g. `llmkit_core::crate`
                }
                let mut target = base.clone();
                if child {
                    target.extend(path_segments(&body[start..]));
                } else {
                    target.extend(path_segments(&body[at..]));
                }
                // Longest prefix that is a module file.
                while !target.is_empty() && !mods.contains_key(&target) {
                    target.pop();
                }
                if &target != module {
                    out.insert((name(module), name(&target)));
                }
            }
        }
    }
    out
}

/// A cycle in the graph, if there is one.
fn find_cycle(edges: &BTreeSet<(String, String)>) -> Option<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges {
        next.entry(a).or_default().push(b);
    }
    // 0 = unvisited, 1 = on the stack, 2 = done.
    fn visit<'a>(
        n: &'a str,
        next: &BTreeMap<&'a str, Vec<&'a str>>,
        state: &mut BTreeMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        state.insert(n, 1);
        stack.push(n);
        for &m in next.get(n).into_iter().flatten() {
            match state.get(m).copied().unwrap_or(0) {
                1 => {
                    let from = stack.iter().position(|&s| s == m).unwrap_or(0);
                    let mut cycle: Vec<String> =
                        stack[from..].iter().map(|s| s.to_string()).collect();
                    cycle.push(m.to_owned());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(m, next, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n, 2);
        None
    }
    let mut state = BTreeMap::new();
    for &n in next.keys() {
        if state.get(n).copied().unwrap_or(0) == 0 {
            let mut stack = Vec::new();
            if let Some(c) = visit(n, &next, &mut state, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

fn assert_acyclic(krate: &str) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(krate)
        .join("src");
    let edges = edges(&src);
    println!("{krate}: {} module import edges", edges.len());
    for (a, b) in &edges {
        println!("  {a} -> {b}");
    }
    let pairs: Vec<_> = edges
        .iter()
        .filter(|(a, b)| edges.contains(&(b.clone(), a.clone())))
        .collect();
    assert!(
        pairs.is_empty(),
        "{krate}: modules import each other: {pairs:?}"
    );
    assert_eq!(find_cycle(&edges), None, "{krate}: import cycle");
}

#[test]
fn eval_modules_have_no_import_cycle() {
    assert_acyclic("llmkit-eval");
}

#[test]
fn guard_modules_have_no_import_cycle() {
    assert_acyclic("llmkit-guard");
}

#[test]
fn rag_modules_have_no_import_cycle() {
    assert_acyclic("llmkit-rag");
}

#[test]
fn the_check_finds_a_cycle() {
    // The checker itself: two modules naming each other are a cycle, a chain is not.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::write(src.join("lib.rs"), "pub mod a;\npub mod b;\npub mod c;\n").unwrap();
    std::fs::write(src.join("a.rs"), "use crate::b::B;\npub struct A;\n").unwrap();
    std::fs::write(src.join("b.rs"), "pub struct B(crate::c::C);\n").unwrap();
    std::fs::write(src.join("c.rs"), "pub struct C;\n").unwrap();
    let chain = edges(src);
    assert!(chain.contains(&("a".into(), "b".into())));
    assert!(chain.contains(&("b".into(), "c".into())));
    assert_eq!(find_cycle(&chain), None);
    std::fs::write(src.join("c.rs"), "use super::a::A;\npub struct C(A);\n").unwrap();
    assert_eq!(
        find_cycle(&edges(src)),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}
