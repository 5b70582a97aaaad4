//! Checking a client's timestamp against ours.

/// Whether `timestamp_s` (a client's Unix seconds) is within `max_skew_s` of
/// `now_s`. Any `i64` is safe: a timestamp so far off that the difference overflows
/// is simply outside the window (a plain `(now - ts).abs()` would panic in debug
/// builds and wrap in release).
pub fn within(now_s: i64, timestamp_s: i64, max_skew_s: u64) -> bool {
    now_s
        .checked_sub(timestamp_s)
        .is_some_and(|d| d.unsigned_abs() <= max_skew_s)
}

/// Now, in Unix seconds.
pub fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_holds_at_its_edges_and_extremes_do_not_overflow() {
        assert!(within(1_000, 700, 300));
        assert!(within(1_000, 1_300, 300));
        assert!(!within(1_000, 699, 300));
        assert!(!within(1_000, 1_301, 300));
        assert!(!within(1_000, i64::MIN, 300));
        assert!(!within(-1_000, i64::MAX, 300));
        assert!(!within(i64::MAX, i64::MIN, u64::MAX));
    }
}
