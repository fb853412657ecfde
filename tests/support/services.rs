//! The one way an integration test gets a real service's address.
//!
//! Tests that need a real service are `#[ignore = "needs <service>: run scripts/test-services.sh
//! up"]`, so a plain `cargo test` lists them as ignored instead of passing them. When they do run
//! (`cargo test -- --ignored`, as `.ci/run` does after provisioning), a missing service fails the
//! test: it never skips and never passes silently.

/// The service address in `var` (exported by `scripts/test-services.sh up` into
/// `.cache/services/env`). Panics, failing the test, when it is not set.
pub fn service(var: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => v,
        _ if std::env::var_os("LLMKIT_REQUIRE_SERVICES").is_some() => panic!(
            "{var} is not set but LLMKIT_REQUIRE_SERVICES is: did scripts/test-services.sh up fail?"
        ),
        _ => panic!(
            "{var} is not set: this test needs a real service; run `scripts/test-services.sh up && source .cache/services/env` first"
        ),
    }
}
