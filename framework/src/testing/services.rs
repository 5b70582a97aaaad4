//! Where the test services are: the environment's `WEAPP_TEST_*_URL`, or the local
//! services on their standard ports.

use std::time::{Duration, Instant};

pub(super) fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// Admin URL of the test PostgreSQL server.
pub fn postgres_url() -> String {
    env_or(
        "WEAPP_TEST_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    )
}

/// Admin URL of the test MySQL/MariaDB server.
pub fn mysql_url() -> String {
    env_or("WEAPP_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
}

/// URL of the test Redis server.
pub fn redis_url() -> String {
    env_or("WEAPP_TEST_REDIS_URL", "redis://127.0.0.1:6379")
}

/// URL of one node of the test Redis Cluster (three masters on 127.0.0.1:7000-7002,
/// which `tests/setup.sh` starts).
pub fn redis_cluster_url() -> String {
    env_or("WEAPP_TEST_REDIS_CLUSTER_URL", "redis://127.0.0.1:7000")
}

/// Polls `check` every 100 ms until it holds; an error names `what` did not
/// happen within `limit`. For the helpers that start local services.
pub(super) fn wait_until(
    what: &str,
    limit: Duration,
    check: impl Fn() -> bool,
) -> Result<(), String> {
    let started = Instant::now();
    while !check() {
        if started.elapsed() > limit {
            return Err(format!("{what} within {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
