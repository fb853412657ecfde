//! A small line diff (longest common subsequence), enough to review a prompt change.

use std::fmt;

use crate::request::PromptRef;

/// One line of a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffLine {
    /// In both versions.
    Same(String),
    /// Only in the old version.
    Removed(String),
    /// Only in the new version.
    Added(String),
}

/// What changed between two prompt versions. `Display` prints a unified-style listing with
/// `-`/`+` markers and up to [`PromptDiff::CONTEXT`] unchanged lines around each change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptDiff {
    /// The old version.
    pub from: PromptRef,
    /// The new version.
    pub to: PromptRef,
    /// Every line, in order.
    pub lines: Vec<DiffLine>,
}

impl PromptDiff {
    /// Unchanged lines shown around a change.
    pub const CONTEXT: usize = 2;

    /// Whether anything changed.
    pub fn has_changes(&self) -> bool {
        self.lines.iter().any(|l| !matches!(l, DiffLine::Same(_)))
    }

    /// Counts of `(added, removed)` lines.
    pub fn stats(&self) -> (usize, usize) {
        self.lines.iter().fold((0, 0), |(a, r), l| match l {
            DiffLine::Added(_) => (a + 1, r),
            DiffLine::Removed(_) => (a, r + 1),
            DiffLine::Same(_) => (a, r),
        })
    }
}

impl fmt::Display for PromptDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "--- {}", self.from)?;
        writeln!(f, "+++ {}", self.to)?;
        let changed: Vec<usize> = self
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| !matches!(l, DiffLine::Same(_)))
            .map(|(i, _)| i)
            .collect();
        let near_change = |i: usize| {
            changed
                .iter()
                .any(|&c| c.abs_diff(i) <= PromptDiff::CONTEXT)
        };
        let mut skipping = false;
        for (i, line) in self.lines.iter().enumerate() {
            let (mark, text) = match line {
                DiffLine::Same(t) => (' ', t),
                DiffLine::Removed(t) => ('-', t),
                DiffLine::Added(t) => ('+', t),
            };
            if mark == ' ' && !near_change(i) {
                if !skipping {
                    writeln!(f, "  ...")?;
                    skipping = true;
                }
                continue;
            }
            skipping = false;
            writeln!(f, "{mark} {text}")?;
        }
        Ok(())
    }
}

/// Above this many cells the LCS table is not built and the middle is shown as replaced.
const MAX_TABLE_CELLS: usize = 4_000_000;

/// Line diff of `old` → `new`.
///
/// ```
/// use llmkit_core::prompt::{diff_lines, DiffLine};
/// let d = diff_lines("a\nb\nc", "a\nB\nc");
/// assert_eq!(d, vec![
///     DiffLine::Same("a".into()),
///     DiffLine::Removed("b".into()),
///     DiffLine::Added("B".into()),
///     DiffLine::Same("c".into()),
/// ]);
/// ```
pub fn diff_lines(old: &str, new: &str) -> Vec<DiffLine> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    lcs_diff(&a, &b)
        .into_iter()
        .map(|(edit, line)| {
            let line = (*line).to_owned();
            match edit {
                Edit::Same => DiffLine::Same(line),
                Edit::Removed => DiffLine::Removed(line),
                Edit::Added => DiffLine::Added(line),
            }
        })
        .collect()
}

/// Which side an item of an edit script comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    /// In both sequences.
    Same,
    /// Only in the old sequence.
    Removed,
    /// Only in the new sequence.
    Added,
}

