//! A short-lived per-instance record of the sessions found live, so a buyer's
//! burst of requests (a flash sale) checks Redis once per `auth.session_cache_ms`
//! instead of on every request. Off by default.
//!
//! Ending a session forgets it here at once and, with Redis, on the other instances
//! as soon as they read the `auth:sessions-ended` broadcast (milliseconds). An end
//! they miss (Redis away) counts within the ttl: every entry is as old as the check
//! that found the session live, and a reader that lost the broadcast forgets
//! everything. A check that raced with an end is not kept.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::sharded_map::ShardedMap;

/// Sessions one user may have recorded; older ones make room.
const SESSIONS_PER_USER: usize = 8;

/// One user's sessions found live, and when one of theirs last ended.
#[derive(Debug, Default)]
struct UserSessions {
    /// `(sid, checked at)`.
    live: Vec<(Box<str>, Instant)>,
    ended_at: Option<Instant>,
}

/// Sessions found live by user, each trusted for `ttl` from its check.
#[derive(Debug)]
pub(crate) struct LiveSessions {
    ttl: Duration,
    users: ShardedMap<UserSessions>,
    /// When everything was last forgotten.
    cleared_at: Mutex<Option<Instant>>,
}

impl LiveSessions {
    /// A record trusting a check for `ttl` (zero: every request checks).
    pub(crate) fn new(ttl: Duration, capacity: usize) -> LiveSessions {
        LiveSessions {
            ttl,
            users: ShardedMap::new(capacity),
            cleared_at: Mutex::new(None),
        }
    }

    /// Whether `sid` of `user_id` was found live less than the ttl ago.
    pub(crate) fn is_live(&self, user_id: i64, sid: &str) -> bool {
        if self.ttl.is_zero() {
            return false;
        }
        let shard = self.users.shard(user_id);
        shard.get(&user_id).is_some_and(|user| {
            user.live
                .iter()
                .any(|(s, at)| &**s == sid && at.elapsed() < self.ttl)
        })
    }

    /// Records that `sid` of `user_id` was found live by a check started at
    /// `checked_at`, unless a session end or a clear came after that.
    pub(crate) fn record(&self, user_id: i64, sid: &str, checked_at: Instant) {
        if self.ttl.is_zero() || checked_at.elapsed() >= self.ttl {
            return;
        }
        let cleared_at = *self
            .cleared_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cleared_at.is_some_and(|at| at >= checked_at) {
            return;
        }
        let ttl = self.ttl;
        let mut shard = self.users.shard(user_id);
        self.make_room(&mut shard, user_id);
        let user = shard.entry(user_id).or_default();
        if user.ended_at.is_some_and(|at| at >= checked_at) {
            return;
        }
        user.live
            .retain(|(s, at)| &**s != sid && at.elapsed() < ttl);
        if user.live.len() >= SESSIONS_PER_USER {
            user.live.remove(0);
        }
        user.live.push((sid.into(), checked_at));
    }

    /// Forgets session `sid` of `user_id`, or every session of theirs (`None`).
    pub(crate) fn ended(&self, user_id: i64, sid: Option<&str>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut shard = self.users.shard(user_id);
        self.make_room(&mut shard, user_id);
        let user = shard.entry(user_id).or_default();
        user.ended_at = Some(Instant::now());
        match sid {
            Some(sid) => user.live.retain(|(s, _)| &**s != sid),
            None => user.live.clear(),
        }
    }

    /// Makes room in a full shard for `user_id`'s entry: entries nothing younger
    /// than the ttl is left in go first.
    fn make_room(&self, shard: &mut HashMap<i64, UserSessions>, user_id: i64) {
        let ttl = self.ttl;
        self.users.make_room(shard, user_id, |user| {
            user.live.retain(|(_, at)| at.elapsed() < ttl);
            !user.live.is_empty() || user.ended_at.is_some_and(|at| at.elapsed() < ttl)
        });
    }

    /// Forgets every session: ends may have been missed.
    pub(crate) fn clear(&self) {
        *self
            .cleared_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
        for mut shard in self.users.each_shard() {
            shard.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> LiveSessions {
        LiveSessions::new(Duration::from_secs(60), 1_000)
    }

    #[test]
    fn a_session_is_trusted_for_the_ttl_after_its_check() {
        let sessions = LiveSessions::new(Duration::from_millis(200), 100);
        assert!(!sessions.is_live(7, "a"));
        sessions.record(7, "a", Instant::now());
        assert!(sessions.is_live(7, "a"));
        assert!(!sessions.is_live(7, "b"), "another session of the user");
        assert!(!sessions.is_live(8, "a"), "the same sid under another user");
        sessions.record(9, "c", Instant::now() - Duration::from_millis(250));
        assert!(!sessions.is_live(9, "c"), "a check older than the ttl");
        let off = LiveSessions::new(Duration::ZERO, 100);
        off.record(7, "a", Instant::now());
        assert!(!off.is_live(7, "a"));
    }

    #[test]
    fn ending_one_session_or_all_forgets_them() {
        let sessions = record();
        for sid in ["a", "b", "c"] {
            sessions.record(7, sid, Instant::now());
        }
        sessions.ended(7, Some("a"));
        assert!(!sessions.is_live(7, "a"));
        assert!(sessions.is_live(7, "b"));
        sessions.ended(7, None);
        assert!(!sessions.is_live(7, "b") && !sessions.is_live(7, "c"));
        sessions.record(8, "d", Instant::now());
        sessions.clear();
        assert!(!sessions.is_live(8, "d"));
    }

    #[test]
    fn a_check_that_raced_with_an_end_is_not_kept() {
        let sessions = record();
        let checked_at = Instant::now();
        sessions.ended(7, Some("a"));
        sessions.record(7, "a", checked_at);
        assert!(
            !sessions.is_live(7, "a"),
            "the end came after the check began"
        );
        let checked_at = Instant::now();
        sessions.clear();
        sessions.record(8, "b", checked_at);
        assert!(
            !sessions.is_live(8, "b"),
            "the clear came after the check began"
        );
        sessions.record(7, "a", Instant::now());
        assert!(sessions.is_live(7, "a"), "a check after the end counts");
    }

    #[test]
    fn the_record_stays_bounded() {
        let sessions = LiveSessions::new(Duration::from_secs(60), 32);
        for user in 0..1_000 {
            sessions.record(user, "s", Instant::now());
        }
        let kept: usize = sessions.users.each_shard().map(|s| s.len()).sum();
        assert!(kept <= 32, "{kept} users kept");
        assert!(sessions.is_live(999, "s"), "the newest is kept");
        for n in 0..20 {
            sessions.record(5, &format!("s{n}"), Instant::now());
        }
        assert!(sessions.is_live(5, "s19"));
        assert!(
            !sessions.is_live(5, "s0"),
            "the oldest of a user's made room"
        );
    }
}
