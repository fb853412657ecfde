//! Word-level diff of two texts (the prompt registry's longest-common-subsequence diff over
//! words, whitespace runs and punctuation), for the side-by-side views of the HTML report.

use llmkit_core::prompt::{Edit, lcs_diff};

/// Splits `text` into words (runs of letters and digits), runs of whitespace, and single
/// other characters (punctuation); joining them gives `text` back, so a diff keeps the original
/// spacing and line breaks, and `days.` vs `days` differs only in the period.
pub fn words(text: &str) -> Vec<&str> {
    #[derive(PartialEq, Clone, Copy)]
    enum Class {
        Space,
        Word,
        Other,
    }
    let class = |c: char| {
        if c.is_whitespace() {
            Class::Space
        } else if c.is_alphanumeric() {
            Class::Word
        } else {
            Class::Other
        }
    };
    let mut out = Vec::new();
    let mut start = 0;
    let mut prev: Option<Class> = None;
    for (i, c) in text.char_indices() {
        let k = class(c);
        if prev.is_some_and(|p| p != k || k == Class::Other) {
            out.extend(text.get(start..i));
            start = i;
        }
        prev = Some(k);
    }
    if start < text.len() {
        out.extend(text.get(start..));
    }
    out
}

/// The word-level diff of `old` and `new` ([`lcs_diff`] over
/// [`words`]): adjacent pieces of one kind are merged, and joining the `Same` + `Removed` pieces
/// gives `old` back (`Same` + `Added` gives `new`).
pub fn diff_words(old: &str, new: &str) -> Vec<(Edit, String)> {
    let (a, b) = (words(old), words(new));
    let mut merged: Vec<(Edit, String)> = Vec::new();
    for (change, word) in lcs_diff(&a, &b) {
        match merged.last_mut() {
            Some((last, text)) if *last == change => text.push_str(word),
            _ => merged.push((change, (*word).to_owned())),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(d: &[(Edit, String)], skip: Edit) -> String {
        d.iter()
            .filter(|(c, _)| *c != skip)
            .map(|(_, t)| t.as_str())
            .collect()
    }

    #[test]
    fn words_round_trip() {
        let text = "  two  words\nand\ttabs ";
        assert_eq!(words(text).concat(), text);
        assert_eq!(words("a b"), vec!["a", " ", "b"]);
        assert_eq!(words("days.)"), vec!["days", ".", ")"]);
        assert!(words("").is_empty());
    }

    #[test]
    fn diff_marks_changed_words_and_rebuilds_both_sides() {
        let old = "Returns within 30 days on Saturdays too.";
        let new = "Returns within 14 days.";
        let d = diff_words(old, new);
        assert_eq!(side(&d, Edit::Added), old);
        assert_eq!(side(&d, Edit::Removed), new);
        assert!(d.contains(&(Edit::Removed, "30".into())));
        assert!(d.contains(&(Edit::Added, "14".into())));
        assert_eq!(d.first(), Some(&(Edit::Same, "Returns within ".into())));
    }

    #[test]
    fn identical_and_empty_texts() {
        assert_eq!(
            diff_words("same", "same"),
            vec![(Edit::Same, "same".into())]
        );
        assert_eq!(diff_words("", "new"), vec![(Edit::Added, "new".into())]);
        assert!(diff_words("", "").is_empty());
    }

    #[test]
    fn huge_middles_fall_back_to_replace() {
        let old: String = (0..1500).map(|i| format!("a{i} ")).collect();
        let new: String = (0..1500).map(|i| format!("b{i} ")).collect();
        assert!(words(&old).len() * words(&new).len() > 4_000_000);
        let d = diff_words(&old, &new);
        assert_eq!(side(&d, Edit::Added), old);
        assert_eq!(side(&d, Edit::Removed), new);
    }
}
