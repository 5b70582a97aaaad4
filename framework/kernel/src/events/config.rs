//! `[events]`: how shared events cross instances.

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigIssue, ConfigSection};
use crate::kv::RedisConfig;

/// Where shared events ([`EventBus::publish_shared_batch`](super::EventBus::publish_shared_batch))
/// go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelayMode {
    /// Redis when `redis.url` is set, else in process.
    Auto,
    /// In process: the publishing instance's subscribers handle them (one instance
    /// only, or events no other instance needs).
    Memory,
    /// A Redis stream read by one consumer group per subscription.
    Redis,
}

/// `[events]`: the relay of shared events, and its stream's limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// `auto` (Redis when `redis.url` is set), `memory` or `redis`.
    pub relay: RelayMode,
    /// The stream's key, after `redis.key_prefix`.
    pub stream: String,
    /// Entries kept in the stream at most (trimmed approximately on append): it
    /// must hold what a group can fall behind by, or unread events are lost.
    pub max_len: u64,
    /// Entries older than this are trimmed (s), read or not.
    pub max_age_s: u64,
    /// Events read (and handed to a batch subscriber) at once.
    pub batch_size: usize,
    /// Events read at once at most while a group is behind: a read that comes back
    /// full doubles the next one, up to this, so a batch subscriber (the audit log)
    /// pays its per-batch cost once per more events and catches up.
    pub max_batch_size: usize,
    /// How long a read waits for new events before checking for shutdown (ms).
    pub block_ms: u64,
    /// An event delivered but not acknowledged for this long (its consumer died, or
    /// its handler failed) is claimed again by a live consumer (ms).
    pub claim_idle_ms: u64,
    /// How often each consumer looks for such events, trims by age and reports the
    /// groups' lag (ms).
    pub claim_interval_ms: u64,
    /// Deliveries of one event to one group before it is moved to the dead-letter
    /// stream (`<stream>:dead`) and logged.
    pub max_deliveries: u64,
    /// This instance's consumer name; empty = host name, process id and a random
    /// suffix, so a restarted instance is a new consumer and its predecessor's
    /// unacknowledged events are claimed after `claim_idle_ms`.
    pub consumer: String,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            relay: RelayMode::Auto,
            stream: "events".to_owned(),
            max_len: 1_000_000,
            max_age_s: 7 * 24 * 3600,
            batch_size: 256,
            max_batch_size: 2_048,
            block_ms: 1_000,
            claim_idle_ms: 30_000,
            claim_interval_ms: 5_000,
            max_deliveries: 10,
            consumer: String::new(),
        }
    }
}

impl EventsConfig {
    /// Whether shared events go through Redis, given `[redis]`.
    pub fn uses_redis(&self, redis: &RedisConfig) -> bool {
        match self.relay {
            RelayMode::Auto => redis.url.is_some(),
            RelayMode::Memory => false,
            RelayMode::Redis => true,
        }
    }
}

impl ConfigSection for EventsConfig {
    const NAME: &'static str = "events";

    fn issues(&self, config: &Config) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let redis = config.get::<RedisConfig>().map(|r| r.url.is_some());
        if self.relay == RelayMode::Redis && matches!(redis, Ok(false)) {
            issues.push(ConfigIssue::new(
                "events.relay",
                "`redis` needs redis.url (or use `auto` or `memory`)",
            ));
        }
        if self.stream.is_empty() {
            issues.push(ConfigIssue::new("events.stream", "must not be empty"));
        }
        let positive = [
            ("events.max_len", self.max_len),
            ("events.max_age_s", self.max_age_s),
            ("events.batch_size", self.batch_size as u64),
            ("events.block_ms", self.block_ms),
            ("events.claim_idle_ms", self.claim_idle_ms),
            ("events.claim_interval_ms", self.claim_interval_ms),
            ("events.max_deliveries", self.max_deliveries),
        ];
        for (key, value) in positive {
            if value == 0 {
                issues.push(ConfigIssue::new(key, "must be at least 1"));
            }
        }
        if self.max_batch_size < self.batch_size {
            issues.push(ConfigIssue::new(
                "events.max_batch_size",
                "must be at least events.batch_size",
            ));
        }
        issues
    }
}
crate::config_section!(EventsConfig);