/// The longest-common-subsequence edit script from `a` to `b`, in order: `Same` and `Removed`
/// items are `a`'s, `Added` items are `b`'s, so either side can be rebuilt from it. The common
/// prefix and suffix are matched first; when the differing middle would need more than
/// 4,000,000 table cells it is reported as removed then added.
///
/// ```
/// use llmkit_core::prompt::{lcs_diff, Edit};
/// let d = lcs_diff(&["a", "b", "c"], &["a", "c", "d"]);
/// assert_eq!(d, vec![(Edit::Same, &"a"), (Edit::Removed, &"b"), (Edit::Same, &"c"), (Edit::Added, &"d")]);
/// ```
pub fn lcs_diff<'a, T: PartialEq>(a: &'a [T], b: &'a [T]) -> Vec<(Edit, &'a T)> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let a_rest = a.get(prefix..).unwrap_or_default();
    let b_rest = b.get(prefix..).unwrap_or_default();
    let suffix = a_rest
        .iter()
        .rev()
        .zip(b_rest.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let a_mid = a_rest.get(..a_rest.len() - suffix).unwrap_or_default();
    let b_mid = b_rest.get(..b_rest.len() - suffix).unwrap_or_default();

    let mut out: Vec<(Edit, &T)> = a.iter().take(prefix).map(|x| (Edit::Same, x)).collect();
    lcs_middle(a_mid, b_mid, &mut out);
    out.extend(
        a_rest
            .iter()
            .skip(a_rest.len() - suffix)
            .map(|x| (Edit::Same, x)),
    );
    out
}

fn lcs_middle<'a, T: PartialEq>(a: &'a [T], b: &'a [T], out: &mut Vec<(Edit, &'a T)>) {
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 || (n + 1).saturating_mul(m + 1) > MAX_TABLE_CELLS {
        out.extend(a.iter().map(|x| (Edit::Removed, x)));
        out.extend(b.iter().map(|y| (Edit::Added, y)));
        return;
    }
    // table[i][j] = LCS length of a[i..] and b[j..], stored flat.
    let width = m + 1;
    let mut table = vec![0u32; (n + 1) * width];
    let at = |t: &Vec<u32>, i: usize, j: usize| t.get(i * width + j).copied().unwrap_or(0);
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            let v = if a.get(i) == b.get(j) {
                at(&table, i + 1, j + 1) + 1
            } else {
                at(&table, i + 1, j).max(at(&table, i, j + 1))
            };
            if let Some(cell) = table.get_mut(i * width + j) {
                *cell = v;
            }
        }
    }
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x == y => {
                out.push((Edit::Same, x));
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) => {
                if at(&table, i + 1, j) >= at(&table, i, j + 1) {
                    out.push((Edit::Removed, x));
                    i += 1;
                } else {
                    out.push((Edit::Added, y));
                    j += 1;
                }
            }
            _ => break,
        }
    }
    out.extend(a.iter().skip(i).map(|x| (Edit::Removed, x)));
    out.extend(b.iter().skip(j).map(|y| (Edit::Added, y)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn apply(lines: &[DiffLine]) -> (Vec<String>, Vec<String>) {
        let mut old = Vec::new();
        let mut new = Vec::new();
        for l in lines {
            match l {
                DiffLine::Same(t) => {
                    old.push(t.clone());
                    new.push(t.clone());
                }
                DiffLine::Removed(t) => old.push(t.clone()),
                DiffLine::Added(t) => new.push(t.clone()),
            }
        }
        (old, new)
    }

    #[test]
    fn identical_texts_have_no_changes() {
        assert!(
            diff_lines("a\nb", "a\nb")
                .iter()
                .all(|l| matches!(l, DiffLine::Same(_)))
        );
    }

    proptest! {
        #[test]
        fn diff_reconstructs_both_sides(
            a in prop::collection::vec("[abc]{0,2}", 0..12),
            b in prop::collection::vec("[abc]{0,2}", 0..12),
        ) {
            let (old, new) = (a.join("\n"), b.join("\n"));
            let d = diff_lines(&old, &new);
            let (o, n) = apply(&d);
            prop_assert_eq!(o, old.lines().map(str::to_owned).collect::<Vec<_>>());
            prop_assert_eq!(n, new.lines().map(str::to_owned).collect::<Vec<_>>());
        }
    }
}
