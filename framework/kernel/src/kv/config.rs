//! `[redis]`: the shared key-value store. A section of the kernel's, registered
//! like a plugin's.

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigIssue, ConfigSection, ConnectionUrl};

/// `[redis]`: the shared key-value store. With no `url`, an in-memory store is used,
/// which is only correct for a single instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:port/db`; absent = in-memory store. With `cluster`, the
    /// address of one node of the cluster.
    pub url: Option<ConnectionUrl>,
    /// Whether `url` is a node of a Redis Cluster: commands are then routed to the
    /// node owning their key's hash slot, and the cluster's layout is followed as it
    /// changes.
    pub cluster: bool,
    /// Further cluster nodes to discover the cluster from, should `url`'s be down
    /// at start.
    pub cluster_nodes: Vec<ConnectionUrl>,
    /// Prefix for every key, so several apps can share one Redis.
    pub key_prefix: String,
    /// Timeout for establishing a connection.
    pub connect_timeout_ms: u64,
    /// Timeout for one command; a down Redis fails fast instead of hanging requests.
    pub response_timeout_ms: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: None,
            cluster: false,
            cluster_nodes: Vec::new(),
            key_prefix: "weapp:".into(),
            connect_timeout_ms: 1_000,
            response_timeout_ms: 1_000,
        }
    }
}

impl ConfigSection for RedisConfig {
    const NAME: &'static str = "redis";

    fn issues(&self, _config: &Config) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        // A cluster is reached over TCP only.
        let schemes: &[&str] = match self.cluster {
            false => &["redis", "rediss", "unix", "redis+unix"],
            true => &["redis", "rediss"],
        };
        let urls = self.url.iter().map(|url| ("redis.url", url));
        let nodes = self
            .cluster_nodes
            .iter()
            .map(|url| ("redis.cluster_nodes", url));
        for (key, url) in urls.chain(nodes) {
            if !url.scheme().is_some_and(|s| schemes.contains(&s.as_str())) {
                issues.push(ConfigIssue::new(
                    key,
                    format!(
                        "unsupported scheme in {url} (expected {}://)",
                        schemes.join("://, ")
                    ),
                ));
            }
        }
        if self.url.is_none() && (self.cluster || !self.cluster_nodes.is_empty()) {
            issues.push(ConfigIssue::new(
                "redis.cluster",
                "a cluster needs redis.url, the address of one of its nodes",
            ));
        }
        if !self.cluster && !self.cluster_nodes.is_empty() {
            issues.push(ConfigIssue::new(
                "redis.cluster_nodes",
                "only read with redis.cluster = true",
            ));
        }
        issues
    }
}
crate::config_section!(RedisConfig);
