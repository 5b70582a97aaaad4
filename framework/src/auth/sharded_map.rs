//! Entries kept by one instance, split over independent locks so concurrent
//! requests rarely wait, and bounded: the shape the short-lived auth caches
//! (`/api/me` answers, live sessions, verified tokens) share.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Independent locks.
const SHARDS: usize = 16;

/// Values by an `i64` key (a user id, a token's hash), in [`SHARDS`] locked maps
/// holding about `capacity` entries in all.
#[derive(Debug)]
pub(crate) struct ShardedMap<V> {
    shards: Vec<Mutex<HashMap<i64, V>>>,
    per_shard: usize,
}

impl<V> ShardedMap<V> {
    /// A map of at most `capacity` entries (rounded up to a multiple of [`SHARDS`]).
    pub(crate) fn new(capacity: usize) -> ShardedMap<V> {
        ShardedMap {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: capacity.div_ceil(SHARDS),
        }
    }

    /// The shard holding `key`'s entry, locked.
    pub(crate) fn shard(&self, key: i64) -> MutexGuard<'_, HashMap<i64, V>> {
        Self::lock(&self.shards[key.rem_euclid(SHARDS as i64) as usize])
    }

    /// Every shard in turn, locked.
    pub(crate) fn each_shard(&self) -> impl Iterator<Item = MutexGuard<'_, HashMap<i64, V>>> {
        self.shards.iter().map(Self::lock)
    }

    /// Makes room in `shard`, the one holding `key`, for `key`'s entry: when it is
    /// full, the entries `keep` refuses go first (`keep` may trim an entry), then
    /// everything if that was not enough — a miss only costs the work the entry saved.
    pub(crate) fn make_room(
        &self,
        shard: &mut HashMap<i64, V>,
        key: i64,
        mut keep: impl FnMut(&mut V) -> bool,
    ) {
        if shard.len() < self.per_shard || shard.contains_key(&key) {
            return;
        }
        shard.retain(|_, value| keep(value));
        if shard.len() >= self.per_shard {
            shard.clear();
        }
    }

    fn lock(shard: &Mutex<HashMap<i64, V>>) -> MutexGuard<'_, HashMap<i64, V>> {
        // A poisoned shard only held plain data: keep using it.
        shard.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
