//! [`Backoff`]: how long to wait between attempts.
//!
//! The schedules come from `backon` (the `backoff` crate is unmaintained, RUSTSEC-2025-0012, and
//! pulls the unmaintained `instant`): [`Jitter::None`] and [`Jitter::Full`] use
//! `backon::ExponentialBuilder` for the capped exponential curve; [`Jitter::Decorrelated`] is a
//! `backon::BackoffBuilder` of our own ([`DecorrelatedJitter`]), because backon's built-in jitter
//! only adds `[0, d)` on top of `d` and cannot express it.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// How random the waits are. Randomness spreads clients that failed together so they do not
/// retry together (the "thundering herd").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Jitter {
    /// `min(max, base × factor^n)` exactly: predictable, but synchronised clients stay in step.
    None,
    /// "Full jitter": uniform in `[0, min(max, base × factor^n)]`.
    Full,
    /// "Decorrelated jitter" (AWS architecture blog): uniform in `[base, previous × (factor + 1)]`,
    /// capped at `max`; ×3 at the default factor 2, as in the original recipe. Spreads best while
    /// keeping a floor of `base`. The default.
    #[default]
    Decorrelated,
}

/// The wait schedule between attempts.
///
/// ```
/// use std::time::Duration;
/// use llmkit_core::resilience::{Backoff, Jitter};
/// let waits: Vec<Duration> = Backoff::exponential()
///     .base(Duration::from_millis(100))
///     .max(Duration::from_secs(1))
///     .jitter(Jitter::None)
///     .schedule()
///     .take(5)
///     .collect();
/// assert_eq!(waits, [100, 200, 400, 800, 1000].map(Duration::from_millis));
/// ```
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    factor: f32,
    jitter: Jitter,
    seed: Option<u64>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::exponential()
    }
}

impl Backoff {
    /// Exponential backoff. Defaults: base 500 ms, max 20 s, factor 2, [`Jitter::Decorrelated`],
    /// a random seed.
    pub fn exponential() -> Self {
        Backoff {
            base: Duration::from_millis(500),
            max: Duration::from_secs(20),
            factor: 2.0,
            jitter: Jitter::Decorrelated,
            seed: None,
        }
    }

    /// First wait (default 500 ms; at least 1 ms).
    pub fn base(mut self, base: Duration) -> Self {
        self.base = base.max(Duration::from_millis(1));
        self
    }

    /// Longest single wait (default 20 s; never below `base`).
    pub fn max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// Growth factor per attempt (default 2; values below 1 are treated as 1).
    pub fn factor(mut self, factor: f32) -> Self {
        self.factor = if factor.is_finite() {
            factor.max(1.0)
        } else {
            2.0
        };
        self
    }

    /// Jitter strategy (default [`Jitter::Decorrelated`]).
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// Fixes the random seed, for reproducible schedules in tests (default: random per schedule).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The configured first wait.
    pub fn base_delay(&self) -> Duration {
        self.base
    }

    /// The configured longest wait.
    pub fn max_delay(&self) -> Duration {
        self.max.max(self.base)
    }

    /// The configured growth factor.
    pub fn growth(&self) -> f32 {
        self.factor
    }

    fn rng(&self) -> fastrand::Rng {
        self.seed
            .map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed)
    }

    /// A fresh, endless schedule of waits (one per retry); the retry policy decides when to stop.
    pub fn schedule(&self) -> Schedule {
        let exponential = || {
            ExponentialBuilder::new()
                .with_min_delay(self.base)
                .with_max_delay(self.max_delay())
                .with_factor(self.factor)
                .without_max_times()
                .build()
        };
        Schedule(match self.jitter {
            Jitter::None => Kind::Exact(exponential()),
            Jitter::Full => Kind::Full(exponential(), self.rng()),
            Jitter::Decorrelated => Kind::Decorrelated(
                DecorrelatedJitter {
                    base: self.base,
                    max: self.max_delay(),
                    factor: self.factor,
                    seed: self.seed,
                }
                .build(),
            ),
        })
    }
}

/// An endless iterator of waits built by [`Backoff::schedule`]. It is a `backon::Backoff`, so it
/// also plugs into backon's own `Retryable` API.
#[derive(Debug)]
pub struct Schedule(Kind);

#[derive(Debug)]
enum Kind {
    Exact(backon::ExponentialBackoff),
    Full(backon::ExponentialBackoff, fastrand::Rng),
    Decorrelated(DecorrelatedJitterBackoff),
}

