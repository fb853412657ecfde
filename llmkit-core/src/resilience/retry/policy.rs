//! [`RetryPolicy`]: whether to try again and how long the provider asked us to wait.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;

type Predicate = Arc<dyn Fn(&Error) -> bool + Send + Sync>;

/// Which failures are retried, how often, and how Retry-After is honoured.
///
/// ```
/// use std::time::Duration;
/// use llmkit_core::{Error, ErrorKind};
/// use llmkit_core::resilience::RetryPolicy;
/// let policy = RetryPolicy::new().max_retry_after(Duration::from_secs(10));
/// let throttled = Error::new(ErrorKind::RateLimited, "slow down").with_retry_after(Duration::from_secs(60));
/// assert!(policy.should_retry(&throttled, 1));
/// assert_eq!(policy.wait(&throttled, Duration::from_millis(300)), Duration::from_secs(10));
/// assert!(!policy.should_retry(&Error::new(ErrorKind::InvalidRequest, "bad"), 1));
/// ```
#[must_use]
#[derive(Clone)]
pub struct RetryPolicy {
    max_attempts: u32,
    honour_retry_after: bool,
    max_retry_after: Duration,
    predicate: Option<Predicate>,
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("max_attempts", &self.max_attempts)
            .field("honour_retry_after", &self.honour_retry_after)
            .field("max_retry_after", &self.max_retry_after)
            .field("custom_predicate", &self.predicate.is_some())
            .finish()
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl RetryPolicy {
    /// Defaults: 3 attempts in total, retry only [`Error::is_retryable`] errors, honour
    /// Retry-After up to 30 s.
    pub fn new() -> Self {
        RetryPolicy {
            max_attempts: 3,
            honour_retry_after: true,
            max_retry_after: Duration::from_secs(30),
            predicate: None,
        }
    }

    /// Attempts in total, the first included (default 3; at least 1, which disables retries).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Longest Retry-After honoured (default 30 s). A longer request waits only this long: the
    /// next attempt may fail again, and then the retry gives up and a fallback takes over,
    /// instead of one call hanging for minutes.
    pub fn max_retry_after(mut self, cap: Duration) -> Self {
        self.max_retry_after = cap;
        self
    }

    /// Ignore Retry-After and use the backoff schedule only (default: honour it).
    pub fn ignore_retry_after(mut self) -> Self {
        self.honour_retry_after = false;
        self
    }

    /// Replaces the retryable test (default [`Error::is_retryable`], decided by kind). Keep
    /// [`ErrorKind::CircuitOpen`](crate::ErrorKind::CircuitOpen) non-retryable so fallbacks move on.
    pub fn retry_if(mut self, predicate: impl Fn(&Error) -> bool + Send + Sync + 'static) -> Self {
        self.predicate = Some(Arc::new(predicate));
        self
    }

    /// The configured attempt count.
    pub fn attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Whether a failure of attempt number `attempt` (1-based) may be retried.
    pub fn should_retry(&self, error: &Error, attempt: u32) -> bool {
        let retryable = match &self.predicate {
            Some(p) => p(error),
            None => error.is_retryable(),
        };
        retryable && attempt < self.max_attempts
    }

    /// The wait before the next attempt: the backoff wait, or the provider's Retry-After (capped)
    /// when that is longer.
    pub fn wait(&self, error: &Error, backoff: Duration) -> Duration {
        match error.retry_after() {
            Some(after) if self.honour_retry_after => backoff.max(after.min(self.max_retry_after)),
            _ => backoff,
        }
    }
}
