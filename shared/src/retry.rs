//! Retrying what lost a race: capped exponential back-off with full jitter, within a
//! time budget that leaves room in API Gateway's 30 s for the answer.
//!
//! Full jitter (a uniform delay between zero and the capped exponential) spreads the
//! retries of many clients that lost the same race, so they do not collide again in step.

use std::time::{Duration, Instant};

use rand::Rng;

/// The first ceiling; it doubles after every failed attempt.
const BASE: Duration = Duration::from_millis(20);
/// No single wait is longer than this.
const CAP: Duration = Duration::from_secs(1);
/// Retries stop once this much time has gone since the first attempt.
const BUDGET: Duration = Duration::from_secs(8);
/// However quick the failures, no request makes more attempts than this.
const MAX_ATTEMPTS: u32 = 64;

/// Paces the attempts of one operation: `while backoff.next_attempt().await { ... }`,
/// where every pass that does not return or break counts as a failed attempt.
#[derive(Debug)]
pub struct Backoff {
    started: Instant,
    attempts: u32,
    budget: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::with_budget(BUDGET)
    }
}

impl Backoff {
    pub fn with_budget(budget: Duration) -> Self {
        Self {
            started: Instant::now(),
            attempts: 0,
            budget,
        }
    }

    /// The longest wait after `failures` failed attempts: `BASE * 2^(failures - 1)`, at most `CAP`.
    pub fn ceiling(failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(16);
        BASE.saturating_mul(1 << doublings).min(CAP)
    }

    /// How many attempts have failed so far (every begun attempt but the current one).
    pub fn failures(&self) -> u32 {
        self.attempts.saturating_sub(1)
    }

    /// True at once for the first attempt; for each next one, waits a jittered back-off
    /// first. False when the budget or the attempt limit is spent: give up without waiting.
    pub async fn next_attempt(&mut self) -> bool {
        let jitter = rand::rng().random_range(0.0..=1.0);
        match self.next_delay(jitter, self.started.elapsed()) {
            Some(Duration::ZERO) => true,
            Some(delay) => {
                tokio::time::sleep(delay).await;
                true
            }
            None => false,
        }
    }

    /// The wait before the next attempt for a jitter fraction in `0..=1`, `elapsed`
    /// since the first, or None.
    fn next_delay(&mut self, jitter: f64, elapsed: Duration) -> Option<Duration> {
        if self.attempts == 0 {
            self.attempts = 1;
            return Some(Duration::ZERO);
        }
        let delay = Self::ceiling(self.attempts).mul_f64(jitter.clamp(0.0, 1.0));
        let fits = elapsed + delay < self.budget;
        if self.attempts >= MAX_ATTEMPTS || !fits {
            return None;
        }
        self.attempts += 1;
        Some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_doubles_from_the_base_up_to_the_cap() {
        assert_eq!(Backoff::ceiling(1), BASE);
        assert_eq!(Backoff::ceiling(2), BASE * 2);
        assert_eq!(Backoff::ceiling(3), BASE * 4);
        assert_eq!(Backoff::ceiling(6), BASE * 32);
        assert_eq!(Backoff::ceiling(7), CAP);
        assert_eq!(Backoff::ceiling(u32::MAX), CAP);
    }

    #[test]
    fn the_first_attempt_is_free_then_the_delay_is_the_ceiling_scaled_by_the_jitter() {
        let mut b = Backoff::default();
        let now = Duration::ZERO;
        assert_eq!(b.next_delay(1.0, now), Some(Duration::ZERO));
        assert_eq!(b.failures(), 0);
        assert_eq!(b.next_delay(1.0, now), Some(BASE));
        assert_eq!(b.next_delay(0.5, now), Some(BASE));
        assert_eq!(b.next_delay(0.0, now), Some(Duration::ZERO));
        assert_eq!(b.next_delay(1.0, now), Some(BASE * 8));
        assert_eq!(b.failures(), 4);
    }

    #[test]
    fn a_spent_budget_stops_the_retries() {
        let start = Duration::ZERO;
        let mut b = Backoff::with_budget(Duration::ZERO);
        assert_eq!(b.next_delay(0.0, start), Some(Duration::ZERO));
        assert_eq!(b.next_delay(0.0, start), None);
        let mut b = Backoff::with_budget(Duration::from_millis(30));
        assert_eq!(b.next_delay(1.0, start), Some(Duration::ZERO));
        // 20 ms fits in 30 ms; the next ceiling (40 ms) does not.
        assert_eq!(b.next_delay(1.0, start), Some(BASE));
        assert_eq!(b.next_delay(1.0, start), None);
        assert_eq!(b.failures(), 1);
        // A wait that would end exactly at the budget is not taken.
        let mut b = Backoff::with_budget(BASE * 3);
        assert_eq!(b.next_delay(1.0, start), Some(Duration::ZERO));
        assert_eq!(b.next_delay(1.0, BASE * 2), None);
        let mut b = Backoff::with_budget(BASE * 3);
        assert_eq!(b.next_delay(1.0, start), Some(Duration::ZERO));
        assert_eq!(b.next_delay(1.0, BASE), Some(BASE));
    }

    #[test]
    fn the_attempt_limit_stops_quick_failures() {
        let mut b = Backoff::with_budget(Duration::from_secs(3600));
        let allowed = (0..200)
            .take_while(|_| b.next_delay(0.0, Duration::ZERO).is_some())
            .count();
        assert_eq!(allowed as u32, MAX_ATTEMPTS);
    }

    #[tokio::test]
    async fn next_attempt_gives_up_once_the_budget_is_spent() {
        let mut b = Backoff::with_budget(Duration::ZERO);
        assert!(b.next_attempt().await);
        assert!(!b.next_attempt().await);
        let mut b = Backoff::default();
        assert!(b.next_attempt().await);
        assert!(b.next_attempt().await);
        assert_eq!(b.failures(), 1);
    }
}
