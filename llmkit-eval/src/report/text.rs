//! Text helpers the report formats share. A module of its own, so each format imports it
//! without importing the `report` module that re-exports the formats.

/// One-line text: newlines and tabs become spaces, and long text is clipped with `…`.
pub(crate) fn clip(s: &str, max: usize) -> String {
    let one = s.replace(['\n', '\r', '\t'], " ");
    match one.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", one.get(..i).unwrap_or_default()),
        None => one,
    }
}
