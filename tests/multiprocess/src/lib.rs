//! Worker side of the multi-process tests: `mp-worker` builds the stack a replica would (Redis
//! shared state, an OpenAI-compatible provider) and prints one JSON line per call, so the test
//! process can count and time what every replica saw. The tests live in `tests/multiprocess.rs`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch: the clock the test and its workers share.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Sleeps until `at` (Unix ms), so workers started one after another begin together.
pub async fn wait_until(at: u64) {
    let now = unix_ms();
    if at > now {
        tokio::time::sleep(Duration::from_millis(at - now)).await;
    }
}
