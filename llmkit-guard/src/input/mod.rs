//! Input guards: size limits, character policy, topic lists, PII and secrets.
//!
//! Each submodule holds one guard and the detector behind it; detectors are usable alone
//! (`findings(text)`), guards plug into [`crate::GuardPipeline`].
//!
//! ```
//! use llmkit_guard::input::charset::strip_invisible;
//! assert_eq!(strip_invisible("a\u{200d}b"), "ab");
//! ```

pub mod charset;
pub mod size;
