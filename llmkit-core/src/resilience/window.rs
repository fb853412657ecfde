//! A sliding window of counters, shared by the retry budget and the circuit breaker.
//!
//! The window is cut into fixed slots; a slot older than the window is reset when reused. Cost:
//! one `Vec` of slots per window, O(slots) to sum, no allocation per event.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    epoch: u64,
    a: u64,
    b: u64,
}

/// Two counters (`a`, `b`) summed over the last `window`.
#[derive(Debug)]
pub(crate) struct Window {
    slots: Vec<Slot>,
    slot_len: Duration,
    origin: Instant,
}

impl Window {
    /// A window of `len` cut into `slots` slots (at least one; the slot length at least 1 ms).
    pub(crate) fn new(len: Duration, slots: usize) -> Self {
        let slots = slots.max(1);
        let slot_len =
            (len / u32::try_from(slots).unwrap_or(u32::MAX)).max(Duration::from_millis(1));
        Window {
            slots: vec![Slot::default(); slots],
            slot_len,
            origin: Instant::now(),
        }
    }

    fn epoch(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.origin).as_nanos();
        // +1 so that epoch 0 marks a slot never written.
        u64::try_from(since / self.slot_len.as_nanos().max(1)).unwrap_or(u64::MAX - 1) + 1
    }

    /// Adds to the counters of the current slot.
    pub(crate) fn add(&mut self, now: Instant, a: u64, b: u64) {
        let epoch = self.epoch(now);
        let n = self.slots.len() as u64;
        let idx = usize::try_from(epoch % n).unwrap_or(0);
        if let Some(slot) = self.slots.get_mut(idx) {
            if slot.epoch != epoch {
                *slot = Slot { epoch, a: 0, b: 0 };
            }
            slot.a = slot.a.saturating_add(a);
            slot.b = slot.b.saturating_add(b);
        }
    }

    /// Sums of both counters over the window ending at `now`.
    pub(crate) fn sums(&self, now: Instant) -> (u64, u64) {
        let epoch = self.epoch(now);
        let n = self.slots.len() as u64;
        self.slots
            .iter()
            .filter(|s| s.epoch != 0 && s.epoch <= epoch && epoch - s.epoch < n)
            .fold((0, 0), |(a, b), s| (a + s.a, b + s.b))
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = Slot::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn old_slots_fall_out_of_the_window() {
        let mut w = Window::new(Duration::from_secs(10), 10);
        w.add(Instant::now(), 1, 0);
        tokio::time::advance(Duration::from_secs(5)).await;
        w.add(Instant::now(), 1, 1);
        assert_eq!(w.sums(Instant::now()), (2, 1));
        tokio::time::advance(Duration::from_millis(5500)).await;
        assert_eq!(w.sums(Instant::now()), (1, 1));
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(w.sums(Instant::now()), (0, 0));
    }
}