impl Iterator for Schedule {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        match &mut self.0 {
            Kind::Exact(e) => e.next().map(micros),
            Kind::Full(e, rng) => e.next().map(|cap| micros(cap).mul_f64(rng.f64())),
            Kind::Decorrelated(d) => d.next(),
        }
    }
}

/// backon computes in `f32` seconds; rounding to whole microseconds removes the noise
/// (200 ms, not 200.000003 ms) so schedules print and compare cleanly.
fn micros(d: Duration) -> Duration {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let us = (d.as_secs_f64() * 1e6).round() as u64;
    Duration::from_micros(us)
}

/// A `backon::BackoffBuilder` for decorrelated jitter:
/// `wait = min(max, uniform(base, previous × (factor + 1)))`, starting from `previous = base`.
#[derive(Debug, Clone, Copy)]
pub struct DecorrelatedJitter {
    /// Floor of every wait, and the first "previous" wait.
    pub base: Duration,
    /// Cap of every wait.
    pub max: Duration,
    /// Growth factor; the upper bound is `previous × (factor + 1)`.
    pub factor: f32,
    /// Random seed; `None` seeds from the OS.
    pub seed: Option<u64>,
}

impl BackoffBuilder for DecorrelatedJitter {
    type Backoff = DecorrelatedJitterBackoff;

    fn build(self) -> Self::Backoff {
        DecorrelatedJitterBackoff {
            rng: self
                .seed
                .map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed),
            previous: self.base,
            config: self,
        }
    }
}

/// The endless iterator built by [`DecorrelatedJitter`].
#[derive(Debug)]
pub struct DecorrelatedJitterBackoff {
    config: DecorrelatedJitter,
    previous: Duration,
    rng: fastrand::Rng,
}

impl Iterator for DecorrelatedJitterBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let base = self.config.base;
        let max = self.config.max.max(base);
        let upper = self
            .previous
            .mul_f64(f64::from(self.config.factor) + 1.0)
            .clamp(base, max);
        let wait = base + (upper - base).mul_f64(self.rng.f64());
        self.previous = wait;
        Some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exact_schedule_doubles_then_caps() {
        let waits: Vec<_> = Backoff::exponential()
            .base(Duration::from_millis(250))
            .max(Duration::from_secs(2))
            .jitter(Jitter::None)
            .schedule()
            .take(6)
            .collect();
        assert_eq!(
            waits,
            [250, 500, 1000, 2000, 2000, 2000].map(Duration::from_millis)
        );
    }

    #[test]
    fn seeded_schedules_repeat() {
        let b = Backoff::exponential().seed(7);
        let a: Vec<_> = b.schedule().take(10).collect();
        let c: Vec<_> = b.schedule().take(10).collect();
        assert_eq!(a, c);
    }

    proptest! {
        #[test]
        fn full_jitter_stays_under_the_exponential_cap(seed: u64, base_ms in 1u64..2_000, max_ms in 1u64..60_000) {
            let backoff = Backoff::exponential()
                .base(Duration::from_millis(base_ms))
                .max(Duration::from_millis(max_ms))
                .jitter(Jitter::Full)
                .seed(seed);
            let caps: Vec<_> = backoff.jitter(Jitter::None).schedule().take(12).collect();
            for (wait, cap) in backoff.schedule().zip(caps) {
                prop_assert!(wait <= cap, "{wait:?} > {cap:?}");
            }
        }

        #[test]
        fn decorrelated_jitter_stays_within_its_bounds(seed: u64, base_ms in 1u64..2_000, max_ms in 1u64..60_000) {
            let base = Duration::from_millis(base_ms);
            let max = Duration::from_millis(max_ms).max(base);
            let mut previous = base;
            for wait in Backoff::exponential().base(base).max(max).seed(seed).schedule().take(12) {
                prop_assert!(wait >= base, "{wait:?} < base {base:?}");
                prop_assert!(wait <= max, "{wait:?} > max {max:?}");
                prop_assert!(wait <= previous * 3 + Duration::from_micros(1), "{wait:?} > 3 × {previous:?}");
                previous = wait;
            }
        }
    }

    #[test]
    fn decorrelated_jitter_actually_varies() {
        let waits: Vec<_> = Backoff::exponential().seed(1).schedule().take(20).collect();
        let distinct: std::collections::BTreeSet<_> = waits.iter().collect();
        assert!(distinct.len() > 15, "{waits:?}");
    }
}
