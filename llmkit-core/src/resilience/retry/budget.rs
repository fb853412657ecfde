//! [`RetryBudget`]: caps retries as a ratio of requests over a sliding window, so an outage
//! cannot turn every request into `max_attempts` requests (a retry storm).
//!
//! Same model as Finagle's and tower's `TpsBudget`: every request deposits, every retry
//! withdraws; retries allowed in the window = `min_per_second × window + ratio × requests`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::super::lock;
use super::super::window::Window;

/// A shared retry budget. Clones share the same counters, so one budget can cover every retry
/// layer of a target (or of a whole process).
///
/// Configure it before cloning: each setter starts a fresh, empty window.
///
/// ```
/// use std::time::Duration;
/// use llmkit_core::resilience::RetryBudget;
/// let budget = RetryBudget::new().min_per_second(0).ratio(0.5).window(Duration::from_secs(10));
/// for _ in 0..4 { budget.deposit(); }
/// assert!(budget.try_withdraw());
/// assert!(budget.try_withdraw());
/// assert!(!budget.try_withdraw(), "4 requests × 0.5 = 2 retries");
/// ```
#[must_use]
#[derive(Clone)]
pub struct RetryBudget {
    window: Duration,
    min_per_second: u32,
    ratio: f32,
    state: Arc<Mutex<Window>>,
}

impl std::fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryBudget")
            .field("window", &self.window)
            .field("min_per_second", &self.min_per_second)
            .field("ratio", &self.ratio)
            .field("available", &self.available())
            .finish()
    }
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self::new()
    }
}

/// Slots per window: fine enough that the window slides smoothly, small enough to sum cheaply.
const SLOTS: usize = 10;

impl RetryBudget {
    /// Defaults (tower's): window 10 s, at least 10 retries per second, plus 20 % of requests.
    pub fn new() -> Self {
        let window = Duration::from_secs(10);
        RetryBudget {
            window,
            min_per_second: 10,
            ratio: 0.2,
            state: Arc::new(Mutex::new(Window::new(window, SLOTS))),
        }
    }

    /// How far back requests and retries count (default 10 s; at least 1 s).
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window.max(Duration::from_secs(1));
        self.state = Arc::new(Mutex::new(Window::new(self.window, SLOTS)));
        self
    }

    /// Retries always allowed per second of window, so low traffic can still retry (default 10).
    pub fn min_per_second(mut self, n: u32) -> Self {
        self.min_per_second = n;
        self.state = Arc::new(Mutex::new(Window::new(self.window, SLOTS)));
        self
    }

    /// Retries allowed per request on top of the minimum (default 0.2 = 20 %; clamped to 0..=1000).
    pub fn ratio(mut self, ratio: f32) -> Self {
        self.ratio = if ratio.is_finite() {
            ratio.clamp(0.0, 1000.0)
        } else {
            0.2
        };
        self.state = Arc::new(Mutex::new(Window::new(self.window, SLOTS)));
        self
    }

    fn allowance(&self, requests: u64) -> u64 {
        let floor = u64::from(self.min_per_second).saturating_mul(self.window.as_secs());
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let earned = (requests as f64 * f64::from(self.ratio)).floor() as u64;
        floor.saturating_add(earned)
    }

    /// Records one request (the first attempt of a call).
    pub fn deposit(&self) {
        lock(&self.state).add(Instant::now(), 1, 0);
    }

    /// Takes one retry from the budget; `false` means the budget is spent and the caller must not
    /// retry.
    pub fn try_withdraw(&self) -> bool {
        let now = Instant::now();
        let mut window = lock(&self.state);
        let (requests, retries) = window.sums(now);
        if retries < self.allowance(requests) {
            window.add(now, 0, 1);
            true
        } else {
            false
        }
    }

    /// Retries left in the current window.
    pub fn available(&self) -> u64 {
        let (requests, retries) = lock(&self.state).sums(Instant::now());
        self.allowance(requests).saturating_sub(retries)
    }
}
