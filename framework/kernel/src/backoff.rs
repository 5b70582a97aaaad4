//! The one backoff of the framework: how long to wait before trying again.
//!
//! Queue workers (the order outbox, the message queue), transaction retries and
//! WeChat calls all wait `base · 2^n`, capped; those that many callers hit at once
//! (transactions that collided, a busy WeChat) add jitter so they do not collide
//! again.

use std::time::Duration;

/// `base_ms · 2^exponent`, at most `max_ms` (the exponent is capped at 30, so the
/// product cannot overflow into nonsense).
pub fn exponential_ms(base_ms: u64, max_ms: u64, exponent: u32) -> u64 {
    base_ms.saturating_mul(1u64 << exponent.min(30)).min(max_ms)
}

/// A random share of `ms`, between half and all of it.
pub fn jittered(ms: u64) -> Duration {
    let mut byte = [0u8; 1];
    // Without randomness the wait is still bounded: its upper end.
    let share = getrandom::fill(&mut byte).map_or(255, |()| u64::from(byte[0]));
    Duration::from_millis(ms / 2 + ms.saturating_mul(share) / 510)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_up_to_its_cap_and_jitter_stays_within_half_and_all() {
        assert_eq!(exponential_ms(500, 10_000, 0), 500);
        assert_eq!(exponential_ms(500, 10_000, 2), 2_000);
        assert_eq!(exponential_ms(500, 10_000, 40), 10_000);
        assert_eq!(exponential_ms(u64::MAX, u64::MAX, 3), u64::MAX);
        for _ in 0..200 {
            let wait = jittered(1_000).as_millis();
            assert!((500..=1_000).contains(&wait), "{wait}");
        }
    }
}
