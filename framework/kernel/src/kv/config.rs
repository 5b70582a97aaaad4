//! `[redis]`: the shared key-value store. A section of the kernel's, registered
//! like a plugin's.

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigIssue, ConfigSection, ConnectionUrl};

/// `[redis]`: the shared key-value store. With no `url`, an in-memory store is used,
/// which is only correct for a single instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:port/db`; absent = in-memory store.
    pub url: Option<ConnectionUrl>,
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
            key_prefix: "weapp:".into(),
            connect_timeout_ms: 1_000,
            response_timeout_ms: 1_000,
        }
    }
}

impl ConfigSection for RedisConfig {
    const NAME: &'static str = "redis";

    fn issues(&self, _config: &Config) -> Vec<ConfigIssue> {
        match &self.url {
            Some(url)
                if !matches!(
                    url.scheme().as_deref(),
                    Some("redis" | "rediss" | "unix" | "redis+unix")
                ) =>
            {
                vec![ConfigIssue::new(
                    "redis.url",
                    format!("unsupported scheme in {url} (expected redis://)"),
                )]
            }
            _ => Vec::new(),
        }
    }
}
crate::config_section!(RedisConfig);
