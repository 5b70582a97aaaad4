//! The one backoff of the framework: how long to wait before trying again, and the
//! one retry loop, [`retrying!`](crate::retrying).
//!
//! Queue workers (the order outbox, the message queue), transaction retries and
//! WeChat calls all wait `base · 2^n`, capped; those that many callers hit at once
//! (transactions that collided, a busy WeChat) add jitter so they do not collide
//! again.
//!
//! ```
//! use std::time::Duration;
//! use weapp::backoff::{RetrySchedule, Transient};
//!
//! #[derive(Debug)]
//! struct Busy;
//! impl std::fmt::Display for Busy {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
//!         f.write_str("busy")
//!     }
//! }
//! impl Transient for Busy {
//!     fn is_transient(&self) -> bool {
//!         true
//!     }
//! }
//!
//! /// Three attempts, a millisecond apart.
//! struct ThreeTimes;
//! impl RetrySchedule for ThreeTimes {
//!     fn wait_after(&self, failed: u32) -> Option<Duration> {
//!         (failed < 3).then_some(Duration::from_millis(1))
//!     }
//! }
//!
//! # let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
//! # runtime.block_on(async {
//! let mut calls = 0;
//! let result: Result<(), Busy> = weapp::retrying!(ThreeTimes, "an example", {
//!     calls += 1;
//!     Err(Busy)
//! });
//! assert!(result.is_err());
//! assert_eq!(calls, 3);
//! # });
//! ```

use std::time::Duration;

/// An error that may go away if the same thing is tried again (a deadlock, a busy
/// upstream, a timeout), as opposed to one that will not (bad input, a refusal).
pub trait Transient {
    /// Whether trying again may succeed.
    fn is_transient(&self) -> bool;
}

/// How long to wait before the next attempt, and when to stop.
pub trait RetrySchedule {
    /// After `failed` failed attempts (1-based): the wait before the next, or `None`
    /// to give up.
    fn wait_after(&self, failed: u32) -> Option<Duration>;
}

impl<S: RetrySchedule + ?Sized> RetrySchedule for &S {
    fn wait_after(&self, failed: u32) -> Option<Duration> {
        (**self).wait_after(failed)
    }
}

/// `retrying!(schedule, what, attempt)`: evaluates `attempt` (an expression giving a
/// `Result`, usually ending in `.await`) until it succeeds, fails with an error that
/// is not [`Transient`], or `schedule` ([`RetrySchedule`]) gives up; each transient
/// failure first waits what the schedule says. `retrying!(schedule, what, |n| …)`
/// names the number of attempts made before this one. `what` names the operation
/// in the logs, with the error (which must implement `Display`).
///
/// A macro rather than a function taking a closure: the attempt usually borrows a
/// connection mutably, which a closure returning a future cannot express while
/// keeping that future `Send`.
#[macro_export]
macro_rules! retrying {
    ($schedule:expr, $what:expr, |$tries:ident| $attempt:expr) => {{
        let mut $tries: u32 = 0;
        loop {
            let result = $attempt;
            $tries += 1;
            match result {
                Err(e) if $crate::backoff::Transient::is_transient(&e) => {
                    match $crate::backoff::RetrySchedule::wait_after(&$schedule, $tries) {
                        Some(wait) => {
                            $crate::__private::tracing::debug!(
                                what = $what, tries = $tries, error = %e, "retrying"
                            );
                            $crate::__private::tokio::time::sleep(wait).await;
                        }
                        None => {
                            $crate::__private::tracing::warn!(
                                what = $what, tries = $tries, error = %e, "failed after retries"
                            );
                            break Err(e);
                        }
                    }
                }
                result => break result,
            }
        }
    }};
    ($schedule:expr, $what:expr, $attempt:expr) => {
        $crate::retrying!($schedule, $what, |_tries| $attempt)
    };
}

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
