//! Input guards: size limits, character policy, topic lists, PII and secrets.
//!
//! Each submodule holds one guard and the detector behind it; detectors are usable alone
//! (`detect(text)` / `findings(text)`), guards plug into [`crate::GuardPipeline`]. The same
//! PII and secret guards serve as output leakage guards.
//!
//! ```
//! use llmkit_guard::input::charset::strip_invisible;
//! assert_eq!(strip_invisible("a\u{200d}b"), "ab");
//! ```

pub mod charset;
pub mod checksum;
pub mod pii;
pub mod secrets;
pub mod size;
pub mod topic;
