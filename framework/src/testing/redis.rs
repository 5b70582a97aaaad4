//! Redis stores and settings for tests, each with a unique key prefix so parallel
//! tests never collide, on the test Redis or the local test Redis Cluster.

use std::sync::Arc;

use super::redis_cluster;
use super::services::{redis_cluster_url, redis_url};
use crate::kv::{KvStore, RedisStore};

/// A Redis store with a unique key prefix, so parallel tests never collide; panics
/// with a clear message when Redis is unreachable.
pub async fn redis_store() -> Arc<dyn KvStore> {
    let store = RedisStore::connect(&redis_config()).expect("valid Redis URL");
    store.ping().await.unwrap_or_else(|e| {
        panic!(
            "Redis is not reachable at {} ({e}); `tests/run.sh` starts it",
            redis_url()
        )
    });
    Arc::new(store)
}

/// `[redis]` for the test Redis, with a unique key prefix.
pub fn redis_config() -> crate::kv::RedisConfig {
    crate::kv::RedisConfig {
        url: Some(crate::config::ConnectionUrl::new(redis_url())),
        key_prefix: unique_redis_prefix(),
        ..Default::default()
    }
}

/// `[redis]` for the test Redis Cluster (its first node; the others are found
/// from it), with a unique key prefix; [`ensure_redis_cluster`] first.
pub fn redis_cluster_config() -> crate::kv::RedisConfig {
    crate::kv::RedisConfig {
        url: Some(crate::config::ConnectionUrl::new(redis_cluster_url())),
        cluster: true,
        key_prefix: unique_redis_prefix(),
        ..Default::default()
    }
}

/// Starts the local test Redis Cluster (three masters on 127.0.0.1:7000-7002) when
/// it is not running, unless `WEAPP_TEST_REDIS_CLUSTER_URL` names another; panics
/// with what failed.
pub async fn ensure_redis_cluster() {
    if std::env::var_os("WEAPP_TEST_REDIS_CLUSTER_URL").is_some() {
        return;
    }
    let started = tokio::task::spawn_blocking(redis_cluster::ensure)
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    if let Err(e) = started {
        panic!("the test Redis Cluster could not be started: {e}");
    }
}

/// A Redis Cluster store with a unique key prefix (the cluster started if absent);
/// panics with a clear message when the cluster is unreachable.
pub async fn redis_cluster_store() -> Arc<dyn KvStore> {
    ensure_redis_cluster().await;
    let store = RedisStore::connect(&redis_cluster_config()).expect("valid Redis URL");
    store.ping().await.unwrap_or_else(|e| {
        panic!(
            "the Redis Cluster is not reachable at {} ({e}); `tests/run.sh` starts it",
            redis_cluster_url()
        )
    });
    Arc::new(store)
}

pub(super) fn unique_redis_prefix() -> String {
    format!("weapp_test:{}:", uuid::Uuid::new_v4().simple())
}

pub(super) async fn check_redis() {
    redis_store().await;
}
