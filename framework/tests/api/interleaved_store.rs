//! A key-value store for race tests: memory underneath, with hooks that run another
//! party's step at the exact point of an operation (after a read, before a lock).

use std::sync::Arc;
use std::time::Duration;

use weapp::kv::{KvError, KvStore, MemoryStore};

/// What another party does between two steps of the code under test.
#[weapp::async_trait::async_trait]
pub(crate) trait Interleave: Send + Sync + 'static {
    /// Runs after `get(key)` read from `store`, before the caller sees the value.
    async fn after_get(&self, _store: &MemoryStore, _key: &str) {}
    /// Runs before `set_if_absent(key)` reaches the store.
    async fn before_set_if_absent(&self, _key: &str) {}
}

/// [`MemoryStore`] (shared, so another party can use it directly) with `hooks`.
pub(crate) struct InterleavedStore<H> {
    pub(crate) inner: Arc<MemoryStore>,
    pub(crate) hooks: H,
}

#[weapp::async_trait::async_trait]
impl<H: Interleave> KvStore for InterleavedStore<H> {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let value = self.inner.get(key).await?;
        self.hooks.after_get(&self.inner, key).await;
        Ok(value)
    }
    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), KvError> {
        self.inner.set(key, value, ttl).await
    }
    async fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, KvError> {
        self.hooks.before_set_if_absent(key).await;
        self.inner.set_if_absent(key, value, ttl).await
    }
    async fn delete(&self, key: &str) -> Result<bool, KvError> {
        self.inner.delete(key).await
    }
    async fn delete_if_equals(&self, key: &str, expected: &[u8]) -> Result<bool, KvError> {
        self.inner.delete_if_equals(key, expected).await
    }
    async fn replace_if_equals(
        &self,
        key: &str,
        expected: &[u8],
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, KvError> {
        self.inner
            .replace_if_equals(key, expected, value, ttl)
            .await
    }
    async fn push_bounded(
        &self,
        key: &str,
        item: &[u8],
        max_len: usize,
        ttl: Option<Duration>,
    ) -> Result<(), KvError> {
        self.inner.push_bounded(key, item, max_len, ttl).await
    }
    async fn take_list(&self, key: &str) -> Result<Vec<Vec<u8>>, KvError> {
        self.inner.take_list(key).await
    }
    async fn increment(&self, key: &str, by: i64, ttl: Option<Duration>) -> Result<i64, KvError> {
        self.inner.increment(key, by, ttl).await
    }
    async fn ttl(&self, key: &str) -> Result<Option<Duration>, KvError> {
        self.inner.ttl(key).await
    }
    async fn throttle(
        &self,
        key: &str,
        interval: Duration,
        burst: u32,
    ) -> Result<Option<Duration>, KvError> {
        self.inner.throttle(key, interval, burst).await
    }
    async fn ping(&self) -> Result<(), KvError> {
        self.inner.ping().await
    }
    fn backend(&self) -> &'static str {
        "memory"
    }
}
