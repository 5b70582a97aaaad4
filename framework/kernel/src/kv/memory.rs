//! In-process [`KvStore`]: correct for one instance, lost on restart.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{KvError, KvStore};

struct Entry {
    value: Vec<u8>,
    expires_at: Option<Instant>,
}

impl Entry {
    /// `value`, living `ttl` from `now` (for ever without one).
    fn new(value: Vec<u8>, ttl: Option<Duration>, now: Instant) -> Entry {
        Entry {
            value,
            expires_at: ttl.map(|t| now + t),
        }
    }

    fn live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }
}

/// Keys and values in a mutex-guarded map. Expired keys are dropped when touched and
/// by a sweep every few thousand writes, so memory stays bounded by live keys.
#[derive(Default)]
pub struct MemoryStore {
    map: Mutex<HashMap<String, Entry>>,
    writes: std::sync::atomic::AtomicU64,
}

const SWEEP_EVERY: u64 = 4096;

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with_map<R>(
        &self,
        write: bool,
        f: impl FnOnce(&mut HashMap<String, Entry>, Instant) -> R,
    ) -> R {
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        if write
            && self
                .writes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                .is_multiple_of(SWEEP_EVERY)
        {
            map.retain(|_, e| e.live(now));
        }
        f(&mut map, now)
    }
}

fn live_entry<'a>(
    map: &'a mut HashMap<String, Entry>,
    key: &str,
    now: Instant,
) -> Option<&'a mut Entry> {
    if map.get(key).is_some_and(|e| !e.live(now)) {
        map.remove(key);
    }
    map.get_mut(key)
}

#[async_trait::async_trait]
impl KvStore for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.with_map(false, |map, now| {
            live_entry(map, key, now).map(|e| e.value.clone())
        }))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), KvError> {
        self.with_map(true, |map, now| {
            map.insert(key.to_owned(), Entry::new(value.to_vec(), ttl, now));
        });
        Ok(())
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, KvError> {
        Ok(self.with_map(true, |map, now| {
            if live_entry(map, key, now).is_some() {
                return false;
            }
            map.insert(key.to_owned(), Entry::new(value.to_vec(), ttl, now));
            true
        }))
    }

    async fn delete(&self, key: &str) -> Result<bool, KvError> {
        Ok(self.with_map(true, |map, now| {
            map.remove(key).is_some_and(|e| e.live(now))
        }))
    }

    async fn delete_if_equals(&self, key: &str, expected: &[u8]) -> Result<bool, KvError> {
        Ok(self.with_map(true, |map, now| {
            if live_entry(map, key, now).is_some_and(|e| e.value == expected) {
                map.remove(key);
                true
            } else {
                false
            }
        }))
    }

    async fn replace_if_equals(
        &self,
        key: &str,
        expected: &[u8],
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, KvError> {
        Ok(self.with_map(true, |map, now| {
            if live_entry(map, key, now).is_none_or(|e| e.value != expected) {
                return false;
            }
            map.insert(key.to_owned(), Entry::new(value.to_vec(), ttl, now));
            true
        }))
    }

    // A list is kept as the JSON of its items.
    async fn push_bounded(
        &self,
        key: &str,
        item: &[u8],
        max_len: usize,
        ttl: Option<Duration>,
    ) -> Result<(), KvError> {
        self.with_map(true, |map, now| {
            let mut items: Vec<Vec<u8>> = live_entry(map, key, now)
                .and_then(|e| serde_json::from_slice(&e.value).ok())
                .unwrap_or_default();
            items.push(item.to_vec());
            let excess = items.len().saturating_sub(max_len);
            items.drain(..excess);
            map.insert(
                key.to_owned(),
                Entry::new(serde_json::to_vec(&items).unwrap_or_default(), ttl, now),
            );
        });
        Ok(())
    }

    async fn take_list(&self, key: &str) -> Result<Vec<Vec<u8>>, KvError> {
        Ok(self.with_map(true, |map, now| {
            let items = live_entry(map, key, now)
                .and_then(|e| serde_json::from_slice(&e.value).ok())
                .unwrap_or_default();
            map.remove(key);
            items
        }))
    }

    async fn increment(&self, key: &str, by: i64, ttl: Option<Duration>) -> Result<i64, KvError> {
        self.with_map(true, |map, now| {
            let entry = match live_entry(map, key, now) {
                Some(e) => e,
                None => map.entry(key.to_owned()).or_insert(Entry {
                    value: b"0".to_vec(),
                    expires_at: None,
                }),
            };
            let current: i64 = std::str::from_utf8(&entry.value)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| KvError(format!("value of {key} is not an integer")))?;
            let next = current
                .checked_add(by)
                .ok_or_else(|| KvError(format!("increment of {key} overflows")))?;
            entry.value = next.to_string().into_bytes();
            if entry.expires_at.is_none() {
                entry.expires_at = ttl.map(|t| now + t);
            }
            Ok(next)
        })
    }

    async fn throttle(
        &self,
        key: &str,
        interval: Duration,
        burst: u32,
    ) -> Result<Option<Duration>, KvError> {
        // The theoretical arrival time (TAT) is kept as nanoseconds after a process epoch.
        static EPOCH: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);
        Ok(self.with_map(true, |map, now| {
            let now_ns = now.duration_since(*EPOCH).as_nanos() as u64;
            let interval_ns = interval.as_nanos() as u64;
            let tat = live_entry(map, key, now)
                .and_then(|e| std::str::from_utf8(&e.value).ok()?.parse::<u64>().ok())
                .unwrap_or(now_ns)
                .max(now_ns);
            let new_tat = tat + interval_ns;
            let allow_at = new_tat.saturating_sub(interval_ns * u64::from(burst.max(1)));
            if allow_at > now_ns {
                return Some(Duration::from_nanos(allow_at - now_ns));
            }
            map.insert(
                key.to_owned(),
                Entry {
                    value: new_tat.to_string().into_bytes(),
                    expires_at: Some(now + Duration::from_nanos(new_tat - now_ns)),
                },
            );
            None
        }))
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>, KvError> {
        Ok(self.with_map(false, |map, now| {
            live_entry(map, key, now)
                .and_then(|e| e.expires_at.map(|t| t.saturating_duration_since(now)))
        }))
    }

    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> Result<(), KvError> {
        Ok(())
    }
}
