//! Per-user entries kept by one instance, split over independent locks so
//! concurrent requests of different users rarely wait: the shape both short-lived
//! auth caches (`/api/me` answers, live sessions) share.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Independent locks.
const SHARDS: usize = 16;

/// The most entries one shard may hold for `capacity` in all.
pub(crate) fn per_shard(capacity: usize) -> usize {
    capacity.div_ceil(SHARDS)
}

/// Values by user id, in [`SHARDS`] locked maps.
#[derive(Debug)]
pub(crate) struct ByUser<V> {
    shards: Vec<Mutex<HashMap<i64, V>>>,
}

impl<V> ByUser<V> {
    pub(crate) fn new() -> ByUser<V> {
        ByUser {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// The shard holding `user_id`'s entry, locked.
    pub(crate) fn shard(&self, user_id: i64) -> MutexGuard<'_, HashMap<i64, V>> {
        Self::lock(&self.shards[user_id.rem_euclid(SHARDS as i64) as usize])
    }

    /// Every shard in turn, locked.
    pub(crate) fn each_shard(&self) -> impl Iterator<Item = MutexGuard<'_, HashMap<i64, V>>> {
        self.shards.iter().map(Self::lock)
    }

    fn lock(shard: &Mutex<HashMap<i64, V>>) -> MutexGuard<'_, HashMap<i64, V>> {
        // A poisoned shard only held plain data: keep using it.
        shard.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
