//! The rolling one-minute request rate reported by `/healthz` as `qps_1m`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Requests per second over the last minute: 60 one-second buckets, each tagged
/// with the second it counts, so a stale bucket is recognised and reset. Recording
/// is two atomic operations; no lock is shared between worker threads.
pub struct RequestRate {
    buckets: [Bucket; 60],
}

#[derive(Default)]
struct Bucket {
    second: AtomicU64,
    count: AtomicU64,
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Default for RequestRate {
    fn default() -> Self {
        RequestRate {
            buckets: std::array::from_fn(|_| Bucket::default()),
        }
    }
}

impl RequestRate {
    /// Counts one request now.
    pub fn record(&self) {
        self.record_at(now_s());
    }

    fn record_at(&self, second: u64) {
        let bucket = &self.buckets[(second % 60) as usize];
        let seen = bucket.second.load(Ordering::Relaxed);
        if seen != second
            && bucket
                .second
                .compare_exchange(seen, second, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            // A new second: this bucket's old count belongs to a minute ago.
            bucket.count.store(0, Ordering::Relaxed);
        }
        bucket.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests per second averaged over the last 60 seconds.
    pub fn per_second(&self) -> f64 {
        self.per_second_at(now_s())
    }

    fn per_second_at(&self, now: u64) -> f64 {
        let total: u64 = self
            .buckets
            .iter()
            .filter(|b| now.saturating_sub(b.second.load(Ordering::Relaxed)) < 60)
            .map(|b| b.count.load(Ordering::Relaxed))
            .sum();
        total as f64 / 60.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_covers_one_rolling_minute() {
        let rate = RequestRate::default();
        for second in 1_000..1_030 {
            for _ in 0..4 {
                rate.record_at(second);
            }
        }
        assert_eq!(rate.per_second_at(1_030), 120.0 / 60.0);
        // At 1075 the window is 1016..=1075: seconds 1000 to 1015 have left it.
        assert_eq!(rate.per_second_at(1_075), 14.0 * 4.0 / 60.0);
        assert_eq!(rate.per_second_at(1_200), 0.0);
        // A bucket reused a minute later starts from zero.
        rate.record_at(1_060);
        assert_eq!(rate.per_second_at(1_060), (29.0 * 4.0 + 1.0) / 60.0);
    }
}
