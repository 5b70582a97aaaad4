//! [`KvStore`] on Redis (one server or a cluster) through a reconnecting connection.

use std::sync::LazyLock;
use std::time::Duration;

use redis::{AsyncCommands, Script};

use super::RedisConfig;
use super::redis_client::{RedisClient, RedisConnection};
use super::{KvError, KvStore};

/// Redis-backed store. Every key is prefixed with `redis.key_prefix`. Commands time
/// out after `redis.response_timeout_ms`, so a down Redis gives fast errors (503s),
/// and the connection reconnects by itself when Redis returns.
///
/// On a cluster every operation touches one key, so it runs on the node owning
/// that key's slot; `get_many` is split by slot.
#[derive(Clone)]
pub struct RedisStore {
    conn: RedisConnection,
    client: RedisClient,
    prefix: String,
}

impl From<redis::RedisError> for KvError {
    fn from(err: redis::RedisError) -> Self {
        super::metrics::kv_errors()
            .with_label_values(&["redis"])
            .inc();
        KvError(format!("redis: {err}"))
    }
}

// Scripts are hashed once; calls then go by EVALSHA.
static DELETE_IF_EQUALS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then
            return redis.call('DEL', KEYS[1])
          end
          return 0",
    )
});

static REPLACE_IF_EQUALS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) ~= ARGV[1] then
            return 0
          end
          if tonumber(ARGV[3]) > 0 then
            redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
          else
            redis.call('SET', KEYS[1], ARGV[2])
          end
          return 1",
    )
});

static PUSH_BOUNDED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"redis.call('RPUSH', KEYS[1], ARGV[1])
          redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
          if tonumber(ARGV[3]) > 0 then
            redis.call('PEXPIRE', KEYS[1], ARGV[3])
          end
          return 1",
    )
});

static TAKE_LIST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local items = redis.call('LRANGE', KEYS[1], 0, -1)
          redis.call('DEL', KEYS[1])
          return items",
    )
});

static INCREMENT_WITH_TTL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local v = redis.call('INCRBY', KEYS[1], ARGV[1])
          if tonumber(ARGV[2]) > 0 and redis.call('PTTL', KEYS[1]) < 0 then
            redis.call('PEXPIRE', KEYS[1], ARGV[2])
          end
          return v",
    )
});

// GCRA on the server's clock, so instances with skewed clocks agree.
static THROTTLE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local t = redis.call('TIME')
          local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
          local interval = tonumber(ARGV[1])
          local burst = tonumber(ARGV[2])
          local tat = tonumber(redis.call('GET', KEYS[1]) or now)
          if tat < now then tat = now end
          local new_tat = tat + interval
          local allow_at = new_tat - interval * burst
          if allow_at > now then return allow_at - now end
          redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1)
          return 0",
    )
});

impl RedisStore {
    /// A lazily connecting store for `config.url`.
    pub fn connect(config: &RedisConfig) -> Result<Self, KvError> {
        Self::with_client(RedisClient::open(config)?)
    }

    /// A store on `client`'s Redis, with its key prefix.
    pub fn with_client(client: RedisClient) -> Result<Self, KvError> {
        Ok(RedisStore {
            conn: client.connection()?,
            prefix: client.key_prefix().to_owned(),
            client,
        })
    }

    /// The client this store connects through, for other users of the same Redis
    /// (the event streams).
    pub fn client(&self) -> &RedisClient {
        &self.client
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

fn millis(ttl: Duration) -> u64 {
    // Redis rejects a zero expiry; round sub-millisecond TTLs up.
    (ttl.as_millis() as u64).max(1)
}

#[async_trait::async_trait]
impl KvStore for RedisStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.conn.clone().get(self.key(key)).await?)
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        let mut cmd = redis::cmd("MGET");
        for key in keys {
            cmd.arg(self.key(key));
        }
        Ok(cmd.query_async(&mut self.conn.clone()).await?)
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), KvError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg(value);
        if let Some(ttl) = ttl {
            cmd.arg("PX").arg(millis(ttl));
        }
        Ok(cmd.query_async(&mut self.conn.clone()).await?)
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, KvError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg(value).arg("NX");
        if let Some(ttl) = ttl {
            cmd.arg("PX").arg(millis(ttl));
        }
        let reply: Option<String> = cmd.query_async(&mut self.conn.clone()).await?;
        Ok(reply.is_some())
    }

    async fn delete(&self, key: &str) -> Result<bool, KvError> {
        let removed: i64 = self.conn.clone().del(self.key(key)).await?;
        Ok(removed > 0)
    }

    async fn delete_if_equals(&self, key: &str, expected: &[u8]) -> Result<bool, KvError> {
        let removed: i64 = DELETE_IF_EQUALS
            .key(self.key(key))
            .arg(expected)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(removed > 0)
    }

    async fn replace_if_equals(
        &self,
        key: &str,
        expected: &[u8],
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, KvError> {
        let replaced: i64 = REPLACE_IF_EQUALS
            .key(self.key(key))
            .arg(expected)
            .arg(value)
            .arg(ttl.map(millis).unwrap_or(0))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(replaced > 0)
    }

    async fn push_bounded(
        &self,
        key: &str,
        item: &[u8],
        max_len: usize,
        ttl: Option<Duration>,
    ) -> Result<(), KvError> {
        let _: i64 = PUSH_BOUNDED
            .key(self.key(key))
            .arg(item)
            .arg(max_len.max(1))
            .arg(ttl.map(millis).unwrap_or(0))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn take_list(&self, key: &str) -> Result<Vec<Vec<u8>>, KvError> {
        Ok(TAKE_LIST
            .key(self.key(key))
            .invoke_async(&mut self.conn.clone())
            .await?)
    }

    async fn increment(&self, key: &str, by: i64, ttl: Option<Duration>) -> Result<i64, KvError> {
        Ok(INCREMENT_WITH_TTL
            .key(self.key(key))
            .arg(by)
            .arg(ttl.map(millis).unwrap_or(0))
            .invoke_async(&mut self.conn.clone())
            .await?)
    }

    async fn throttle(
        &self,
        key: &str,
        interval: Duration,
        burst: u32,
    ) -> Result<Option<Duration>, KvError> {
        let wait_us: i64 = THROTTLE
            .key(self.key(key))
            .arg(interval.as_micros().max(1) as u64)
            .arg(burst.max(1))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok((wait_us > 0).then(|| Duration::from_micros(wait_us as u64)))
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>, KvError> {
        let ms: i64 = self.conn.clone().pttl(self.key(key)).await?;
        Ok((ms >= 0).then(|| Duration::from_millis(ms as u64)))
    }

    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<(), KvError> {
        let _: String = redis::cmd("PING")
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }
}
