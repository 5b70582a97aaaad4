//! A short-lived per-instance cache of `GET /api/me` answers, by user.
//!
//! The answer needs a database read and a field decryption; a mini program asks for
//! it on every page. The session is still checked on every request (logout and
//! erasure take effect at once). Every change of the profile fields (profile,
//! phone, erasure) forgets the entry once it is written, here at once and, with
//! Redis, on the other instances as soon as they read the `auth:me-changed`
//! broadcast (milliseconds); a change they miss (Redis away, a row changed outside
//! the app) shows within `auth.me_cache_ms`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::web::Bytes;

/// Independent locks, so concurrent requests of different users rarely wait.
const SHARDS: usize = 16;

/// Serialized answers by user id, each kept for `ttl`, at most `capacity` in all.
#[derive(Debug)]
pub(crate) struct MeCache {
    ttl: Duration,
    capacity_per_shard: usize,
    shards: Vec<Mutex<HashMap<i64, (Instant, Bytes)>>>,
}

impl MeCache {
    /// A cache keeping answers `ttl` (zero: nothing is kept).
    pub(crate) fn new(ttl: Duration, capacity: usize) -> MeCache {
        MeCache {
            ttl,
            capacity_per_shard: capacity.div_ceil(SHARDS),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, user_id: i64) -> std::sync::MutexGuard<'_, HashMap<i64, (Instant, Bytes)>> {
        let index = user_id.rem_euclid(SHARDS as i64) as usize;
        // A poisoned shard only held plain data: keep using it.
        self.shards[index]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The user's answer, if one younger than the ttl is kept.
    pub(crate) fn get(&self, user_id: i64) -> Option<Bytes> {
        if self.ttl.is_zero() {
            return None;
        }
        let shard = self.shard(user_id);
        let (at, body) = shard.get(&user_id)?;
        (at.elapsed() < self.ttl).then(|| body.clone())
    }

    /// Keeps `body` as the user's answer, read at `read_at` (before the read, so a
    /// change racing with it is never kept longer than the ttl from the read).
    pub(crate) fn put(&self, user_id: i64, read_at: Instant, body: Bytes) {
        if self.ttl.is_zero() {
            return;
        }
        let mut shard = self.shard(user_id);
        if shard.len() >= self.capacity_per_shard && !shard.contains_key(&user_id) {
            let ttl = self.ttl;
            shard.retain(|_, (at, _)| at.elapsed() < ttl);
            if shard.len() >= self.capacity_per_shard {
                // Still full of live entries: make room the cheap way.
                shard.clear();
            }
        }
        shard.insert(user_id, (read_at, body));
    }

    /// Forgets the user's answer: their profile fields changed.
    pub(crate) fn forget(&self, user_id: i64) {
        self.shard(user_id).remove(&user_id);
    }

    /// Forgets every answer: changes may have been missed.
    pub(crate) fn clear(&self) {
        for index in 0..SHARDS {
            self.shard(index as i64).clear();
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
        let kept: usize = cache.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(kept <= 32, "{kept} kept");
        assert!(cache.get(999).is_some(), "the newest is kept");
    }
}
