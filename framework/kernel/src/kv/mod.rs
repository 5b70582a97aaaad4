//! A small key-value store for sessions, rate limits, nonces, locks and caches.
//!
//! [`KvStore`] has two implementations: [`RedisStore`] (production; shared by all
//! instances; one Redis server or a Redis Cluster) and [`MemoryStore`] (the embedded
//! default; one process only). Both pass the same test suite. Values are bytes; TTLs
//! are per key. Every operation but `get_many` touches a single key, so none needs
//! keys in one hash slot on a cluster (`get_many` is split by slot).

mod broadcast;
mod config;
mod memory;
pub mod metrics;
pub mod once;
mod redis_client;
mod redis_store;
pub mod stream_entry;

use std::sync::Arc;
use std::time::Duration;

pub use broadcast::Broadcast;
pub use memory::MemoryStore;
pub use redis_client::{RedisClient, RedisConnection};
pub use redis_store::RedisStore;

pub use config::RedisConfig;

/// A key-value store failure, typically Redis being unreachable (a 503 for clients).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KvError(pub String);

impl crate::error::SubsystemError for KvError {
    fn context(&self) -> Option<&'static str> {
        Some("key-value store error")
    }
    fn status(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::SERVICE_UNAVAILABLE
    }
    fn code(&self) -> &'static str {
        "kv_unavailable"
    }
    fn public_message(&self) -> String {
        "the key-value store is unavailable, try again later".to_owned()
    }
}

/// The operations weapp needs from a key-value store. Every operation is atomic.
#[async_trait::async_trait]
pub trait KvStore: Send + Sync + 'static {
    /// The value of `key`, if present and not expired.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError>;

    /// The values of several keys in one round trip, in order.
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            values.push(self.get(key).await?);
        }
        Ok(values)
    }

    /// Sets `key`, replacing any value; `ttl` of `None` keeps it until deleted.
    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), KvError>;

    /// Sets `key` only if absent; returns whether it was set. The basis of locks and
    /// replay protection.
    async fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, KvError>;

    /// Deletes `key`; returns whether it existed.
    async fn delete(&self, key: &str) -> Result<bool, KvError>;

    /// Deletes `key` only if its value equals `expected` (a lock released by its owner
    /// only); returns whether it was deleted.
    async fn delete_if_equals(&self, key: &str, expected: &[u8]) -> Result<bool, KvError>;

    /// Sets `key` to `value` only if it still holds `expected` (compare-and-set);
    /// returns whether it was set. A key deleted meanwhile stays deleted, so a write
    /// racing a delete cannot bring the value back.
    async fn replace_if_equals(
        &self,
        key: &str,
        expected: &[u8],
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, KvError>;

    /// Appends `item` to the list at `key`, keeping only its newest `max_len` items,
    /// and sets the list's time to live; one atomic step.
    async fn push_bounded(
        &self,
        key: &str,
        item: &[u8],
        max_len: usize,
        ttl: Option<Duration>,
    ) -> Result<(), KvError>;

    /// Removes the list at `key` and returns its items, oldest first (none if absent).
    async fn take_list(&self, key: &str) -> Result<Vec<Vec<u8>>, KvError>;

    /// Adds `by` to the integer at `key` (absent counts as 0) and returns the new value.
    /// `ttl` is applied when the key has no expiry yet, so a counter window starts with
    /// its first increment. A non-integer value is an error.
    async fn increment(&self, key: &str, by: i64, ttl: Option<Duration>) -> Result<i64, KvError>;

    /// Remaining time to live: `None` if the key is absent or has no expiry.
    async fn ttl(&self, key: &str) -> Result<Option<Duration>, KvError>;

    /// One request against a GCRA rate limit: `burst` requests at once, refilling one
    /// per `interval`. Returns `None` when allowed, or how long to wait.
    async fn throttle(
        &self,
        key: &str,
        interval: Duration,
        burst: u32,
    ) -> Result<Option<Duration>, KvError>;

    /// Checks that the store answers, for readiness probes.
    async fn ping(&self) -> Result<(), KvError>;

    /// Which implementation this is (`redis`, `memory`), for `/readyz` and logs.
    fn backend(&self) -> &'static str;
}

/// The store configured by `[redis]`: Redis when `redis.url` is set, else in memory.
/// Redis is connected lazily, so the app starts (unready) while Redis is down.
pub fn connect(config: &RedisConfig) -> Result<Arc<dyn KvStore>, KvError> {
    let client = match config.url {
        Some(_) => Some(RedisClient::open(config)?),
        None => None,
    };
    store_on(client.as_ref())
}

/// The store on `client`'s Redis, or in memory without one; for an app that also
/// uses the client for other things (the event stream).
pub fn store_on(client: Option<&RedisClient>) -> Result<Arc<dyn KvStore>, KvError> {
    match client {
        Some(client) => Ok(Arc::new(RedisStore::with_client(client.clone())?)),
        None => Ok(Arc::new(MemoryStore::new())),
    }
}
