//! Test helpers for apps and plugins: throwaway databases and an app spawned on a
//! free port, with the WeChat sandbox (so only with the default `sandbox` feature).
//!
//! Service locations come from `WEAPP_TEST_POSTGRES_URL`, `WEAPP_TEST_MYSQL_URL` and
//! `WEAPP_TEST_REDIS_URL` (defaults: the local services on their standard ports). A
//! missing service fails the test with a message saying what to start; it never skips.

mod app;
pub mod architecture;
mod database;
mod pg_replica;
mod private_servers;
mod redis;
mod redis_cluster;
mod sdk;
mod services;

pub use app::{
    SANDBOX_APPID, SANDBOX_SECRET, TestApp, TestAppBuilder, metric_sample, spawn_app,
    test_crypto_keys,
};
pub use database::{ReplicatedDatabase, TestDatabase};
pub use private_servers::{PrivatePostgres, PrivateRedis};
pub use redis::{
    ensure_redis_cluster, redis_cluster_config, redis_cluster_store, redis_config, redis_store,
};
use services::wait_until;
pub use services::{mysql_url, postgres_url, redis_cluster_url, redis_url};
