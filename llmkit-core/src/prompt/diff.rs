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
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
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

    let mut out: Vec<DiffLine> = a
        .iter()
        .take(prefix)
        .map(|s| DiffLine::Same((*s).to_owned()))
        .collect();
    out.extend(lcs_middle(a_mid, b_mid));
    out.extend(
        a_rest
            .iter()
            .skip(a_rest.len() - suffix)
            .map(|s| DiffLine::Same((*s).to_owned())),
    );
    out
}

fn lcs_middle(a: &[&str], b: &[&str]) -> Vec<DiffLine> {
    let (n, m) = (a.len(), b.len());
    let removed = |s: &&str| DiffLine::Removed((*s).to_owned());
    let added = |s: &&str| DiffLine::Added((*s).to_owned());
    if n == 0 || m == 0 || (n + 1).saturating_mul(m + 1) > MAX_TABLE_CELLS {
        return a.iter().map(removed).chain(b.iter().map(added)).collect();
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
    let mut out = Vec::with_capacity(n + m);
    while i < n && j < m {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x == y => {
                out.push(DiffLine::Same((*x).to_owned()));
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) => {
                if at(&table, i + 1, j) >= at(&table, i, j + 1) {
                    out.push(removed(x));
                    i += 1;
                } else {
                    out.push(added(y));
                    j += 1;
                }
            }
            _ => break,
        }
    }
    out.extend(a.iter().skip(i).map(removed));
    out.extend(b.iter().skip(j).map(added));
    out
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
