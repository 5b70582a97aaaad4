//! The configured Redis, one server or a cluster: connections for the key-value
//! store and for the event streams, the same commands on either.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use super::{KvError, RedisConfig};

/// Where `[redis]` points: one server, or a cluster reached through its seed nodes.
#[derive(Clone)]
enum Target {
    Single(redis::Client),
    // Boxed: the cluster client is twice the single one, and one is made per app.
    Cluster(Box<ClusterClient>),
}

/// Opens connections to the configured Redis. Connections connect lazily and
/// reconnect by themselves, so an app starts (unready) while Redis is down.
#[derive(Clone)]
pub struct RedisClient {
    target: Target,
    connect_timeout: Duration,
    response_timeout: Duration,
    key_prefix: String,
}

/// A connection to the configured Redis, one server or a cluster; commands sent on
/// it are routed to the node owning their key. Clones share the connection.
#[derive(Clone)]
pub enum RedisConnection {
    /// One server, through a reconnecting connection manager.
    Single(ConnectionManager),
    /// A cluster: a connection to every master, commands routed by hash slot.
    Cluster(ClusterConnection),
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConnection::Single(conn) => conn.req_packed_command(cmd),
            RedisConnection::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConnection::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            RedisConnection::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConnection::Single(conn) => conn.get_db(),
            RedisConnection::Cluster(conn) => conn.get_db(),
        }
    }
}

impl RedisClient {
    /// A client for `config.url` (with `redis.cluster`, a seed node of a cluster,
    /// with `redis.cluster_nodes` as further seeds); nothing is connected yet.
    pub fn open(config: &RedisConfig) -> Result<Self, KvError> {
        let url = config
            .url
            .as_ref()
            .ok_or_else(|| KvError("redis.url is not set".into()))?;
        let target = match config.cluster {
            false => Target::Single(redis::Client::open(url.expose())?),
            true => {
                let seeds = std::iter::once(url)
                    .chain(&config.cluster_nodes)
                    .map(|url| url.expose().to_owned());
                Target::Cluster(Box::new(ClusterClient::builder(seeds).retries(2).build()?))
            }
        };
        Ok(RedisClient {
            target,
            connect_timeout: Duration::from_millis(config.connect_timeout_ms),
            response_timeout: Duration::from_millis(config.response_timeout_ms),
            key_prefix: config.key_prefix.clone(),
        })
    }

    /// The prefix every key of this app carries (`redis.key_prefix`).
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// Whether this is a cluster (`redis.cluster`).
    pub fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    /// A multiplexed connection whose commands time out after `redis.response_timeout_ms`:
    /// the one the key-value store shares between all requests.
    pub fn connection(&self) -> Result<RedisConnection, KvError> {
        self.connection_with_timeout(self.response_timeout)
    }

    /// A connection of its own for blocking commands (`XREADGROUP … BLOCK`), which
    /// would hold up every other command on a shared one; `blocking` is added to the
    /// response timeout, so a blocked read is not cut short.
    pub fn dedicated_connection(&self, blocking: Duration) -> Result<RedisConnection, KvError> {
        self.connection_with_timeout(self.response_timeout + blocking)
    }

    fn connection_with_timeout(&self, timeout: Duration) -> Result<RedisConnection, KvError> {
        Ok(match &self.target {
            Target::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.connect_timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(500));
                RedisConnection::Single(ConnectionManager::new_lazy_with_config(
                    client.clone(),
                    config,
                )?)
            }
            Target::Cluster(client) => {
                let config = ClusterConfig::new()
                    .set_connection_timeout(self.connect_timeout)
                    .set_response_timeout(timeout);
                RedisConnection::Cluster(client.get_pending_async_connection_with_config(config))
            }
        })
    }
}
