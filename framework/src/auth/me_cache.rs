//! A short-lived per-instance cache of `GET /api/me` answers, by user.
//!
//! The answer needs a database read and a field decryption; a mini program asks for
//! it on every page. The session is still checked on every request (logout and
//! erasure take effect at once). Every change of the profile fields (profile,
//! phone, erasure) forgets the entry once it is written, here at once and, with
//! Redis, on the other instances as soon as they read the `auth:me-changed`
//! broadcast (milliseconds); a change they miss (Redis away, a row changed outside
//! the app) shows within `auth.me_cache_ms`.

use std::time::{Duration, Instant};

use actix_web::web::Bytes;

use super::sharded_map::ShardedMap;

/// Serialized answers by user id, each kept for `ttl`, at most `capacity` in all.
#[derive(Debug)]
pub(crate) struct MeCache {
    ttl: Duration,
    answers: ShardedMap<(Instant, Bytes)>,
}

impl MeCache {
    /// A cache keeping answers `ttl` (zero: nothing is kept).
    pub(crate) fn new(ttl: Duration, capacity: usize) -> MeCache {
        MeCache {
            ttl,
            answers: ShardedMap::new(capacity),
        }
    }

    /// The user's answer, if one younger than the ttl is kept.
    pub(crate) fn get(&self, user_id: i64) -> Option<Bytes> {
        if self.ttl.is_zero() {
            return None;
        }
        let shard = self.answers.shard(user_id);
        let (at, body) = shard.get(&user_id)?;
        (at.elapsed() < self.ttl).then(|| body.clone())
    }

    /// Keeps `body` as the user's answer, read at `read_at` (before the read, so a
    /// change racing with it is never kept longer than the ttl from the read).
    pub(crate) fn put(&self, user_id: i64, read_at: Instant, body: Bytes) {
        if self.ttl.is_zero() {
            return;
        }
        let mut shard = self.answers.shard(user_id);
        let ttl = self.ttl;
        self.answers
            .make_room(&mut shard, user_id, |(at, _)| at.elapsed() < ttl);
        shard.insert(user_id, (read_at, body));
    }

    /// Forgets the user's answer: their profile fields changed.
    pub(crate) fn forget(&self, user_id: i64) {
        self.answers.shard(user_id).remove(&user_id);
    }

    /// Forgets every answer: changes may have been missed.
    pub(crate) fn clear(&self) {
        for mut shard in self.answers.each_shard() {
            shard.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_kept_for_the_ttl_and_forgotten_on_change() {
        let cache = MeCache::new(Duration::from_millis(200), 100);
        assert!(cache.get(7).is_none());
        cache.put(7, Instant::now(), Bytes::from_static(b"{\"id\":7}"));
        assert_eq!(cache.get(7).as_deref(), Some(&b"{\"id\":7}"[..]));
        cache.forget(7);
        assert!(cache.get(7).is_none());
        for id in [7, 8, -3] {
            cache.put(id, Instant::now(), Bytes::from_static(b"x"));
        }
        cache.clear();
        assert!([7, 8, -3].iter().all(|id| cache.get(*id).is_none()));
        cache.put(
            7,
            Instant::now() - Duration::from_millis(250),
            Bytes::from_static(b"old"),
        );
        assert!(cache.get(7).is_none(), "older than the ttl");
    }

    #[test]
    fn a_zero_ttl_keeps_nothing_and_the_size_stays_bounded() {
        let off = MeCache::new(Duration::ZERO, 100);
        off.put(1, Instant::now(), Bytes::from_static(b"x"));
        assert!(off.get(1).is_none());
        let cache = MeCache::new(Duration::from_secs(60), 32);
        for id in 0..1_000 {
            cache.put(id, Instant::now(), Bytes::from_static(b"x"));
        }
        let kept: usize = cache.answers.each_shard().map(|s| s.len()).sum();
        assert!(kept <= 32, "{kept} kept");
        assert!(cache.get(999).is_some(), "the newest is kept");
    }
}
