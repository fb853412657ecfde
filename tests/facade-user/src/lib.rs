//! An application crate on the `llmkit` facade with default features and no schemars
//! dependency. `scripts/check-features.sh` builds and tests it on its own (so no other workspace
//! crate's features are unified in): the README's snippet runs as a doctest of this crate, and
//! `tests/schema_through_facade.rs` derives `JsonSchema` through `llmkit::schemars`.

/// The README, compiled and run as doctests against the default features.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct Readme;
